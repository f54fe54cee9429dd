"""The benchmark's two ways of computing the overview agree (on seeded data, both engines)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm import bench
from crm.access import Actor
from crm.models import Role, User
from crm.periods import Period
from crm.seed import seed

AS_OF = date(2026, 11, 1)
QUARTERS = [Period.quarter(2026, 2), Period.quarter(2026, 3), Period.month(2026, 9)]


@pytest.fixture
def context(engine: Engine, database_url: str) -> bench.BenchContext:
    seed(engine, scale="tiny", seed=7, password="a tiny bench password", as_of=AS_OF)
    with Session(engine) as session:
        admin = session.scalar(select(User).where(User.role == Role.ADMIN.value).limit(1))
        rep = session.scalar(select(User).where(User.role == Role.REP.value).limit(1))
        assert admin is not None and rep is not None
        return bench.BenchContext(
            engine=engine,
            url=database_url,
            period=QUARTERS[0],
            as_of=AS_OF,
            admin=Actor.from_user(admin),
            rep=Actor.from_user(rep),
        )


@pytest.mark.parametrize("period", QUARTERS, ids=lambda p: p.label())
def test_naive_pandas_figures_equal_the_fast_ones(context: bench.BenchContext, period: Period) -> None:
    ctx = bench.BenchContext(**{**context.__dict__, "period": period})
    naive = bench.naive_figures(ctx.engine, period)
    fast = bench.fast_figures(ctx)
    assert naive["orders"] and naive["active_customers"], "the seeded period must have orders to compare"
    equal, differences = bench.figures_equal(naive, fast)
    assert equal, differences


def test_figures_equal_reports_a_difference() -> None:
    equal, differences = bench.figures_equal({"orders": 3, "nps": 10.0}, {"orders": 4, "nps": 10.0})
    assert not equal and len(differences) == 1 and "orders" in differences[0]


def test_percentile_and_median() -> None:
    samples = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert bench.median_ms(samples) == 3.0
    assert bench.percentile(samples, 0.95) == 5.0
    assert bench.percentile(samples, 0.5) == 3.0
