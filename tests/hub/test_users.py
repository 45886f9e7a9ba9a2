"""Users, login tokens and the request principal: passwords, lockout, scopes, static tokens."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from hub.cli import main as cli_main
from hub.domain.access import Principal, ScopeError, check_scope
from hub.models import AuditEntry, LoginToken, User
from hub.timeutil import utcnow

PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def add_user(hub: Any, username: str, role: str, **scope: Any) -> dict[str, Any]:
    body = {"username": username, "password": PASSWORD, "role": role, **scope}
    return dict(await hub.api("POST", "/api/v1/users", body, status=201))


async def login(hub: Any, username: str, password: str = PASSWORD, status: int = 200) -> Any:
    return await hub.api(
        "POST",
        "/api/v1/login",
        {"username": username, "password": password},
        status=status,
        headers={},
    )


# The pure scope rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "scope", "message"),
    [
        ("dealer", {}, "Role 'dealer' needs a dealer: got none"),
        ("store", {"dealer_id": 3}, "Role 'store' needs a store: got none"),
        ("admin", {"dealer_id": 3}, "Role 'admin' cannot be scoped to a dealer"),
        ("warehouse", {"store_id": 1}, "Role 'warehouse' cannot be scoped to a store"),
        ("dealer", {"dealer_id": 1, "store_id": 2}, "Role 'dealer' cannot be scoped to a store"),
        ("boss", {}, "Unknown role 'boss': expected one of admin, operator, warehouse, dealer,"),
    ],
)
def test_scope_rules_refuse(role: str, scope: dict[str, int], message: str) -> None:
    with pytest.raises(ScopeError) as caught:
        check_scope(role, **scope)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        ("admin", {}),
        ("operator", {}),
        ("inspector", {}),
        ("warehouse", {}),
        ("warehouse", {"warehouse_id": 2}),
        ("dealer", {"dealer_id": 1}),
        ("store", {"store_id": 5}),
    ],
)
def test_scope_rules_accept(role: str, scope: dict[str, int]) -> None:
    check_scope(role, **scope)


def test_a_dealer_sees_only_its_own_dealer() -> None:
    dealer = Principal(role="dealer", subject="user:d", user_id=1, dealer_id=7)
    assert dealer.sees_dealer(7)
    assert not dealer.sees_dealer(8)
    assert not dealer.sees_dealer(None)
    assert dealer.scope == "dealer:7"
    inspector = Principal(role="inspector", subject="user:i", user_id=2)
    assert inspector.sees_dealer(8) and inspector.sees_dealer(None)
    clerk = Principal(role="store", subject="user:s", user_id=3, store_id=4)
    assert clerk.sees_store(4) and not clerk.sees_store(5)
    assert Principal(role="warehouse", subject="t").sees_warehouse(9)
    assert not Principal(role="warehouse", subject="u", warehouse_id=1).sees_warehouse(9)


# Login ------------------------------------------------------------------------------------


async def test_login_gives_a_token_that_names_the_user_and_its_scope(hub: Any) -> None:
    await hub.add_dealer("D1")
    await add_user(hub, "dora", "dealer", dealer="D1")
    answer = await login(hub, "dora")
    me = await hub.api("GET", "/api/v1/me", headers=bearer(answer["token"]))
    dealer_id = me["dealer_id"]
    assert isinstance(dealer_id, int)
    assert me == answer["me"]
    assert me == {
        "subject": "user:dora",
        "role": "dealer",
        "user_id": me["user_id"],
        "dealer_id": dealer_id,
        "store_id": None,
        "warehouse_id": None,
    }
    # Only the token's hash is stored, and the password is stored as argon2id.
    stored = await hub.scalar(select(LoginToken.token_hash))
    assert stored != answer["token"] and len(stored) == 64
    assert (await hub.scalar(select(User.password_hash))).startswith("$argon2id$")
    # The dealer user may not call admin endpoints.
    await hub.api("GET", "/api/v1/users", status=403, headers=bearer(answer["token"]))


async def test_wrong_password_and_unknown_user_get_the_same_401_and_are_audited(
    sqlite_hub: Any,
) -> None:
    hub = sqlite_hub
    await add_user(hub, "olga", "operator")
    wrong = await login(hub, "olga", "not the password", status=401)
    unknown = await login(hub, "nobody", PASSWORD, status=401)
    assert wrong == unknown == {"error": "Wrong user name or password"}
    await login(hub, "olga")
    rows = await hub.rows(
        select(AuditEntry.actor, AuditEntry.action, AuditEntry.outcome, AuditEntry.client)
        .where(AuditEntry.action == "login")
        .order_by(AuditEntry.id)
    )
    assert [tuple(r[:3]) for r in rows] == [
        ("user:olga", "login", "refused"),
        ("user:nobody", "login", "refused"),
        ("user:olga", "login", "ok"),
    ]
    assert all(r[3] == "127.0.0.1" for r in rows)
    details = await hub.rows(select(AuditEntry.details, AuditEntry.target))
    assert PASSWORD not in repr(details)


async def test_too_many_wrong_passwords_lock_the_user(sqlite_hub: Any) -> None:
    hub = sqlite_hub
    await add_user(hub, "wang", "warehouse")
    for _ in range(hub.settings.login_max_failures):
        await login(hub, "wang", "guess guess guess", status=401)
    response = await hub.client.post(
        "/api/v1/login", json={"username": "wang", "password": PASSWORD}
    )
    assert response.status == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "locked" in (await response.json())["error"]
    # The lock ends; the right password then works and resets the count.
    async with hub.sessions() as session, session.begin():
        await session.execute(update(User).values(locked_until=utcnow() - timedelta(seconds=1)))
    await login(hub, "wang")
    assert await hub.scalar(select(User.failed_logins)) == 0


async def test_logout_disable_and_expiry_end_a_token(sqlite_hub: Any) -> None:
    hub = sqlite_hub
    await add_user(hub, "ina", "inspector")
    first = (await login(hub, "ina"))["token"]
    second = (await login(hub, "ina"))["token"]
    third = (await login(hub, "ina"))["token"]
    out = await hub.api("POST", "/api/v1/logout", headers=bearer(first))
    assert out == {"revoked": True}
    await hub.api("GET", "/api/v1/me", status=401, headers=bearer(first))
    await hub.api("GET", "/api/v1/me", headers=bearer(second))
    # An expired token is refused.
    async with hub.sessions() as session, session.begin():
        await session.execute(
            update(LoginToken)
            .where(LoginToken.revoked_at.is_(None))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    await hub.api("GET", "/api/v1/me", status=401, headers=bearer(second))
    # Disabling a user ends every token and refuses new logins.
    fresh = (await login(hub, "ina"))["token"]
    await hub.api("PATCH", "/api/v1/users/ina", {"active": False})
    await hub.api("GET", "/api/v1/me", status=401, headers=bearer(fresh))
    await login(hub, "ina", status=401)
    del third


async def test_static_tokens_still_work_and_are_unscoped(sqlite_hub: Any) -> None:
    hub = sqlite_hub
    me = await hub.api("GET", "/api/v1/me")
    assert me["role"] == "admin" and me["user_id"] is None
    assert me["subject"].startswith("token:") and "admin-token" not in me["subject"]
    out = await hub.api("POST", "/api/v1/logout")
    assert out == {"revoked": False}
    await hub.api("GET", "/api/v1/me")
    await hub.api("GET", "/api/v1/me", status=401, headers=bearer("no-such-token"))


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"role": "dealer"}, 422, "Role 'dealer' needs a dealer: got none"),
        ({"role": "dealer", "dealer": "NOPE"}, 404, "Unknown dealer 'NOPE'"),
        ({"role": "admin", "dealer": "D1"}, 422, "Role 'admin' cannot be scoped to a dealer"),
        ({"role": "store"}, 422, "Role 'store' needs a store: got none"),
        ({"role": "operator", "password": "short"}, 422, "body.password: String should have"),
        ({"role": "root"}, 422, "body.role: Input should be"),
        ({"role": "operator", "username": " spaced"}, 422, "Invalid user name ' spaced'"),
    ],
)
async def test_bad_users_are_refused_with_a_reason(
    sqlite_hub: Any, body: dict[str, Any], status: int, message: str
) -> None:
    hub = sqlite_hub
    await hub.add_dealer("D1")
    full = {"username": "u1", "password": PASSWORD, **body}
    answer = await hub.api("POST", "/api/v1/users", full, status=status)
    assert answer["error"].startswith(message), answer
    assert await hub.count(User) == 0


async def test_a_taken_name_is_a_conflict_and_changes_end_tokens(sqlite_hub: Any) -> None:
    hub = sqlite_hub
    await hub.add_dealer("D1")
    await hub.add_dealer("D2")
    await add_user(hub, "dan", "dealer", dealer="D1")
    await hub.api(
        "POST",
        "/api/v1/users",
        {"username": "dan", "password": PASSWORD, "role": "operator"},
        status=409,
    )
    token = (await login(hub, "dan"))["token"]
    changed = await hub.api("PATCH", "/api/v1/users/dan", {"scope": {"dealer": "D2"}})
    assert changed["dealer"] == "D2" and changed["role"] == "dealer"
    await hub.api("GET", "/api/v1/me", status=401, headers=bearer(token))
    await hub.api("PATCH", "/api/v1/users/dan", {"role": "operator"}, status=422)
    await hub.api("PATCH", "/api/v1/users/dan", {"role": "operator", "scope": {}})
    await hub.api("PATCH", "/api/v1/users/ghost", {"active": True}, status=404)
    listed = await hub.api("GET", "/api/v1/users")
    assert [(u["username"], u["role"], u["dealer"]) for u in listed["users"]] == [
        ("dan", "operator", None)
    ]


def test_cli_users_add_list_passwd(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--database-url", database_url]
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli_main(["users", "add", "root", "--role", "admin", *common]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli_main(["users", "add", "shorty", "--role", "admin", *common]) == 2
    assert "Password of 5 characters: expected 10-256" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli_main(["users", "add", "dd", "--role", "dealer", *common]) == 2
    assert "Role 'dealer' needs a dealer: got none" in capsys.readouterr().err
    assert cli_main(["users", "disable", "root", *common]) == 0
    assert cli_main(["users", "list", *common]) == 0
    out = capsys.readouterr().out
    assert "root\tadmin, disabled\tlast login never" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("another long secret\n"))
    assert cli_main(["users", "passwd", "root", *common]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("another long secret\n"))
    assert cli_main(["users", "passwd", "ghost", *common]) == 2
    assert "Unknown user 'ghost'" in capsys.readouterr().err
