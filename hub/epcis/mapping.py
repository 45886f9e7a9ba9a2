"""Which lifecycle step an EPCIS event makes, and hub events written as EPCIS events.

Captured events (the table is ``_OBJECT_STEPS``; every step goes through the lifecycle gate):

* ObjectEvent ADD commissioning → commissioning (``ilmd`` ``cbvmda:lotNumber`` sets the lot);
  OBSERVE shipping / receiving → shipping / receiving; DELETE decommissioning /
  destroying → decommissioning / voiding; OBSERVE inspecting or any other OBSERVE → recorded,
  no state change.
* AggregationEvent ADD (packing) → the children are packed into the parent (a parent that
  was only generated is commissioned first, as on the line); DELETE (unpacking) → unpacked
  (all children of the parent when ``childEPCs`` is empty); OBSERVE → recorded.
* TransformationEvent → the inputs that are hub codes are decommissioned (foreign inputs,
  such as a supplier's materials, are recorded only), the outputs are commissioned.
* Anything else (TransactionEvent, AssociationEvent, error declarations, an ADD or DELETE
  with a bizStep the hub gives no meaning) is refused with the reason.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.domain.lifecycle import Step
from hub.epcis.document import CapturedEvent, format_time
from hub.epcis.identifiers import CODE_MARKER


class NotApplicable(Exception):
    """An EPCIS event this hub cannot apply; the message is the refusal reason."""


class Op(enum.StrEnum):
    MOVE = "move"  # a lifecycle step on every EPC
    PACK = "pack"  # children into a parent
    UNPACK = "unpack"  # children out of a parent
    RECORD = "record"  # kept and queryable, no state change


@dataclass(frozen=True)
class Operation:
    op: Op
    step: Step | None = None
    epcs: tuple[str, ...] = ()
    parent: str | None = None
    foreign_ok: bool = False  # identifiers the hub did not issue are recorded, not refused


_OBJECT_STEPS: dict[tuple[str, str], Step] = {
    ("ADD", "commissioning"): Step.COMMISSIONING,
    ("OBSERVE", "shipping"): Step.SHIPPING,
    ("OBSERVE", "receiving"): Step.RECEIVING,
    ("DELETE", "decommissioning"): Step.DECOMMISSIONING,
    ("DELETE", "destroying"): Step.VOIDING,
}


def plan(event: CapturedEvent) -> tuple[Operation, ...]:
    """The operations that apply ``event``; NotApplicable says why there are none."""
    if "errorDeclaration" in event.raw:
        raise NotApplicable(
            "errorDeclaration (retracting an earlier event) is not supported: "
            "capture the corrective events instead"
        )
    if event.type == "ObjectEvent":
        return (_object_operation(event),)
    if event.type == "AggregationEvent":
        return (_aggregation_operation(event),)
    if event.type == "TransformationEvent":
        if not event.outputs and not event.inputs:
            raise NotApplicable("TransformationEvent without inputEPCList or outputEPCList")
        return (
            Operation(Op.MOVE, Step.DECOMMISSIONING, event.inputs, foreign_ok=True),
            Operation(Op.MOVE, Step.COMMISSIONING, event.outputs),
        )
    raise NotApplicable(
        f"{event.type} is not applied by this hub: expected one of ObjectEvent, "
        "AggregationEvent, TransformationEvent"
    )


def _object_operation(event: CapturedEvent) -> Operation:
    action = event.action or ""
    step = _OBJECT_STEPS.get((action, event.biz_step or ""))
    if step is not None:
        if not event.epcs:
            raise NotApplicable(
                f"ObjectEvent {action} {event.biz_step}: expected an epcList of serialised "
                "codes (quantityList names no code)"
            )
        return Operation(Op.MOVE, step, event.epcs)
    if action == "OBSERVE":
        return Operation(Op.RECORD, Step.INSPECTING, event.epcs, foreign_ok=True)
    known = ", ".join(f"{a} {s}" for a, s in _OBJECT_STEPS)
    raise NotApplicable(
        f"ObjectEvent {action} with bizStep {event.biz_step or '(none)'} has no meaning for "
        f"this hub's codes: expected one of {known}, or OBSERVE"
    )


def _aggregation_operation(event: CapturedEvent) -> Operation:
    if event.action == "OBSERVE":
        return Operation(Op.RECORD, None, event.children, parent=event.parent, foreign_ok=True)
    if event.parent is None:
        raise NotApplicable(f"AggregationEvent {event.action}: expected a parentID")
    if event.action == "ADD" and event.biz_step in (None, "packing"):
        if not event.children:
            raise NotApplicable("AggregationEvent ADD: expected childEPCs to pack")
        return Operation(Op.PACK, Step.PACKING, event.children, parent=event.parent)
    if event.action == "DELETE" and event.biz_step in (None, "unpacking"):
        return Operation(Op.UNPACK, Step.UNPACKING, event.children, parent=event.parent)
    raise NotApplicable(
        f"AggregationEvent {event.action} with bizStep {event.biz_step}: expected ADD "
        "packing, DELETE unpacking or OBSERVE"
    )


# Hub events as EPCIS ------------------------------------------------------------------------
# Stored events name hub codes by a marker (CODE_MARKER + serial); ``render`` writes them in
# the form the caller asked for (EPC URN or Digital Link).


def marker(serial: str) -> str:
    return CODE_MARKER + serial


def _base(kind: str, event_id: str, at: datetime) -> dict[str, Any]:
    return {
        "type": kind,
        "eventID": event_id,
        "eventTime": format_time(at),
        "eventTimeZoneOffset": "+00:00",
    }


def commissioning_event(
    event_id: str, at: datetime, serials: Sequence[str], lot: str | None
) -> dict[str, Any]:
    """A station's commissioning read: ObjectEvent ADD commissioning."""
    event = _base("ObjectEvent", event_id, at) | {
        "epcList": [marker(s) for s in serials],
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
    }
    if lot:
        event["ilmd"] = {"cbvmda:lotNumber": lot}
    return event


