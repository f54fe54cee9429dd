"""Satisfaction KPIs from survey responses (SPEC §5): CSAT, CSAT %, dimension means, NPS.

Every figure is built from the same additive tallies (sums and counts aggregated in SQL), so a
month, a rep, a tier or a whole period are the same query with a different GROUP BY, and the
headline of a period and of its previous period plus the monthly trend come from one query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from crm.access import Actor, Filters
from crm.kpi import daily
from crm.kpi.common import (
    DEFAULT_LIMIT,
    Compared,
    as_date,
    as_filters,
    as_int,
    bucket,
    count_if,
    month_slots,
    rate,
    rounded,
    span,
    survey_scope,
    within,
    within_any,
)
from crm.kpi.daily import use_summaries
from crm.models import Customer, SurveyResponse, Tier, User
from crm.periods import Period
from crm.summaries import DETRACTOR_MAX, PROMOTER_MIN, SATISFIED_MIN

# SATISFIED_MIN (overall >= 4), PROMOTER_MIN (recommend 9–10) and DETRACTOR_MAX (0–6) live with
# the summaries, which store the tallies they define.
NPS_SCALE = 100
SCORE_DECIMALS = 2
DIMENSIONS = ("quality", "service", "price", "after_sales")


@dataclass(frozen=True)
class Satisfaction:
    """Satisfaction of one scope and period; scores are means 1–5, csat_pct a fraction, nps −100…100."""

    responses: int
    csat_score: float | None
    csat_pct: float | None
    nps: float | None
    recommend_responses: int
    promoters: int
    detractors: int
    quality: float | None
    service: float | None
    price: float | None
    after_sales: float | None


@dataclass(frozen=True)
class _Tally:
    """Additive sums and counts from which every satisfaction figure follows."""

    responses: int = 0
    overall_sum: int = 0
    satisfied: int = 0
    recommend_responses: int = 0
    promoters: int = 0
    detractors: int = 0
    quality_sum: int = 0
    quality_n: int = 0
    service_sum: int = 0
    service_n: int = 0
    price_sum: int = 0
    price_n: int = 0
    after_sales_sum: int = 0
    after_sales_n: int = 0

    def __add__(self, other: _Tally) -> _Tally:
        return _Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @classmethod
    def from_row(cls, row: Any) -> _Tally:
        return cls(*(as_int(getattr(row, f.name)) for f in fields(cls)))

    @classmethod
    def from_daily(cls, t: daily.Tally) -> _Tally:
        """Take the survey tallies of a rep_day_stats sum."""
        return cls(
            responses=t.responses,
            overall_sum=t.csat_sum,
            satisfied=t.csat_good,
            recommend_responses=t.recommend_n,
            promoters=t.promoters,
            detractors=t.detractors,
            quality_sum=t.quality_sum,
            quality_n=t.quality_n,
            service_sum=t.service_sum,
            service_n=t.service_n,
            price_sum=t.price_sum,
            price_n=t.price_n,
            after_sales_sum=t.after_sales_sum,
            after_sales_n=t.after_sales_n,
        )

    def figures(self) -> Satisfaction:
        def mean(total: int, n: int) -> float | None:
            return rounded(rate(total, n), SCORE_DECIMALS)

        share = rate(self.promoters - self.detractors, self.recommend_responses)
        return Satisfaction(
            responses=self.responses,
            csat_score=mean(self.overall_sum, self.responses),
            csat_pct=rate(self.satisfied, self.responses),
            nps=None if share is None else NPS_SCALE * share,
            recommend_responses=self.recommend_responses,
            promoters=self.promoters,
            detractors=self.detractors,
            quality=mean(self.quality_sum, self.quality_n),
            service=mean(self.service_sum, self.service_n),
            price=mean(self.price_sum, self.price_n),
            after_sales=mean(self.after_sales_sum, self.after_sales_n),
        )


def _tally_columns() -> list[ColumnElement[Any]]:
    s = SurveyResponse
    columns: list[ColumnElement[Any]] = [
        func.count().label("responses"),
        func.sum(s.overall).label("overall_sum"),
        func.sum(count_if(s.overall >= SATISFIED_MIN)).label("satisfied"),
        func.count(s.recommend).label("recommend_responses"),
        func.sum(count_if(s.recommend >= PROMOTER_MIN)).label("promoters"),
        func.sum(count_if(s.recommend <= DETRACTOR_MAX)).label("detractors"),
    ]
    for name in DIMENSIONS:
        column = getattr(s, name)
        # SUM and COUNT of a column both skip NULLs: missing dimension scores are ignored.
        columns += [func.sum(column).label(f"{name}_sum"), func.count(column).label(f"{name}_n")]
    return columns


def satisfaction_by_period_and_month(
    session: Session, *, actor: Actor, periods: Sequence[Period], filters: Filters | None = None
) -> tuple[list[Satisfaction], list[pd.DataFrame]]:
    """Return each period's satisfaction and its monthly trend, from one query."""
    filters = as_filters(filters)
    if use_summaries(filters):
        days = daily.by_day(session, actor=actor, filters=filters, span=span(periods))
        return satisfaction_from_days(days, periods)
    s = SurveyResponse
    slots = month_slots(periods)
    slot = bucket(s.responded_on, [slot.window for slot in slots]).label("slot")
    query = (
        select(slot, *_tally_columns())
        .where(survey_scope(actor, filters), within_any(s.responded_on, periods))
        .group_by(slot)
    )
    tallies: dict[tuple[int, date], _Tally] = {}
    for row in session.execute(query):
        if row.slot is not None:
            chosen = slots[row.slot]
            tallies[(chosen.period_index, chosen.month)] = _Tally.from_row(row)
    summaries = []
    trends = []
    for index, period in enumerate(periods):
        total = sum((t for (i, _), t in tallies.items() if i == index), _Tally())
        summaries.append(total.figures())
        trends.append(_trend_frame(period, {m: t for (i, m), t in tallies.items() if i == index}))
    return summaries, trends


