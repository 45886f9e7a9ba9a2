"""Who is calling and what they may see: the request principal and the scope rules.

Pure: no web, no database. The web layer builds a :class:`Principal` for each request (from a
static token in the settings or a login token) and the services ask it what the caller may
see. A record outside the caller's scope is reported as *not found*, never as forbidden, so a
dealer cannot even learn that another dealer's order exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["admin", "operator", "warehouse", "dealer", "inspector", "store", "partner"]
ROLES: tuple[str, ...] = get_args(Role)

# Which scope field a role must (or may) carry.
SCOPE_REQUIRED: dict[str, str] = {"dealer": "dealer_id", "store": "store_id"}
SCOPE_ALLOWED: dict[str, frozenset[str]] = {
    "admin": frozenset(),
    "operator": frozenset(),
    "inspector": frozenset(),
    "warehouse": frozenset({"warehouse_id"}),
    "dealer": frozenset({"dealer_id"}),
    "store": frozenset({"store_id"}),
    "partner": frozenset(),  # EPCIS trading partners (/epcis)
}


class ScopeError(ValueError):
    """A user's role and scope do not fit together (a dealer user without a dealer)."""


@dataclass(frozen=True)
class Principal:
    """The caller of one request.

    ``subject`` names the caller in logs and the audit trail (``user:<name>`` or
    ``token:<fingerprint>``, never a secret). ``user_id`` is None for the static tokens of
    the settings (the bootstrap / automation path), which are never scoped.
    """

    role: str
    subject: str
    user_id: int | None = None
    dealer_id: int | None = None
    store_id: int | None = None
    warehouse_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def event_source(self) -> str:
        """How lifecycle events done by this caller name who did them (role and subject)."""
        return f"api:{self.role}/{self.subject}"[:80]

    @property
    def scope(self) -> str | None:
        """The record this caller is limited to, as text (``dealer:7``), or None."""
        for name in ("dealer_id", "store_id", "warehouse_id"):
            value = getattr(self, name)
            if value is not None:
                return f"{name.removesuffix('_id')}:{value}"
        return None

    def sees_dealer(self, dealer_id: int | None) -> bool:
        """Whether records of dealer ``dealer_id`` are visible to this caller: a dealer
        user sees only its own dealer's; roles without a dealer scope see all."""
        if self.role == "dealer":
            return dealer_id is not None and dealer_id == self.dealer_id
        return True

    def sees_store(self, store_id: int | None) -> bool:
        if self.role == "store":
            return store_id is not None and store_id == self.store_id
        return True

    def sees_warehouse(self, warehouse_id: int | None) -> bool:
        if self.role == "warehouse" and self.warehouse_id is not None:
            return warehouse_id is not None and warehouse_id == self.warehouse_id
        return True


def check_scope(
    role: str,
    dealer_id: int | None = None,
    store_id: int | None = None,
    warehouse_id: int | None = None,
) -> None:
    """Refuse a role/scope combination that cannot work. Raises ScopeError."""
    if role not in ROLES:
        raise ScopeError(f"Unknown role {role!r}: expected one of {', '.join(ROLES)}")
    given = {
        name
        for name, value in (
            ("dealer_id", dealer_id),
            ("store_id", store_id),
            ("warehouse_id", warehouse_id),
        )
        if value is not None
    }
    needed = SCOPE_REQUIRED.get(role)
    if needed is not None and needed not in given:
        raise ScopeError(f"Role {role!r} needs a {needed.removesuffix('_id')}: got none")
    extra = given - SCOPE_ALLOWED[role]
    if extra:
        names = ", ".join(sorted(n.removesuffix("_id") for n in extra))
        raise ScopeError(f"Role {role!r} cannot be scoped to a {names}")
