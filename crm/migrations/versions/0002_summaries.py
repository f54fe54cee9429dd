"""summary tables: rep_day_stats, day_stats, customers.first_order_on / first_won_on, indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 16:00:00

Written by hand. The backfill below is frozen SQL (not imported from crm): it fills the summaries
of a database that already holds data; from then on crm.summaries keeps them exact on every
write, and `python -m crm summaries rebuild` recomputes them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COUNTS = (
    "interactions", "visits", "calls", "orders", "responses", "csat_sum", "csat_good", "recommend_n",
    "promoters", "detractors", "quality_sum", "quality_n", "service_sum", "service_n", "price_sum",
    "price_n", "after_sales_sum", "after_sales_n", "won", "lost", "complaints_resolved",
    "complaints_on_time",
)
LIVE = sa.text("deleted_at IS NULL")
DELETED = sa.text("deleted_at IS NOT NULL")
SEARCH_COLUMNS = ("name_key", "code", "phone")


def _tallies() -> list[sa.Column]:
    return [
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS[:4]),
        sa.Column("revenue", sa.Numeric(precision=16, scale=2), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS[4:20]),
        sa.Column("won_amount", sa.Numeric(precision=16, scale=2), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS[20:]),
        sa.Column("resolution_seconds", sa.BigInteger(), nullable=False),
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    # Rows clustered by day on SQLite: a period's rows for all reps are read in one sweep.
    op.create_table(
        "rep_day_stats",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rep_id", sa.Integer(), nullable=False),
        *_tallies(),
        sa.PrimaryKeyConstraint("day", "rep_id", name=op.f("pk_rep_day_stats")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_rep_day_stats_rep_day", "rep_day_stats", ["rep_id", "day"])
    op.create_table(
        "day_stats",
        sa.Column("day", sa.Date(), nullable=False),
        *_tallies(),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_day_stats")),
    )

    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("first_order_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("first_won_on", sa.Date(), nullable=True))
    op.create_index("ix_customers_first_order", "customers", ["first_order_on", "owner_id"])
    op.create_index(
        "ix_customers_live_created", "customers",
        ["created_at", "owner_id", "first_order_on", "first_won_on", "deleted_at"],
        sqlite_where=LIVE, postgresql_where=LIVE,
    )
    # Partial indexes end with deleted_at: SQLite counts an index as covering only if it holds
    # every column the query names, the partial index's own WHERE included.
    op.create_index(
        "ix_customers_deleted_ids", "customers", ["id", "deleted_at"], sqlite_where=DELETED, postgresql_where=DELETED
    )
    for name in SEARCH_COLUMNS:
        if dialect == "postgresql":
            op.create_index(
                f"ix_customers_{name}_pattern", "customers", [name], postgresql_ops={name: "varchar_pattern_ops"}
            )
        elif dialect == "sqlite":
            op.create_index(f"ix_customers_{name}_nocase", "customers", [sa.text(f"{name} COLLATE NOCASE")])

    op.create_index(
        "ix_orders_live_date", "orders", ["ordered_on", "customer_id", "rep_id", "amount", "deleted_at"],
        sqlite_where=LIVE, postgresql_where=LIVE,
    )
    op.create_index(
        "ix_interactions_live_time", "interactions", ["occurred_at", "kind", "rep_id", "customer_id", "deleted_at"],
        sqlite_where=LIVE, postgresql_where=LIVE,
    )
    op.create_index(
        "ix_opportunities_live_created", "opportunities",
        ["created_on", "owner_id", "stage", "engaged_on", "customer_id", "deleted_at"],
        sqlite_where=LIVE, postgresql_where=LIVE,
    )
    _backfill(dialect)


def _backfill(dialect: str) -> None:
    """Fill the summaries from the rows already there (the same rules as crm.summaries)."""
    if dialect == "sqlite":
        def day(column: str) -> str:
            return f"date({column})"
        seconds = "CAST(round((julianday(resolved_at) - julianday(opened_at)) * 86400) AS INTEGER)"
    else:
        def day(column: str) -> str:
            return f"CAST({column} AS DATE)"
        seconds = "CAST(round(EXTRACT(EPOCH FROM (resolved_at - opened_at))) AS BIGINT)"
    measures = [*COUNTS[:4], "revenue", *COUNTS[4:20], "won_amount", *COUNTS[20:], "resolution_seconds"]
    dead = "(SELECT id FROM customers WHERE deleted_at IS NOT NULL)"

    def part(rep: str, day_sql: str, table: str, where: str, given: dict[str, str], join: str = "") -> str:
        values = ", ".join(f"{given.get(m, '0')} AS {m}" for m in measures)
        return (
            f"SELECT {day_sql} AS day, {rep} AS rep_id, {values} FROM {table} {join} "
            f"WHERE {table}.deleted_at IS NULL AND {where} GROUP BY {rep}, {day_sql}"
        )

    survey = {
        "responses": "count(*)", "csat_sum": "sum(overall)",
        "csat_good": "sum(CASE WHEN overall >= 4 THEN 1 ELSE 0 END)", "recommend_n": "count(recommend)",
        "promoters": "sum(CASE WHEN recommend >= 9 THEN 1 ELSE 0 END)",
        "detractors": "sum(CASE WHEN recommend <= 6 THEN 1 ELSE 0 END)",
    }
    for name in ("quality", "service", "price", "after_sales"):
        survey[f"{name}_sum"] = f"coalesce(sum({name}), 0)"
        survey[f"{name}_n"] = f"count({name})"
    parts = [
        part("rep_id", day("occurred_at"), "interactions", f"customer_id NOT IN {dead}", {
            "interactions": "count(*)",
            "visits": "sum(CASE WHEN kind = 'visit' THEN 1 ELSE 0 END)",
            "calls": "sum(CASE WHEN kind = 'call' THEN 1 ELSE 0 END)",
        }),
        part("rep_id", "ordered_on", "orders", f"customer_id NOT IN {dead}",
             {"orders": "count(*)", "revenue": "sum(amount)"}),
        part("rep_id", "responded_on", "survey_responses", f"customer_id NOT IN {dead}", survey),
        part(
            "owner_id", "closed_on", "opportunities",
            f"closed_on IS NOT NULL AND s.kind IN ('won', 'lost') "
            f"AND (customer_id IS NULL OR customer_id NOT IN {dead})",
            {
                "won": "sum(CASE WHEN s.kind = 'won' THEN 1 ELSE 0 END)",
                "lost": "sum(CASE WHEN s.kind = 'lost' THEN 1 ELSE 0 END)",
                "won_amount": "coalesce(sum(CASE WHEN s.kind = 'won' THEN amount END), 0)",
            },
            join="JOIN pipeline_stages s ON s.key = opportunities.stage",
        ),
        part("assignee_id", day("resolved_at"), "complaints",
             f"resolved_at IS NOT NULL AND customer_id NOT IN {dead}", {
                 "complaints_resolved": "count(*)",
                 "complaints_on_time": "sum(CASE WHEN resolved_at <= due_at THEN 1 ELSE 0 END)",
                 "resolution_seconds": f"sum({seconds})",
             }),
    ]
    totals = ", ".join(f"sum({m})" for m in measures)
    op.execute(
        f"INSERT INTO rep_day_stats (day, rep_id, {', '.join(measures)}) "
        f"SELECT day, rep_id, {totals} FROM ({' UNION ALL '.join(parts)}) AS parts GROUP BY day, rep_id"
    )
    op.execute(
        f"INSERT INTO day_stats (day, {', '.join(measures)}) "
        f"SELECT day, {totals} FROM rep_day_stats GROUP BY day"
    )
    op.execute(
        "UPDATE customers SET "
        "first_order_on = (SELECT min(o.ordered_on) FROM orders o "
        "WHERE o.customer_id = customers.id AND o.deleted_at IS NULL), "
        "first_won_on = (SELECT min(w.closed_on) FROM opportunities w JOIN pipeline_stages s ON s.key = w.stage "
        "WHERE w.customer_id = customers.id AND w.deleted_at IS NULL AND w.closed_on IS NOT NULL "
        "AND s.kind = 'won')"
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_opportunities_live_created", table_name="opportunities")
    op.drop_index("ix_interactions_live_time", table_name="interactions")
    op.drop_index("ix_orders_live_date", table_name="orders")
    for name in SEARCH_COLUMNS:
        suffix = "pattern" if dialect == "postgresql" else "nocase"
        if dialect in {"postgresql", "sqlite"}:
            op.drop_index(f"ix_customers_{name}_{suffix}", table_name="customers")
    op.drop_index("ix_customers_deleted_ids", table_name="customers")
    op.drop_index("ix_customers_live_created", table_name="customers")
    op.drop_index("ix_customers_first_order", table_name="customers")
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("first_won_on")
        batch_op.drop_column("first_order_on")
    op.drop_table("day_stats")
    op.drop_index("ix_rep_day_stats_rep_day", table_name="rep_day_stats")
    op.drop_table("rep_day_stats")
