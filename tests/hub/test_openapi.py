"""The OpenAPI document describes every endpoint, and schemathesis, driving a real hub
process from it with valid and invalid requests, finds no server error (bounded run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from hub.web.api import ENDPOINTS
from simulators.hubproc import RunningHub, start_hub

EXAMPLES = 30


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("openapi")


@pytest.fixture(scope="module")
def running_hub(workdir: Path) -> Iterator[RunningHub]:
    # A small cap on codes per job: random valid requests must not queue 20,000,000 codes.
    with start_hub(workdir, env={"YIMA_HUB_MAX_JOB_CODES": "1000"}) as hub:
        yield hub


async def test_every_route_is_in_the_document(sqlite_hub: Any) -> None:
    document = await sqlite_hub.api("GET", "/api/openapi.json", headers={})
    assert document["openapi"] == "3.1.0"
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    routed = {
        (route.method, route.resource.canonical)
        for route in sqlite_hub.app.router.routes()
        if route.resource is not None
    }
    assert documented == routed
    assert {(e.method, e.path) for e in sqlite_hub.app[ENDPOINTS]} == routed
    shipments = document["paths"]["/api/v1/shipments"]["post"]
    assert shipments["security"] == [{"bearer": []}]
    assert set(shipments["responses"]) >= {"200", "401", "403", "422"}
    body = shipments["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ShipmentIn"}
    assert document["components"]["schemas"]["ShipmentIn"]["additionalProperties"] is False


async def test_the_docs_page_lists_the_endpoints(sqlite_hub: Any) -> None:
    page = await sqlite_hub.api("GET", "/api/docs", headers={})
    assert "/api/v1/shipments" in page
    assert "<h2>consumer</h2>" in page


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error(running_hub: RunningHub, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{running_hub.url}/api/openapi.json")
    auth = {"Authorization": f"Bearer {running_hub.token}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            response = case.call(base_url=running_hub.url, headers=auth, timeout=30)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:200]}"
                )

        try:
            check()
        except Unsatisfiable:
            # No input to get wrong (GET /healthz has no parameters): nothing negative to send.
            assert mode is GenerationMode.NEGATIVE
    assert failures == []


def test_hub_log_has_no_unhandled_error(running_hub: RunningHub, workdir: Path) -> None:
    log = (workdir / "hub.log").read_text(encoding="utf-8", errors="replace")
    assert "unhandled error" not in log
