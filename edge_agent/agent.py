"""The camera station: frames -> decode -> item tracking -> commission events -> outbox -> uplink.

Runs in-process in a background thread (``start``/``stop``), which is how the plant simulator
drives it with a SyntheticConveyor, or in the foreground (``run``), which is what the CLI does.
Threads: the frame loop (this module), the uplink's sender and paho's network thread, and for
a real camera the capture thread. Hub commands arrive on paho's thread; the state they change
(work order, paused) is guarded by a lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from edge_agent.alarms import Alarms
from edge_agent.decode import Decoder, Read
from edge_agent.errors import DecodeError
from edge_agent.interfaces import CountsDrops, Frame, FrameSource, Uplink
from edge_agent.line import LineGeometry, LineTracker, Reconciliation, Verdict, is_code, judge
from edge_agent.outbox import Outbox, OutboxBudget
from edge_agent.serial_io import LineReader, RejectOutput, open_port, parse_trigger
from edge_agent.settings import EdgeSettings
from edge_agent.tracker import Decision, ItemTracker
from edge_agent.uplink import MqttUplink
from protocols.messages import (
    Command,
    CommissionEvent,
    RejectEvent,
    StationEvent,
    WorkOrder,
    new_event_id,
    now,
)

logger = logging.getLogger(__name__)

UplinkFactory = Callable[[EdgeSettings, Outbox, Callable[[Command], None]], Uplink]
DuplicateHandler = Callable[[str, Frame], None]
_DRAIN_POLL = 0.05


@dataclass(frozen=True)
class AgentCounters:
    frames: int  # frames taken from the source (decoded or, while stopped, skipped)
    frames_dropped: int  # frames the source threw away because decoding fell behind
    bad_frames: int  # frames the decoder refused, or that failed to process
    reads: int  # barcodes decoded, counting every frame a label is seen in
    ignored_reads: int  # reads whose text is not a Yima code (a false read, a foreign label)
    commissioned: int  # commission events written to the outbox
    duplicates: int  # duplicated labels seen (a code already commissioned here)
    acked: int
    rejected: int
    pending: int  # events in the outbox, not acked yet
    bad_messages: int  # unreadable acks or commands
    connected: bool
    paused: bool
    items: int = 0  # items the line decided (photo-eye or hand scanner)
    rejects: dict[str, int] = field(default_factory=dict)  # rejected items by reason
    late_rejects: int = 0  # rejects decided after the item passed the reject point
    orphan_reads: int = 0  # reads that matched no photo-eye item
    serial_garbage: int = 0  # serial lines that were no valid message
    alarms: tuple[str, ...] = ()  # active alarms


class EdgeAgent:
    def __init__(
        self,
        settings: EdgeSettings,
        source: FrameSource,
        uplink_factory: UplinkFactory = MqttUplink.from_settings,
        *,
        outbox: Outbox | None = None,
        on_duplicate: DuplicateHandler | None = None,
        on_verdict: Callable[[Verdict], None] | None = None,
    ) -> None:
        """``outbox`` defaults to one at ``settings.outbox_path``, which the agent then owns and
        closes. ``on_duplicate(code, frame)`` is where a reject (PLC) gets wired."""
        self.settings = settings
        self.source = source
        self._owns_outbox = outbox is None
        self.outbox = (
            outbox
            if outbox is not None
            else Outbox(settings.outbox_path, resend_interval=settings.resend_interval)
        )
        self.tracker = ItemTracker(
            leave_after=settings.leave_after_frames,
            remember=settings.remember_codes,
            is_known=self.outbox.has_code,
        )
        self.decoder = Decoder(settings.decode_options())
        self.alarms = Alarms()
        self.budget = OutboxBudget(settings.outbox_max_events, settings.outbox_max_bytes)
        self._budget_checked = 0.0
        self._started_at = time.monotonic()
        self.uplink = uplink_factory(settings, self.outbox, self.handle_command)
        if isinstance(self.uplink, MqttUplink):
            self.uplink.heartbeat = self.heartbeat
        self._on_duplicate = on_duplicate
        self._on_verdict = on_verdict
        wo = settings.work_order
        self._work_order = None if wo is None else wo.to_work_order()
        self._line_lock = threading.Lock()  # line tracker, triggers, reconciliation
        self._rejects: dict[str, int] = {}
        self._items = self._late = 0
        self._reconciliation: dict[str, Reconciliation] = {}
        self._triggers: list[float | None] = []
        self.line: LineTracker | None = None
        self._readers: list[LineReader] = []
        self.plc: RejectOutput | None = None
        self._scans = 0
        self._decode_ms = 0.0
        self._open_line(settings)
        self._paused = False
        self._state = threading.Lock()  # work order, paused, counters
        self._frames = self._bad_frames = self._reads = self._ignored = 0
        self._commissioned = self._duplicates = 0
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._uplink_started = False
        self._stopped = False
        self._pending_at_stop: int | None = None  # the outbox is closed after stop()

    def _open_line(self, settings: EdgeSettings) -> None:
        line = settings.line
        try:
            if line.plc is not None:
                self.plc = RejectOutput(open_port(line.plc, line.baudrate))
            if line.photo_eye is not None:
                self.line = LineTracker(
                    LineGeometry(line.eye_x, line.exit_x, line.reject_at, line.match_px)
                )
                port = open_port(line.photo_eye, line.baudrate)
                self._readers.append(LineReader(port, "photo-eye", self._on_trigger))
            if line.scanner is not None:
                port = open_port(line.scanner, line.baudrate)
                self._readers.append(LineReader(port, "scanner", self._on_scan))
        except BaseException:
            self._close_line()
            raise

    def _close_line(self) -> None:
        for reader in self._readers:
            reader.stop()
        if self.plc is not None:
            self.plc.close()

    def _on_trigger(self, text: str) -> bool:
        position = parse_trigger(text)
        if position is False:
            return False
        with self._line_lock:
            self._triggers.append(None if position is None else float(position))
        return True

    def _on_scan(self, text: str) -> bool:
        self.process_scan(text)
        return True

    # -- state the hub controls ----------------------------------------------------------------

    @property
    def work_order(self) -> WorkOrder | None:
        with self._state:
            return self._work_order

    @property
    def paused(self) -> bool:
        with self._state:
            return self._paused

    def handle_command(self, command: Command) -> None:
        """Apply a hub command (called on the uplink's thread)."""
        with self._state:
            # Any command may carry the current work order (the hub sends it with start and
            # stop too, so the retained command never loses it); a work_order command must.
            if command.work_order is not None:
                self._work_order = command.work_order
            if command.command == "work_order":
                pass
            elif command.command == "stop":
                self._paused = True
            elif command.command == "start":
                self._paused = False
        logger.info(
            "Station %s: command %s applied (work order %s, paused %s)",
            self.settings.station_id,
            command.command,
            None if command.work_order is None else command.work_order.id,
            self.paused,
        )

    # -- the frame loop ------------------------------------------------------------------------

    def check_outbox_budget(self, force: bool = False) -> str | None:
        """Stop the line (alarm + PLC) when the outbox is full, run it again once it drained;
        checked at most every 0.25 s. The active line-stopping alarm, or None."""
        at = time.monotonic()
        if not force and at - self._budget_checked < 0.25:
            return self.alarms.stops_line
        self._budget_checked = at
        events, size = self.outbox.pending_count(), self.outbox.disk_bytes()
        full = self.alarms.is_active("outbox_full")
        if not full and self.budget.full(events, size):
            self.alarms.raise_(
                "outbox_full",
                f"outbox holds {events} events / {size} bytes (budget {self.budget.max_events} / "
                f"{self.budget.max_bytes}): line stopped until the hub acks",
            )
            if self.plc is not None:
                self.plc.stop_line("outbox_full")
        elif full and self.budget.may_resume(events, size):
            self.alarms.clear("outbox_full")
            if self.plc is not None:
                self.plc.run_line()
        return self.alarms.stops_line

    def heartbeat(self) -> tuple[tuple[tuple[str, float], ...], tuple[str, ...]]:
        """Counters and active alarms for the retained status (heartbeat)."""
        c = self.counters()
        elapsed = max(1e-9, time.monotonic() - self._started_at)
        stats = self.decoder.stats
        values: dict[str, float] = {
            "frames": c.frames,
            "frames_dropped": c.frames_dropped,
            "bad_frames": c.bad_frames,
            "fps": round(c.frames / elapsed, 2),
            "decode_ms": round(self._decode_ms / max(1, c.frames), 3),
            "reads": c.reads,
            "items": c.items,
            "commissioned": c.commissioned,
            "no_reads": c.rejects.get("no_read", 0),
            "outbox_depth": c.pending,
            "late_rejects": c.late_rejects,
            "serial_garbage": c.serial_garbage,
            "decode_retried": stats.retried,
        }
        for reason, count in c.rejects.items():
            values[f"rejects_{reason}"] = count
        return tuple(values.items()), c.alarms

    def process_frame(self, frame: Frame) -> Decision:
        """Decode one frame and commission the new items in it (the loop calls this)."""
        stopped = self.check_outbox_budget()
        with self._state:
            self._frames += 1
            paused, order = self._paused, self._work_order
        if paused or (stopped is not None and self.line is None):
            # Without a photo-eye nothing can be rejected: a stopped line reads nothing.
            return Decision()
        try:
            started = time.perf_counter()
            reads = self.decoder.decode(frame.image)
            self._decode_ms += (time.perf_counter() - started) * 1000
        except DecodeError as exc:
            with self._state:
                self._bad_frames += 1
            logger.warning("Frame %s of %s skipped: %s", frame.index, self.settings.station_id, exc)
            return Decision()
        if self.line is not None:
            self._line_frame(frame, reads, order)
            return Decision()
        usable = [r for r in reads if _is_code(r.text)]
        decision = self.tracker.observe(usable)
        events = [_commission(code, frame.at, order) for code in decision.new]
        if events:
            self.outbox.put(events)  # on disk before anything is published
            self.uplink.notify()
        with self._state:
            self._reads += len(reads)
            self._ignored += len(reads) - len(usable)
            self._commissioned += len(events)
            self._duplicates += len(decision.duplicates)
        for code in decision.duplicates:
            self._report_duplicate(code, frame)
        return decision

    # -- line mode: photo-eye items, a decision each, rejects to the PLC ---------------------

    def _position(self, frame_position: float | None, at: datetime) -> float:
        if frame_position is not None:
            return frame_position
        return at.timestamp() * self.settings.line.belt_speed

    def _line_frame(self, frame: Frame, reads: list[Read], order: WorkOrder | None) -> None:
        assert self.line is not None
        position = self._position(frame.position, frame.at)
        with self._line_lock:
            triggers, self._triggers = self._triggers, []
            for trigger in triggers:
                self.line.trigger(position if trigger is None else trigger)
            leaving = self.line.observe(
                position, [(r.text, None if r.center is None else r.center[0]) for r in reads]
            )
        with self._state:
            self._reads += len(reads)
        for number, texts, late in leaving:
            if late:
                with self._state:
                    self._late += 1
                logger.error(
                    "Station %s: item %s decided after it passed the reject point",
                    self.settings.station_id,
                    number,
                )
            verdict = judge(
                number,
                texts,
                order,
                commissioned=self._commissioned_before,
                stopped=self.alarms.stops_line,
            )
            self._act(verdict, frame.at, order)

    def _flush_line(self) -> None:
        """The source ended: decide the items still in view (they leave with the last frame)."""
        if self.line is None:
            return
        with self._line_lock:
            leaving = self.line.leaving(float("inf"))
        with self._state:
            order = self._work_order
        for number, texts, _ in leaving:
            verdict = judge(
                number,
                texts,
                order,
                commissioned=self._commissioned_before,
                stopped=self.alarms.stops_line,
            )
            self._act(verdict, now(), order)

    def process_scan(self, text: str, at: datetime | None = None) -> Verdict:
        """Manual mode: one hand-scanner read is one item, decided like a camera item."""
        self.check_outbox_budget()
        with self._state:
            self._scans += 1
            number, order = self._scans, self._work_order
            self._reads += 1
        verdict = judge(
            number,
            [text],
            order,
            commissioned=self._commissioned_before,
            stopped=self.alarms.stops_line,
        )
        self._act(verdict, at if at is not None else now(), order, physical=False)
        if not verdict.good:
            # The operator puts the item aside: the station shows why (log, counters, event).
            logger.warning("Scan %s refused: %s (%s)", number, verdict.reason, text[:80])
        return verdict

    def _commissioned_before(self, code: str) -> bool:
        return self.tracker.seen(code)

    def _act(
        self, verdict: Verdict, at: datetime, order: WorkOrder | None, *, physical: bool = True
    ) -> None:
        event: StationEvent
        if verdict.good:
            assert verdict.code is not None
            event = _commission(verdict.code, at, order)
            self.tracker.note_commissioned(verdict.code)
        else:
            event = RejectEvent(
                id=new_event_id(),
                at=at,
                item=verdict.item,
                reason=verdict.reason,
                codes=verdict.reads[:8],
                work_order=None if order is None else order.id,
            )
            if physical and self.plc is not None:
                self.plc.reject(verdict.item, verdict.reason)
        self.outbox.put([event])
        self.uplink.notify()
        if self._on_verdict is not None:
            self._on_verdict(verdict)
        with self._state:
            self._items += 1
            if verdict.good:
                self._commissioned += 1
            else:
                self._rejects[verdict.reason] = self._rejects.get(verdict.reason, 0) + 1
            if order is not None:
                rec = self._reconciliation.get(order.id)
                if rec is None:
                    rec = self._reconciliation[order.id] = Reconciliation(
                        order.id, allocated=sum(r.size for r in order.pool)
                    )
                rec.count(verdict)

    def reconciliation(self) -> list[dict[str, object]]:
        """Per work order: allocated, items, read, commissioned, rejected by reason, leftover."""
        with self._state:
            return [r.as_dict() for r in self._reconciliation.values()]

    def _report_duplicate(self, code: str, frame: Frame) -> None:
        logger.warning(
            "Station %s: duplicated label %s in frame %s",
            self.settings.station_id,
            _short(code),
            frame.index,
        )
        if self._on_duplicate is not None:
            try:
                self._on_duplicate(code, frame)
            except Exception:
                logger.exception("Duplicate handler failed for %s", _short(code))

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    logger.info("Station %s: camera source ended", self.settings.station_id)
                    self._flush_line()
                    break
                try:
                    self.process_frame(frame)
                except Exception:
                    # A frame that breaks something (e.g. the outbox disk) must not end the line.
                    with self._state:
                        self._bad_frames += 1
                    logger.exception(
                        "Station %s: frame %s failed", self.settings.station_id, frame.index
                    )
        finally:
            self._finished.set()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the uplink and the frame loop in a background thread."""
        if self._thread is not None:
            raise RuntimeError("agent already started")
        self._start_uplink()
        self._start_readers()
        self._thread = threading.Thread(
            target=self._loop, name=f"edge-{self.settings.station_id}", daemon=True
        )
        self._thread.start()

    def _start_readers(self) -> None:
        for reader in self._readers:
            if not reader._thread.is_alive():
                reader.start()

    def _start_uplink(self) -> None:
        if not self._uplink_started:
            self.uplink.start()
            self._uplink_started = True

    def run(self, stop: threading.Event, drain_timeout: float = 0.0) -> None:
        """Run in the calling thread until ``stop`` is set or the source ends; then wait up to
        ``drain_timeout`` seconds for the hub to ack what is left, and shut down."""
        if self._thread is not None:
            raise RuntimeError("agent already started")
        self._start_uplink()
        self._start_readers()
        watcher = threading.Thread(target=self._relay_stop, args=(stop,), daemon=True)
        watcher.start()
        self._loop()
        deadline = time.monotonic() + drain_timeout
        while not stop.is_set() and self.outbox.pending_count() and time.monotonic() < deadline:
            stop.wait(_DRAIN_POLL)
        self.stop()

    def _relay_stop(self, stop: threading.Event) -> None:
        while not self._finished.is_set():
            if stop.wait(_DRAIN_POLL):
                self._stop.set()
                self.source.close()  # unblocks a read() waiting for a camera
                return

    def wait_finished(self, timeout: float | None = None) -> bool:
        """True once the frame loop ended (source exhausted or agent stopped)."""
        return self._finished.wait(timeout)

    def wait_drained(self, timeout: float) -> bool:
        """True once the outbox is empty: everything commissioned so far was acked."""
        deadline = time.monotonic() + timeout
        while self.outbox.pending_count():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_DRAIN_POLL)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the frame loop, close the source, stop the uplink; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self.source.close()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close_line()
        if self._uplink_started:
            self.uplink.stop()
        if self._owns_outbox:
            self._pending_at_stop = self.outbox.pending_count()
            self.outbox.close()

    def counters(self) -> AgentCounters:
        uplink = self.uplink.counters()
        dropped = self.source.dropped if isinstance(self.source, CountsDrops) else 0
        pending = self._pending_at_stop
        if pending is None:
            pending = self.outbox.pending_count()
        with self._state:
            return AgentCounters(
                frames=self._frames,
                frames_dropped=dropped,
                bad_frames=self._bad_frames,
                reads=self._reads,
                ignored_reads=self._ignored,
                commissioned=self._commissioned,
                duplicates=self._duplicates,
                acked=uplink.acked,
                rejected=uplink.rejected,
                pending=pending,
                bad_messages=uplink.bad_messages,
                connected=uplink.connected,
                paused=self._paused,
                items=self._items,
                rejects=dict(self._rejects),
                late_rejects=self._late,
                orphan_reads=0 if self.line is None else self.line.counters.orphan_reads,
                serial_garbage=sum(r.garbage for r in self._readers),
                alarms=tuple(sorted(self.alarms.active())),
            )


def _is_code(text: str) -> bool:
    """Whether a read is some printed form of a Yima code (see edge_agent.line.is_code)."""
    return is_code(text)


def _commission(code: str, at: datetime, order: WorkOrder | None) -> CommissionEvent:
    if order is None:
        return CommissionEvent(id=new_event_id(), at=at, code=code)
    return CommissionEvent(
        id=new_event_id(),
        at=at,
        code=code,
        work_order=order.id,
        sku=order.sku,
        lot=order.lot,
        production_date=order.production_date,
        line=order.line,
        shift=order.shift,
        operator=order.operator,
    )


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
