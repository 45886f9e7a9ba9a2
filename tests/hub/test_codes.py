"""Code batches on both databases: counters, serials, export, capacity, CLI."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from hub import batches as code_service
from hub import registry
from hub.cli import main
from hub.errors import InvalidRequestError, NotFoundError
from hub.models import Code, CodeBatch, CodeKeyCounter
from protocols.codes import CODES_PER_KEY, CodeKind, Serial, parse_code
from protocols.errors import CapacityError

GTIN = "09506000134352"
RESOLVER = "https://y.example.cn"


async def add_products(db: Any) -> None:
    async with db.sessions() as session, session.begin():
        await registry.create_product(session, "TEA", "Tea", None)
        await registry.create_product(session, "WINE", "Wine", GTIN[1:])  # GTIN-13 in


async def generate(db: Any, sku: str = "TEA", count: int = 10, **kw: Any) -> CodeBatch:
    async with db.sessions() as session, session.begin():
        return await code_service.generate_batch(session, db.keyring, sku, count, **kw)


async def batch_codes(db: Any, batch_id: int) -> list[tuple[int, str, str, str]]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(Code.seq, Code.serial, Code.state, Code.kind)
            .where(Code.batch_id == batch_id)
            .order_by(Code.seq)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def export(db: Any, batch_id: int, resolver: str = RESOLVER) -> list[list[str]]:
    async with db.sessions() as session:
        return [
            row
            async for part in code_service.export_rows(session, db.keyring, batch_id, resolver)
            for row in part
        ]


def counters(db: Any, serials: list[str]) -> list[int]:
    return [db.keyring.open(Serial(s)).counter for s in serials]


@pytest.mark.parametrize("kind", ["item", "case", "pallet"])
async def test_generate_a_batch(db: Any, kind: str) -> None:
    await add_products(db)
    batch = await generate(db, count=1500, kind=kind)
    rows = await batch_codes(db, batch.id)
    assert (batch.count, batch.kind, batch.key_id, batch.counter_start) == (1500, kind, 0, 0)
    assert [seq for seq, *_ in rows] == list(range(1, 1501))
    serials = [serial for _, serial, *_ in rows]
    assert len(set(serials)) == 1500
    assert {(state, k) for *_, state, k in rows} == {("generated", kind)}
    # Every serial passes the keyed check and names its own counter and kind.
    identities = [db.keyring.open(Serial(s)) for s in serials]
    assert [i.counter for i in identities] == list(range(1500))
    assert {i.kind for i in identities} == {CodeKind.parse(kind)}


async def test_two_batches_take_consecutive_counter_ranges(db: Any) -> None:
    await add_products(db)
    first = await generate(db, count=300)
    second = await generate(db, "WINE", count=200)
    assert second.counter_start == first.counter_start + first.count == 300
    first_serials = [s for _, s, *_ in await batch_codes(db, first.id)]
    second_serials = [s for _, s, *_ in await batch_codes(db, second.id)]
    assert counters(db, first_serials) == list(range(300))
    assert counters(db, second_serials) == list(range(300, 500))
    assert not set(first_serials) & set(second_serials)
    assert [seq for seq, *_ in await batch_codes(db, second.id)] == list(range(1, 201))
    assert await db.scalar(select(CodeKeyCounter.next_counter)) == 500


async def test_parallel_sessions_never_share_counters(db: Any) -> None:
    await add_products(db)

    async def one(sku: str) -> CodeBatch:
        async with db.sessions() as session, session.begin():
            batch = await code_service.generate_batch(session, db.keyring, sku, 2000)
            await asyncio.sleep(0.05)  # hold the transaction open while the others start
            return batch

    batches = await asyncio.gather(*(one(sku) for sku in ("TEA", "WINE", "TEA", "WINE")))
    ranges = sorted((b.counter_start, b.counter_start + b.count) for b in batches)
    assert ranges == [(0, 2000), (2000, 4000), (4000, 6000), (6000, 8000)]
    serials = [s for b in batches for _, s, *_ in await batch_codes(db, b.id)]
    assert len(serials) == len(set(serials)) == 8000
    assert sorted(counters(db, serials)) == list(range(8000))
    assert await db.count(Code) == 8000


async def test_export_without_pins_and_short_urls(db: Any) -> None:
    await add_products(db)
    batch = await generate(db, count=25)
    rows = await export(db, batch.id)
    serials = [s for _, s, *_ in await batch_codes(db, batch.id)]
    assert [r[0] for r in rows] == [str(i) for i in range(1, 26)]
    assert [r[1] for r in rows] == serials
    for _seq, serial, url, human, pin, *_ in rows:
        assert url == f"{RESOLVER}/c/{serial}"
        assert human == Serial(serial).as_human()
        assert Serial.parse(human).value == serial
        assert pin == ""
        assert parse_code(url).serial.value == serial


async def test_export_with_pins_and_digital_link(db: Any) -> None:
    await add_products(db)
    batch = await generate(db, "WINE", count=12, with_pin=True)
    rows = await export(db, batch.id, RESOLVER + "/")
    for _seq, serial, url, _human, pin, *_ in rows:
        assert url == f"{RESOLVER}/01/{GTIN}/21/{serial}"
        ref = parse_code(url)
        assert (ref.serial.value, ref.gtin) == (serial, GTIN)
        assert len(pin) == 8
        assert pin.isdigit()
        assert pin == db.keyring.key(0).pin(Serial(serial))
    assert len({r[4] for r in rows}) > 1


async def test_export_streams_more_than_one_chunk(db: Any, monkeypatch: Any) -> None:
    await add_products(db)
    monkeypatch.setattr(code_service, "_READ_CHUNK", 7)
    batch = await generate(db, count=30, with_pin=True)
    rows = await export(db, batch.id)
    assert [int(r[0]) for r in rows] == list(range(1, 31))
    assert all(len(r[4]) == 8 for r in rows)


async def test_capacity_exhaustion_inserts_nothing(db: Any) -> None:
    await add_products(db)
    await generate(db, count=1)
    async with db.sessions() as session, session.begin():
        await session.execute(update(CodeKeyCounter).values(next_counter=CODES_PER_KEY - 5))
    with pytest.raises(CapacityError) as caught:
        await generate(db, count=10)
    assert str(caught.value) == (
        "Code key 0 has 5 codes left, 10 requested: configure a new key and make it active"
    )
    assert await db.count(CodeBatch) == 1
    assert await db.count(Code) == 1
    assert await db.scalar(select(CodeKeyCounter.next_counter)) == CODES_PER_KEY - 5
    # The last five counters are still there to use.
    last = await generate(db, count=5)
    serials = [s for _, s, *_ in await batch_codes(db, last.id)]
    assert counters(db, serials) == list(range(CODES_PER_KEY - 5, CODES_PER_KEY))


async def test_unknown_product(db: Any) -> None:
    with pytest.raises(NotFoundError) as caught:
        await generate(db, "NOPE")
    assert str(caught.value) == "Unknown product 'NOPE'"
    assert await db.count(CodeBatch) == 0


@pytest.mark.parametrize(
    ("count", "kind", "message"),
    [
        (0, "item", "Invalid count 0: expected 1..20000000"),
        (20_000_001, "item", "Invalid count 20000001: expected 1..20000000"),
        (1, "box", "Unknown code kind 'box': expected one of item, case, pallet"),
    ],
)
async def test_invalid_requests(db: Any, count: int, kind: str, message: str) -> None:
    await add_products(db)
    with pytest.raises(InvalidRequestError) as caught:
        await generate(db, count=count, kind=kind)
    assert str(caught.value) == message


async def test_batch_info_and_unknown_batch(db: Any) -> None:
    await add_products(db)
    batch = await generate(db, count=4, kind="case")
    async with db.sessions() as session:
        info = await code_service.batch_info(session, batch.id)
        assert (info.sku, info.kind, info.count, info.states) == (
            "TEA",
            "case",
            4,
            {"generated": 4},
        )
        with pytest.raises(NotFoundError, match=r"^Unknown code batch 999$"):
            await code_service.batch_info(session, 999)
        with pytest.raises(NotFoundError, match=r"^Unknown code batch 999$"):
            await anext(code_service.export_rows(session, db.keyring, 999, RESOLVER))


# Through the admin API -----------------------------------------------------------------------


async def test_batch_api(hub: Any) -> None:
    await hub.add_product("TEA")
    info = await hub.generate("TEA", 3, with_pin=True)
    assert info == {
        "id": info["id"],
        "sku": "TEA",
        "kind": "item",
        "count": 3,
        "key_id": 0,
        "with_pin": True,
        "states": {"generated": 3},
        "status": "done",
        "generated": 3,
        "progress": 1.0,
        "first_card_no": "1",
        "last_card_no": "3",
        "sscc_prefix": None,
        "error": None,
    }
    assert await hub.api("GET", f"/api/v1/batches/{info['id']}") == info
    rows = await hub.export(info["id"])
    assert [r["seq"] for r in rows] == ["1", "2", "3"]
    assert all(r["url"] == f"{hub.runtime.public_base}/c/{r['serial']}" for r in rows)
    assert all(len(r["pin"]) == 8 for r in rows)
    for path in ("/api/v1/batches/999", "/api/v1/batches/999/export"):
        body = await hub.api("GET", path, status=404)
        assert body["error"] == "Unknown code batch 999"
    for path in ("/api/v1/batches/x", "/api/v1/batches/99999999999999999999999"):
        body = await hub.api("GET", path, status=404)
        assert body["error"] == f"Not found: no record has batch_id {path.rsplit('/')[-1]!r}"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"sku": "NOPE", "count": 1}, 404, "Unknown product 'NOPE'"),
        ({"sku": "TEA"}, 422, "body.count: Field required"),
        ({"sku": "TEA", "count": "3"}, 422, "body.count: Input should be a valid integer"),
        ({"sku": "TEA", "count": True}, 422, "body.count: Input should be a valid integer"),
        ({"sku": "TEA", "count": 0}, 422, "body.count: Input should be greater than or equal to 1"),
        (
            {"sku": "TEA", "count": 1, "kind": "box"},
            422,
            "body.kind: Input should be 'item', 'case' or 'pallet'",
        ),
    ],
)
async def test_batch_api_errors(
    sqlite_hub: Any, body: dict[str, Any], status: int, error: str
) -> None:
    hub = sqlite_hub
    await hub.add_product("TEA")
    assert await hub.api("POST", "/api/v1/batches", body, status=status) == {"error": error}


async def test_batch_api_capacity_exhausted(hub: Any) -> None:
    await hub.add_product("TEA")
    await hub.generate("TEA", 1)
    async with hub.sessions() as session, session.begin():
        await session.execute(update(CodeKeyCounter).values(next_counter=CODES_PER_KEY - 1))
    body = await hub.api("POST", "/api/v1/batches", {"sku": "TEA", "count": 2}, status=409)
    assert body == {
        "error": "Code key 0 has 1 codes left, 2 requested: configure a new key and make it active"
    }
    assert await hub.count(Code) == 1


# CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "YIMA_HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}",
        "YIMA_HUB_CODE_KEYS": json.dumps({"0": base64.b64encode(secrets.token_bytes(32)).decode()}),
        "YIMA_HUB_RESOLVER_URL": RESOLVER,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_cli_generate_and_export(
    cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["products", "add", "--sku", "TEA", "--name", "Tea"]) == 0
    assert main(["products", "add", "--sku", "WINE", "--name", "Wine", "--gtin", GTIN]) == 0
    assert main(["codes", "generate", "--product", "TEA", "--count", "5"]) == 0
    assert main(["codes", "generate", "--product", "WINE", "--count", "3", "--pin"]) == 0
    out = capsys.readouterr().out
    assert "batch 1: 5 item codes for TEA" in out
    assert "batch 2: 3 item codes for WINE" in out

    target = tmp_path / "batch2.csv"
    assert main(["codes", "export", "2", "-o", str(target)]) == 0
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0] == ["seq", "serial", "url", "human", "pin", "card_no", "sscc"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]
    for _seq, serial, url, human, pin, *_ in rows[1:]:
        assert url == f"{RESOLVER}/01/{GTIN}/21/{serial}"
        assert human == Serial(serial).as_human()
        assert len(pin) == 8

    capsys.readouterr()
    assert main(["codes", "export", "1", "--resolver", "http://other.example"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 6
    assert all(r[2] == f"http://other.example/c/{r[1]}" and r[4] == "" for r in rows[1:])
    # Different batches, different serials.
    assert not {r[1] for r in rows[1:]} & {r[1] for r in list(csv.reader(target.open()))[1:]}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["codes", "generate", "--product", "NOPE", "--count", "5"], "Unknown product 'NOPE'"),
        (["codes", "export", "7"], "Unknown code batch 7"),
        (["codes", "generate", "--product", "TEA", "--count", "0"], "Invalid count 0: expected"),
    ],
)
def test_cli_errors_exit_2(
    cli_env: dict[str, str], argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["products", "add", "--sku", "TEA", "--name", "Tea"]) == 0
    assert main(argv) == 2
    assert f"yima-hub: {message}" in capsys.readouterr().err


def test_cli_without_keys_names_the_key_command(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("YIMA_HUB_CODE_KEYS")
    assert main(["products", "add", "--sku", "TEA", "--name", "Tea"]) == 0
    assert main(["codes", "generate", "--product", "TEA", "--count", "5"]) == 2
    assert "(create one with: yima-hub keys new)" in capsys.readouterr().err


def test_cli_keys_new_prints_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    from hub.settings import decode_secret

    assert main(["keys", "new"]) == 0
    key = capsys.readouterr().out.strip()
    assert len(decode_secret(0, key)) == 32


def test_cli_job_commands(
    cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import openpyxl
    import pyzipper
    from PIL import Image

    assert main(["products", "add", "--sku", "TEA", "--name", "茶"]) == 0
    argv = ["codes", "generate", "--product", "TEA", "--count", "25000", "--seq-prefix", "A"]
    assert main([*argv, "--seq-start", "7", "--seq-width", "6"]) == 0
    captured = capsys.readouterr()
    assert "batch 1: 25000 item codes for TEA" in captured.out
    assert "100%" in captured.err and "25.0k/25.0k" in captured.err  # the progress bar
    assert main(["codes", "list"]) == 0
    assert "A000007..A025006" in capsys.readouterr().out
    assert main(["codes", "status", "1"]) == 0
    assert "done, 25000 written (100.0 %)" in capsys.readouterr().out
    book = tmp_path / "part.xlsx"
    assert main(["codes", "export", "1", "-o", str(book), "--from", "3", "--to", "5"]) == 0
    rows = list(openpyxl.load_workbook(book).worksheets[0].iter_rows(values_only=True))
    assert [(r[0], r[5]) for r in rows[1:]] == [
        ("3", "A000009"),
        ("4", "A000010"),
        ("5", "A000011"),
    ]
    secret = tmp_path / "pw.txt"
    secret.write_text("a long print shop password\n")
    locked = tmp_path / "locked.zip"
    argv = ["codes", "export", "1", "-o", str(locked), "--to", "2", "--password-file", str(secret)]
    assert main(argv) == 0
    with pyzipper.AESZipFile(locked) as archive:
        text = archive.read(archive.namelist()[0], pwd=b"a long print shop password").decode()
    assert text.splitlines()[1].startswith("1,") and len(text.splitlines()) == 3
    sheet = tmp_path / "labels.png"
    assert main(["codes", "labels", "1", "-o", str(sheet), "--to", "8"]) == 0
    assert Image.open(sheet).size == (2480, 3508)
    assert main(["codes", "cancel", "1"]) == 2
    assert (
        "Batch 1 is done: only a queued or running job can be cancelled" in capsys.readouterr().err
    )
