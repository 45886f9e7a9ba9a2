"""Drives the real Kivy screens under Xvfb (run by test_ui.py): log in, open an order, scan
through the keyboard wedge, hit an error, acknowledge it, complete. Saves a screenshot per
step and prints one JSON line per step with what the screen shows."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")

from kivy.config import Config

Config.set("graphics", "width", "480")
Config.set("graphics", "height", "800")
Config.set("kivy", "exit_on_escape", "0")

from kivy.clock import Clock  # noqa: E402
from kivy.core.window import Window  # noqa: E402

from pda_app.controller import DeviceSettings  # noqa: E402
from pda_app.ui.app import PdaApp  # noqa: E402


def main() -> None:
    hub, user, password, order, shots, data = sys.argv[1:7]
    codes = json.loads(sys.argv[7])
    language = sys.argv[8] if len(sys.argv) > 8 else "zh"
    out = Path(shots)
    out.mkdir(parents=True, exist_ok=True)
    app = PdaApp(Path(data))

    def screen(name: str) -> Any:
        return app.root.get_screen(name)

    def state(step: str) -> dict[str, Any]:
        scan = screen("scan")
        return {
            "step": step,
            "screen": app.root.current,
            "result": scan.result_title,
            "detail": scan.result_detail,
            "color": list(scan.result_color),
            "error": scan.error,
            "done": scan.total_done,
            "total": scan.total,
            "sync": app.sync_text,
            "summary": screen("summary").state_text,
        }

    def shot(step: str) -> None:
        # Kivy numbers screenshots (name0001.png): rename to the step's name.
        made = Window.screenshot(name=str(out / f"pda-{language}-{step}.png"))
        Path(made).replace(out / f"pda-{language}-{step}.png")
        print(json.dumps(state(step), ensure_ascii=False), flush=True)

    def wedge(text: str) -> None:
        for char in text:
            app._key_down(Window, ord(char), 0, char, [])
        app._key_down(Window, 13, 0, None, [])

    steps: list[tuple[str, Any]] = []

    def configure() -> None:
        app.controller.save_settings(
            DeviceSettings(hub_url=hub, device_id="pda-1", language=language)
        )
        app.language = language
        app.go("login")

    def login() -> None:
        s = screen("login")
        s.ids.username.text = user
        s.ids.password.text = "*" * len(password)
        s.do_login(user, password)

    steps += [("configure", configure), ("login", lambda: None), ("orders", login)]
    steps += [("open", lambda: app.open_order(order))]
    for i, code in enumerate(codes["good"]):
        steps.append((f"ok{i}", lambda c=code: wedge(c)))
    steps.append(("error", lambda: wedge(codes["bad"])))
    steps.append(("blocked", lambda: wedge(codes["good"][0])))
    steps.append(("acknowledged", app.acknowledge))
    steps.append(("cleared", app.acknowledge))
    steps.append(("exceptions", lambda: app.go("exceptions")))
    steps.append(("summary", lambda: app.go("summary")))
    steps.append(("completed", lambda: screen("summary").do_complete(codes.get("reason", ""))))

    def run(index: int) -> None:
        if index >= len(steps):
            app.stop()
            return
        name, action = steps[index]
        action()
        # Let the screen redraw (and the sync thread answer) before the picture.
        Clock.schedule_once(lambda _dt: (shot(name), run_next(index)), 0.6)

    def run_next(index: int) -> None:
        if steps[index][0] == "completed":
            wait_for_hub(index, 60)
        else:
            Clock.schedule_once(lambda _dt: run(index + 1), 0.1)

    def wait_for_hub(index: int, tries: int) -> None:
        """The hub confirms the completion through the sync thread: wait for its word."""
        if app.controller.order_state()[0] != "completing" or tries == 0:
            screen("summary").refresh()
            Clock.schedule_once(lambda _dt: (shot("confirmed"), run(index + 1)), 0.3)
        else:
            Clock.schedule_once(lambda _dt: wait_for_hub(index, tries - 1), 0.5)

    Clock.schedule_once(lambda _dt: run(0), 1.0)
    app.run()


if __name__ == "__main__":
    main()
