"""The Kivy app: one screen class per screen, one .kv file per screen (``kv/``), the state
in Kivy properties, every action a call into ``pda_app.controller``."""

from __future__ import annotations

import argparse
import logging
import math
import struct
import wave
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import LabelBase
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import (
    BooleanProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

from pda_app import i18n
from pda_app.client import PdaError
from pda_app.controller import SCANNERS, Controller, DeviceSettings
from pda_app.core import Command, PdaCoreError
from pda_app.scanners import BroadcastScanner, KeyboardWedge, ScannerInput, SerialScanner

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
FONT = HERE / "assets" / "NotoSansSC-Subset.otf"
SCREENS = ("login", "orders", "scan", "exceptions", "summary", "settings")

GREEN = [0.13, 0.55, 0.25, 1]
RED = [0.78, 0.12, 0.12, 1]
IDLE = [0.16, 0.18, 0.22, 1]
AMBER = [0.85, 0.55, 0.05, 1]


def register_font() -> None:
    # Every Label uses "Roboto" unless told otherwise: point it at the CJK subset.
    LabelBase.register(name="Roboto", fn_regular=str(FONT))


def tone(path: Path, frequency: float, seconds: float, volume: float = 0.6) -> Path:
    """A beep as a small WAV (made once on the device: no sound files to ship)."""
    if not path.exists():
        rate = 22050
        frames = b"".join(
            struct.pack("<h", int(volume * 32767 * math.sin(2 * math.pi * frequency * i / rate)))
            for i in range(int(rate * seconds))
        )
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(frames)
    return path


class PdaScreen(Screen):  # type: ignore[misc]
    @property
    def pda(self) -> PdaApp:
        app = App.get_running_app()
        assert isinstance(app, PdaApp)
        return app


class LoginScreen(PdaScreen):
    message = StringProperty("")

    def do_login(self, username: str, password: str) -> None:
        try:
            self.pda.controller.login(username.strip(), password)
        except PdaError as exc:
            self.message = f"{self.pda.t('login_failed')}: {exc}"
            return
        self.message = ""
        self.pda.show_orders()


class OrdersScreen(PdaScreen):
    orders = ListProperty([])

    def refresh(self) -> None:
        self.orders = [
            {
                "number": o["number"],
                "text": f"{o['number']}  ·  {o.get('dealer_name') or o['dealer']}  ·  "
                f"{o['region']}\n" + "  ".join(f"{x['sku']} × {x['quantity']}" for x in o["lines"]),
            }
            for o in self.pda.controller.refresh_orders()
        ]


class ScanScreen(PdaScreen):
    order_title = StringProperty("")
    result_title = StringProperty("")
    result_detail = StringProperty("")
    result_color = ListProperty(IDLE)
    error = BooleanProperty(False)
    lines = ListProperty([])
    total_done = NumericProperty(0)
    total = NumericProperty(1)
    queued = NumericProperty(0)


class ExceptionsScreen(PdaScreen):
    rows = ListProperty([])

    def refresh(self) -> None:
        session = self.pda.controller.session
        lang = self.pda.language
        self.rows = [
            {
                "text": f"{s.at:%H:%M:%S}  "
                + (
                    i18n.text("removed", lang) + f": {s.removed_reason}"
                    if s.removed_reason
                    else i18n.result_text(s.hub_result or s.result.value, lang)
                )
                + f"\n{(s.hub_reason or s.reason)[:90]}"
            }
            for s in reversed(session.exceptions if session else [])
        ]


class SummaryScreen(PdaScreen):
    lines_text = StringProperty("")
    state_text = StringProperty("")
    message = StringProperty("")

    def refresh(self) -> None:
        controller = self.pda.controller
        session = controller.session
        if session is None:
            return
        self.lines_text = "\n".join(
            f"{line.sku}  {line.name}:  {done} / {line.quantity}" for line, done in session.progress
        )
        state, note = controller.order_state()
        key = f"state_{state}"
        self.state_text = (i18n.text(key, self.pda.language) if key in i18n.TEXTS else state) + (
            f"  ({note})" if note else ""
        )

    def do_complete(self, reason: str) -> None:
        try:
            self.pda.controller.complete(reason.strip() or None)
        except (PdaCoreError, PdaError) as exc:
            self.message = str(exc)
            return
        self.message = ""
        self.refresh()


class SettingsScreen(PdaScreen):
    scanners = ListProperty(list(SCANNERS))
    message = StringProperty("")

    def do_save(self, hub_url: str, device_id: str, language: str, scanner: str) -> None:
        current = self.pda.controller.settings
        settings = DeviceSettings(
            hub_url=hub_url.strip(),
            device_id=device_id.strip(),
            language=language,
            scanner=scanner,
            broadcast_action=current.broadcast_action,
            broadcast_extra=current.broadcast_extra,
            serial_port=current.serial_port,
        )
        try:
            self.pda.controller.save_settings(settings)
        except PdaError as exc:
            self.message = str(exc)
            return
        self.message = ""
        self.pda.language = settings.language
        self.pda.go("orders" if self.pda.controller.token else "login")


class PdaApp(App):  # type: ignore[misc]
    language = StringProperty("zh")
    sync_text = StringProperty("")
    sync_color = ListProperty(GREEN)
    controller = ObjectProperty(None)

    def __init__(self, data_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_dir = data_dir
        self.wedge = KeyboardWedge()
        self.sounds: dict[str, Any] = {}
        self.scanner: ScannerInput | None = None

    def t(self, key: str, language: str | None = None) -> str:
        """kv calls app.t('key', app.language) so texts follow a language change."""
        return i18n.text(key, language or self.language)

    def build(self) -> ScreenManager:
        register_font()
        self.title = i18n.text("app_title", "zh")
        self.controller = Controller(self.data_dir)
        self.language = self.controller.settings.language
        for name in SCREENS:
            Builder.load_file(str(HERE / "kv" / f"{name}.kv"))
        manager = ScreenManager(transition=NoTransition())
        for name, cls in zip(
            SCREENS,
            (
                LoginScreen,
                OrdersScreen,
                ScanScreen,
                ExceptionsScreen,
                SummaryScreen,
                SettingsScreen,
            ),
            strict=True,
        ):
            manager.add_widget(cls(name=name))
        self.wedge.start(self.on_scan)
        Window.bind(on_key_down=self._key_down)
        self._start_scanner()
        Clock.schedule_interval(self._tick, 0.5)
        self._load_sounds()
        if self.controller.token:
            Clock.schedule_once(lambda _dt: self.show_orders(), 0)
        return manager

    def _start_scanner(self) -> None:
        """The keyboard wedge always listens; a serial or broadcast scanner as configured.
        Their texts arrive on other threads: hand them to the UI thread."""
        settings = self.controller.settings
        scanner: ScannerInput | None = None
        if settings.scanner == "serial":
            scanner = SerialScanner(settings.serial_port)
        elif settings.scanner == "broadcast":
            scanner = BroadcastScanner(settings.broadcast_action, settings.broadcast_extra)
        if scanner is None:
            return
        try:
            scanner.start(lambda text: Clock.schedule_once(lambda _dt: self.on_scan(text), 0))
        except Exception:  # a missing port or not on Android: the wedge still works
            log.exception("cannot start the %s scanner", settings.scanner)
            return
        self.scanner = scanner

    def _load_sounds(self) -> None:
        try:
            from kivy.core.audio import SoundLoader

            for name, frequency, seconds in (("ok", 1760.0, 0.08), ("error", 220.0, 0.45)):
                sound = SoundLoader.load(
                    str(tone(self.data_dir / f"{name}.wav", frequency, seconds))
                )
                if sound is not None:
                    self.sounds[name] = sound
        except Exception:  # no audio device (a desktop test run): scanning works silently
            log.info("no sound output", exc_info=True)

    def beep(self, name: str) -> None:
        sound = self.sounds.get(name)
        if sound is not None:
            sound.stop()
            sound.play()

    # navigation --------------------------------------------------------------------------
    def go(self, name: str) -> None:
        self.root.current = name
        screen = self.root.get_screen(name)
        if hasattr(screen, "refresh"):
            screen.refresh()

    def show_orders(self) -> None:
        self.go("orders")

    def open_order(self, number: str) -> None:
        try:
            self.controller.open_order(number)
        except PdaError as exc:
            log.warning("cannot open order %s: %s", number, exc)
            return
        self.go("scan")
        self.update_scan()

    # scanning ----------------------------------------------------------------------------
    def _key_down(
        self, _window: Any, key: int, _scancode: int, codepoint: str | None, _mods: Any
    ) -> bool:
        if self.root is None or self.root.current != "scan":
            return False
        if key in (13, 271):  # Enter, keypad Enter
            self.wedge.enter()
            return True
        if codepoint:
            self.wedge.type(codepoint)
            return True
        return False

    def on_scan(self, text: str) -> None:
        if self.controller.session is None:
            return
        outcome = self.controller.scan(text)
        if outcome.command is Command.NEXT_ORDER:
            self.show_orders()
            return
        if outcome.command is Command.COMPLETE:
            self.go("summary")
            return
        if outcome.scan is not None and not outcome.repeat and not outcome.queued:
            self.beep("ok" if outcome.ok else "error")
        self.update_scan()

    def acknowledge(self) -> None:
        self.controller.acknowledge()
        last = self.controller.last
        if last is not None and last.error:
            self.beep("error")
        self.update_scan()

    def undo(self) -> None:
        self.controller.undo()
        self.update_scan()

    def update_scan(self) -> None:
        screen = self.root.get_screen("scan")
        session = self.controller.session
        if session is None:
            return
        order = session.order
        screen.order_title = f"{order.number}  ·  {order.dealer_name}  ·  {order.region}"
        screen.lines = [
            {"sku": line.sku, "name": line.name, "done": done, "quantity": line.quantity}
            for line, done in session.progress
        ]
        screen.total = max(session.tally.total, 1)
        screen.total_done = session.tally.done
        screen.queued = session.queued
        last = self.controller.last
        screen.error = session.pending_error is not None
        if last is None or last.scan is None:
            screen.result_color = IDLE
            screen.result_title = self.t("scan_here")
            screen.result_detail = last.message if last is not None else ""
        else:
            result = last.scan.result.value
            screen.result_color = GREEN if last.ok else RED
            if last.command is not None:
                screen.result_color = AMBER
            screen.result_title = i18n.result_text(result, self.language)
            screen.result_detail = last.message[:160]

    def _tick(self, _dt: float) -> None:
        state = self.controller.poll()
        when = (
            state.last_sync.astimezone().strftime("%H:%M:%S")
            if state.last_sync
            else self.t("never")
        )
        self.sync_text = (
            f"{self.t('sync_' + state.status.value)} · {state.pending} · "
            f"{self.t('last_sync')} {when}"
        )
        self.sync_color = {
            "idle": GREEN,
            "pending": AMBER,
            "syncing": AMBER,
            "offline": RED,
            "error": RED,
        }[state.status.value]
        if self.root is not None and self.root.current == "scan":
            self.update_scan()

    def on_stop(self) -> None:
        if self.scanner is not None:
            self.scanner.stop()
        if self.controller is not None:
            self.controller.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="yima-pda-app", description="Yima warehouse PDA (Kivy)")
    parser.add_argument("--data", type=Path, default=Path.home() / ".yima-pda")
    args = parser.parse_args(argv)
    PdaApp(args.data).run()


if __name__ == "__main__":
    main()
