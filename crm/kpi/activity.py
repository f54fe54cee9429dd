"""Activity KPIs from interactions (SPEC §5): visits and calls, neglected customers, "my day"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from crm.access import Actor, Filters, kpi_rep_ids
from crm.kpi import daily
from crm.kpi.common import (
    DEFAULT_LIMIT,
    Compared,
    as_date,
    as_filters,
    as_int,
    bucket,
    count_if,
    customer_scope,
    interaction_scope,
    span,
    within,
    within_any,
)
from crm.kpi.daily import use_summaries
from crm.kpi.sqlfuncs import member_of, week_start
from crm.models import Customer, Interaction, InteractionKind, RepDayStat, User
from crm.periods import Period

NOT_CONTACTED_DAYS = (30, 60, 90)
FOLLOW_UP_TODAY = "today"
FOLLOW_UP_OVERDUE = "overdue"


@dataclass(frozen=True)
class Activity:
    """Interactions logged in the period by the reps in scope."""

    visits: int
    calls: int
    interactions: int  # every kind


@dataclass(frozen=True)
class NotContacted:
    """Live visible customers by days since their last contact, as of a date (cumulative)."""

    customers: int
    over_30: int  # 30 days or more
    over_60: int
    over_90: int
    as_of: date


def _day_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min)


def activity_by_period(
    session: Session, *, actor: Actor, periods: Sequence[Period], filters: Filters | None = None
) -> list[Activity]:
    """Return visits, calls and all interactions of each period, from one query."""
    filters = as_filters(filters)
    if use_summaries(filters):
        days = daily.by_day(session, actor=actor, filters=filters, span=span(periods))
        totals = [daily.fold(days, period) for period in periods]
        return [Activity(visits=t.visits, calls=t.calls, interactions=t.interactions) for t in totals]
    i = Interaction
    columns: list[ColumnElement[Any]] = []
    for index, period in enumerate(periods):
        inside = within(i.occurred_at, period, timestamps=True)
        columns += [
            func.sum(count_if(and_(inside, i.kind == InteractionKind.VISIT.value))).label(f"visits{index}"),
            func.sum(count_if(and_(inside, i.kind == InteractionKind.CALL.value))).label(f"calls{index}"),
            func.sum(count_if(inside)).label(f"all{index}"),
        ]
    query = select(*columns).where(
        interaction_scope(actor, filters), within_any(i.occurred_at, periods, timestamps=True)
    )
    row = session.execute(query).one()._mapping
    return [
        Activity(
            visits=as_int(row[f"visits{index}"]),
            calls=as_int(row[f"calls{index}"]),
            interactions=as_int(row[f"all{index}"]),
        )
        for index in range(len(periods))
    ]


def visits_by_period(
    session: Session, *, actor: Actor, periods: Sequence[Period], filters: Filters | None = None
) -> list[int]:
    """Return the number of visits in each period (one query)."""
    filters = as_filters(filters)
    if use_summaries(filters):
        return [
            activity.visits for activity in activity_by_period(session, actor=actor, periods=periods, filters=filters)
        ]
    i = Interaction
    which = bucket(i.occurred_at, periods, timestamps=True).label("which")
    query = (
        select(which, func.count().label("visits"))
        .where(
            interaction_scope(actor, filters),
            i.kind == InteractionKind.VISIT.value,
            within_any(i.occurred_at, periods, timestamps=True),
        )
        .group_by(which)
    )
    counts = {row.which: int(row.visits) for row in session.execute(query)}
    return [counts.get(index, 0) for index in range(len(periods))]


def activity_summary(session: Session, *, actor: Actor, period: Period, filters: Filters | None = None) -> Activity:
    """Return the visits, calls and interactions logged in the period."""
    return activity_by_period(session, actor=actor, periods=[period], filters=filters)[0]


def activity_compared(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None
) -> Compared[Activity]:
    """Return the activity of the period and of its previous period (one query)."""
    now, before = activity_by_period(session, actor=actor, periods=[period, period.previous()], filters=filters)
    return Compared(current=now, previous=before)


def visits_calls_by_week(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None
) -> pd.DataFrame:
    """Return visits and calls per rep per ISO week (Monday), counting only days in the period.

    Columns: rep_id, rep_name, week (date of the Monday), visits, calls. Only rep-weeks with at
    least one visit or call have a row; ordered by week, then rep name.
    """
    filters = as_filters(filters)
    if use_summaries(filters):
        return _visits_calls_by_week_from_summaries(session, actor=actor, period=period, filters=filters)
    i = Interaction
    week = week_start(i.occurred_at)
    per_week = (
        select(
            i.rep_id,
            week.label("week"),
            func.sum(count_if(i.kind == InteractionKind.VISIT.value)).label("visits"),
            func.sum(count_if(i.kind == InteractionKind.CALL.value)).label("calls"),
        )
        .where(
            interaction_scope(actor, filters),
            within(i.occurred_at, period, timestamps=True),
            i.kind.in_([InteractionKind.VISIT.value, InteractionKind.CALL.value]),
        )
        .group_by(i.rep_id, week)
        .subquery()
    )
    query = (
        select(per_week, User.display_name.label("rep_name"))
        .join(User, User.id == per_week.c.rep_id)
        .order_by(per_week.c.week, User.display_name, per_week.c.rep_id)
    )
    rows = [
        {
            "rep_id": row.rep_id,
            "rep_name": row.rep_name,
            "week": as_date(row.week),
            "visits": as_int(row.visits),
            "calls": as_int(row.calls),
        }
        for row in session.execute(query)
    ]
    return pd.DataFrame(rows, columns=["rep_id", "rep_name", "week", "visits", "calls"])


def _visits_calls_by_week_from_summaries(
    session: Session, *, actor: Actor, period: Period, filters: Filters
) -> pd.DataFrame:
    weeks = [
        (rep_id, week, t)
        for rep_id, week, t in daily.by_rep_and_week(
            session, actor=actor, filters=filters, period=period, week=week_start(RepDayStat.day)
        )
        if t.visits or t.calls
    ]
    reps = sorted({rep_id for rep_id, _, _ in weeks})
    names = daily.rep_names(session, reps)
    rows = [
        {"rep_id": rep_id, "rep_name": names[rep_id], "week": week, "visits": t.visits, "calls": t.calls}
        for rep_id, week, t in weeks
        if rep_id in names
    ]
    rows.sort(key=lambda row: (row["week"], row["rep_name"], row["rep_id"]))
    return pd.DataFrame(rows, columns=["rep_id", "rep_name", "week", "visits", "calls"])


def not_contacted(session: Session, *, actor: Actor, as_of: date, filters: Filters | None = None) -> NotContacted:
    """Count the live visible customers not contacted for 30, 60 and 90 days or more as of a date.

    The last contact is the newest live interaction (by anyone) up to as_of; a customer never
    contacted counts from its creation, so a customer created yesterday is not "neglected".
    """
    filters = as_filters(filters)
    i = Interaction
    day_after = _day_after(as_of)
    # Newest first, one row: an index walk that stops at the first live interaction.
    last_interaction = (
        select(i.occurred_at)
        .where(i.customer_id == Customer.id, i.deleted_at.is_(None), i.occurred_at < day_after)
        .order_by(i.occurred_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    per_customer = (
        select(
            Customer.created_at,
            func.coalesce(last_interaction, Customer.created_at).label("last_contact"),
        )
        .where(customer_scope(actor=actor, filters=filters))
        # Materialized so each threshold below does not re-run the subquery per customer.
        .cte("last_contacts")
        .prefix_with("MATERIALIZED")
    )
    c = per_customer.c
    # N days or more since the last contact ⇔ last contact before the day after (as_of − N).
    # Customers created after as_of fall out by themselves: their last contact is their creation.
    # (Filtering on created_at in the WHERE makes SQLite walk the created_at index: 2× slower.)
    counts = [func.sum(count_if(c.last_contact < _day_after(as_of - timedelta(days=n)))) for n in NOT_CONTACTED_DAYS]
    row = session.execute(select(func.sum(count_if(c.created_at < day_after)), *counts)).one()
    return NotContacted(
        customers=as_int(row[0]),
        over_30=as_int(row[1]),
        over_60=as_int(row[2]),
        over_90=as_int(row[3]),
        as_of=as_of,
    )


MY_DAY_COLUMNS = [
    "interaction_id",
    "customer_id",
    "customer_code",
    "customer_name",
    "follow_up_on",
    "status",
    "days_overdue",
    "last_contact_at",
    "last_kind",
    "subject",
]


def my_day(
    session: Session,
    *,
    actor: Actor,
    as_of: date,
    rep_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> pd.DataFrame:
    """Return a rep's follow-ups due on as_of ("today") or before it ("overdue").

    Per customer, the rep's newest live interaction up to as_of carries the current follow-up:
    logging a new interaction without a follow-up date clears it, one with a later date moves
    it. The rep defaults to the actor; another rep must be in the actor's KPI scope, else the
    list is empty. Customers deleted since are left out.
    Columns: interaction_id, customer_id, customer_code, customer_name, follow_up_on, status
    ("today" | "overdue"), days_overdue, last_contact_at, last_kind, subject; most overdue first.
    """
    rep = actor.id if rep_id is None else rep_id
    day_after = _day_after(as_of)
    i = Interaction
    newer = aliased(Interaction, name="newer")
    superseded = (
        select(newer.id)
        .where(
            newer.customer_id == i.customer_id,
            newer.rep_id == i.rep_id,
            newer.deleted_at.is_(None),
            newer.occurred_at < day_after,
            or_(newer.occurred_at > i.occurred_at, and_(newer.occurred_at == i.occurred_at, newer.id > i.id)),
        )
        .exists()
    )
    query = (
        select(
            i.id.label("interaction_id"),
            i.customer_id,
            Customer.code.label("customer_code"),
            Customer.name.label("customer_name"),
            i.next_follow_up,
            i.occurred_at,
            i.kind,
            i.subject,
        )
        .join(Customer, Customer.id == i.customer_id)
        .where(
            i.rep_id == rep,
            member_of(i.rep_id, kpi_rep_ids(actor)),
            i.deleted_at.is_(None),
            Customer.deleted_at.is_(None),
            i.next_follow_up <= as_of,
            i.occurred_at < day_after,
            ~superseded,
        )
        .order_by(i.next_follow_up, Customer.name, i.id)
        .limit(limit)
    )
    rows = []
    for row in session.execute(query):
        due: date = row.next_follow_up
        rows.append(
            {
                "interaction_id": row.interaction_id,
                "customer_id": row.customer_id,
                "customer_code": row.customer_code,
                "customer_name": row.customer_name,
                "follow_up_on": due,
                "status": FOLLOW_UP_TODAY if due == as_of else FOLLOW_UP_OVERDUE,
                "days_overdue": (as_of - due).days,
                "last_contact_at": row.occurred_at,
                "last_kind": row.kind,
                "subject": row.subject,
            }
        )
    return pd.DataFrame(rows, columns=MY_DAY_COLUMNS)