def packing_event(
    event_id: str, at: datetime, parent: str, children: Sequence[str]
) -> dict[str, Any]:
    """A station's aggregation: AggregationEvent ADD packing."""
    return _base("AggregationEvent", event_id, at) | {
        "parentID": marker(parent),
        "childEPCs": [marker(s) for s in children],
        "action": "ADD",
        "bizStep": "packing",
        "disposition": "in_progress",
    }


def shipping_event(event_id: str, at: datetime, serials: Sequence[str]) -> dict[str, Any]:
    """A shipment (activation for a dealer): ObjectEvent OBSERVE shipping."""
    return _base("ObjectEvent", event_id, at) | {
        "epcList": [marker(s) for s in dict.fromkeys(serials)],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
    }


def observation_event(
    event_id: str,
    at: datetime,
    serials: Sequence[str],
    biz_step: str,
    disposition: str | None = None,
) -> dict[str, Any]:
    """A hub event that saw codes (receiving, inspecting, an un-shipment): ObjectEvent
    OBSERVE with its CBV bizStep."""
    event = _base("ObjectEvent", event_id, at) | {
        "epcList": [marker(s) for s in dict.fromkeys(serials)],
        "action": "OBSERVE",
        "bizStep": biz_step,
    }
    if disposition is not None:
        event["disposition"] = disposition
    return event


def recall_event(event_id: str, at: datetime, classes: Sequence[str]) -> dict[str, Any]:
    """A recall by lot: ObjectEvent OBSERVE, disposition recalled, naming the recalled lots
    as EPC classes (LGTIN): the event does not list every code of the lots."""
    return _base("ObjectEvent", event_id, at) | {
        "epcList": [],
        "quantityList": [{"epcClass": c} for c in dict.fromkeys(classes)],
        "action": "OBSERVE",
        "disposition": "recalled",
    }


_EPC_FIELDS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")


def serials_in(event: dict[str, Any]) -> set[str]:
    """The serials of the hub codes a stored event names."""
    found = set()
    for value in [event.get("parentID"), *(v for f in _EPC_FIELDS for v in event.get(f, ()))]:
        if isinstance(value, str) and value.startswith(CODE_MARKER):
            found.add(value[len(CODE_MARKER) :])
    return found


def render(stored: dict[str, Any], names: dict[str, str], record_time: datetime) -> dict[str, Any]:
    """A stored event with its hub codes named by ``names`` (serial → URI)."""

    def name(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(CODE_MARKER):
            return names[value[len(CODE_MARKER) :]]
        return value

    event = dict(stored)
    for field in _EPC_FIELDS:
        if field in event:
            event[field] = [name(v) for v in event[field]]
    if "parentID" in event:
        event["parentID"] = name(event["parentID"])
    event["recordTime"] = format_time(record_time)
    return event
