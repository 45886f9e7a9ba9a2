"""``yima-hub db upgrade``: bring the database schema to the newest migration."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from hub.db import upgrade
from hub.settings import Settings


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    db = commands.add_parser("db", parents=[common], help="database schema")
    db.add_argument("action", choices=["upgrade"], help="upgrade: apply every migration")
    db.set_defaults(run=_upgrade)


def _upgrade(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(upgrade(settings.database_url))
    print("database is at the newest schema")
    return 0
