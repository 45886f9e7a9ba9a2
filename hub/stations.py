"""Station commands and broker credentials.

Commands go out retained on the station's one ``command`` topic, so a station that
(re)connects gets the last one. That is why every command carries the station's current work
order (kept on the station row): a retained ``start`` or ``stop`` must never replace the work
order a restarted station needs.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import registry
from hub.errors import InvalidRequestError
from hub.models import CodePool, Station
from hub.mosquitto import hash_password, new_password
from protocols.codes import normalize_gtin
from protocols.errors import ProtocolError
from protocols.messages import Command, PoolRange, WorkOrder


async def build_command(
    session: AsyncSession,
    station_id: str,
    command: str,
    *,
    order_id: str | None = None,
    sku: str | None = None,
    lot: str | None = None,
    production_date: date | None = None,
    line: str | None = None,
    shift: str | None = None,
    operator: str | None = None,
) -> Command:
    """The command to publish; a ``work_order`` command also becomes the station's current
    work order (product GTIN from the product, pools allocated to that work order)."""
    station = await registry.station_by_id(session, station_id)
    order: WorkOrder | None
    if command == "work_order":
        if order_id is None or sku is None or lot is None:
            raise InvalidRequestError("Command 'work_order' needs a work order: id, sku and lot")
        product = await registry.product_by_sku(session, sku)
        pools = await session.scalars(
            select(CodePool).where(CodePool.work_order == order_id).order_by(CodePool.first_seq)
        )
        order = WorkOrder(
            id=order_id,
            sku=sku,
            lot=lot,
            gtin=None if product.gtin is None else normalize_gtin(product.gtin),
            production_date=None if production_date is None else production_date.isoformat(),
            line=line or station.line,
            shift=shift,
            operator=operator,
            pool=tuple(PoolRange(p.batch_id, p.first_seq, p.last_seq) for p in pools),
        )
        station.work_order = order.as_dict()
    else:
        order = _stored(station)
    built = Command(station_id=station_id, command=command, work_order=order)
    try:
        Command.parse(built.to_json())  # the station's own strict check, before sending
    except ProtocolError as exc:
        raise InvalidRequestError(str(exc)) from None
    return built


def _stored(station: Station) -> WorkOrder | None:
    if not station.work_order:
        return None
    return WorkOrder.from_dict(station.work_order)


async def issue_credentials(session: AsyncSession, station_id: str) -> str:
    """A new broker password for the station (its user name is its id); only the hash is
    kept. The embedded broker uses it from its next start."""
    station = await registry.station_by_id(session, station_id)
    password = new_password()
    station.mqtt_password_hash = hash_password(password)
    return password


async def station_passwords(session: AsyncSession) -> dict[str, str]:
    """Station id -> password hash, for the embedded broker's password file."""
    rows = await session.execute(
        select(Station.id, Station.mqtt_password_hash).where(
            Station.mqtt_password_hash.is_not(None)
        )
    )
    return {r.id: r.mqtt_password_hash for r in rows}
