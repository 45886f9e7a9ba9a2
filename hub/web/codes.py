"""Code batches for the back office: generation jobs (progress, cancel), range selection by
sequence number, printer exports (CSV, XLSX, encrypted ZIP, label sheets), voiding a range,
and checking a print shop's list of printed codes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from hub import batches, exports, printed
from hub.domain import gate
from hub.domain.lifecycle import Step
from hub.errors import InvalidRequestError
from hub.jobs import generate
from hub.models import Code, Product
from hub.web.api import Api, Body, Out, Params
from hub.web.keys import KEYRING, RUNTIME, SESSIONS, SETTINGS
from protocols.codes import code_url, human_forms

api = Api("codes", "Code batches: generation jobs, range selection, printer exports, void.")

Sku = Field(min_length=1, max_length=64, description="The brand's product code (SKU)")
RecordId = Field(ge=1, le=2**63 - 1)
Seq = Field(None, ge=1, le=batches.MAX_BATCH, description="卡序号 position in the batch, from 1")
# A batch this small is written before the answer (still through the job, in chunks).
INLINE_MAX = 50_000
INLINE_WAIT_S = 60.0


class BatchIn(Body):
    sku: str = Sku
    count: int = Field(ge=1, le=batches.MAX_BATCH)
    kind: Literal["item", "case", "pallet"] = "item"
    with_pin: bool = False
    seq_prefix: str | None = Field(
        None, max_length=16, description="Prefix of the printed sequence number (卡序号)"
    )
    seq_start: int = Field(1, ge=0, le=10**15 - 1, description="First printed sequence number")
    seq_width: int = Field(0, ge=0, le=15, description="Zero-pad sequence numbers to this width")
    sscc_prefix: str | None = Field(
        None,
        min_length=8,
        max_length=13,
        description="Pallets: extension digit + GS1 company prefix; each pallet gets an SSCC",
    )
    sscc_start: int = Field(0, ge=0, le=10**9, description="First SSCC serial reference")
    wait: bool = Field(
        True,
        description=f"Answer when the codes are written (batches up to {INLINE_MAX:,}); "
        "larger batches always answer at once and run in the background",
    )


class BatchOut(Out):
    id: int
    sku: str
    kind: str
    count: int
    key_id: int
    with_pin: bool
    states: dict[str, int] = Field(description="How many codes of the batch are in each state")
    status: Literal["queued", "running", "done", "cancelled", "failed"]
    generated: int = Field(description="Codes written so far (seq 1..generated)")
    progress: float = Field(description="generated / count")
    first_card_no: str
    last_card_no: str
    sscc_prefix: str | None
    error: str | None


class BatchList(Out):
    items: list[BatchOut]


class BatchParams(Params):
    batch_id: int = RecordId


def batch_out(info: batches.BatchInfo) -> BatchOut:
    return BatchOut(**info.__dict__, progress=round(info.generated / info.count, 4))


async def _info(request: web.Request, batch_id: int) -> BatchOut:
    async with request.app[SESSIONS]() as session:
        return batch_out(await batches.batch_info(session, batch_id))


@api.post("/api/v1/batches", body=BatchIn, response=BatchOut, status=201, errors=(404, 409))
async def add_batch(request: web.Request, body: BatchIn) -> BatchOut:
    """Create a batch of new codes; a background job writes them.

    Poll ``GET /api/v1/batches/{id}`` for ``status`` and ``progress``. A hub restart resumes
    the job where it stopped; ``POST /api/v1/batches/{id}/cancel`` stops it.
    """
    settings = request.app[SETTINGS]
    if body.count > settings.max_job_codes:
        raise InvalidRequestError(
            f"Invalid count {body.count}: this hub makes at most {settings.max_job_codes} "
            "codes per job (setting max_job_codes)"
        )
    spec = generate.JobSpec(
        sku=body.sku,
        count=body.count,
        kind=body.kind,
        with_pin=body.with_pin,
        seq_prefix=body.seq_prefix,
        seq_start=body.seq_start,
        seq_width=body.seq_width,
        sscc_prefix=body.sscc_prefix,
        sscc_start=body.sscc_start,
    )
    async with request.app[SESSIONS]() as session, session.begin():
        batch = await generate.create_job(
            session, request.app[KEYRING], spec, settings.max_job_codes
        )
    runner = request.app[RUNTIME].jobs
    if runner is not None:
        task = runner.submit(batch.id)
        if body.wait and body.count <= INLINE_MAX:
            # shield: a client that hangs up does not stop the job.
            await asyncio.wait([asyncio.shield(task)], timeout=INLINE_WAIT_S)
    return await _info(request, batch.id)


class BatchQuery(Params):
    limit: int = Field(50, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=2**31)


@api.get("/api/v1/batches", query=BatchQuery, response=BatchList)
async def list_batches(request: web.Request, query: BatchQuery) -> BatchList:
    """Batches, newest first, with their job status (``states`` left empty: see one batch)."""
    async with request.app[SESSIONS]() as session:
        found = await batches.list_batches(session, query.limit, query.offset)
    return BatchList(items=[batch_out(i) for i in found])


@api.get("/api/v1/batches/{batch_id}", params=BatchParams, response=BatchOut)
async def get_batch(request: web.Request, params: BatchParams) -> BatchOut:
    """A batch, its job's progress, and how many of its codes are in each state."""
    return await _info(request, params.batch_id)


