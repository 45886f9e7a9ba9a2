"""``yima-hub stations credentials|workorder|start|stop`` and ``yima-hub pools add|list``.

Commands are published retained on the configured broker (``mqtt_url``): the embedded broker
of a running hub is private to it, so with no ``mqtt_url`` send commands through the API
(``POST /api/v1/stations/<id>/commands``).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub import pools, stations
from hub.cli.common import in_session
from hub.errors import HubConfigError, InvalidRequestError, UnavailableError
from hub.settings import Settings
from protocols.broker import BrokerAddress
from protocols.messages import Command

STATION_ACTIONS = ("credentials", "workorder", "start", "stop")


def add_station_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--credentials", action="store_true", help="add: also issue credentials")
    parser.add_argument("--wo", help="workorder: work order number")
    parser.add_argument("--sku", help="workorder: product SKU")
    parser.add_argument("--lot", help="workorder: production lot")
    parser.add_argument("--date", type=date.fromisoformat, help="workorder: YYYY-MM-DD")
    parser.add_argument("--shift", help="workorder: shift (班次)")
    parser.add_argument("--operator", help="workorder: operator")


def run_station_action(args: argparse.Namespace, settings: Settings) -> int:
    if not args.station_id:
        raise InvalidRequestError(f"stations {args.action} needs --id")
    if args.action == "credentials":
        return credentials(args.station_id, settings)
    if args.action == "workorder":
        missing = [f"--{n}" for n in ("wo", "sku", "lot") if not getattr(args, n)]
        if missing:
            raise InvalidRequestError(f"stations workorder needs {', '.join(missing)}")
    if not settings.mqtt_url:
        raise HubConfigError(
            "No mqtt_url configured: the embedded broker of a running hub is private to it; "
            "send the command with POST /api/v1/stations/<id>/commands"
        )
    command_name = "work_order" if args.action == "workorder" else args.action

    async def build(session: AsyncSession) -> Command:
        command = await stations.build_command(
            session,
            args.station_id,
            command_name,
            order_id=args.wo,
            sku=args.sku,
            lot=args.lot,
            production_date=args.date,
            line=args.line,
            shift=args.shift,
            operator=args.operator,
        )
        publish_retained(settings, command)  # inside the transaction: all or nothing
        return command

    command = asyncio.run(in_session(settings, build))
    order = command.work_order
    print(
        f"station {args.station_id}: {command_name} sent"
        + ("" if order is None else f" (work order {order.id}, {order.sku}, lot {order.lot})")
    )
    return 0


def credentials(station_id: str, settings: Settings) -> int:
    async def issue(session: AsyncSession) -> str:
        return await stations.issue_credentials(session, station_id)

    password = asyncio.run(in_session(settings, issue))
    print(f"station {station_id}: broker user {station_id}")
    print(f"password (shown once; put it in the station's mqtt_password): {password}")
    print("the embedded broker (broker_auth = true) takes it at the hub's next start")
    return 0


def publish_retained(settings: Settings, command: Command, timeout: float = 10.0) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    assert settings.mqtt_url is not None
    address = BrokerAddress.parse(settings.mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set()
    connected = threading.Event()
    failure: list[str] = []

    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            failure.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(address.host, address.port)
    except OSError as exc:
        raise UnavailableError(
            f"The MQTT broker at {address.url} is not reachable: {exc}"
        ) from None
    client.loop_start()
    try:
        if not connected.wait(timeout) or failure:
            raise UnavailableError(
                f"The MQTT broker at {address.url} refused the connection: "
                f"{failure[0] if failure else 'no answer'}"
            )
        info = client.publish(
            settings.topics.command(command.station_id), command.to_json(), qos=1, retain=True
        )
        info.wait_for_publish(timeout)
    finally:
        client.disconnect()
        client.loop_stop()


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("pools", parents=[common], help="code pools (码段) of lines")
    group.add_argument("action", choices=["add", "list"], help="add: allocate; list: show")
    group.add_argument("--batch", type=int, help="the generation batch")
    group.add_argument("--first", type=int, help="add: first 卡序号 (seq)")
    group.add_argument("--last", type=int, help="add: last 卡序号 (seq), inclusive")
    group.add_argument("--line", help="add: the production line it goes to")
    group.add_argument("--wo", help="add: the work order it is for")
    group.set_defaults(run=_pools)


def _pools(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "list":

        async def rows(session: AsyncSession) -> list[tuple[object, ...]]:
            found = await pools.list_pools(session, args.batch)
            return [
                (
                    p.id,
                    p.batch_id,
                    p.first_seq,
                    p.last_seq,
                    p.last_seq - p.first_seq + 1,
                    p.line,
                    p.work_order,
                )
                for p in found
            ]

        found = asyncio.run(in_session(settings, rows))
        for row in [("pool", "batch", "first", "last", "codes", "line", "work order"), *found]:
            print("  ".join("" if c is None else str(c) for c in row))
        return 0
    missing = [f"--{n}" for n in ("batch", "first", "last", "line") if getattr(args, n) is None]
    if missing:
        raise InvalidRequestError(f"pools add needs {', '.join(missing)}")

    async def add(session: AsyncSession) -> int:
        pool = await pools.allocate(session, args.batch, args.first, args.last, args.line, args.wo)
        return pool.id

    pool_id = asyncio.run(in_session(settings, add))
    print(f"pool {pool_id}: batch {args.batch} seq {args.first}..{args.last} -> line {args.line}")
    return 0
