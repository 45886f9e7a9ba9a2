"""The consumer's verification page, in Simplified Chinese and English."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hub import regions

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
        "nth": "您是第 {n} 次查询，首次查询于 {when}{where}。",
        "first": "您是首次查询此码。",
        "asked": "您之前查询过这个码吗？",
        "yes": "查询过",
        "no": "没有",
        "report": "举报疑似假货",
        "hotline": "防伪热线",
        "shared_place": "分享位置，帮助识别假货",
        "spec": "规格",
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
        "site": "生产地",
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
        "nth": "This is check number {n} of this code; it was first checked on {when}{where}.",
        "first": "You are the first to check this code.",
        "asked": "Did you check this code before?",
        "yes": "Yes",
        "no": "No",
        "report": "Report a suspected fake",
        "hotline": "Hotline",
        "shared_place": "Share your location to help catch fakes",
        "spec": "Spec",
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
        "site": "Production site",
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
dt{color:#59636e;white-space:nowrap}dd{margin:0;overflow-wrap:anywhere}
dd.code{font-family:ui-monospace,monospace;letter-spacing:.02em}
.brand{display:flex;align-items:center;gap:.6rem;font-weight:600;margin:0 0 1rem}
.brand img{height:2rem}.icon{font-size:2.6rem;line-height:1;display:block;margin-bottom:.4rem}
.note{background:#fff;border-radius:1rem;padding:.9rem 1.25rem;margin:1rem 0;line-height:1.6}
.ask a,.act a{display:inline-block;margin:.4rem .6rem 0 0;padding:.45rem 1rem;border-radius:.6rem;
background:#eaeef2;text-decoration:none}.act a.warn{background:#cf222e;color:#fff}
.product img{width:100%;border-radius:1rem;margin:1rem 0 0}
footer{text-align:center;font-size:.9rem}a{color:#0969da}
"""

ICONS = {
    "genuine": "✔",
    "genuine_rescanned": "✔",
    "not_activated": "!",
    "recalled": "!",
    "suspicious": "⚠",
    "unknown": "✖",
}
WARNINGS = frozenset({"suspicious", "unknown", "recalled", "not_activated"})


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


def region_name(code: str) -> str:
    """A division code as its name (浙江省杭州市); other text as it is."""
    try:
        return regions.full_name(regions.normalize_code(code)) if code else code
    except (regions.RegionCodeError, regions.UnknownRegionError):
        return code


def verdict_page(
    result: dict[str, Any],
    lang: str,
    other_lang_url: str,
    zone: str = "Asia/Shanghai",
    *,
    brand: str = "",
    hotline: str | None = None,
    here: str = "",
) -> str:
    """The verdict page. ``here`` is this page's path (for the question links). Every text
    that came from a user or an import is escaped."""
    t = TEXT[lang]
    verdict = result["verdict"]
    rows: list[tuple[str, str]] = []
    product = result.get("product")
    if product:
        rows.append((t["product"], product["name"]))
    for key in ("lot", "produced_at", "line", "site", "region", "first_scan_at", "scan_count"):
        value = result.get(key)
        if value is not None:
            shown = when(value, zone) if key in _TIMES else str(value)
            rows.append((t[key], region_name(shown) if key == "region" else shown))
    details = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
    if result.get("serial"):
        details += f'<dt>{t["serial"]}</dt><dd class="code">{html.escape(result["serial"])}</dd>'
    parts = []
    if brand:
        parts.append(f'<div class="brand">{html.escape(brand)}</div>')
    parts.append(
        f'<div class="badge" style="background:{COLOURS[verdict]}" data-verdict="{verdict}">'
        f'<span class="icon" aria-hidden="true">{ICONS[verdict]}</span>'
        f"<h1>{html.escape(t[verdict])}</h1><p>{html.escape(t[verdict + '_note'])}</p></div>"
    )
    count, first = result.get("scan_count"), result.get("first_verified_at")
    if verdict in ("genuine", "genuine_rescanned", "suspicious") and count:
        if count > 1 and first:
            where = region_name(result.get("first_verified_region") or "")
            sentence = t["nth"].format(
                n=count,
                when=when(first, zone),
                where=f"（{where}）"
                if where and lang == "zh"
                else (f" ({where})" if where else ""),
            )
        else:
            sentence = t["first"]
        question = ""
        if verdict != "genuine_rescanned" and count > 1 and here:
            question = (
                f'<div class="ask" data-question="seen">{html.escape(t["asked"])}<br>'
                f'<a href="{html.escape(here)}?lang={lang}&amp;seen=yes">{t["yes"]}</a>'
                f'<a href="{html.escape(here)}?lang={lang}&amp;seen=no">{t["no"]}</a></div>'
            )
        parts.append(f'<div class="note" data-sentence>{html.escape(sentence)}{question}</div>')
    if details:
        parts.append(f"<dl>{details}</dl>")
    if verdict in WARNINGS and hotline:
        tel = "".join(c for c in hotline if c.isdigit() or c == "+")
        parts.append(
            f'<div class="act"><a class="warn" href="tel:{html.escape(tel)}">'
            f"{t['report']} · {t['hotline']} {html.escape(hotline)}</a></div>"
        )
    parts.append(f'<footer><a href="{html.escape(other_lang_url)}">{t["other"]}</a></footer>')
    return _page(lang, t["title"], "".join(parts))


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