@api.post("/api/v1/batches/{batch_id}/cancel", params=BatchParams, response=BatchOut, errors=(409,))
async def cancel_batch(request: web.Request, params: BatchParams) -> BatchOut:
    """Cancel a queued or running generation job; the codes written so far stay."""
    async with request.app[SESSIONS]() as session, session.begin():
        await generate.cancel(session, params.batch_id)
    return await _info(request, params.batch_id)


class RangeQuery(Params):
    from_seq: int | None = Seq
    to_seq: int | None = Seq
    from_no: str | None = Field(None, max_length=40, description="First printed 卡序号")
    to_no: str | None = Field(None, max_length=40, description="Last printed 卡序号")


async def _range(request: web.Request, batch_id: int, query: RangeQuery) -> tuple[int, int]:
    async with request.app[SESSIONS]() as session:
        batch = await batches.get_batch(session, batch_id)
    first = generate.seq_of_card_number(batch, query.from_no) if query.from_no else query.from_seq
    last = generate.seq_of_card_number(batch, query.to_no) if query.to_no else query.to_seq
    return batches.seq_range(batch, first, last)


class CodeRow(Out):
    seq: int
    card_no: str
    serial: str
    human: str
    url: str
    sscc: str | None
    state: str


class CodeRange(Out):
    batch_id: int
    from_seq: int
    to_seq: int
    items: list[CodeRow]


class PageQuery(RangeQuery):
    limit: int = Field(100, ge=1, le=1000, description="Most codes to return")


@api.get(
    "/api/v1/batches/{batch_id}/codes",
    params=BatchParams,
    query=PageQuery,
    response=CodeRange,
    errors=(422,),
)
async def codes_in_range(request: web.Request, params: BatchParams, query: PageQuery) -> CodeRange:
    """Codes of a batch by sequence number (or printed 卡序号) range, random serials too."""
    first, last = await _range(request, params.batch_id, query)
    last = min(last, first + query.limit - 1)
    async with request.app[SESSIONS]() as session:
        batch = await batches.get_batch(session, params.batch_id)
        product = await session.get(Product, batch.product_id)
        assert product is not None
        rows = (
            await session.execute(
                select(Code.seq, Code.serial, Code.sscc, Code.state)
                .where(Code.batch_id == batch.id, Code.seq >= first, Code.seq <= last)
                .order_by(Code.seq)
            )
        ).all()
    base = request.app[RUNTIME].public_base
    humans = human_forms([r.serial for r in rows])
    return CodeRange(
        batch_id=batch.id,
        from_seq=first,
        to_seq=last,
        items=[
            CodeRow(
                seq=r.seq,
                card_no=generate.card_number(batch, r.seq),
                serial=r.serial,
                human=human,
                url=code_url(base, r.serial, product.gtin),
                sscc=r.sscc,
                state=r.state,
            )
            for r, human in zip(rows, humans, strict=True)
        ],
    )


class ExportQuery(RangeQuery):
    format: Literal["csv", "xlsx"] = "csv"


