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
from dataclasses import dataclass

from edge_agent.decode import Decoder
from edge_agent.errors import DecodeError
from edge_agent.interfaces import CountsDrops, Frame, FrameSource, Uplink
from edge_agent.outbox import Outbox
from edge_agent.settings import EdgeSettings
from edge_agent.tracker import Decision, ItemTracker
from edge_agent.uplink import MqttUplink
from protocols.codes import check_code
from protocols.errors import CodeError
from protocols.messages import MAX_CODE_TEXT, Command, CommissionEvent, WorkOrder, new_event_id

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


class EdgeAgent:
    def __init__(
        self,
        settings: EdgeSettings,
        source: FrameSource,
        uplink_factory: UplinkFactory = MqttUplink.from_settings,
        *,
        outbox: Outbox | None = None,
        on_duplicate: DuplicateHandler | None = None,
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
        self.uplink = uplink_factory(settings, self.outbox, self.handle_command)
        self._on_duplicate = on_duplicate
        wo = settings.work_order
        self._work_order = None if wo is None else WorkOrder(wo.id, wo.sku, wo.lot)
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
            if command.command == "work_order":
                self._work_order = command.work_order
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

    def process_frame(self, frame: Frame) -> Decision:
        """Decode one frame and commission the new items in it (the loop calls this)."""
        with self._state:
            self._frames += 1
            paused, order = self._paused, self._work_order
        if paused:
            return Decision()
        try:
            reads = self.decoder.decode(frame.image)
        except DecodeError as exc:
            with self._state:
                self._bad_frames += 1
            logger.warning("Frame %s of %s skipped: %s", frame.index, self.settings.station_id, exc)
            return Decision()
        usable = [r for r in reads if _is_code(r.text)]
        decision = self.tracker.observe(usable)
        events = [
            CommissionEvent(
                id=new_event_id(),
                at=frame.at,
                code=code,
                work_order=None if order is None else order.id,
                sku=None if order is None else order.sku,
                lot=None if order is None else order.lot,
            )
            for code in decision.new
        ]
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
        self._thread = threading.Thread(
            target=self._loop, name=f"edge-{self.settings.station_id}", daemon=True
        )
        self._thread.start()

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
            )


def _is_code(text: str) -> bool:
    """Whether a read is some printed form of a Yima code.

    Only the syntax is checked (the keyed check needs the hub's secrets); that is enough to
    keep false reads (decoders find tiny symbols in noise) and other labels on the carton
    from being commissioned.
    """
    if not 0 < len(text) <= MAX_CODE_TEXT:
        return False
    try:
        check_code(text)
    except CodeError:
        return False
    return True


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
