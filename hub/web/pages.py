"""The consumer's verification page, in Simplified Chinese and English."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "一码 · 防伪查询",
        "genuine": "正品",
        "genuine_note": "这是品牌方出库激活的正品。",
        "genuine_rescanned": "正品（您已查询过）",
        "genuine_rescanned_note": "您之前查询过此码，它是品牌方出库激活的正品。",
        "recalled": "已召回",
        "recalled_note": "品牌方已召回此批产品，请停止使用并联系购买渠道。",
        "preview": "扫描商品上的二维码即可查询真伪。",
        "not_activated": "未激活",
        "not_activated_note": "此码尚未随商品出库激活，请向购买渠道核实。",
        "unknown": "无法识别",
        "unknown_note": "此码不是本品牌发放的防伪码，谨防假冒。",
        "suspicious": "警告：疑似复制码",
        "suspicious_note": "此码已被多人在不同地点查询，可能被复制到其他商品上，请谨慎。",
        "product": "产品",
        "lot": "批次",
        "produced_at": "生产时间",
        "line": "生产线",
        "region": "销售区域",
        "first_scan_at": "首次查询",
        "scan_count": "查询次数",
        "serial": "防伪码",
        "other": "English",
        "not_found": "页面不存在",
        "not_found_note": "请扫描商品上的二维码，或检查网址。",
    },
    "en": {
        "title": "Yima · Verify",
        "genuine": "Genuine",
        "genuine_note": "This product was shipped and activated by the brand.",
        "genuine_rescanned": "Genuine (checked before)",
        "genuine_rescanned_note": "You checked this code before; the brand shipped and "
        "activated this product.",
        "recalled": "Recalled",
        "recalled_note": "The brand has recalled this product. Stop using it and contact "
        "the seller.",
        "preview": "Scan the QR code on the product to check it.",
        "not_activated": "Not activated",
        "not_activated_note": "This code has not been shipped by the brand yet. "
        "Please check with the seller.",
        "unknown": "Unknown code",
        "unknown_note": "This code was not issued by the brand. Beware of counterfeits.",
        "suspicious": "Warning: possibly copied code",
        "suspicious_note": "This code has been checked by several people in different "
        "places and may have been copied onto other products.",
        "product": "Product",
        "lot": "Lot",
        "produced_at": "Produced",
        "line": "Production line",
        "region": "Sales region",
        "first_scan_at": "First checked",
        "scan_count": "Times checked",
        "serial": "Code",
        "other": "中文",
        "not_found": "Page not found",
        "not_found_note": "Scan the QR code on the product, or check the address.",
    },
}

COLOURS = {
    "genuine": "#1a7f37",
    "genuine_rescanned": "#1a7f37",
    "recalled": "#cf222e",
    "not_activated": "#9a6700",
    "unknown": "#cf222e",
    "suspicious": "#cf222e",
}

_STYLE = """
body{font-family:system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",
sans-serif;margin:0;background:#f6f8fa;color:#1f2328}
main{max-width:28rem;margin:0 auto;padding:1.5rem 1rem}
.badge{border-radius:1rem;padding:1.5rem;color:#fff;text-align:center}
.badge h1{margin:0 0 .5rem;font-size:1.8rem}.badge p{margin:0;font-size:1rem;line-height:1.5}
dl{background:#fff;border-radius:1rem;padding:1rem 1.25rem;margin:1rem 0;
display:grid;grid-template-columns:auto 1fr;gap:.5rem 1rem}
dt{color:#59636e}dd{margin:0;word-break:break-all}
footer{text-align:center;font-size:.9rem}a{color:#0969da}
"""


_TIMES = frozenset({"produced_at", "first_scan_at"})


def when(iso: str, zone: str) -> str:
    """'2026-11-23T18:52:15+00:00' in Asia/Shanghai → '2026-11-24 02:52'."""
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def pick_language(query_lang: str | None, accept_language: str | None) -> str:
    if query_lang in TEXT:
        return query_lang
    header = (accept_language or "").lower()
    if not header:
        return "zh"
    for part in header.split(","):
        tag = part.split(";")[0].strip()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "zh"


def _page(lang: str, title: str, body: str) -> str:
    html_lang = "zh-CN" if lang == "zh" else "en"
    return (
        f'<!doctype html><html lang="{html_lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def verdict_page(
    result: dict[str, Any], lang: str, other_lang_url: str, zone: str = "Asia/Shanghai"
) -> str:
    t = TEXT[lang]
    verdict = result["verdict"]
    rows: list[tuple[str, str]] = []
    product = result.get("product")
    if product:
        rows.append((t["product"], product["name"]))
    for key in ("lot", "produced_at", "line", "region", "first_scan_at", "scan_count"):
        value = result.get(key)
        if value is not None:
            rows.append((t[key], when(value, zone) if key in _TIMES else str(value)))
    if result.get("serial"):
        rows.append((t["serial"], result["serial"]))
    details = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
    body = (
        f'<div class="badge" style="background:{COLOURS[verdict]}" data-verdict="{verdict}">'
        f"<h1>{html.escape(t[verdict])}</h1><p>{html.escape(t[verdict + '_note'])}</p></div>"
        + (f"<dl>{details}</dl>" if details else "")
        + f'<footer><a href="{html.escape(other_lang_url)}">{t["other"]}</a></footer>'
    )
    return _page(lang, t["title"], body)


def preview_page(lang: str) -> str:
    """What a link previewer sees: no verdict (only a person's scan gets one)."""
    t = TEXT[lang]
    return _page(lang, t["title"], f"<p>{html.escape(t['preview'])}</p>")


def not_found_page(lang: str) -> str:
    t = TEXT[lang]
    body = (
        f'<div class="badge" style="background:#59636e"><h1>{t["not_found"]}</h1>'
        f"<p>{t['not_found_note']}</p></div>"
    )
    return _page(lang, t["title"], body)
