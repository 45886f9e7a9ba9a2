"""The pure EPCIS core: identifiers, documents, the event → lifecycle step table, queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft7Validator

from hub.domain.lifecycle import Step
from hub.epcis import mapping
from hub.epcis.document import (
    capture_document,
    check_document,
    content_digest,
    query_document,
    read_event,
    schema,
)
from hub.epcis.errors import DocumentError, EpcError, PageTokenError, QueryError
from hub.epcis.identifiers import (
    EpcFormat,
    gtin_pattern,
    parse_epc,
    render_code,
    sgtin_uri,
    sscc_uri,
)
from hub.epcis.links import LinkChoice, choose, link_set
from hub.epcis.mapping import NotApplicable, Op
from hub.epcis.query import Position, build_query

GTIN = "09506000134352"
SERIAL = "0A1B2C3D4E5F6G7H8J9K"
VALIDATOR = Draft7Validator(schema(), format_checker=Draft7Validator.FORMAT_CHECKER)
AT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("uri", "code", "sscc"),
    [
        (f"urn:epc:id:sgtin:9506000.013435.{SERIAL}", f"(01){GTIN}(21){SERIAL}", None),
        ("urn:epc:id:sgtin:0614141.812345.A%2FB", "(01)80614141123458(21)A/B", None),
        ("urn:epc:id:sscc:0614141.1234567890", None, "106141412345678908"),
        ("https://id.gs1.org/00/106141412345678908", None, "106141412345678908"),
        (
            f"https://y.example.cn/01/{GTIN}/21/{SERIAL}",
            f"https://y.example.cn/01/{GTIN}/21/{SERIAL}",
            None,
        ),
        (f"https://y.example.cn/c/{SERIAL}", f"https://y.example.cn/c/{SERIAL}", None),
        ("urn:epc:id:grai:0614141.12345.400", None, None),
        ("https://example.com/other", None, None),
    ],
)
def test_parse_epc(uri: str, code: str | None, sscc: str | None) -> None:
    ref = parse_epc(uri)
    assert (ref.code, ref.sscc, ref.foreign) == (code, sscc, code is None and sscc is None)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "urn:epc:id:sgtin:0614141.81234.400",
            "Invalid SGTIN EPC URI 'urn:epc:id:sgtin:0614141.81234.400': company prefix and "
            "item reference must have 13 digits together, got 12",
        ),
        (
            "urn:epc:id:sgtin:0614141.812345",
            "Invalid SGTIN EPC URI 'urn:epc:id:sgtin:0614141.812345': expected "
            "urn:epc:id:sgtin:<company prefix>.<indicator+item reference>.<serial>",
        ),
        (
            "urn:epc:id:sscc:0614141.123",
            "Invalid SSCC EPC URI 'urn:epc:id:sscc:0614141.123': expected "
            "urn:epc:id:sscc:<company prefix>.<extension+serial reference> (17 digits)",
        ),
    ],
)
def test_parse_epc_refuses_malformed_urns(uri: str, message: str) -> None:
    with pytest.raises(EpcError) as caught:
        parse_epc(uri)
    assert str(caught.value) == message


@pytest.mark.parametrize("length", [6, 7, 9, 12])
def test_sgtin_round_trip(length: int) -> None:
    uri = sgtin_uri(GTIN, SERIAL, length)
    assert parse_epc(uri).code == f"(01){GTIN}(21){SERIAL}"


def test_sgtin_and_sscc_uris() -> None:
    assert sgtin_uri(GTIN, SERIAL, 7) == f"urn:epc:id:sgtin:9506000.013435.{SERIAL}"
    assert sscc_uri("106141412345678908", 7) == "urn:epc:id:sscc:0614141.1234567890"
    with pytest.raises(EpcError, match="GS1 company prefix length 13: expected 6 to 12"):
        sgtin_uri(GTIN, SERIAL, 13)


def test_render_code_in_both_forms() -> None:
    options: dict[str, Any] = {"resolver": "https://y.example.cn/", "company_prefix_length": 7}
    urn, link = EpcFormat.EPC_URN, EpcFormat.DIGITAL_LINK
    assert render_code(SERIAL, GTIN, form=urn, **options).startswith("urn:epc:id:sgtin:9506000.")
    assert render_code(SERIAL, GTIN, form=link, **options) == (
        f"https://y.example.cn/01/{GTIN}/21/{SERIAL}"
    )
    # No GTIN, no SGTIN: the printed short URL names the code in both forms.
    assert render_code(SERIAL, None, form=urn, **options) == f"https://y.example.cn/c/{SERIAL}"
    sscc = "106141412345678908"
    assert render_code(SERIAL, GTIN, form=urn, sscc=sscc, **options) == (
        "urn:epc:id:sscc:0614141.1234567890"
    )
    assert render_code(SERIAL, GTIN, form=link, sscc=sscc, **options) == (
        f"https://y.example.cn/00/{sscc}"
    )


def test_gtin_pattern() -> None:
    assert gtin_pattern("urn:epc:idpat:sgtin:9506000.013435.*") == GTIN
    assert gtin_pattern(f"urn:epc:id:sgtin:9506000.013435.{SERIAL}") is None
    with pytest.raises(EpcError, match="Invalid SGTIN pattern"):
        gtin_pattern("urn:epc:idpat:sgtin:9506000.0134.*")


def event(**fields: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2026-11-25T16:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [f"urn:epc:id:sgtin:9506000.013435.{SERIAL}"],
        "action": "ADD",
        "bizStep": "commissioning",
        **fields,
    }


def test_read_event_normalises_time_and_names() -> None:
    read = read_event(0, event(bizStep="https://ref.gs1.org/cbv/BizStep-commissioning"))
    assert read.event_time == AT
    assert read.biz_step == "commissioning"
    assert read.event_id.startswith("ni:///sha-256;") and read.event_id.endswith("?ver=CBV2.0")
    # The id and record time are not contents: the same event has the same digest.
    assert content_digest(event(eventID="urn:uuid:1", recordTime="2027-01-01T00:00:00Z")) == (
        content_digest(event())
    )
    assert content_digest(event(action="OBSERVE")) != content_digest(event())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"eventTime": "1999-12-31T23:00:00+00:00"}, "expected a time in 2000-2099, got 1999"),
        ({"eventTime": "0001-01-01T00:00:00+01:00"}, "eventList[3].eventTime"),
    ],
)
def test_read_event_refuses_times_out_of_range(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(DocumentError) as caught:
        read_event(3, event(**fields))
    assert message in str(caught.value)


def test_check_document_refuses_with_the_path_of_the_problem() -> None:
    document = capture_document([event(epcList=["not a uri"])], AT)
    with pytest.raises(DocumentError) as caught:
        check_document(document)
    assert "document.epcisBody.eventList[0].epcList[0]: 'not a uri' is not a 'uri'" in str(
        caught.value
    )
    with pytest.raises(DocumentError, match="expected at most 1000, got 1001"):
        check_document(capture_document([event()] * 1001, AT))


def test_emitted_documents_validate() -> None:
    stored = mapping.commissioning_event("urn:uuid:1", AT, [SERIAL], "LOT-1")
    packed = mapping.packing_event("urn:uuid:2", AT, "CASE", [SERIAL])
    shipped = mapping.shipping_event("urn:uuid:3", AT, [SERIAL])
    names = {SERIAL: f"urn:epc:id:sgtin:9506000.013435.{SERIAL}", "CASE": "https://y.cn/c/CASE"}
    events = [mapping.render(e, names, AT) for e in (stored, packed, shipped)]
    for document in (query_document(events, AT), capture_document(events, AT)):
        assert list(VALIDATOR.iter_errors(document)) == []
    assert events[1]["parentID"] == "https://y.cn/c/CASE"
    assert events[0]["ilmd"] == {"cbvmda:lotNumber": "LOT-1"}


@pytest.mark.parametrize(
    ("fields", "op", "step"),
    [
        ({}, Op.MOVE, Step.COMMISSIONING),
        ({"action": "OBSERVE", "bizStep": "shipping"}, Op.MOVE, Step.SHIPPING),
        ({"action": "OBSERVE", "bizStep": "receiving"}, Op.MOVE, Step.RECEIVING),
        ({"action": "DELETE", "bizStep": "decommissioning"}, Op.MOVE, Step.DECOMMISSIONING),
        ({"action": "DELETE", "bizStep": "destroying"}, Op.MOVE, Step.VOIDING),
        ({"action": "OBSERVE", "bizStep": "inspecting"}, Op.RECORD, Step.INSPECTING),
        ({"action": "OBSERVE", "bizStep": "storing"}, Op.RECORD, Step.INSPECTING),
        (
            {
                "type": "AggregationEvent",
                "parentID": "urn:x:p",
                "childEPCs": ["urn:x:c"],
                "bizStep": "packing",
            },
            Op.PACK,
            Step.PACKING,
        ),
        (
            {
                "type": "AggregationEvent",
                "parentID": "urn:x:p",
                "action": "DELETE",
                "bizStep": "unpacking",
            },
            Op.UNPACK,
            Step.UNPACKING,
        ),
    ],
)
def test_plan_table(fields: dict[str, Any], op: Op, step: Step) -> None:
    [operation] = mapping.plan(read_event(0, event(**fields)))
    assert (operation.op, operation.step) == (op, step)


def test_transformation_decommissions_inputs_and_commissions_outputs() -> None:
    raw = event(type="TransformationEvent", inputEPCList=["urn:x:in"], outputEPCList=["urn:x:out"])
    del raw["epcList"], raw["action"]
    inputs, outputs = mapping.plan(read_event(0, raw))
    assert (inputs.step, inputs.epcs, inputs.foreign_ok) == (
        Step.DECOMMISSIONING,
        ("urn:x:in",),
        True,
    )
    assert (outputs.step, outputs.epcs, outputs.foreign_ok) == (
        Step.COMMISSIONING,
        ("urn:x:out",),
        False,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"action": "ADD", "bizStep": "shipping"},
            "ObjectEvent ADD with bizStep shipping has no meaning for this hub's codes: "
            "expected one of ADD commissioning, OBSERVE shipping, OBSERVE receiving, "
            "DELETE decommissioning, DELETE destroying, or OBSERVE",
        ),
        (
            {"type": "TransactionEvent"},
            "TransactionEvent is not applied by this hub: expected one of ObjectEvent, "
            "AggregationEvent, TransformationEvent",
        ),
        (
            {"errorDeclaration": {"declarationTime": "2026-11-25T08:00:00Z"}},
            "errorDeclaration (retracting an earlier event) is not supported: capture the "
            "corrective events instead",
        ),
        (
            {"epcList": [], "quantityList": []},
            "ObjectEvent ADD commissioning: expected an epcList of serialised codes "
            "(quantityList names no code)",
        ),
    ],
)
def test_plan_refusals(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(NotApplicable) as caught:
        mapping.plan(read_event(0, event(**fields)))
    assert str(caught.value) == message


def test_query_parameters() -> None:
    query = build_query(
        event_type="ObjectEvent|AggregationEvent",
        eq_biz_step=["https://ref.gs1.org/cbv/BizStep-packing", "commissioning"],
        ge_event_time="2026-11-25T16:00:00+08:00",
        matches={
            "MATCH_epc": f"urn:epc:id:sgtin:9506000.013435.{SERIAL}|urn:x:foreign",
            "MATCH_anyEPC": "urn:epc:idpat:sgtin:9506000.013435.*",
            "MATCH_parentID": None,
        },
    )
    assert query.event_types == ("ObjectEvent", "AggregationEvent")
    assert query.biz_steps == ("packing", "commissioning")
    assert query.ge_event_time == AT
    epc, anything = query.matches
    assert (epc.roles, epc.keys) == (("epc", "child"), (SERIAL, "urn:x:foreign"))
    assert anything.gtins == (GTIN,)


def test_page_tokens_belong_to_their_query() -> None:
    query = build_query(eq_biz_step="packing", per_page=2)
    token = query.token_after(Position(AT, 42))
    again = build_query(eq_biz_step="packing", per_page=2, next_page_token=token)
    assert again.after == Position(AT, 42)
    with pytest.raises(PageTokenError, match="issued for a query with other parameters"):
        build_query(eq_biz_step="shipping", per_page=2, next_page_token=token)
    with pytest.raises(PageTokenError, match="not a token this hub issued"):
        build_query(next_page_token="x" + token)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"event_type": "Thing"}, "eventType 'Thing': expected one of ObjectEvent"),
        ({"lt_event_time": "2026-13-01T00:00:00Z"}, "LT_eventTime: expected an ISO 8601 time"),
        ({"matches": {"MATCH_epc": "|".join(["urn:x:a"] * 1001)}}, "at most 1000 values"),
    ],
)
def test_query_refusals(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(")):
        build_query(**arguments)


def test_link_types() -> None:
    assert choose(None) is LinkChoice.VERIFY
    assert choose("gs1:verificationService") is LinkChoice.VERIFY
    assert choose("gs1:somethingElse") is LinkChoice.VERIFY  # not offered: the default link
    assert choose("all") is LinkChoice.ALL
    assert choose("https://gs1.org/voc/epcis") is LinkChoice.EPCIS
    links = link_set("https://y.cn/01/x/21/y", "https://y.cn/01/x/21/y", "https://y.cn/epcis")
    [entry] = links["linkset"]
    assert entry["https://gs1.org/voc/defaultLink"][0]["hreflang"] == ["zh-CN", "en"]
