"""``yima-hub``: serve, migrate, and the admin chores a factory needs from a shell.

One module per command group; each has ``register(commands, common)`` adding its
subcommands, each of which sets ``run(args, settings) -> int`` (``settings`` is None for
commands that need none, such as ``keys new``). Global options (``--config``,
``--database-url``, ``--log-level``) work before or after the subcommand.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from hub import logs
from hub.cli import audit, codes, db, keys, master, serve, stations, trace, users
from hub.errors import HubError
from hub.settings import Settings, load_settings
from protocols.errors import ProtocolError

GROUPS: tuple[ModuleType, ...] = (serve, db, keys, master, codes, users, stations, trace, audit)
Run = Callable[[argparse.Namespace, Any], int]


def _global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        help="TOML settings file (see docs/hub.example.toml)",
    )
    parser.add_argument(
        "--database-url",
        default=default,
        help="sqlite+aiosqlite:///<file> or postgresql+asyncpg://user@host/db",
    )
    parser.add_argument(
        "--log-level",
        default=default,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="log level (default WARNING for admin commands, INFO for serve)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yima-hub", description="Yima hub (一码 中心)")
    _global_options(parser, None)
    # The same options after the subcommand; SUPPRESS keeps them from overwriting the ones
    # given before it with their defaults.
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do"
    )
    for group in GROUPS:
        group.register(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = args.log_level or ("INFO" if args.command == "serve" else "WARNING")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command != "serve" or level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    run: Run = args.run
    try:
        settings = None
        if getattr(args, "needs_settings", True):
            # Flags named like a setting (--database-url, --port, ...) override it.
            overrides = {name: getattr(args, name, None) for name in Settings.model_fields}
            settings = load_settings(args.config, os.environ, overrides)
            if settings.log_format == "json":
                logs.configure(level, "json")
        return run(args, settings)
    except (HubError, ProtocolError) as exc:
        print(f"yima-hub: {exc}", file=sys.stderr)
        return 2
    except DBAPIError as exc:
        # Database down, wrong role or database name: the driver's own words, in one line.
        cause = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        print(f"yima-hub: cannot use the database {_database(args)}: {cause}", file=sys.stderr)
        return 2
    except OSError as exc:
        # Listening problems are reported by serve itself: what is left is the database.
        print(f"yima-hub: cannot use the database {_database(args)}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _database(args: argparse.Namespace) -> str:
    """The database URL in use, password hidden, for an error message."""
    url = args.database_url or os.environ.get("YIMA_HUB_DATABASE_URL") or "(configured)"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(configured)"
