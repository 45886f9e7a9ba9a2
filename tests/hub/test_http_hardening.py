"""Requests an attacker or a broken client sends get a clear 4xx, never a 500, and every
response carries the security headers."""

from __future__ import annotations

from typing import Any

import pytest

from hub.web.middleware import SECURITY_HEADERS

ADMIN = {"Authorization": "Bearer admin-token"}


@pytest.mark.parametrize(
    ("headers", "data", "status", "error"),
    [
        (
            {"Content-Type": "application/json; charset=foobar"},
            b'{"sku": "A", "name": "B"}',
            415,
            "Request body charset 'foobar': expected utf-8",
        ),
        (
            {"Content-Type": "application/json"},
            b"[" * 100_000,
            400,
            "body: Invalid JSON: recursion limit exceeded at line 1 column 202",
        ),
        (
            {"Content-Type": "application/json"},
            b'{"sku": "TEA", "count": ' + b"9" * 5000 + b"}",
            400,
            "body: Invalid JSON: number out of range at line 1 column 4326",
        ),
        (
            {"Content-Type": "text/plain"},
            b'{"sku": "A", "name": "B"}',
            415,
            "Request body of type 'text/plain': expected application/json",
        ),
        (
            {"Content-Type": "application/json"},
            b'{"sku": "A", "name": "' + b"x" * 300 + b'"}',
            422,
            "body.name: String should have at most 200 characters",
        ),
    ],
)
async def test_bad_bodies_are_4xx(
    sqlite_hub: Any, headers: dict[str, str], data: bytes, status: int, error: str
) -> None:
    path = "/api/v1/batches" if b"count" in data else "/api/v1/products"
    response = await sqlite_hub.client.post(path, data=data, headers={**ADMIN, **headers})
    assert (response.status, await response.json()) == (status, {"error": error})


async def test_a_four_megabyte_product_name_is_refused(sqlite_hub: Any) -> None:
    body = {"sku": "BIG", "name": "名" * 1_300_000}
    response = await sqlite_hub.client.post("/api/v1/products", json=body, headers=ADMIN)
    assert response.status == 413
    body = {"sku": "BIG", "name": "名" * 5000}
    response = await sqlite_hub.client.post("/api/v1/products", json=body, headers=ADMIN)
    assert response.status == 422


@pytest.mark.parametrize(
    "path", ["/api/v1/batches/99999999999999999999999", "/api/v1/batches/-1/export"]
)
async def test_ids_that_cannot_exist_are_404(sqlite_hub: Any, path: str) -> None:
    response = await sqlite_hub.client.get(path, headers=ADMIN)
    assert response.status == 404
    assert (await response.json())["error"].startswith("Not found: no record has batch_id ")


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/healthz", {}),
        ("GET", "/c/hello", {}),
        ("GET", "/nowhere", {}),
        ("GET", "/api/v1/info", {}),  # 401
        ("GET", "/api/v1/info", ADMIN),
        ("POST", "/api/v1/products", ADMIN),  # 400
        ("DELETE", "/healthz", {}),  # 405
    ],
)
async def test_every_response_has_the_security_headers(
    sqlite_hub: Any, method: str, path: str, headers: dict[str, str]
) -> None:
    response = await sqlite_hub.client.request(method, path, headers=headers, data=b"{")
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status)
    assert response.headers["Server"] == "yima"  # no version banner


async def test_unknown_token_is_401_even_on_public_pages(sqlite_hub: Any) -> None:
    response = await sqlite_hub.client.get("/api/v1/info", headers={"Authorization": "Bearer nope"})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
