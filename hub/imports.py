"""CSV/XLSX imports of master data with a validation report (row, column, problem).

Every row is checked first (formats, lengths, duplicates inside the file and against the
database); rows are added only when no row has a problem, in the caller's transaction, so a
file is imported whole or not at all.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import regions, registry
from hub.errors import InvalidRequestError
from hub.models import Dealer, Product
from protocols.codes import normalize_gtin
from protocols.errors import CodeFormatError

MAX_ROWS = 50_000
MAX_PROBLEMS = 1_000


@dataclass(frozen=True)
class Problem:
    row: int  # 1 is the header
    column: str
    problem: str


@dataclass
class Report:
    imported: int = 0
    problems: list[Problem] = field(default_factory=list)

    def add(self, row: int, column: str, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(row, column, problem))

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]  # data rows; row i of the list is file row i + 2


def read_table(data: bytes, fmt: str, max_rows: int = MAX_ROWS) -> Table:
    """The cells of a CSV (UTF-8, with or without BOM, or GB18030 as Chinese Excel writes
    it) or XLSX file (first sheet) as text; a file that is neither is a clear error."""
    if fmt == "csv":
        rows = _csv_rows(data)
    elif fmt == "xlsx":
        rows = _xlsx_rows(data, max_rows + 1)
    else:
        raise InvalidRequestError(f"Unknown file format {fmt[:20]!r}: expected csv or xlsx")
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise InvalidRequestError("Empty file: expected a header row and data rows")
    if len(rows) - 1 > max_rows:
        raise InvalidRequestError(f"File of more than {max_rows} rows: expected at most {max_rows}")
    header = [h.strip().lower() for h in rows[0]]
    return Table(header, [[c.strip() for c in r] for r in rows[1:]])


def _csv_rows(data: bytes) -> list[list[str]]:
    if data.startswith(b"PK\x03\x04"):
        raise InvalidRequestError("The file is an XLSX (zip) file: expected CSV text")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes every byte string
        raise InvalidRequestError("CSV text is neither UTF-8 nor GB18030")
    if "\x00" in text:
        raise InvalidRequestError("CSV text contains NUL characters: expected a text file")
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InvalidRequestError(f"Unreadable CSV: {exc}") from None


def _xlsx_rows(data: bytes, limit: int) -> list[list[str]]:
    from openpyxl import load_workbook  # only imports need it

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise InvalidRequestError(f"Not a readable XLSX file ({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0]
        rows: list[list[str]] = []
        for values in sheet.iter_rows(values_only=True):
            rows.append(["" if v is None else _cell_text(v) for v in values])
            if len(rows) > limit:
                break
        return rows
    finally:
        book.close()


def _cell_text(value: Any) -> str:
    # Excel keeps GTINs and codes typed as numbers as floats: 6901234567892.0
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


Check = Callable[[str], str | None]  # cell -> problem or None


def _length(low: int, high: int) -> Check:
    def check(cell: str) -> str | None:
        if not low <= len(cell) <= high:
            return f"{len(cell)} characters: expected {low}-{high}"
        return None

    return check


def _gtin(cell: str) -> str | None:
    if not cell:
        return None
    try:
        normalize_gtin(cell)
    except CodeFormatError as exc:
        return str(exc)
    return None


def _url(cell: str) -> str | None:
    if not cell:
        return None
    if len(cell) > 500 or urlsplit(cell).scheme not in ("http", "https"):
        return "expected an http(s) URL of at most 500 characters"
    return None


def _region_codes(cell: str) -> str | None:
    for part in _split(cell):
        try:
            regions.region(part)
        except (regions.RegionCodeError, regions.UnknownRegionError) as exc:
            return str(exc)
    return None


def _split(cell: str) -> list[str]:
    return [p.strip() for p in cell.replace("；", ";").replace(",", ";").split(";") if p.strip()]


def _check_columns(
    table: Table,
    report: Report,
    checks: dict[str, Check],
    required: Sequence[str],
    extra_prefix: str | None = None,
) -> None:
    for name in table.header:
        known = name in checks or (extra_prefix is not None and name.startswith(extra_prefix))
        if not known:
            report.add(1, name, f"unknown column: expected {', '.join(checks)}")
    for name in required:
        if name not in table.header:
            report.add(1, name, "missing column")
    seen: set[str] = set()
    for name in table.header:
        if name in seen:
            report.add(1, name, "column appears twice")
        seen.add(name)


def _records(table: Table, report: Report, checks: dict[str, Check]) -> list[dict[str, str]]:
    records = []
    width = len(table.header)
    for index, cells in enumerate(table.rows):
        row = index + 2
        if len(cells) > width and any(cells[width:]):
            report.add(row, "", f"{len(cells)} cells: expected {width} (one per column)")
        record = dict(zip(table.header, cells + [""] * (width - len(cells)), strict=False))
        for name, check in checks.items():
            if name in record and (problem := check(record[name])):
                report.add(row, name, problem)
        records.append(record)
    return records


def _unique(
    records: list[dict[str, str]], report: Report, column: str, normal: Callable[[str], str]
) -> dict[str, int]:
    first: dict[str, int] = {}
    for index, record in enumerate(records):
        value = record.get(column, "")
        if not value:
            continue
        try:
            key = normal(value)
        except CodeFormatError:
            continue  # reported by the format check
        if key in first:
            report.add(index + 2, column, f"{value!r} also on row {first[key]}")
        else:
            first[key] = index + 2
    return first


PRODUCT_CHECKS: dict[str, Check] = {
    "sku": _length(1, 64),
    "name": _length(1, 200),
    "name_en": _length(0, 200),
    "gtin": _gtin,
    "spec": _length(0, 200),
    "image_url": _url,
}


async def import_products(session: AsyncSession, data: bytes, fmt: str) -> Report:
    """Products from a file: sku, name, name_en, gtin, spec, image_url, attr:<name>."""
    report = Report()
    table = read_table(data, fmt)
    _check_columns(table, report, PRODUCT_CHECKS, ("sku", "name"), "attr:")
    records = _records(table, report, PRODUCT_CHECKS)
    for index, record in enumerate(records):
        for name, value in record.items():
            if name.startswith("attr:") and len(value) > 200:
                report.add(index + 2, name, f"{len(value)} characters: expected 0-200")
    skus = _unique(records, report, "sku", lambda s: s)
    gtins = _unique(records, report, "gtin", normalize_gtin)
    if skus:
        taken = await session.scalars(select(Product.sku).where(Product.sku.in_(list(skus))))
        for sku in taken:
            report.add(skus[sku], "sku", f"product {sku!r} already exists")
    if gtins:
        taken = await session.scalars(select(Product.gtin).where(Product.gtin.in_(list(gtins))))
        for gtin in taken:
            if gtin is not None:
                report.add(gtins[gtin], "gtin", f"GTIN {gtin} already belongs to a product")
    if report.problems:
        return report
    for record in records:
        await registry.create_product(
            session,
            record["sku"],
            record["name"],
            record.get("gtin") or None,
            name_en=record.get("name_en") or None,
            spec=record.get("spec") or None,
            image_url=record.get("image_url") or None,
            attributes={
                name[len("attr:") :]: value
                for name, value in record.items()
                if name.startswith("attr:") and value
            },
        )
    report.imported = len(records)
    return report


DEALER_CHECKS: dict[str, Check] = {
    "code": _length(1, 64),
    "name": _length(1, 200),
    "region": _length(1, 100),
    "authorised_regions": _region_codes,
    "contact": _length(0, 100),
    "phone": _length(0, 32),
}


async def import_dealers(session: AsyncSession, data: bytes, fmt: str) -> Report:
    """Dealers from a file: code, name, region, authorised_regions (``;``-separated
    division codes), contact, phone."""
    report = Report()
    table = read_table(data, fmt)
    _check_columns(table, report, DEALER_CHECKS, ("code", "name", "region"))
    records = _records(table, report, DEALER_CHECKS)
    codes = _unique(records, report, "code", lambda s: s)
    if codes:
        taken = await session.scalars(select(Dealer.code).where(Dealer.code.in_(list(codes))))
        for code in taken:
            report.add(codes[code], "code", f"dealer {code!r} already exists")
    if report.problems:
        return report
    for record in records:
        await registry.create_dealer(
            session,
            record["code"],
            record["name"],
            record["region"],
            authorised=_split(record.get("authorised_regions", "")),
            contact=record.get("contact") or None,
            phone=record.get("phone") or None,
        )
    report.imported = len(records)
    return report
