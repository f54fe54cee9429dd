"""Migrations 0004 and 0005 on a database that already holds data: the backfill is exact."""

from __future__ import annotations

from datetime import date

from alembic import command
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session

from crm import db, summaries
from crm.models import RepMonthCustomers, RepMonthStat
from crm.seed import seed

BEFORE_MONTH_SUMMARIES = "0003"


def test_month_summaries_are_backfilled_from_existing_data(engine: Engine, database_url: str) -> None:
    seed(engine, scale="tiny", seed=11, password="a tiny migration password", as_of=date(2026, 11, 1))
    config = db.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, BEFORE_MONTH_SUMMARIES)
    assert not inspect(engine).has_table("rep_month_customers")

    db.migrate(engine)

    with Session(engine) as session:
        assert summaries.verify(session) == []
        months = session.scalar(select(func.count()).select_from(RepMonthStat)) or 0
        customer_months = session.scalar(select(func.count()).select_from(RepMonthCustomers)) or 0
    assert months > 0 and customer_months > 0
    indexes = {index["name"] for index in inspect(engine).get_indexes("interactions")}
    assert "ix_interactions_rep_time_cover" in indexes and "ix_interactions_rep_time" not in indexes
