"""SQLAlchemy models, one module per area; the code table is the current-state projection of
the event log.

Schema changes go through alembic (hub/migrations); keep these modules and the newest
migration in step (tests/hub/test_migrations.py compares them). A new module must be imported
here so that its tables are part of ``Base.metadata``.
"""

from hub.models.alerts import Alert
from hub.models.base import Base, BigId
from hub.models.codes import Code, CodeBatch, CodeKeyCounter
from hub.models.epcis import EpcisCapture, EpcisEvent, EpcisEventEpc
from hub.models.events import DeadLetter, Event, ScanLog
from hub.models.keys import CodeKeyFingerprint
from hub.models.master import (
    Dealer,
    DealerRegion,
    Document,
    Lot,
    LotMaterial,
    Product,
    Station,
    Store,
    Warehouse,
)
from hub.models.orders import Order, OrderClaim, OrderLine, OrderScan
from hub.models.pools import CodePool
from hub.models.recalls import Recall
from hub.models.users import AuditEntry, LoginToken, User

__all__ = [
    "Alert",
    "AuditEntry",
    "Base",
    "BigId",
    "Code",
    "CodeBatch",
    "CodeKeyCounter",
    "CodeKeyFingerprint",
    "CodePool",
    "DeadLetter",
    "Dealer",
    "DealerRegion",
    "Document",
    "EpcisCapture",
    "EpcisEvent",
    "EpcisEventEpc",
    "Event",
    "LoginToken",
    "Lot",
    "LotMaterial",
    "Order",
    "OrderClaim",
    "OrderLine",
    "OrderScan",
    "Product",
    "Recall",
    "ScanLog",
    "Station",
    "Store",
    "User",
    "Warehouse",
]
