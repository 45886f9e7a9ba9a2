"""EPCIS 2.0 events, their identifiers, capture jobs

Revision ID: 0006_epcis
Revises: 0005_pda
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_epcis"
down_revision: str | None = "0005_pda"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "epcis_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column(
            "event_id",
            sa.String(length=512),
            nullable=False,
            comment="eventID as captured, or the content hash",
        ),
        sa.Column("hub_event_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("biz_step", sa.String(length=200), nullable=True),
        sa.Column(
            "digest",
            sa.String(length=64),
            nullable=False,
            comment="SHA-256 of the event's contents",
        ),
        sa.Column("capture_id", sa.String(length=36), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_epcis_events_event_id")),
        sa.UniqueConstraint("hub_event_id", name=op.f("uq_epcis_events_hub_event_id")),
    )
    op.create_index("ix_epcis_events_event_time", "epcis_events", ["event_time", "id"])
    op.create_table(
        "epcis_event_epcs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("event", BigId, nullable=False),
        sa.Column(
            "role",
            sa.String(length=8),
            nullable=False,
            comment="epc, parent, child, input, output",
        ),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.ForeignKeyConstraint(
            ["event"], ["epcis_events.id"], name=op.f("fk_epcis_event_epcs_event_epcis_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_event_epcs")),
    )
    op.create_index("ix_epcis_event_epcs_key", "epcis_event_epcs", ["key"])
    op.create_index("ix_epcis_event_epcs_gtin", "epcis_event_epcs", ["gtin"])
    op.create_index("ix_epcis_event_epcs_event", "epcis_event_epcs", ["event"])
    op.create_table(
        "epcis_captures",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column(
            "error_behaviour",
            sa.String(length=8),
            nullable=False,
            comment="rollback | proceed",
        ),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_captures")),
    )


def downgrade() -> None:
    op.drop_table("epcis_captures")
    op.drop_index("ix_epcis_event_epcs_event", table_name="epcis_event_epcs")
    op.drop_index("ix_epcis_event_epcs_gtin", table_name="epcis_event_epcs")
    op.drop_index("ix_epcis_event_epcs_key", table_name="epcis_event_epcs")
    op.drop_table("epcis_event_epcs")
    op.drop_index("ix_epcis_events_event_time", table_name="epcis_events")
    op.drop_table("epcis_events")
