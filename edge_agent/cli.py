"""``yima-edge``: run a camera station from a TOML config.

    yima-edge run --config station.toml

Runs until SIGINT/SIGTERM or until the camera source ends (a video file, or the synthetic
conveyor's last carton), then waits up to ``--drain-timeout`` seconds for the hub to ack what
is still in the outbox (whatever is left stays there for the next start) and prints counters.
Exit status: 0 when it ran, 2 for a bad config, 1 when the camera or outbox cannot be opened.
"""

from __future__ import annotations

import argparse
import csv
import logging
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from edge_agent.alarms import Alarms
from edge_agent.errors import ConfigError, EdgeError
from edge_agent.interfaces import FrameSource
from edge_agent.settings import EdgeSettings, load_settings
from edge_agent.sources import open_source

logger = logging.getLogger(__name__)

EXIT_CONFIG = 2
EXIT_FAILURE = 1


def read_codes(path: Path, column: str) -> list[str]:
    """The non-empty values of ``column`` in a CSV file with a header row."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or column not in reader.fieldnames:
                found = ", ".join(reader.fieldnames or []) or "no header"
                raise ConfigError(
                    f"Codes file {str(path)!r} has no column {column!r}: found {found}"
                )
            return [row[column] for row in reader if row.get(column)]
    except OSError as exc:
        raise ConfigError(f"Cannot read codes file {str(path)!r}: {exc.strerror or exc}") from None


def build_source(settings: EdgeSettings, alarms: Alarms | None = None) -> FrameSource:
    """The camera the settings name (see :mod:`edge_agent.sources`)."""
    return open_source(settings, alarms)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    from edge_agent.agent import EdgeAgent

    source = build_source(settings)
    try:
        agent = EdgeAgent(settings, source)
    except BaseException:
        source.close()
        raise
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("Received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    logger.info("Station %s running (source %r)", settings.station_id, settings.source)
    stop_metrics = None
    if settings.metrics_port is not None:
        from edge_agent.metrics import serve_metrics

        stop_metrics = serve_metrics(agent, settings.metrics_port)
    try:
        agent.run(stop, drain_timeout=args.drain_timeout)
    finally:
        if stop_metrics is not None:
            stop_metrics()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    counters = asdict(agent.counters())
    width = max(len(k) for k in counters)
    for name, value in counters.items():
        print(f"{name:<{width}}  {value}")
    return 0


def _check(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    print(settings.model_dump_json(indent=2))  # SecretStr prints as '**********'
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="yima-edge", description="Yima camera station: read codes on the line, commission."
    )
    top.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default INFO)",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the station until stopped or the source ends")
    run.add_argument("--config", type=Path, required=True, help="station TOML file")
    run.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for acks after the source ends (default 10)",
    )
    run.set_defaults(handler=_run)
    check = commands.add_parser("check-config", help="validate a config and print it")
    check.add_argument("--config", type=Path, required=True, help="station TOML file")
    check.set_defaults(handler=_check)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"yima-edge: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except EdgeError as exc:
        print(f"yima-edge: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
