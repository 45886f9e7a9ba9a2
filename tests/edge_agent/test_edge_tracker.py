from __future__ import annotations

from dataclasses import dataclass

import pytest

from edge_agent.tracker import Decision, ItemTracker


@dataclass(frozen=True)
class R:
    text: str
    center: tuple[float, float] | None = None


def frame(spec: str) -> list[R]:
    """'a b@100,50' -> reads of a (no position) and b centred at (100, 50)."""
    reads = []
    for token in spec.split():
        text, _, where = token.partition("@")
        if where:
            x, y = where.split(",")
            reads.append(R(text, (float(x), float(y))))
        else:
            reads.append(R(text))
    return reads


def run(frames: list[str], **kwargs: object) -> list[tuple[str, str]]:
    """Feed the frames; return what happened as 'frame:new' / 'frame:dup' entries."""
    tracker = ItemTracker(**kwargs)  # type: ignore[arg-type]
    out: list[tuple[str, str]] = []
    for i, spec in enumerate(frames):
        decision = tracker.observe(frame(spec))
        out += [(f"{i}:new", c) for c in decision.new]
        out += [(f"{i}:dup", c) for c in decision.duplicates]
    return out


CASES = [
    # (id, frames, options, expected events)
    ("empty frames", ["", "", ""], {}, []),
    ("one item seen in consecutive frames", ["a", "a", "a", "a"], {}, [("0:new", "a")]),
    ("two items in one frame", ["a b", "a b", "b"], {}, [("0:new", "a"), ("0:new", "b")]),
    (
        "items enter one after another",
        ["a", "a b", "b c", "c"],
        {},
        [("0:new", "a"), ("1:new", "b"), ("2:new", "c")],
    ),
    ("the same read twice in a frame", ["a a", "a"], {}, [("0:new", "a")]),
    (
        "missed reads within leave_after are the same item",
        ["a", "", "", "", "a"],
        {"leave_after": 4},
        [("0:new", "a")],
    ),
    (
        "a gap of exactly leave_after frames is still the same item",
        ["a", "", "", "a"],
        {"leave_after": 3},
        [("0:new", "a")],
    ),
    (
        "back after leaving: a duplicated label",
        ["a", "", "", "", "a", "a", "a"],
        {"leave_after": 3},
        [("0:new", "a"), ("4:dup", "a")],
    ),
    (
        "a duplicate is reported once per appearance",
        ["a", "", "", "a", "a", "", "", "a"],
        {"leave_after": 2},
        [("0:new", "a"), ("3:dup", "a"), ("7:dup", "a")],
    ),
    (
        "other items around a duplicate",
        ["a", "a b", "b", "b c", "c a"],
        {"leave_after": 1},
        [("0:new", "a"), ("1:new", "b"), ("3:new", "c"), ("4:dup", "a")],
    ),
    (
        "two labels with one code in the same frame",
        ["a@100,300 a@600,300", "a@140,300 a@640,300"],
        {},
        [("0:new", "a"), ("0:dup", "a")],
    ),
    (
        "a second label with the code of one in view",
        ["a@100,300", "a@140,300", "a@180,300 a@900,300", "a@220,300 a@940,300"],
        {},
        [("0:new", "a"), ("2:dup", "a")],
    ),
    (
        "two reads of one label a few pixels apart are one label",
        ["a@100,300 a@110,305"],
        {"min_separation": 40.0},
        [("0:new", "a")],
    ),
    (
        "only the last `remember` codes are remembered",
        ["a", "", "b", "", "c", "", "a"],
        {"leave_after": 1, "remember": 2},
        [("0:new", "a"), ("2:new", "b"), ("4:new", "c"), ("6:new", "a")],
    ),
    (
        "a remembered duplicate stays remembered",
        ["a", "", "b", "", "a", "", "c", "", "a"],
        {"leave_after": 1, "remember": 2},
        [("0:new", "a"), ("2:new", "b"), ("4:dup", "a"), ("6:new", "c"), ("8:dup", "a")],
    ),
]


@pytest.mark.parametrize(
    ("frames", "options", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_tracker(
    frames: list[str], options: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    assert run(frames, **options) == expected


def test_codes_the_outbox_still_holds_are_duplicates_after_a_restart() -> None:
    pending = {"a"}
    tracker = ItemTracker(is_known=pending.__contains__)
    assert tracker.observe(frame("a b")) == Decision(new=("b",), duplicates=("a",))


def test_in_view_forgets_items_that_left() -> None:
    tracker = ItemTracker(leave_after=2)
    tracker.observe(frame("a b"))
    tracker.observe(frame("b"))
    tracker.observe(frame("b"))
    assert tracker.in_view == {"a", "b"}
    tracker.observe(frame("b"))
    assert tracker.in_view == {"b"}


def test_memory_is_bounded_by_remember() -> None:
    tracker = ItemTracker(leave_after=1, remember=100)
    for i in range(10_000):
        tracker.observe(frame(f"c{i}"))
    assert len(tracker._commissioned) == 100
    assert len(tracker.in_view) <= 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"leave_after": 0}, "leave_after expected at least 1 frame, got 0"),
        ({"remember": 0}, "remember expected at least 1 code, got 0"),
    ],
)
def test_bad_options(options: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError) as info:
        ItemTracker(**options)  # type: ignore[arg-type]
    assert str(info.value) == message
