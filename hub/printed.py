"""A print shop's list of the codes it printed, checked against a batch: every row must be a
genuine code (keyed check) of that batch, named once; the batch's seq ranges the list does
not name were not printed."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.batches import get_batch
from hub.imports import Problem, read_table
from hub.models import Code
from protocols.codes import Keyring, check_code
from protocols.errors import CodeError

MAX_ROWS = 200_000
CODE_COLUMNS = ("url", "serial", "human", "code")


@dataclass
class PrintedReport:
    rows: int = 0
    matched: int = 0
    missing: list[tuple[int, int]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted numbers as inclusive [from, to] runs."""
    out: list[tuple[int, int]] = []
    for n in seqs:
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


async def check_list(
    session: AsyncSession, keyring: Keyring, batch_id: int, data: bytes, fmt: str
) -> PrintedReport:
    batch = await get_batch(session, batch_id)
    table = read_table(data, fmt, MAX_ROWS)
    report = PrintedReport(rows=len(table.rows))
    column = next((c for c in CODE_COLUMNS if c in table.header), None)
    if column is None:
        report.problems.append(
            Problem(1, "", f"no code column: expected one of {', '.join(CODE_COLUMNS)}")
        )
        return report
    at = table.header.index(column)
    serial_rows: dict[str, int] = {}
    for index, cells in enumerate(table.rows):
        row = index + 2
        text = cells[at] if at < len(cells) else ""
        try:
            serial = check_code(text, keyring).serial
        except CodeError as exc:
            report.problems.append(Problem(row, column, str(exc)[:300]))
            continue
        if serial in serial_rows:
            report.problems.append(
                Problem(row, column, f"code {serial} also on row {serial_rows[serial]}")
            )
            continue
        serial_rows[serial] = row
    found: dict[str, tuple[int, int]] = {}
    serials = list(serial_rows)
    for i in range(0, len(serials), 1000):
        part = serials[i : i + 1000]
        rows = await session.execute(
            select(Code.serial, Code.batch_id, Code.seq).where(Code.serial.in_(part))
        )
        found.update({s: (b, q) for s, b, q in rows})
    printed_seqs = []
    for serial, row in serial_rows.items():
        where = found.get(serial)
        if where is None:
            report.problems.append(Problem(row, column, f"code {serial} is not in the database"))
        elif where[0] != batch_id:
            report.problems.append(
                Problem(row, column, f"code {serial} belongs to batch {where[0]}, not {batch_id}")
            )
        else:
            printed_seqs.append(where[1])
    report.problems.sort(key=lambda p: p.row)
    report.matched = len(printed_seqs)
    named = set(printed_seqs)
    report.missing = ranges([s for s in range(1, batch.generated + 1) if s not in named])
    return report
