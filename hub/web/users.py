"""Users and their sessions: login, logout, who am I; user administration; the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field

from hub import audit, metrics, users
from hub.domain.access import ROLES, Role
from hub.errors import RateLimitedError
from hub.web.api import Api, Body, Out, Params
from hub.web.keys import PRINCIPAL, SESSIONS, SETTINGS

api = Api("users", "Users, login tokens, roles and the audit log.")

Username = Field(min_length=1, max_length=64, description="Login name")
Password = Field(
    min_length=users.MIN_PASSWORD, max_length=users.MAX_PASSWORD, description="Password"
)
ScopeId = Field(None, ge=1, le=2**31 - 1)


class LoginIn(Body):
    username: str = Username
    password: str = Field(min_length=1, max_length=users.MAX_PASSWORD)


class Me(Out):
    subject: str = Field(description="How the audit log names the caller")
    role: str
    user_id: int | None = Field(description="None for a static token from the settings")
    dealer_id: int | None
    store_id: int | None
    warehouse_id: int | None


class LoginOut(Out):
    token: str = Field(description="Send as 'Authorization: Bearer <token>'")
    expires_at: datetime
    me: Me


def client_of(request: web.Request) -> str | None:
    return request.remote


def me_of(principal: Any) -> Me:
    return Me(
        subject=principal.subject,
        role=principal.role,
        user_id=principal.user_id,
        dealer_id=principal.dealer_id,
        store_id=principal.store_id,
        warehouse_id=principal.warehouse_id,
    )


@api.post("/api/v1/login", roles=(), body=LoginIn, response=LoginOut, errors=(401, 429))
async def login(request: web.Request, body: LoginIn) -> LoginOut:
    """Log in with user name and password; returns a bearer token.

    Wrong name and wrong password get the same answer. After ``login_max_failures`` wrong
    passwords in a row the user is locked for ``login_lock_minutes`` (429). Every attempt is
    in the audit log.
    """
    settings = request.app[SETTINGS]
    async with request.app[SESSIONS]() as session:
        try:
            result = await users.login(
                session,
                body.username,
                body.password,
                token_hours=settings.login_token_hours,
                max_failures=settings.login_max_failures,
                lock_minutes=settings.login_lock_minutes,
            )
        except (users.LoginRefused, RateLimitedError) as exc:
            outcome = "locked" if isinstance(exc, RateLimitedError) else "refused"
            session.add(
                audit.entry(
                    actor=f"user:{body.username}",
                    action="login",
                    outcome=outcome,
                    client=client_of(request),
                )
            )
            await session.commit()  # the failure count and the audit entry stick
            metrics.LOGINS.labels(outcome=outcome).inc()
            raise
        session.add(
            audit.entry(
                actor=result.principal.subject,
                principal=result.principal,
                action="login",
                outcome="ok",
                client=client_of(request),
            )
        )
        await session.commit()
    metrics.LOGINS.labels(outcome="ok").inc()
    return LoginOut(token=result.token, expires_at=result.expires_at, me=me_of(result.principal))


class LogoutOut(Out):
    revoked: bool = Field(description="False for a static token, which cannot be revoked")


@api.post("/api/v1/logout", roles=ROLES, response=LogoutOut)
async def logout(request: web.Request) -> LogoutOut:
    """End the login token this request was made with."""
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    principal = request[PRINCIPAL]
    if principal.user_id is None:
        return LogoutOut(revoked=False)
    async with request.app[SESSIONS]() as session, session.begin():
        revoked = await users.logout(session, token)
    return LogoutOut(revoked=revoked)


@api.get("/api/v1/me", roles=ROLES, response=Me)
async def whoami(request: web.Request) -> Me:
    """The caller: role and scope."""
    return me_of(request[PRINCIPAL])


class UserIn(Body):
    username: str = Username
    password: str = Password
    role: Role
    dealer: str | None = Field(None, max_length=64, description="Dealer code (role dealer)")
    store_id: int | None = ScopeId
    warehouse_id: int | None = ScopeId


class UserOut(Out):
    username: str
    role: str
    dealer: str | None
    store_id: int | None
    warehouse_id: int | None
    active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserList(Out):
    users: list[UserOut]


class UserParams(Params):
    username: str = Username


class UserPatch(Body):
    password: str | None = Field(None, min_length=users.MIN_PASSWORD, max_length=users.MAX_PASSWORD)
    role: Role | None = None
    active: bool | None = None
    scope: ScopeIn | None = Field(None, description="Replaces the user's scope as a whole")


class ScopeIn(Body):
    dealer: str | None = Field(None, max_length=64)
    store_id: int | None = ScopeId
    warehouse_id: int | None = ScopeId


UserPatch.model_rebuild()


def user_out(view: users.UserView) -> UserOut:
    return UserOut.model_validate(view.__dict__)


@api.post("/api/v1/users", body=UserIn, response=UserOut, status=201, errors=(404, 409))
async def add_user(request: web.Request, body: UserIn) -> UserOut:
    """Add a user. A dealer user needs a dealer, a store clerk a store."""
    async with request.app[SESSIONS]() as session, session.begin():
        view = await users.create_user(
            session,
            body.username,
            body.password,
            body.role,
            dealer=body.dealer,
            store_id=body.store_id,
            warehouse_id=body.warehouse_id,
        )
    return user_out(view)


@api.get("/api/v1/users", response=UserList)
async def list_users(request: web.Request) -> UserList:
    """Every user."""
    async with request.app[SESSIONS]() as session:
        views = await users.list_users(session)
    return UserList(users=[user_out(v) for v in views])


@api.patch("/api/v1/users/{username}", params=UserParams, body=UserPatch, response=UserOut)
async def change_user(request: web.Request, params: UserParams, body: UserPatch) -> UserOut:
    """Change a user's password, role, scope or active flag.

    Any such change ends the user's login tokens.
    """
    scope = body.scope
    async with request.app[SESSIONS]() as session, session.begin():
        view = await users.update_user(
            session,
            params.username,
            password=body.password,
            role=body.role,
            active=body.active,
            rescope=scope is not None,
            dealer=scope.dealer if scope else None,
            store_id=scope.store_id if scope else None,
            warehouse_id=scope.warehouse_id if scope else None,
        )
    return user_out(view)


class AuditQuery(Params):
    actor: str | None = Field(None, max_length=80, description="user:<name> or token:<id>")
    action: str | None = Field(None, max_length=120, description="login, or METHOD route")
    since: datetime | None = Field(None, description="Entries at or after this time")
    before: int | None = Field(None, ge=1, le=2**63 - 1, description="Entries older than id")
    limit: int = Field(100, ge=1, le=1000)


class AuditOut(Out):
    id: int
    at: datetime
    actor: str
    role: str | None
    action: str
    target: str | None
    outcome: str
    client: str | None


class AuditPage(Out):
    entries: list[AuditOut]
    next_before: int | None = Field(description="Pass as 'before' for the next (older) page")


@api.get("/api/v1/audit", query=AuditQuery, response=AuditPage)
async def audit_log(request: web.Request, query: AuditQuery) -> AuditPage:
    """The audit log, newest first: every login attempt and back-office change."""
    async with request.app[SESSIONS]() as session:
        rows = await audit.entries(
            session,
            actor=query.actor,
            action=query.action,
            since=query.since,
            limit=query.limit,
            before_id=query.before,
        )
    out = [
        AuditOut(
            id=entry_id,
            at=view.at,
            actor=view.actor,
            role=view.role,
            action=view.action,
            target=view.target,
            outcome=view.outcome,
            client=view.client,
        )
        for entry_id, view in rows
    ]
    next_before = out[-1].id if len(out) == query.limit else None
    return AuditPage(entries=out, next_before=next_before)
