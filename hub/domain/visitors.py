"""Who is scanning: people or machines, and which network a person scans from.

Pure: no web, no database. The consumer view calls these with the request's facts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Link previewers and crawlers fetch a pasted code URL to draw a card; a person did not
# scan anything. The WeChat and QQ in-app browsers (MicroMessenger, QQ/, MQQBrowser) are
# people and stay scans; their link-card fetchers identify themselves differently. Scripts
# (curl, urllib) are not excluded: an enumeration script is exactly what the scan log and the
# rate limits must see.
_MACHINES = re.compile(
    r"bot\b|bot/|spider|crawl|slurp|preview|unfurl|facebookexternalhit|slack-imgproxy|"
    r"whatsapp|skypeuripreview|embedly|quora link|pinterest|vkshare|"
    r"wechatshare|wxwork.*preview|mqqurlmanager|qq-url-manager|qqurlmanager|"
    r"bytespider|yisouspider|sogou|360spider|petalbot|baiduspider",
    re.IGNORECASE,
)


def is_machine(user_agent: str | None) -> bool:
    """True for link previewers, crawlers and bots (by user agent); an empty user agent is
    a machine too: every phone browser sends one."""
    if not user_agent or not user_agent.strip():
        return True
    return _MACHINES.search(user_agent) is not None


def network_of(address: str | None) -> str | None:
    """The network a person scans from: IPv4 /24, IPv6 /48 (a home or a shop Wi-Fi), or
    None for an address that does not parse."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str | None:
    """The scanner's address: the peer, or behind trusted reverse proxies the right-most
    X-Forwarded-For entry that is not itself a trusted proxy."""
    if peer is None or not trusted or not forwarded_for or not _within(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")][:20]):
        if not _within(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer


def _within(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)
