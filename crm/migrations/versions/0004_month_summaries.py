"""month summaries: rep_month_stats and rep_month_customers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 18:00:00

Written by hand. rep_month_stats is rep_day_stats summed per rep and calendar month (the
leaderboard of a quarter reads 600 rows instead of 18,000); rep_month_customers holds, per rep
and month, the customers with live orders and their order counts as packed uint32 arrays (the
distinct-customer loyalty figures read it instead of a pass over the orders). The backfill is
frozen code (not imported from crm), by the same rules as crm.summaries, which keeps both exact
from then on; `python -m crm summaries rebuild` recomputes them.
"""

from __future__ import annotations

import sys
from array import array
from datetime import date
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COUNTS = (
    "interactions", "visits", "calls", "orders", "responses", "csat_sum", "csat_good", "recommend_n",
    "promoters", "detractors", "quality_sum", "quality_n", "service_sum", "service_n", "price_sum",
    "price_n", "after_sales_sum", "after_sales_n", "won", "lost", "complaints_resolved",
    "complaints_on_time",
)
MEASURES = (*COUNTS[:4], "revenue", *COUNTS[4:20], "won_amount", *COUNTS[20:], "resolution_seconds")
BATCH_ROWS = 1_000
UINT32_BYTES = 4


def _tallies() -> list[sa.Column]:
    return [
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS[:4]),
        sa.Column("revenue", sa.Numeric(precision=16, scale=2), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS[4:20]),
        sa.Column("won_amount", sa.Numeric(precision=16, scale=2), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS[20:]),
        sa.Column("resolution_seconds", sa.BigInteger(), nullable=False),
    ]


def _month(column: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"date({column}, 'start of month')"
    return f"CAST(date_trunc('month', {column}) AS DATE)"


def _packed(values: list[int]) -> bytes:
    """Pack values as little-endian uint32 (what crm.summaries reads)."""
    packed = array("I", values)
    if packed.itemsize != UINT32_BYTES:
        raise RuntimeError("this platform has no 4-byte unsigned int array")
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "rep_month_stats",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("rep_id", sa.Integer(), nullable=False),
        *_tallies(),
        sa.PrimaryKeyConstraint("month", "rep_id", name=op.f("pk_rep_month_stats")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "rep_month_customers",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("rep_id", sa.Integer(), nullable=False),
        sa.Column("customer_ids", sa.LargeBinary(), nullable=False),
        sa.Column("order_counts", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("month", "rep_id", name=op.f("pk_rep_month_customers")),
        sqlite_with_rowid=False,
    )
    month = _month("day", dialect)
    totals = ", ".join(f"sum({m})" for m in MEASURES)
    op.execute(
        f"INSERT INTO rep_month_stats (month, rep_id, {', '.join(MEASURES)}) "
        f"SELECT {month}, rep_id, {totals} FROM rep_day_stats GROUP BY {month}, rep_id"
    )
    _backfill_customers(dialect)


def _backfill_customers(dialect: str) -> None:
    bind = op.get_bind()
    month = _month("ordered_on", dialect)
    rows = bind.execute(
        sa.text(
            f"SELECT rep_id, {month} AS month, customer_id, count(*) AS n FROM orders "
            f"WHERE deleted_at IS NULL GROUP BY rep_id, {month}, customer_id ORDER BY rep_id, month, customer_id"
        )
    ).all()
    table = sa.table(
        "rep_month_customers",
        sa.column("month", sa.Date()),
        sa.column("rep_id", sa.Integer()),
        sa.column("customer_ids", sa.LargeBinary()),
        sa.column("order_counts", sa.LargeBinary()),
    )
    batch: list[dict[str, Any]] = []
    for (rep_id, first), group in groupby(rows, key=lambda row: (row[0], row[1])):
        members = list(group)
        batch.append(
            {
                "month": first if isinstance(first, date) else date.fromisoformat(str(first)[:10]),
                "rep_id": int(rep_id),
                "customer_ids": _packed([int(row[2]) for row in members]),
                "order_counts": _packed([int(row[3]) for row in members]),
            }
        )
        if len(batch) >= BATCH_ROWS:
            bind.execute(sa.insert(table), batch)
            batch = []
    if batch:
        bind.execute(sa.insert(table), batch)


def downgrade() -> None:
    op.drop_table("rep_month_customers")
    op.drop_table("rep_month_stats")
