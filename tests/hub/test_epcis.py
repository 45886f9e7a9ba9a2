"""EPCIS 2.0 through the hub: capture applies events once through the lifecycle gate,
queries answer the standard parameters with schema-valid documents, Digital Link resolves."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from jsonschema import Draft7Validator
from sqlalchemy import update

from hub.epcis.document import schema
from hub.epcis.identifiers import sgtin_uri
from hub.models import Code, EpcisEvent, Event
from hub.web.app import create_app
from hub.web.keys import RUNTIME

PARTNER = {"Authorization": "Bearer partner-token"}
GTIN = "09506000134352"
VALIDATOR = Draft7Validator(schema(), format_checker=Draft7Validator.FORMAT_CHECKER)


def assert_valid(document: dict[str, Any]) -> None:
    problems = [f"{list(e.path)}: {e.message}" for e in VALIDATOR.iter_errors(document)]
    assert problems == []


def listed(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return list(answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"])


def serial_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def sgtin(url: str) -> str:
    return sgtin_uri(GTIN, serial_of(url), 7)


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-25T08:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def object_event(
    epcs: list[str], biz_step: str = "commissioning", action: str = "ADD", **extra: Any
) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventID": extra.pop("eventID", f"urn:uuid:{uuid.uuid4()}"),
        "eventTime": extra.pop("eventTime", "2026-11-25T08:00:00.000+08:00"),
        "eventTimeZoneOffset": "+08:00",
        "epcList": epcs,
        "action": action,
        "bizStep": biz_step,
        **extra,
    }


def aggregation_event(parent: str, children: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "type": "AggregationEvent",
        "eventID": extra.pop("eventID", f"urn:uuid:{uuid.uuid4()}"),
        "eventTime": extra.pop("eventTime", "2026-11-25T08:05:00.000+08:00"),
        "eventTimeZoneOffset": "+08:00",
        "parentID": parent,
        "childEPCs": children,
        "action": extra.pop("action", "ADD"),
        "bizStep": extra.pop("bizStep", "packing"),
        **extra,
    }


async def with_partner(plant: Any, aiohttp_client: Any) -> Any:
    settings = plant.settings.model_copy(
        update={"tokens": {**plant.settings.tokens, "partner-token": "partner"}}
    )
    client: TestClient = await aiohttp_client(create_app(settings, plant.keyring))
    client.app[RUNTIME].public_base = str(client.make_url("")).rstrip("/")
    plant.partner = client
    return plant


@pytest.fixture
async def partner_hub(plant: Any, aiohttp_client: Any) -> Any:
    """The plant hub (SQLite and PostgreSQL) with a partner client: ``hub.partner``."""
    return await with_partner(plant, aiohttp_client)


@pytest.fixture
async def sqlite_partner_hub(sqlite_plant: Any, aiohttp_client: Any) -> Any:
    """``partner_hub`` on SQLite only, for tables about input checks."""
    return await with_partner(sqlite_plant, aiohttp_client)


async def post(client: TestClient, body: Any, status: int = 202, **headers: str) -> Any:
    response = await client.post("/epcis/capture", json=body, headers={**PARTNER, **headers})
    text = await response.text()
    assert response.status == status, text
    return json.loads(text)


async def get(client: TestClient, path: str, status: int = 200, **headers: str) -> Any:
    response = await client.get(path, headers={**PARTNER, **headers})
    text = await response.text()
    assert response.status == status, text
    return json.loads(text), response.headers


async def test_capture_commissioning_and_packing_is_applied_once(partner_hub: Any) -> None:
    hub = partner_hub
    items = await hub.urls("WINE", 3)
    [case] = await hub.urls("WINE", 1, kind="case")
    doc = document(
        object_event([sgtin(items[0]), items[1], items[2]], ilmd={"cbvmda:lotNumber": "L-77"}),
        aggregation_event(sgtin(case), [sgtin(u) for u in items]),
    )
    job = await post(hub.partner, doc)
    assert job["success"] is True, job
    assert (job["applied"], job["duplicates"], job["errors"]) == (2, 0, [])
    for url in items:
        code = await hub.code(url)
        assert (code.state, code.lot) == ("packed", "L-77")
    parent = await hub.code(case)
    assert parent.state == "commissioned"
    assert (await hub.code(items[0])).parent_id == parent.id

    again = await post(hub.partner, doc)
    assert (again["success"], again["applied"], again["duplicates"]) == (True, 0, 2)
    assert await hub.count(EpcisEvent) == 2
    assert await hub.count(Event, Event.source.like("epcis:%"), Event.outcome == "applied") == 2

    stored, _ = await get(hub.partner, f"/epcis/capture/{job['captureID']}")
    assert stored["captureID"] == job["captureID"] and stored["applied"] == 2


async def test_location_header_names_the_job(sqlite_partner_hub: Any) -> None:
    [item] = await sqlite_partner_hub.urls("WINE", 1)
    response = await sqlite_partner_hub.partner.post(
        "/epcis/capture", json=document(object_event([item])), headers=PARTNER
    )
    assert response.status == 202
    location = response.headers["Location"]
    job, _ = await get(sqlite_partner_hub.partner, location)
    assert job["running"] is False and job["success"] is True


async def test_refusals_are_reported_per_event_and_rollback_applies_nothing(
    partner_hub: Any,
) -> None:
    hub = partner_hub
    items = await hub.urls("WINE", 2)
    good = object_event([items[0]])
    packed_uncommissioned = aggregation_event(items[1], [items[0]])  # an item as a parent
    job = await post(hub.partner, document(good, packed_uncommissioned))
    assert job["success"] is False and job["applied"] == 0
    [error] = job["errors"]
    assert error["instance"] == packed_uncommissioned["eventID"]
    assert "is an item code: expected a case or pallet" in error["detail"]
    assert (await hub.code(items[0])).state == "generated"  # rolled back

    job = await post(
        hub.partner,
        document(good, packed_uncommissioned),
        **{"GS1-Capture-Error-Behaviour": "proceed"},
    )
    assert (job["success"], job["applied"], len(job["errors"])) == (False, 1, 1)
    assert (await hub.code(items[0])).state == "commissioned"
    refused = await hub.count(Event, Event.outcome == "refused", Event.source.like("epcis:%"))
    assert refused == 1


@pytest.mark.parametrize(
    ("epc", "reason"),
    [
        ("urn:epc:id:sgtin:0614141.812345.400", "is not a code of this hub: Invalid serial '400'"),
        ("urn:epc:id:sgtin:0614141.81234.400", "must have 13 digits together, got 12"),
        ("https://example.com/anything", "names no code of this hub"),
        ("urn:epc:id:sscc:0614141.1234567890", "SSCC 106141412345678908 is not a code issued"),
    ],
)
async def test_identifiers_the_hub_did_not_issue_are_refused(
    sqlite_partner_hub: Any, epc: str, reason: str
) -> None:
    job = await post(sqlite_partner_hub.partner, document(object_event([epc])))
    [error] = job["errors"]
    assert reason in error["detail"]


async def test_forged_and_transition_refusals(partner_hub: Any) -> None:
    hub = partner_hub
    [item] = await hub.urls("WINE", 1)
    serial = serial_of(item)
    forged = item[: -len(serial)] + ("0" if serial[0] != "0" else "1") + serial[1:]
    job = await post(hub.partner, document(object_event([forged])))
    assert "forged code" in job["errors"][0]["detail"] or "malformed" in job["errors"][0]["detail"]
    shipped = object_event([item], biz_step="shipping", action="OBSERVE")
    job = await post(hub.partner, document(shipped))
    assert "shipping refused: not commissioned" in job["errors"][0]["detail"]


async def test_same_event_id_with_other_contents_is_refused(partner_hub: Any) -> None:
    items = await partner_hub.urls("WINE", 2)
    first = object_event([items[0]])
    await post(partner_hub.partner, document(first))
    reused = object_event([items[1]], eventID=first["eventID"])
    job = await post(partner_hub.partner, document(reused))
    assert "eventID already used for an event with other contents" in job["errors"][0]["detail"]
    assert (await partner_hub.code(items[1])).state == "generated"


async def test_event_without_id_is_idempotent_by_its_contents(partner_hub: Any) -> None:
    [item] = await partner_hub.urls("WINE", 1)
    event = object_event([item])
    del event["eventID"]
    first = await post(partner_hub.partner, document(event))
    second = await post(partner_hub.partner, document(event))
    assert (first["applied"], second["duplicates"]) == (1, 1)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "EPCISDocument"}, 422, "body"),
        (document({"type": "ObjectEvent", "action": "ADD"}), 422, "eventTime"),
        (document(object_event(["not a uri"])), 422, "is not a 'uri'"),
        ([], 422, "body"),
    ],
)
async def test_invalid_documents_are_refused_whole(
    sqlite_partner_hub: Any, body: Any, status: int, message: str
) -> None:
    answer = await post(sqlite_partner_hub.partner, body, status=status)
    assert message in answer["error"]


async def test_capture_needs_the_partner_role(sqlite_partner_hub: Any) -> None:
    response = await sqlite_partner_hub.partner.post(
        "/epcis/capture",
        json=document(),
        headers={"Authorization": "Bearer wh-token"},
    )
    assert response.status == 403
    response = await sqlite_partner_hub.partner.get("/epcis/events")
    assert response.status == 401


async def test_query_by_epc_returns_schema_valid_events(partner_hub: Any) -> None:
    hub = partner_hub
    items = await hub.urls("WINE", 2)
    [case] = await hub.urls("WINE", 1, kind="case")
    await post(
        hub.partner,
        document(object_event(items), aggregation_event(case, items)),
    )
    answer, headers = await get(hub.partner, f"/epcis/events?MATCH_epc={sgtin(items[0])}")
    assert_valid(answer)
    assert headers["GS1-EPCIS-Version"] == "2.0.0"
    events = answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [e["type"] for e in events] == ["ObjectEvent", "AggregationEvent"]
    assert sgtin(items[0]) in events[0]["epcList"]
    assert events[1]["parentID"] == sgtin(case)

    # Digital Link in, Digital Link out; the parent is matched by MATCH_parentID only.
    answer, _ = await get(
        hub.partner,
        f"/epcis/events?MATCH_parentID={case}",
        **{"GS1-EPC-Format": "Always_GS1_Digital_Link"},
    )
    assert_valid(answer)
    [event] = answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    base = str(hub.partner.make_url("")).rstrip("/")
    assert event["parentID"] == base + urlsplit(case).path
    answer, _ = await get(hub.partner, f"/epcis/events?MATCH_epc={sgtin(case)}")
    assert answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"] == []


async def test_station_events_are_exported_as_epcis(partner_hub: Any) -> None:
    hub = partner_hub
    items = await hub.commissioned("WINE", 2)
    answer, _ = await get(
        hub.partner, "/epcis/events?EQ_bizStep=commissioning&eventType=ObjectEvent"
    )
    assert_valid(answer)
    events = answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert sorted(e["epcList"][0] for e in events) == sorted(sgtin(u) for u in items)
    assert all(e["ilmd"] == {"cbvmda:lotNumber": "LOT-1"} for e in events)


async def test_pagination_with_next_page_token(partner_hub: Any) -> None:
    hub = partner_hub
    items = await hub.urls("WINE", 5)
    start = datetime(2026, 11, 25, tzinfo=UTC)
    events = [
        object_event([u], eventTime=(start + timedelta(minutes=i)).isoformat())
        for i, u in enumerate(items)
    ]
    await post(hub.partner, document(*events))
    seen: list[str] = []
    path = "/epcis/events?perPage=2&EQ_bizStep=commissioning"
    pages = 0
    while True:
        answer, headers = await get(hub.partner, path)
        assert_valid(answer)
        seen += [
            e["eventID"] for e in answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        ]
        pages += 1
        if "Link" not in headers:
            break
        path = headers["Link"].split(">", 1)[0].lstrip("<")
    assert seen == [e["eventID"] for e in events]
    assert pages == 3

    since = (start + timedelta(minutes=1)).isoformat()
    until = (start + timedelta(minutes=3)).isoformat()
    answer, _ = await get(
        hub.partner, "/epcis/events?" + urlencode({"GE_eventTime": since, "LT_eventTime": until})
    )
    assert [e["eventID"] for e in listed(answer)] == [events[1]["eventID"], events[2]["eventID"]]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("eventType=Nonsense", "eventType 'Nonsense': expected one of"),
        ("GE_eventTime=yesterday", "GE_eventTime: expected an ISO 8601 time"),
        ("GE_eventTime=2026-01-01T00:00:00", "expected a time zone offset"),
        ("nextPageToken=abc", "nextPageToken: not a token this hub issued"),
        ("perPage=0", "perPage"),
        ("MATCH_epc=urn:epc:id:sgtin:1.2.3", "Invalid SGTIN EPC URI"),
        ("unknown=1", "unknown"),
    ],
)
async def test_bad_query_parameters_are_clear_4xx(
    sqlite_partner_hub: Any, query: str, message: str
) -> None:
    response = await sqlite_partner_hub.partner.get(f"/epcis/events?{query}", headers=PARTNER)
    assert 400 <= response.status < 500
    assert message in (await response.json())["error"]


async def test_digital_link_link_types(sqlite_partner_hub: Any) -> None:
    hub = sqlite_partner_hub
    [item] = await hub.commissioned("WINE", 1)
    path = urlsplit(item).path
    response = await hub.partner.get(f"{path}?linkType=all")
    assert response.status == 200
    assert response.content_type == "application/linkset+json"
    links = (await response.json())["linkset"][0]
    assert links["anchor"].endswith(path)
    assert links["https://gs1.org/voc/defaultLink"][0]["href"].endswith(path)
    assert "/epcis/events?MATCH_epc=" in links["https://gs1.org/voc/epcis"][0]["href"]
    assert (await hub.code(item)).scan_count == 0  # listing links is no scan

    response = await hub.partner.get(f"{path}?linkType=gs1:epcis", allow_redirects=False)
    assert response.status == 307 and "/epcis/events?MATCH_epc=" in response.headers["Location"]

    verdict = await hub.partner.get(
        f"{path}?linkType=gs1:verificationService", headers={"Accept": "application/json"}
    )
    assert (await verdict.json())["verdict"] == "not_activated"
    assert (await hub.code(item)).scan_count == 1

    serial = serial_of(item)
    forged = path[: -len(serial)] + ("0" if serial[0] != "0" else "1") + serial[1:]
    response = await hub.partner.get(f"{forged}?linkType=all")
    assert response.status == 404


async def test_shipments_are_exported_as_epcis_shipping(partner_hub: Any) -> None:
    hub = partner_hub
    items = await hub.commissioned("WINE", 2)
    shipped = await hub.ship(items)
    assert len(shipped["activated"]) == 2
    answer, _ = await get(hub.partner, "/epcis/events?EQ_bizStep=shipping")
    assert_valid(answer)
    [event] = listed(answer)
    assert (event["action"], event["disposition"]) == ("OBSERVE", "in_transit")
    assert sorted(event["epcList"]) == sorted(sgtin(u) for u in items)
    # Each hub event is projected once, however often partners ask.
    await get(hub.partner, "/epcis/events")
    assert await hub.count(EpcisEvent) == 3


async def test_pallets_with_an_sscc_are_named_by_it(partner_hub: Any) -> None:
    hub = partner_hub
    [pallet] = await hub.urls("WINE", 1, kind="pallet")
    [case] = await hub.commissioned("WINE", 1, kind="case")
    sscc = "106141412345678908"
    async with hub.sessions() as session, session.begin():
        await session.execute(
            update(Code).where(Code.serial == serial_of(pallet)).values(sscc=sscc)
        )
    job = await post(
        hub.partner, document(aggregation_event("urn:epc:id:sscc:0614141.1234567890", [case]))
    )
    assert job["success"] is True, job
    assert (await hub.code(case)).parent_id == (await hub.code(pallet)).id
    answer, _ = await get(hub.partner, f"/epcis/events?MATCH_parentID=https://id.gs1.org/00/{sscc}")
    [event] = listed(answer)
    assert event["parentID"] == "urn:epc:id:sscc:0614141.1234567890"
    answer, _ = await get(
        hub.partner,
        "/epcis/events?MATCH_parentID=urn:epc:id:sscc:0614141.1234567890",
        **{"GS1-EPC-Format": "Always_GS1_Digital_Link"},
    )
    [event] = listed(answer)
    assert event["parentID"].endswith(f"/00/{sscc}")


async def test_transformation_decommissions_inputs_and_commissions_outputs(
    sqlite_partner_hub: Any,
) -> None:
    hub = sqlite_partner_hub
    [old] = await hub.commissioned("WINE", 1)
    [new] = await hub.urls("WINE", 1)
    supplier_material = "urn:epc:id:sgtin:0614141.107346.2018"
    event = {
        "type": "TransformationEvent",
        "eventTime": "2026-11-25T09:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "inputEPCList": [old, supplier_material],
        "outputEPCList": [new],
        "bizStep": "repackaging",
        "ilmd": {"cbvmda:lotNumber": "RP-1"},
    }
    job = await post(hub.partner, document(event))
    assert job["success"] is True, job
    assert (await hub.code(old)).state == "decommissioned"
    assert ((await hub.code(new)).state, (await hub.code(new)).lot) == ("commissioned", "RP-1")
    answer, _ = await get(hub.partner, f"/epcis/events?MATCH_inputEPC={supplier_material}")
    [found] = listed(answer)
    assert_valid(answer)
    assert found["outputEPCList"] == [sgtin(new)]
    answer, _ = await get(
        hub.partner, "/epcis/events?MATCH_anyEPC=urn:epc:idpat:sgtin:9506000.013435.*"
    )
    assert {e["type"] for e in listed(answer)} == {"ObjectEvent", "TransformationEvent"}


async def test_a_recall_is_exported_with_its_lots_as_epc_classes(sqlite_partner_hub: Any) -> None:
    hub = sqlite_partner_hub
    items = await hub.urls("WINE", 2)
    await post(hub.partner, document(object_event(items, ilmd={"cbvmda:lotNumber": "L-77"})))
    recall = await hub.api(
        "POST",
        "/api/v1/recalls",
        {"reason": "cork", "lot": {"sku": "WINE", "lot": "L-77"}},
        status=201,
    )
    assert recall["moved"] == 2
    answer, _ = await get(hub.partner, "/epcis/events?eventType=ObjectEvent")
    assert_valid(answer)
    [event] = [e for e in listed(answer) if e.get("disposition") == "recalled"]
    assert event["quantityList"] == [{"epcClass": "urn:epc:class:lgtin:9506000.013435.L-77"}]