@api.get(
    "/api/v1/batches/{batch_id}/export",
    params=BatchParams,
    query=ExportQuery,
    produces="text/csv",
    errors=(422,),
)
async def export_batch(
    request: web.Request, params: BatchParams, query: ExportQuery
) -> web.StreamResponse:
    """The printer file of a batch (or a seq range): CSV streamed, or XLSX.

    Columns: seq, serial, url, human, pin, card_no, sscc.
    """
    first, last = await _range(request, params.batch_id, query)
    name = f"batch-{params.batch_id}-{first}-{last}"
    if query.format == "xlsx":
        with exports.temp_dir() as tmp:
            path = Path(tmp) / f"{name}.xlsx"
            await _write(request, params.batch_id, first, last, "xlsx", path)
            return await _send_file(request, path, XLSX_TYPE, path.name)
    app = request.app
    async with app[SESSIONS]() as session:
        chunks = batches.export_csv(
            session, app[KEYRING], params.batch_id, app[RUNTIME].public_base, first, last
        )
        head = await anext(chunks)  # errors (404, 422) before any header goes out
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}.csv"',
            }
        )
        await response.prepare(request)
        await response.write(head)
        async for data in chunks:
            await response.write(data)
    await response.write_eof()
    return response


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _write(
    request: web.Request, batch_id: int, first: int, last: int, fmt: str, path: Path
) -> int:
    app = request.app
    async with app[SESSIONS]() as session:
        rows = batches.export_rows(
            session, app[KEYRING], batch_id, app[RUNTIME].public_base, first, last
        )
        if fmt == "xlsx":
            return await exports.write_xlsx(batches.EXPORT_COLUMNS, rows, path)
        chunks = batches.export_csv(
            session, app[KEYRING], batch_id, app[RUNTIME].public_base, first, last
        )
        with path.open("wb") as out:
            return await exports.write_csv(chunks, out)


async def _send_file(
    request: web.Request, path: Path, content_type: str, filename: str
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str((await asyncio.to_thread(path.stat)).st_size),
        }
    )
    await response.prepare(request)
    with path.open("rb") as f:
        while chunk := await asyncio.to_thread(f.read, 1 << 20):
            await response.write(chunk)
    await response.write_eof()
    return response


class EncryptedExportIn(Body):
    format: Literal["csv", "xlsx"] = "csv"
    password: str = Field(
        min_length=exports.MIN_PASSWORD,
        max_length=200,
        description="Password the print shop opens the archive with (AES-256 ZIP)",
    )
    from_seq: int | None = Seq
    to_seq: int | None = Seq


@api.post(
    "/api/v1/batches/{batch_id}/export",
    params=BatchParams,
    body=EncryptedExportIn,
    produces="application/zip",
    errors=(404,),
)
async def export_encrypted(
    request: web.Request, params: BatchParams, body: EncryptedExportIn
) -> web.StreamResponse:
    """The printer file inside an AES-256 encrypted ZIP for the print shop."""
    query = RangeQuery(from_seq=body.from_seq, to_seq=body.to_seq, from_no=None, to_no=None)
    first, last = await _range(request, params.batch_id, query)
    name = f"batch-{params.batch_id}-{first}-{last}"
    with exports.temp_dir() as tmp:
        plain = Path(tmp) / f"{name}.{body.format}"
        await _write(request, params.batch_id, first, last, body.format, plain)
        archive = Path(tmp) / f"{name}.zip"
        await asyncio.to_thread(exports.encrypt_zip, plain, plain.name, body.password, archive)
        plain.unlink()
        return await _send_file(request, archive, "application/zip", archive.name)


class LabelQuery(RangeQuery):
    format: Literal["pdf", "png"] = "pdf"
    symbology: Literal["qr", "datamatrix"] = "qr"


