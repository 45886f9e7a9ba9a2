"""The alembic migrations build exactly the schema hub.models describes, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from hub.db import alembic_config, create_engine, upgrade_sync
from hub.models import Base


def run_on(url: str, work: Any) -> Any:
    async def go() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def test_upgrade_head_matches_the_models(database_url: str) -> None:
    upgrade_sync(database_url)
    assert run_on(database_url, schema_diff) == []
    assert run_on(database_url, table_names) == {*Base.metadata.tables, "alembic_version"}


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    upgrade_sync(database_url)
    head = run_on(database_url, current_revision)
    upgrade_sync(database_url)
    assert run_on(database_url, current_revision) == head is not None


def test_downgrade_to_base_and_up_again(database_url: str) -> None:
    upgrade_sync(database_url)
    command.downgrade(alembic_config(database_url), "base")
    assert run_on(database_url, table_names) <= {"alembic_version"}
    assert run_on(database_url, current_revision) is None
    upgrade_sync(database_url)
    assert run_on(database_url, schema_diff) == []
