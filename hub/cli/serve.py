"""``yima-hub serve``: the HTTP API and MQTT ingestion, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from aiohttp import web

from hub.errors import HubConfigError
from hub.settings import Settings
from hub.web.app import create_app
from hub.web.keys import RUNTIME


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve", parents=[common], help="run the HTTP API and MQTT ingestion"
    )
    serve.add_argument(
        "--mqtt-url", help="mqtt://[user:password@]host:port (default: an embedded broker)"
    )
    serve.add_argument("--host", help="HTTP listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8080; 0 picks a free one)")
    serve.add_argument("--topic-prefix", help="MQTT topic prefix shared with the stations")
    serve.set_defaults(run=lambda args, settings: asyncio.run(serve_forever(settings)) or 0)


async def serve_forever(settings: Settings) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as exc:
            raise HubConfigError(
                f"Cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
            ) from None
        port = runner.addresses[0][1]
        runtime = app[RUNTIME]
        runtime.public_base = settings.public_base(port)
        print(
            f"yima-hub listening on http://{settings.host}:{port} "
            f"(printed URLs: {runtime.public_base}, MQTT: {runtime.mqtt_url})",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        # Also when the port is taken: the embedded broker started by setup() stops too.
        await runner.cleanup()
