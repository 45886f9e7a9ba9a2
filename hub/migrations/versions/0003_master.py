"""master data and code jobs

Revision ID: 0003_master
Revises: 0003_users
Create Date: 2026-11-25 12:42:23.495950
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_master"
down_revision: str | None = "0003_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
    )
    op.create_table(
        "warehouses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warehouses")),
        sa.UniqueConstraint("code", name=op.f("uq_warehouses_code")),
    )
    op.create_table(
        "dealer_regions",
        sa.Column("dealer_id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.ForeignKeyConstraint(
            ["dealer_id"],
            ["dealers.id"],
            name=op.f("fk_dealer_regions_dealer_id_dealers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dealer_id", "region_code", name=op.f("pk_dealer_regions")),
    )
    op.create_table(
        "lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("lot_no", sa.String(length=64), nullable=False),
        sa.Column("produced_on", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("factory", sa.String(length=100), nullable=True),
        sa.Column("workshop", sa.String(length=100), nullable=True),
        sa.Column("line", sa.String(length=64), nullable=True),
        sa.Column("shift", sa.String(length=32), nullable=True),
        sa.Column("operator", sa.String(length=100), nullable=True),
        sa.Column("inspection_report_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inspection_report_id"],
            ["documents.id"],
            name=op.f("fk_lots_inspection_report_id_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_lots_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lots")),
        sa.UniqueConstraint("product_id", "lot_no", name=op.f("uq_lots_product_id")),
    )
    op.create_table(
        "stores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("dealer_id", sa.Integer(), nullable=True),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dealer_id"], ["dealers.id"], name=op.f("fk_stores_dealer_id_dealers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stores")),
        sa.UniqueConstraint("code", name=op.f("uq_stores_code")),
    )
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stores_dealer_id"), ["dealer_id"], unique=False)

    op.create_table(
        "lot_materials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("material", sa.String(length=200), nullable=False),
        sa.Column("supplier", sa.String(length=200), nullable=False),
        sa.Column("supplier_lot", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["lots.id"], name=op.f("fk_lot_materials_lot_id_lots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lot_materials")),
    )
    with op.batch_alter_table("lot_materials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lot_materials_lot_id"), ["lot_id"], unique=False)
        batch_op.create_index("ix_lot_materials_supplier_lot", ["supplier_lot"], unique=False)

    with op.batch_alter_table("code_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq_prefix", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("seq_start", sa.BigInteger(), server_default="1", nullable=False)
        )
        batch_op.add_column(
            sa.Column("seq_width", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("sscc_prefix", sa.String(length=17), nullable=True))
        batch_op.add_column(sa.Column("sscc_start", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="done", nullable=False)
        )
        batch_op.add_column(
            sa.Column("generated", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("error", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column(
                "owner", sa.String(length=64), nullable=True, comment="process running the job"
            )
        )
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    # Batches made before jobs existed were generated whole, inside their request.
    op.execute("UPDATE code_batches SET generated = count")

    # Plain ADD COLUMN and CREATE INDEX: no copy of a code table of millions of rows.
    op.add_column("codes", sa.Column("sscc", sa.String(length=18), nullable=True))
    op.create_index("ix_codes_sscc", "codes", ["sscc"], unique=True)

    with op.batch_alter_table("dealers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("phone", sa.String(length=32), nullable=True))

    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_en", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("spec", sa.String(length=200), nullable=True, comment="规格, e.g. 500ml x 12")
        )
        batch_op.add_column(sa.Column("image_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("attributes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("attributes")
        batch_op.drop_column("image_url")
        batch_op.drop_column("spec")
        batch_op.drop_column("name_en")

    with op.batch_alter_table("dealers", schema=None) as batch_op:
        batch_op.drop_column("phone")
        batch_op.drop_column("contact")

    op.drop_index("ix_codes_sscc", table_name="codes")
    with op.batch_alter_table("codes", schema=None) as batch_op:
        batch_op.drop_column("sscc")

    with op.batch_alter_table("code_batches", schema=None) as batch_op:
        batch_op.drop_column("finished_at")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("owner")
        batch_op.drop_column("error")
        batch_op.drop_column("generated")
        batch_op.drop_column("status")
        batch_op.drop_column("sscc_start")
        batch_op.drop_column("sscc_prefix")
        batch_op.drop_column("seq_width")
        batch_op.drop_column("seq_start")
        batch_op.drop_column("seq_prefix")

    with op.batch_alter_table("lot_materials", schema=None) as batch_op:
        batch_op.drop_index("ix_lot_materials_supplier_lot")
        batch_op.drop_index(batch_op.f("ix_lot_materials_lot_id"))

    op.drop_table("lot_materials")
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stores_dealer_id"))

    op.drop_table("stores")
    op.drop_table("lots")
    op.drop_table("dealer_regions")
    op.drop_table("warehouses")
    op.drop_table("documents")
