"""Users, passwords and login tokens: the service behind ``/api/v1/login`` and
``yima-hub users``.

Passwords are hashed with argon2id (argon2-cffi's defaults, PHC strings that carry their
own parameters, rehashed on login when the defaults grow). A login token is 256 random bits
handed out once; the database keeps only its SHA-256, so a leaked backup holds no usable
token.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain.access import Principal, ScopeError, check_scope
from hub.errors import ConflictError, InvalidRequestError, NotFoundError, RateLimitedError
from hub.models import Dealer, LoginToken, User
from hub.timeutil import as_utc, utcnow

MIN_PASSWORD = 10
MAX_PASSWORD = 256
_hasher = PasswordHasher()
# Verified against when the user does not exist, so that an unknown name costs the same time
# as a wrong password and the answer time does not tell which names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class LoginRefused(InvalidRequestError):
    """Wrong user name or password, or a disabled user: one message for all of them."""


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _hasher.hash(password)


def check_password_rules(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidRequestError(
            f"Password of {len(password)} characters: expected {MIN_PASSWORD}-{MAX_PASSWORD}"
        )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def principal_of(user: User) -> Principal:
    return Principal(
        role=user.role,
        subject=f"user:{user.username}",
        user_id=user.id,
        dealer_id=user.dealer_id,
        store_id=user.store_id,
        warehouse_id=user.warehouse_id,
    )


@dataclass(frozen=True)
class UserView:
    username: str
    role: str
    dealer: str | None
    store_id: int | None
    warehouse_id: int | None
    active: bool
    created_at: datetime
    last_login_at: datetime | None


async def _view(session: AsyncSession, user: User) -> UserView:
    dealer = await session.get(Dealer, user.dealer_id) if user.dealer_id is not None else None
    return UserView(
        username=user.username,
        role=user.role,
        dealer=dealer.code if dealer else None,
        store_id=user.store_id,
        warehouse_id=user.warehouse_id,
        active=user.active,
        created_at=as_utc(user.created_at) or user.created_at,
        last_login_at=as_utc(user.last_login_at),
    )


async def _dealer_id(session: AsyncSession, dealer_code: str | None) -> int | None:
    if dealer_code is None:
        return None
    dealer_id = await session.scalar(select(Dealer.id).where(Dealer.code == dealer_code))
    if dealer_id is None:
        raise NotFoundError(f"Unknown dealer {dealer_code!r}")
    return dealer_id


def _check_username(username: str) -> None:
    if not 1 <= len(username) <= 64 or not username.isprintable() or username != username.strip():
        raise InvalidRequestError(
            f"Invalid user name {username[:80]!r}: expected 1-64 printable characters, "
            "no surrounding spaces"
        )


async def create_user(
    session: AsyncSession,
    username: str,
    password: str,
    role: str,
    *,
    dealer: str | None = None,
    store_id: int | None = None,
    warehouse_id: int | None = None,
) -> UserView:
    """Add a user (caller commits). Raises ConflictError for a taken name."""
    _check_username(username)
    dealer_id = await _dealer_id(session, dealer)
    try:
        check_scope(role, dealer_id, store_id, warehouse_id)
    except ScopeError as exc:
        raise InvalidRequestError(str(exc)) from None
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ConflictError(f"User {username!r} already exists")
    user = User(
        username=username,
        password_hash=await asyncio.to_thread(hash_password, password),
        role=role,
        dealer_id=dealer_id,
        store_id=store_id,
        warehouse_id=warehouse_id,
        active=True,
        failed_logins=0,
        created_at=utcnow(),
    )
    session.add(user)
    await session.flush()
    return await _view(session, user)


async def user_by_name(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"Unknown user {username[:80]!r}")
    return user


async def update_user(
    session: AsyncSession,
    username: str,
    *,
    password: str | None = None,
    role: str | None = None,
    dealer: str | None = None,
    store_id: int | None = None,
    warehouse_id: int | None = None,
    active: bool | None = None,
    rescope: bool = False,
) -> UserView:
    """Change a user (caller commits). With ``rescope`` the scope fields replace the old
    ones (None clears them); a new password, a disabled user or a new role or scope ends
    every login token of the user."""
    user = await user_by_name(session, username)
    new_role = role or user.role
    if rescope or role is not None:
        dealer_id = await _dealer_id(session, dealer) if rescope else user.dealer_id
        store = store_id if rescope else user.store_id
        warehouse = warehouse_id if rescope else user.warehouse_id
        try:
            check_scope(new_role, dealer_id, store, warehouse)
        except ScopeError as exc:
            raise InvalidRequestError(str(exc)) from None
        user.role, user.dealer_id, user.store_id, user.warehouse_id = (
            new_role,
            dealer_id,
            store,
            warehouse,
        )
    if password is not None:
        user.password_hash = await asyncio.to_thread(hash_password, password)
        user.failed_logins = 0
        user.locked_until = None
    if active is not None:
        user.active = active
    if password is not None or active is False or rescope or role is not None:
        await revoke_tokens(session, user.id)
    await session.flush()
    return await _view(session, user)


async def list_users(session: AsyncSession) -> list[UserView]:
    users = (await session.scalars(select(User).order_by(User.username))).all()
    return [await _view(session, user) for user in users]


async def revoke_tokens(session: AsyncSession, user_id: int) -> int:
    result = await session.execute(
        update(LoginToken)
        .where(LoginToken.user_id == user_id, LoginToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Login:
    token: str
    expires_at: datetime
    principal: Principal


async def login(
    session: AsyncSession,
    username: str,
    password: str,
    *,
    token_hours: float,
    max_failures: int,
    lock_minutes: float,
) -> Login:
    """Check a password and hand out a new token (caller commits, also on refusal: the
    failure count must stick). Raises LoginRefused or RateLimitedError (locked)."""
    now = utcnow()
    user = await session.scalar(select(User).where(User.username == username[:64]))
    if user is None:
        await _verify_off_loop(_DUMMY_HASH, password)
        raise LoginRefused("Wrong user name or password")
    locked_until = as_utc(user.locked_until)
    if locked_until is not None and locked_until > now:
        wait = int((locked_until - now).total_seconds()) + 1
        raise RateLimitedError(
            f"Too many wrong passwords: user locked, try again in {wait} s", retry_after=wait
        )
    if not await _verify_off_loop(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            user.failed_logins = 0
            user.locked_until = now + timedelta(minutes=lock_minutes)
        raise LoginRefused("Wrong user name or password")
    if not user.active:
        raise LoginRefused("Wrong user name or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=token_hours)
    session.add(
        LoginToken(
            token_hash=token_hash(token), user_id=user.id, created_at=now, expires_at=expires_at
        )
    )
    await session.flush()
    return Login(token=token, expires_at=expires_at, principal=principal_of(user))


async def _verify_off_loop(hashed: str, password: str) -> bool:
    """argon2 costs tens of milliseconds of CPU and memory by design: run it in a thread so
    a login never stalls the other requests of the event loop."""
    return await asyncio.to_thread(_verify, hashed, password)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


async def principal_for_login_token(session: AsyncSession, token: str) -> Principal | None:
    """The user a login token names, if the token is live and the user active."""
    if len(token) > 200:
        return None
    row = (
        await session.execute(
            select(User, LoginToken.expires_at)
            .join(LoginToken, LoginToken.user_id == User.id)
            .where(LoginToken.token_hash == token_hash(token), LoginToken.revoked_at.is_(None))
        )
    ).first()
    if row is None:
        return None
    user, expires_at = row
    if not user.active or (as_utc(expires_at) or expires_at) <= utcnow():
        return None
    return principal_of(user)


async def logout(session: AsyncSession, token: str) -> bool:
    result = await session.execute(
        update(LoginToken)
        .where(LoginToken.token_hash == token_hash(token), LoginToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))
