"""Files for print shops: CSV and XLSX written chunk by chunk (never a whole batch in
memory), an AES-256 encrypted ZIP around either for the shop, and label sheets (PDF or PNG)
with QR (segno) or DataMatrix (zxing-cpp) symbols.

Writers run in a worker thread per chunk so that the event loop keeps answering consumers.
The heavy libraries are imported when a file is written, not when the hub starts.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Any

from hub.errors import InvalidRequestError

MIN_PASSWORD = 12
MAX_LABELS = 2_000
XLSX_MAX_ROWS = 1_048_575  # one sheet, below the header


Rows = AsyncIterator[list[list[str]]]


async def write_csv(chunks: AsyncIterator[bytes], out: IO[bytes]) -> int:
    """The CSV chunks (header first) into the binary file ``out``; the number of data rows."""
    lines = 0
    async for data in chunks:
        lines += data.count(b"\n")
        await asyncio.to_thread(out.write, data)
    return max(0, lines - 1)


async def write_xlsx(header: Sequence[str], rows: Rows, path: Path) -> int:
    """XLSX of ``rows`` at ``path`` (xlsxwriter in constant-memory mode: each row goes to a
    temporary file as it is written). Every cell is text, so serials and PINs keep their
    leading zeros."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet("codes")
    sheet.write_row(0, 0, list(header))
    count = 0

    def put(part: list[list[str]], at: int) -> None:
        write = sheet.write_string
        for r, row in enumerate(part, start=at):
            for c, value in enumerate(row):
                if value:
                    write(r, c, value)

    async for part in rows:
        if count + len(part) > XLSX_MAX_ROWS:
            book.close()
            raise InvalidRequestError(
                f"More than {XLSX_MAX_ROWS} rows do not fit one XLSX sheet: "
                "export a sequence range or use CSV"
            )
        await asyncio.to_thread(put, part, count + 1)
        count += len(part)
    await asyncio.to_thread(book.close)
    return count


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidRequestError(
            f"Archive password of {len(password)} characters: expected at least {MIN_PASSWORD}"
        )


def encrypt_zip(source: Path, arcname: str, password: str, target: Path) -> None:
    """``source`` as ``arcname`` inside an AES-256 encrypted ZIP at ``target`` (7-Zip,
    WinRAR, macOS Archive Utility's 7z and ``7z x`` open it with the password)."""
    import pyzipper

    check_password(password)
    with pyzipper.AESZipFile(
        target, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as archive:
        archive.setpassword(password.encode())
        archive.setencryption(pyzipper.WZ_AES, nbits=256)
        archive.write(source, arcname)


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="yima-export-")


# Label sheets -----------------------------------------------------------------------------

# A4 at 300 dpi, 4 x 10 labels of 52 x 29 mm.
PAGE = (2480, 3508)
COLUMNS, ROWS = 4, 10
MARGIN = (70, 120)


def _matrix(text: str, symbology: str) -> Any:
    """The symbol as a PIL image, one pixel per module, black on white with a quiet zone."""
    from PIL import Image

    if symbology == "qr":
        import segno

        qr = segno.make_qr(text, error="m")
        rows = [list(row) for row in qr.matrix_iter(scale=1, border=4)]
        image = Image.new("1", (len(rows[0]), len(rows)), 1)
        image.putdata([0 if bit else 1 for row in rows for bit in row])
        return image
    import zxingcpp

    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.DataMatrix)
    pixels = memoryview(barcode.to_image(scale=1, add_quiet_zones=True))  # type: ignore[arg-type]
    height, width = pixels.shape or (0, 0)
    return Image.frombytes("L", (width, height), pixels.tobytes()).convert("1")


def label_pages(labels: Sequence[tuple[str, str, str]], symbology: str) -> list[Any]:
    """Pages of labels; each label is (symbol text, first caption line, second line)."""
    from PIL import Image, ImageDraw, ImageFont

    if symbology not in ("qr", "datamatrix"):
        raise InvalidRequestError(f"Symbology {symbology!r}: expected qr or datamatrix")
    if not 1 <= len(labels) <= MAX_LABELS:
        raise InvalidRequestError(f"{len(labels)} labels: expected 1..{MAX_LABELS} per sheet run")
    cell_w = (PAGE[0] - 2 * MARGIN[0]) // COLUMNS
    cell_h = (PAGE[1] - 2 * MARGIN[1]) // ROWS
    fonts = functools.cache(lambda size: ImageFont.load_default(size=size))
    pages: list[Any] = []
    per_page = COLUMNS * ROWS
    for page_start in range(0, len(labels), per_page):
        page = Image.new("1", PAGE, 1)
        draw = ImageDraw.Draw(page)
        for i, (text, line1, line2) in enumerate(labels[page_start : page_start + per_page]):
            x = MARGIN[0] + (i % COLUMNS) * cell_w
            y = MARGIN[1] + (i // COLUMNS) * cell_h
            symbol = _matrix(text, symbology)
            side = cell_h - 30
            module = max(1, side // max(symbol.size))
            symbol = symbol.resize(
                (symbol.size[0] * module, symbol.size[1] * module), Image.Resampling.NEAREST
            )
            page.paste(symbol, (x + 10, y + (cell_h - symbol.size[1]) // 2))
            tx = x + 20 + symbol.size[0]
            room = cell_w - (tx - x) - 15
            size = 26
            while size > 10 and draw.textlength(line2, font=fonts(size)) > room:
                size -= 2
            draw.text((tx, y + cell_h // 2 - 40), line1, fill=0, font=fonts(size))
            draw.text((tx, y + cell_h // 2 + 5), line2, fill=0, font=fonts(size))
        pages.append(page)
    return pages


def save_pages(pages: list[Any], fmt: str, out: IO[bytes]) -> None:
    """PDF (all pages, 300 dpi) or PNG (the first page; ask for one page's labels)."""
    if fmt == "pdf":
        pages[0].save(out, "PDF", resolution=300, save_all=True, append_images=pages[1:])
    elif fmt == "png":
        if len(pages) > 1:
            raise InvalidRequestError(
                f"{len(pages)} pages do not fit one PNG: expected at most "
                f"{COLUMNS * ROWS} labels, or ask for PDF"
            )
        pages[0].save(out, "PNG", dpi=(300, 300))
    else:
        raise InvalidRequestError(f"Label sheet format {fmt!r}: expected pdf or png")
