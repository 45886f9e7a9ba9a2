"""``yima-hub users add|list|passwd|disable|enable``: the people who log in.

Passwords are never command-line arguments (they would sit in the shell history and in
``ps``): they are asked for on a terminal, or read as the first line of standard input.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from hub import users
from hub.cli.common import in_session
from hub.domain.access import ROLES
from hub.errors import InvalidRequestError
from hub.settings import Settings


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("users", parents=[common], help="users and roles")
    actions = group.add_subparsers(
        dest="users_action", required=True, metavar="ACTION", help="what to do with users"
    )
    add = actions.add_parser("add", parents=[common], help="add a user (asks for the password)")
    add.add_argument("username", help="login name")
    add.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    add.add_argument("--dealer", help="dealer code: the dealer a dealer user works for")
    add.add_argument("--store-id", type=int, help="store id: the store of a store clerk")
    add.add_argument("--warehouse-id", type=int, help="warehouse id of a warehouse user")
    add.set_defaults(run=_add)

    listing = actions.add_parser("list", parents=[common], help="list users")
    listing.set_defaults(run=_list)

    passwd = actions.add_parser("passwd", parents=[common], help="set a new password")
    passwd.add_argument("username", help="login name")
    passwd.set_defaults(run=_passwd)

    for name, text in (("disable", "disable a user (ends its tokens)"), ("enable", "enable")):
        parser = actions.add_parser(name, parents=[common], help=text)
        parser.add_argument("username", help="login name")
        parser.set_defaults(run=_set_active, active=name == "enable")


def read_password() -> str:
    """From a terminal: asked twice. Otherwise: the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise InvalidRequestError("The two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _add(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password()
    users.check_password_rules(password)
    view = asyncio.run(
        in_session(
            settings,
            lambda s: users.create_user(
                s,
                args.username,
                password,
                args.role,
                dealer=args.dealer,
                store_id=args.store_id,
                warehouse_id=args.warehouse_id,
            ),
        )
    )
    print(f"user {view.username} added ({_describe(view)})")
    return 0


def _describe(view: users.UserView) -> str:
    scope = (
        f"dealer {view.dealer}"
        if view.dealer
        else f"store {view.store_id}"
        if view.store_id
        else f"warehouse {view.warehouse_id}"
        if view.warehouse_id
        else None
    )
    return view.role + (f", {scope}" if scope else "") + ("" if view.active else ", disabled")


def _list(args: argparse.Namespace, settings: Settings) -> int:
    views = asyncio.run(in_session(settings, users.list_users))
    for view in views:
        last = view.last_login_at.isoformat(timespec="seconds") if view.last_login_at else "never"
        print(f"{view.username}\t{_describe(view)}\tlast login {last}")
    if not views:
        print("no users (add one with: yima-hub users add <name> --role admin)")
    return 0


def _passwd(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password()
    users.check_password_rules(password)
    asyncio.run(
        in_session(settings, lambda s: users.update_user(s, args.username, password=password))
    )
    print(f"password of {args.username} changed; its login tokens are ended")
    return 0


def _set_active(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(
        in_session(settings, lambda s: users.update_user(s, args.username, active=args.active))
    )
    print(f"user {args.username} {'enabled' if args.active else 'disabled'}")
    return 0
