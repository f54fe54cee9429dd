"""covering indexes for the per rep and day summary refresh of interactions and orders

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 18:10:00

Written by hand. Every save recomputes its rep's day from the records (crm.summaries); with
(rep, time) indexes that hold every column the recompute reads, it never touches the wide table
rows, so a save costs the same on a rep's busiest day. The new indexes start with the old ones'
columns, which they replace.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_interactions_rep_time_cover", "interactions", ["rep_id", "occurred_at", "kind", "customer_id", "deleted_at"]
    )
    op.drop_index("ix_interactions_rep_time", table_name="interactions")
    op.create_index("ix_orders_rep_date_cover", "orders", ["rep_id", "ordered_on", "customer_id", "amount", "deleted_at"])
    op.drop_index("ix_orders_rep_date", table_name="orders")


def downgrade() -> None:
    op.create_index("ix_orders_rep_date", "orders", ["rep_id", "ordered_on"])
    op.drop_index("ix_orders_rep_date_cover", table_name="orders")
    op.create_index("ix_interactions_rep_time", "interactions", ["rep_id", "occurred_at"])
    op.drop_index("ix_interactions_rep_time_cover", table_name="interactions")
