"""Rebuild the bundled CJK font: Noto Sans CJK SC (SIL Open Font License 1.1) cut down to
ASCII, CJK punctuation and the 6,763 characters of GB 2312, so Chinese renders on any PDA
in a few MB. Needs fontTools and Debian's fonts-noto-cjk; run from the repository root:

    python pda_app/ui/assets/make_font.py
"""

from __future__ import annotations

from pathlib import Path

from fontTools import subset

SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
SC_INDEX = 2  # the collection's Simplified Chinese face (see fc-query)
TARGET = Path(__file__).with_name("NotoSansSC-Subset.otf")


def gb2312() -> str:
    chars = []
    for high in range(0xB0, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                chars.append(bytes([high, low]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return "".join(chars)


def main() -> None:
    text = (
        "".join(chr(c) for c in range(0x20, 0x7F))
        + "，。、；：？！“”‘’（）《》【】…—·￥％＋－／"
        + "✓✗←→↑↓●○"
        + gb2312()
    )
    options = subset.Options()
    options.font_number = SC_INDEX
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    font = subset.load_font(str(SOURCE), options, dontLoadGlyphNames=True)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    subset.save_font(font, str(TARGET), options)
    print(TARGET, TARGET.stat().st_size)


if __name__ == "__main__":
    main()
