"""edge: code pools, station broker credentials and current work order

Revision ID: 0007_edge
Revises: 0006_epcis
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_edge"
down_revision: str | None = "0006_epcis"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "code_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column(
            "line",
            sa.String(length=64),
            nullable=False,
            comment="production line (stations.line)",
        ),
        sa.Column("work_order", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["code_batches.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("code_pools_batch", "code_pools", ["batch_id", "first_seq"], unique=False)
    with op.batch_alter_table("stations") as batch:
        batch.add_column(
            sa.Column(
                "mqtt_password_hash",
                sa.String(length=200),
                nullable=True,
                comment="broker password (mosquitto $7$ hash); None: no credentials issued",
            )
        )
        batch.add_column(
            sa.Column(
                "work_order",
                sa.JSON(),
                nullable=True,
                comment="the work order last sent; every command carries it",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.drop_column("work_order")
        batch.drop_column("mqtt_password_hash")
    op.drop_index("code_pools_batch", table_name="code_pools")
    op.drop_table("code_pools")