@api.get(
    "/api/v1/batches/{batch_id}/labels",
    params=BatchParams,
    query=LabelQuery,
    produces="application/pdf",
    errors=(422,),
)
async def label_sheet(request: web.Request, params: BatchParams, query: LabelQuery) -> web.Response:
    """Printable label sheets (A4, 4 x 10) with QR or DataMatrix: PDF, or one PNG page.

    At most 2,000 labels per call; choose them by seq or 卡序号 range.
    """
    first, last = await _range(request, params.batch_id, query)
    if last - first + 1 > exports.MAX_LABELS:
        raise InvalidRequestError(
            f"{last - first + 1} labels: expected at most {exports.MAX_LABELS} per call"
        )
    labels: list[tuple[str, str, str]] = []
    app = request.app
    async with app[SESSIONS]() as session:
        async for part in batches.export_rows(
            session, app[KEYRING], params.batch_id, app[RUNTIME].public_base, first, last
        ):
            labels += [(url, f"No. {card}", human) for _, _, url, human, _, card, _ in part]

    def render() -> bytes:
        import io

        pages = exports.label_pages(labels, query.symbology)
        out = io.BytesIO()
        exports.save_pages(pages, query.format, out)
        return out.getvalue()

    data = await asyncio.to_thread(render)
    return web.Response(
        body=data,
        content_type="application/pdf" if query.format == "pdf" else "image/png",
        headers={
            "Content-Disposition": (
                f'attachment; filename="labels-{params.batch_id}-{first}-{last}.{query.format}"'
            )
        },
    )


class VoidIn(Body):
    from_seq: int | None = Seq
    to_seq: int | None = Seq
    from_no: str | None = Field(None, max_length=40)
    to_no: str | None = Field(None, max_length=40)
    reason: str = Field(min_length=1, max_length=200, description="Why (misprint, destroyed)")


class VoidOut(Out):
    voided: int
    refused: dict[str, int] = Field(description="Codes left alone, counted by reason")


@api.post(
    "/api/v1/batches/{batch_id}/void",
    params=BatchParams,
    body=VoidIn,
    response=VoidOut,
    errors=(422,),
)
async def void_range(request: web.Request, params: BatchParams, body: VoidIn) -> VoidOut:
    """Void the labels of a seq (or 卡序号) range: scrapped, misprinted or destroyed.

    Through the lifecycle gate: codes already shipped or void are left alone and counted.
    """
    query = RangeQuery(
        from_seq=body.from_seq, to_seq=body.to_seq, from_no=body.from_no, to_no=body.to_no
    )
    first, last = await _range(request, params.batch_id, query)
    if last - first + 1 > VOID_MAX:
        raise InvalidRequestError(f"{last - first + 1} codes: expected at most {VOID_MAX} per call")
    voided = 0
    refused: dict[str, int] = {}
    async with request.app[SESSIONS]() as session, session.begin():
        ids = list(
            await session.scalars(
                select(Code.id).where(
                    Code.batch_id == params.batch_id, Code.seq >= first, Code.seq <= last
                )
            )
        )
        outcome = await gate.move(session, Step.VOIDING, ids)
        voided = len(outcome.moved)
        for reason in outcome.refused.values():
            refused[reason] = refused.get(reason, 0) + 1
    return VoidOut(voided=voided, refused=refused)


VOID_MAX = 100_000


class PrintedProblem(Out):
    row: int = Field(description="Row number in the file (1 = the header)")
    column: str
    problem: str


class PrintedQuery(Params):
    format: Literal["csv", "xlsx"] = "csv"


class PrintedOut(Out):
    rows: int
    matched: int = Field(description="Rows naming a code of this batch, once")
    missing: list[list[int]] = Field(
        description="Seq ranges [from, to] of the batch that the list does not name"
    )
    problems: list[PrintedProblem]


@api.post(
    "/api/v1/batches/{batch_id}/printed",
    params=BatchParams,
    query=PrintedQuery,
    response=PrintedOut,
    errors=(413, 422),
    summary="Check a print shop's list of printed codes (CSV/XLSX raw body) against a batch",
)
async def check_printed(
    request: web.Request, params: BatchParams, query: PrintedQuery
) -> PrintedOut:
    """Check a print shop's list of printed codes (CSV/XLSX raw body) against a batch.

    The list needs a column ``url``, ``serial`` or ``human`` (any printed form). The report
    names every row that is not a genuine code of this batch, or repeats one, and the seq
    ranges of the batch that were not printed.
    """
    data = await request.read()
    async with request.app[SESSIONS]() as session:
        report = await printed.check_list(
            session, request.app[KEYRING], params.batch_id, data, query.format
        )
    return PrintedOut(
        rows=report.rows,
        matched=report.matched,
        missing=[list(r) for r in report.missing],
        problems=[PrintedProblem(**p.__dict__) for p in report.problems],
    )