def satisfaction_from_days(
    days: Mapping[date, daily.Tally], periods: Sequence[Period]
) -> tuple[list[Satisfaction], list[pd.DataFrame]]:
    """Return each period's satisfaction and its monthly trend from rep_day_stats day tallies."""
    summaries = []
    trends = []
    for period in periods:
        months = {month: _Tally.from_daily(t) for month, t in daily.fold_months(days, period).items()}
        summaries.append(sum(months.values(), _Tally()).figures())
        trends.append(_trend_frame(period, months))
    return summaries, trends


TREND_COLUMNS = ["month", "responses", "csat", "csat_pct", "nps", *DIMENSIONS]
NPS_TREND_COLUMNS = ["month", "recommend_responses", "promoters", "detractors", "nps"]


def _trend_frame(period: Period, by_month: dict[date, _Tally]) -> pd.DataFrame:
    months = period.months()
    figures = [by_month.get(first_day, _Tally()).figures() for first_day in months]
    # Built column by column: a frame from a list of row dicts costs several times more.
    columns: dict[str, Any] = {
        "month": months,
        "responses": [f.responses for f in figures],
        "csat": _floats(f.csat_score for f in figures),
        "csat_pct": _floats(f.csat_pct for f in figures),
        "nps": _floats(f.nps for f in figures),
        **{name: _floats(getattr(f, name) for f in figures) for name in DIMENSIONS},
        "recommend_responses": [f.recommend_responses for f in figures],
        "promoters": [f.promoters for f in figures],
        "detractors": [f.detractors for f in figures],
    }
    return pd.DataFrame(columns, columns=list(dict.fromkeys(TREND_COLUMNS + NPS_TREND_COLUMNS)))


