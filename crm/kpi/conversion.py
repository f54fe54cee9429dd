"""Conversion KPIs (SPEC §5): win rate, lead conversion, funnel, visit conversion.

Stages are data: whether a stage means won, lost or still open comes from
`pipeline_stages.kind`, and funnel steps are the configured open stages (by position) followed
by the won stage(s). Opportunities count for their owner; those without a customer count too,
except under a tier filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from crm.access import Actor, Filters
from crm.kpi import daily
from crm.kpi.common import (
    Compared,
    as_filters,
    as_int,
    as_money,
    bucket,
    count_if,
    interaction_scope,
    opportunity_scope,
    rate,
    rep_in_scope,
    span,
    stage_keys,
    within,
    within_any,
)
from crm.kpi.daily import use_summaries
from crm.kpi.sqlfuncs import add_days, date_of
from crm.models import Customer, Interaction, InteractionKind, Opportunity, Order, PipelineStage, StageKind, User
from crm.periods import Period

VISIT_CONVERSION_DAYS = 30  # an order or won deal this many days after a visit converts it


@dataclass(frozen=True)
class WinLoss:
    """Opportunities closed in the period; win_rate = won / (won + lost), None when none closed."""

    won: int
    lost: int
    win_rate: float | None
    won_amount: float


@dataclass(frozen=True)
class LeadConversion:
    """Customers created in the period and how many had an order or won deal by its end."""

    created: int
    converted: int
    rate: float | None


def win_loss_by_period(
    session: Session, *, actor: Actor, periods: Sequence[Period], filters: Filters | None = None
) -> list[WinLoss]:
    """Return won, lost and win rate of each period (closed_on in it), from one query."""
    filters = as_filters(filters)
    if use_summaries(filters):
        days = daily.by_day(session, actor=actor, filters=filters, span=span(periods))
        return [win_loss_from_tally(daily.fold(days, period)) for period in periods]
    o, stage = Opportunity, PipelineStage
    which = bucket(o.closed_on, periods).label("which")
    is_won = stage.kind == StageKind.WON.value
    query = (
        select(
            which,
            func.sum(count_if(is_won)).label("won"),
            func.sum(count_if(stage.kind == StageKind.LOST.value)).label("lost"),
            func.sum(case((is_won, o.amount), else_=0)).label("won_amount"),
        )
        .join(stage, stage.key == o.stage)
        .where(
            opportunity_scope(actor, filters),
            within_any(o.closed_on, periods),
            stage.kind.in_([StageKind.WON.value, StageKind.LOST.value]),
        )
        .group_by(which)
    )
    rows = {row.which: row for row in session.execute(query)}
    out = []
    for index in range(len(periods)):
        row = rows.get(index)
        won = as_int(row.won) if row else 0
        lost = as_int(row.lost) if row else 0
        out.append(
            WinLoss(
                won=won,
                lost=lost,
                win_rate=rate(won, won + lost),
                won_amount=as_money(row.won_amount) if row else 0.0,
            )
        )
    return out


def win_loss_from_tally(t: daily.Tally) -> WinLoss:
    """Return the win/loss figures of a rep_day_stats sum."""
    return WinLoss(won=t.won, lost=t.lost, win_rate=rate(t.won, t.won + t.lost), won_amount=as_money(t.won_amount))


def win_loss(session: Session, *, actor: Actor, period: Period, filters: Filters | None = None) -> WinLoss:
    """Return won, lost and win rate of the opportunities closed in the period."""
    return win_loss_by_period(session, actor=actor, periods=[period], filters=filters)[0]


def win_loss_compared(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None
) -> Compared[WinLoss]:
    """Return win/loss of the period and of its previous period (one query)."""
    now, before = win_loss_by_period(session, actor=actor, periods=[period, period.previous()], filters=filters)
    return Compared(current=now, previous=before)


def lead_conversion_by_period(
    session: Session, *, actor: Actor, periods: Sequence[Period], filters: Filters | None = None
) -> list[LeadConversion]:
    """Return the lead conversion of each period, from one query.

    Customers count by their owner (in the rep scope; an unfiltered admin also counts unowned
    ones). A customer created in the period converted when it has a live order dated, or a live
    opportunity won (stage kind won) with closed_on, before the period's end — by any rep; the
    earliest of each is kept in customers.first_order_on / first_won_on by crm.summaries.
    """
    filters = as_filters(filters)
    c = Customer
    columns: list[ColumnElement[Any]] = []
    for index, period in enumerate(periods):
        created = within(c.created_at, period, timestamps=True)
        converted = or_(c.first_order_on < period.end, c.first_won_on < period.end)
        columns += [
            func.sum(count_if(created)).label(f"created{index}"),
            func.sum(count_if(and_(created, converted))).label(f"converted{index}"),
        ]
    clauses = [
        c.deleted_at.is_(None),
        rep_in_scope(c.owner_id, actor=actor, filters=filters),
        within_any(c.created_at, periods, timestamps=True),
    ]
    if filters.tier:
        clauses.append(c.tier == filters.tier)
    row = session.execute(select(*columns).where(*clauses)).one()._mapping
    out = []
    for index in range(len(periods)):
        created_n, converted_n = as_int(row[f"created{index}"]), as_int(row[f"converted{index}"])
        out.append(LeadConversion(created=created_n, converted=converted_n, rate=rate(converted_n, created_n)))
    return out


def lead_conversion(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None
) -> LeadConversion:
    """Return the share of customers created in the period that bought or won a deal by its end."""
    return lead_conversion_by_period(session, actor=actor, periods=[period], filters=filters)[0]


def lead_conversion_compared(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None
) -> Compared[LeadConversion]:
    """Return the lead conversion of the period and of its previous period (one query)."""
    now, before = lead_conversion_by_period(session, actor=actor, periods=[period, period.previous()], filters=filters)
    return Compared(current=now, previous=before)


FUNNEL_COLUMNS = ["stage", "position", "kind", "opportunities", "step_conversion", "from_start"]


def funnel(session: Session, *, actor: Actor, period: Period, filters: Filters | None = None) -> pd.DataFrame:
    """Return the funnel of the opportunities created in the period (a cohort), by stage reached.

    Steps are the open stages by position, then the won stage(s). An opportunity reached:
    the first open stage always; every open stage up to its current one while open; every open
    stage when won (and the won stage it is in); the second open stage ("engaging" by default)
    and those before it when engaged_on is set — the only trace a lost deal leaves of how far
    it got. Columns: stage, position, kind, opportunities, step_conversion (share of the previous
    step, NaN for the first), from_start (share of the first step).
    """
    filters = as_filters(filters)
    o = Opportunity
    engaged = o.engaged_on.is_not(None)
    # The cohort boils down to counts per (current stage, engaged or not): a handful of rows.
    cohort = session.execute(
        select(o.stage, engaged.label("engaged"), func.count().label("opportunities"))
        .where(opportunity_scope(actor, filters), within(o.created_on, period))
        .group_by(o.stage, engaged)
    ).all()
    stages = session.execute(
        select(PipelineStage.key, PipelineStage.position, PipelineStage.kind).order_by(
            PipelineStage.position, PipelineStage.key
        )
    ).all()
    current = {stage.key: stage for stage in stages}
    open_positions = sorted(stage.position for stage in stages if stage.kind == StageKind.OPEN.value)
    first_open = open_positions[0] if open_positions else None
    engaging = open_positions[1] if len(open_positions) > 1 else first_open

    def reached(step: Any, stage_key: str, is_engaged: bool) -> bool:
        here = current[stage_key]
        if step.kind == StageKind.WON.value:
            return bool(stage_key == step.key)
        return bool(
            here.kind == StageKind.WON.value
            or (here.kind == StageKind.OPEN.value and here.position >= step.position)
            or (first_open is not None and step.position <= first_open)
            or (is_engaged and engaging is not None and step.position <= engaging)
        )

    rows = []
    first: int | None = None
    previous: int | None = None
    for step in stages:
        if step.kind == StageKind.LOST.value:
            continue
        count = sum(int(row.opportunities) for row in cohort if reached(step, row.stage, bool(row.engaged)))
        first = count if first is None else first
        rows.append(
            {
                "stage": step.key,
                "position": step.position,
                "kind": step.kind,
                "opportunities": count,
                "step_conversion": None if previous is None else rate(count, previous),
                "from_start": rate(count, first),
            }
        )
        previous = count
    frame = pd.DataFrame(rows, columns=FUNNEL_COLUMNS)
    frame["step_conversion"] = frame["step_conversion"].astype("float64")
    frame["from_start"] = frame["from_start"].astype("float64")
    return frame


def win_rate_by_rep(session: Session, *, actor: Actor, period: Period, filters: Filters | None = None) -> pd.DataFrame:
    """Return won, lost and win rate per opportunity owner for deals closed in the period.

    Columns: rep_id, rep_name, won, lost, win_rate, won_amount; best win rate first.
    """
    filters = as_filters(filters)
    if use_summaries(filters):
        return _win_rate_by_rep_from_summaries(session, actor=actor, period=period, filters=filters)
    o, stage = Opportunity, PipelineStage
    is_won = stage.kind == StageKind.WON.value
    per_rep = (
        select(
            o.owner_id.label("rep_id"),
            func.sum(count_if(is_won)).label("won"),
            func.sum(count_if(stage.kind == StageKind.LOST.value)).label("lost"),
            func.sum(case((is_won, o.amount), else_=0)).label("won_amount"),
        )
        .join(stage, stage.key == o.stage)
        .where(
            opportunity_scope(actor, filters),
            within(o.closed_on, period),
            stage.kind.in_([StageKind.WON.value, StageKind.LOST.value]),
        )
        .group_by(o.owner_id)
        .subquery()
    )
    query = select(per_rep, User.display_name.label("rep_name")).join(User, User.id == per_rep.c.rep_id)
    rows = [
        {
            "rep_id": row.rep_id,
            "rep_name": row.rep_name,
            "won": as_int(row.won),
            "lost": as_int(row.lost),
            "win_rate": rate(as_int(row.won), as_int(row.won) + as_int(row.lost)),
            "won_amount": as_money(row.won_amount),
        }
        for row in session.execute(query)
    ]
    frame = pd.DataFrame(rows, columns=["rep_id", "rep_name", "won", "lost", "win_rate", "won_amount"])
    return frame.sort_values(["win_rate", "rep_name"], ascending=[False, True]).reset_index(drop=True)


def _win_rate_by_rep_from_summaries(
    session: Session, *, actor: Actor, period: Period, filters: Filters
) -> pd.DataFrame:
    tallies = {
        rep_id: t
        for rep_id, t in daily.by_rep(session, period=period, actor=actor, filters=filters).items()
        if t.won or t.lost
    }
    names = daily.rep_names(session, sorted(tallies))
    rows = [
        {"rep_id": rep_id, "rep_name": names[rep_id], **asdict(win_loss_from_tally(t))}
        for rep_id, t in tallies.items()
        if rep_id in names
    ]
    frame = pd.DataFrame(rows, columns=["rep_id", "rep_name", "won", "lost", "win_rate", "won_amount"])
    return frame.sort_values(["win_rate", "rep_name"], ascending=[False, True]).reset_index(drop=True)


def visit_conversion_by_rep(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None
) -> pd.DataFrame:
    """Return per rep the visits in the period and how many were followed by a sale within 30 days.

    A visit converted when the same customer has a live order dated, or a live won opportunity
    closed, on the visit's day or up to 30 days after it (by any rep).
    Columns: rep_id, rep_name, visits, converted, rate; best rate first.
    """
    filters = as_filters(filters)
    i = Interaction
    visit_day = date_of(i.occurred_at)
    last_day = add_days(visit_day, VISIT_CONVERSION_DAYS)
    order_follows = (
        select(Order.id)
        .where(
            Order.customer_id == i.customer_id,
            Order.deleted_at.is_(None),
            Order.ordered_on >= visit_day,
            Order.ordered_on <= last_day,
        )
        .exists()
    )
    won_follows = (
        select(Opportunity.id)
        .where(
            Opportunity.customer_id == i.customer_id,
            Opportunity.deleted_at.is_(None),
            Opportunity.stage.in_(stage_keys(StageKind.WON)),
            Opportunity.closed_on >= visit_day,
            Opportunity.closed_on <= last_day,
        )
        .exists()
    )
    per_rep = (
        select(
            i.rep_id,
            func.count().label("visits"),
            func.sum(count_if(or_(order_follows, won_follows))).label("converted"),
        )
        .where(
            interaction_scope(actor, filters),
            i.kind == InteractionKind.VISIT.value,
            within(i.occurred_at, period, timestamps=True),
        )
        .group_by(i.rep_id)
        .subquery()
    )
    query = select(per_rep, User.display_name.label("rep_name")).join(User, User.id == per_rep.c.rep_id)
    rows = [
        {
            "rep_id": row.rep_id,
            "rep_name": row.rep_name,
            "visits": int(row.visits),
            "converted": as_int(row.converted),
            "rate": rate(as_int(row.converted), int(row.visits)),
        }
        for row in session.execute(query)
    ]
    frame = pd.DataFrame(rows, columns=["rep_id", "rep_name", "visits", "converted", "rate"])
    return frame.sort_values(["rate", "rep_name"], ascending=[False, True]).reset_index(drop=True)
