"""``yima-hub keys new``: a fresh code secret, and where to put it."""

from __future__ import annotations

import argparse
import base64
import secrets
import sys
from typing import Any


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    keys = commands.add_parser("keys", parents=[common], help="code keys")
    keys.add_argument("action", choices=["new"], help="new: print a fresh random code secret")
    keys.set_defaults(run=_new, needs_settings=False)


def _new(args: argparse.Namespace, settings: None) -> int:
    print(base64.b64encode(secrets.token_bytes(32)).decode())
    print(
        'Put this secret in the hub\'s config file (code_keys = { 0 = "..." }, see '
        "docs/hub.example.toml) or in YIMA_HUB_CODE_KEYS, and keep a copy somewhere safe: "
        "every printed code depends on it.",
        file=sys.stderr,
    )
    return 0