def _floats(values: Iterable[float | None]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Return the values as float64, None as NaN."""
    return np.array([np.nan if value is None else value for value in values], dtype=np.float64)


def satisfaction_summary(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None
) -> Satisfaction:
    """Return CSAT score, CSAT %, NPS and dimension means of the responses in the period."""
    summaries, _ = satisfaction_by_period_and_month(session, actor=actor, periods=[period], filters=filters)
    return summaries[0]


def satisfaction_compared(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None
) -> Compared[Satisfaction]:
    """Return the satisfaction of the period and of its previous period (one query)."""
    summaries, _ = satisfaction_by_period_and_month(
        session, actor=actor, periods=[period, period.previous()], filters=filters
    )
    return Compared(current=summaries[0], previous=summaries[1])


def csat_trend(session: Session, *, actor: Actor, period: Period, filters: Filters | None = None) -> pd.DataFrame:
    """Return one row per calendar month the period touches (only responses in the period count).

    Columns: month (date, first day), responses, csat (mean overall), csat_pct (fraction), nps,
    quality, service, price, after_sales (means), recommend_responses, promoters, detractors.
    Months without responses have responses 0 and NaN figures.
    """
    _, trends = satisfaction_by_period_and_month(session, actor=actor, periods=[period], filters=filters)
    return trends[0]


def nps_trend(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the NPS columns of a csat_trend frame: month, recommend_responses, promoters, detractors, nps."""
    return frame[NPS_TREND_COLUMNS].copy()


def _figure_columns(figures: Satisfaction) -> dict[str, Any]:
    return {
        "responses": figures.responses,
        "csat": figures.csat_score,
        "csat_pct": figures.csat_pct,
        "nps": figures.nps,
        **{name: getattr(figures, name) for name in DIMENSIONS},
    }


GROUP_COLUMNS = ["responses", "csat", "csat_pct", "nps", *DIMENSIONS]


def satisfaction_by_rep(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None
) -> pd.DataFrame:
    """Return satisfaction per rep on the responses, best CSAT first.

    Columns: rep_id, rep_name, responses, csat, csat_pct, nps, quality, service, price, after_sales.
    """
    filters = as_filters(filters)
    if use_summaries(filters):
        tallies = {
            rep_id: _Tally.from_daily(t)
            for rep_id, t in daily.by_rep(session, period=period, actor=actor, filters=filters).items()
            if t.responses
        }
        names = daily.rep_names(session, sorted(tallies))
        rows = [
            {"rep_id": rep_id, "rep_name": names[rep_id], **_figure_columns(t.figures())}
            for rep_id, t in tallies.items()
            if rep_id in names
        ]
    else:
        s = SurveyResponse
        per_rep = (
            select(s.rep_id, *_tally_columns())
            .where(survey_scope(actor, filters), within(s.responded_on, period))
            .group_by(s.rep_id)
            .subquery()
        )
        query = select(per_rep, User.display_name.label("rep_name")).join(User, User.id == per_rep.c.rep_id)
        rows = [
            {"rep_id": row.rep_id, "rep_name": row.rep_name, **_figure_columns(_Tally.from_row(row).figures())}
            for row in session.execute(query)
        ]
    frame = pd.DataFrame(rows, columns=["rep_id", "rep_name", *GROUP_COLUMNS])
    for column in GROUP_COLUMNS[1:]:
        frame[column] = frame[column].astype("float64")
    return frame.sort_values(["csat", "rep_name"], ascending=[False, True], na_position="last").reset_index(drop=True)


def satisfaction_by_tier(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None
) -> pd.DataFrame:
    """Return satisfaction per current customer tier, in pyramid order (lead → strategic).

    Columns: tier, responses, csat, csat_pct, nps, quality, service, price, after_sales; every tier
    has a row (responses 0 and NaN figures when it has none).
    """
    filters = as_filters(filters)
    s = SurveyResponse
    query = (
        select(Customer.tier, *_tally_columns())
        .join(Customer, Customer.id == s.customer_id)
        .where(survey_scope(actor, filters), within(s.responded_on, period))
        .group_by(Customer.tier)
    )
    tallies = {row.tier: _Tally.from_row(row) for row in session.execute(query)}
    rows = [
        {"tier": tier.value, **_figure_columns(tallies.get(tier.value, _Tally()).figures())}
        for tier in Tier
        if not filters.tier or filters.tier == tier.value
    ]
    frame = pd.DataFrame(rows, columns=["tier", *GROUP_COLUMNS])
    for column in GROUP_COLUMNS[1:]:
        frame[column] = frame[column].astype("float64")
    return frame


def lowest_scoring_customers(
    session: Session,
    *,
    actor: Actor,
    period: Period,
    filters: Filters | None = None,
    limit: int = DEFAULT_LIMIT,
) -> pd.DataFrame:
    """Return the customers with the lowest mean overall score in the period ("who needs attention").

    Columns: customer_id, customer_code, customer_name, tier, responses, csat (mean overall,
    2 decimals), last_responded_on. Ordered by csat ascending, then more responses first.
    """
    filters = as_filters(filters)
    s = SurveyResponse
    per_customer = (
        select(
            s.customer_id,
            func.count().label("responses"),
            func.avg(s.overall).label("csat"),
            func.max(s.responded_on).label("last_responded_on"),
        )
        .where(survey_scope(actor, filters), within(s.responded_on, period))
        .group_by(s.customer_id)
        .subquery()
    )
    query = (
        select(
            per_customer.c.customer_id,
            Customer.code.label("customer_code"),
            Customer.name.label("customer_name"),
            Customer.tier,
            per_customer.c.responses,
            per_customer.c.csat,
            per_customer.c.last_responded_on,
        )
        .join(Customer, Customer.id == per_customer.c.customer_id)
        .order_by(per_customer.c.csat, per_customer.c.responses.desc(), per_customer.c.customer_id)
        .limit(limit)
    )
    rows = [
        {
            "customer_id": row.customer_id,
            "customer_code": row.customer_code,
            "customer_name": row.customer_name,
            "tier": row.tier,
            "responses": row.responses,
            "csat": round(float(row.csat), SCORE_DECIMALS),
            "last_responded_on": as_date(row.last_responded_on),
        }
        for row in session.execute(query)
    ]
    return pd.DataFrame(
        rows,
        columns=["customer_id", "customer_code", "customer_name", "tier", "responses", "csat", "last_responded_on"],
    )
