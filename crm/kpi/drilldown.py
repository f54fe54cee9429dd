"""The records behind a KPI figure, scoped exactly like the figure (at most `limit` rows).

Every frame carries the customer (customer_id, customer_code, customer_name) and the rep the
record counts for (rep_id, rep_name); money is float.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Executable, and_, or_, select
from sqlalchemy.orm import Session

from crm.access import Actor, Filters
from crm.kpi.common import (
    DEFAULT_LIMIT,
    Column,
    as_filters,
    as_money,
    complaint_scope,
    interaction_scope,
    opportunity_scope,
    order_scope,
    survey_scope,
    within,
)
from crm.kpi.service import effective_as_of
from crm.models import (
    Complaint,
    Customer,
    Interaction,
    InteractionKind,
    Opportunity,
    Order,
    PipelineStage,
    StageKind,
    SurveyResponse,
    User,
)
from crm.periods import Period

SECONDS_PER_HOUR = 3600


class ComplaintSet(StrEnum):
    """Which complaints a drill-down lists."""

    RESOLVED = "resolved"  # resolved in the period (behind the on-time rate)
    OVERDUE = "overdue"  # open and past due at the period's end or as_of (behind "overdue open")
    OPENED = "opened"  # opened in the period


def _who(rep_column: Column) -> list[ColumnElement[Any]]:
    return [
        Customer.code.label("customer_code"),
        Customer.name.label("customer_name"),
        rep_column.label("rep_id"),
        User.display_name.label("rep_name"),
    ]


def _frame(session: Session, query: Executable, columns: list[str]) -> pd.DataFrame:
    rows = [dict(row._mapping) for row in session.execute(query)]
    return pd.DataFrame(rows, columns=columns)


ORDER_COLUMNS = [
    "order_id",
    "ordered_on",
    "customer_id",
    "customer_code",
    "customer_name",
    "rep_id",
    "rep_name",
    "amount",
    "quantity",
]


def orders_in_period(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None, limit: int = DEFAULT_LIMIT
) -> pd.DataFrame:
    """Return the orders behind revenue, orders and active customers, newest first.

    Columns: order_id, ordered_on, customer_id, customer_code, customer_name, rep_id, rep_name,
    amount, quantity.
    """
    filters = as_filters(filters)
    o = Order
    query = (
        select(o.id.label("order_id"), o.ordered_on, o.customer_id, *_who(o.rep_id), o.amount, o.quantity)
        .join(Customer, Customer.id == o.customer_id)
        .join(User, User.id == o.rep_id)
        .where(
            order_scope(actor, filters),
            within(o.ordered_on, period),
        )
        .order_by(o.ordered_on.desc(), o.id.desc())
        .limit(limit)
    )
    frame = _frame(session, query, ORDER_COLUMNS)
    frame["amount"] = frame["amount"].map(as_money).astype("float64")
    return frame


OPPORTUNITY_COLUMNS = [
    "opportunity_id",
    "title",
    "closed_on",
    "stage",
    "outcome",
    "amount",
    "customer_id",
    "customer_code",
    "customer_name",
    "rep_id",
    "rep_name",
    "lost_reason",
]


def closed_opportunities(
    session: Session,
    *,
    actor: Actor,
    period: Period,
    filters: Filters | None = None,
    outcome: StageKind | None = None,
    limit: int = DEFAULT_LIMIT,
) -> pd.DataFrame:
    """Return the opportunities behind won / lost / win rate (closed in the period), newest first.

    `outcome` keeps only won or only lost ones. Columns: opportunity_id, title, closed_on, stage,
    outcome ("won" | "lost"), amount, customer_id, customer_code, customer_name (None without a
    customer), rep_id, rep_name (the owner), lost_reason.
    """
    filters = as_filters(filters)
    o, stage = Opportunity, PipelineStage
    kinds = [outcome.value] if outcome else [StageKind.WON.value, StageKind.LOST.value]
    query = (
        select(
            o.id.label("opportunity_id"),
            o.title,
            o.closed_on,
            o.stage,
            stage.kind.label("outcome"),
            o.amount,
            o.customer_id,
            *_who(o.owner_id),
            o.lost_reason,
        )
        .join(stage, stage.key == o.stage)
        .outerjoin(Customer, Customer.id == o.customer_id)
        .join(User, User.id == o.owner_id)
        .where(opportunity_scope(actor, filters), within(o.closed_on, period), stage.kind.in_(kinds))
        .order_by(o.closed_on.desc(), o.id.desc())
        .limit(limit)
    )
    frame = _frame(session, query, OPPORTUNITY_COLUMNS)
    frame["amount"] = frame["amount"].map(lambda v: None if v is None else as_money(v)).astype("float64")
    return frame


RESPONSE_COLUMNS = [
    "response_id",
    "responded_on",
    "customer_id",
    "customer_code",
    "customer_name",
    "rep_id",
    "rep_name",
    "overall",
    "quality",
    "service",
    "price",
    "after_sales",
    "recommend",
    "comment",
]


def survey_responses(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None, limit: int = DEFAULT_LIMIT
) -> pd.DataFrame:
    """Return the survey responses behind CSAT, CSAT %, NPS and the dimension means, newest first.

    Columns: response_id, responded_on, customer_id, customer_code, customer_name, rep_id,
    rep_name, overall, quality, service, price, after_sales, recommend (None when not given), comment.
    """
    filters = as_filters(filters)
    s = SurveyResponse
    query = (
        select(
            s.id.label("response_id"),
            s.responded_on,
            s.customer_id,
            *_who(s.rep_id),
            s.overall,
            s.quality,
            s.service,
            s.price,
            s.after_sales,
            s.recommend,
            s.comment,
        )
        .join(Customer, Customer.id == s.customer_id)
        .join(User, User.id == s.rep_id)
        .where(
            survey_scope(actor, filters),
            within(s.responded_on, period),
        )
        .order_by(s.responded_on.desc(), s.id.desc())
        .limit(limit)
    )
    return _frame(session, query, RESPONSE_COLUMNS)


COMPLAINT_COLUMNS = [
    "complaint_id",
    "customer_id",
    "customer_code",
    "customer_name",
    "rep_id",
    "rep_name",
    "severity",
    "category",
    "opened_at",
    "due_at",
    "resolved_at",
    "on_time",
    "resolution_hours",
]


def complaints(
    session: Session,
    *,
    actor: Actor,
    period: Period,
    as_of: date | datetime,
    which: ComplaintSet = ComplaintSet.RESOLVED,
    filters: Filters | None = None,
    limit: int = DEFAULT_LIMIT,
) -> pd.DataFrame:
    """Return the complaints behind a service figure (see ComplaintSet), oldest due first.

    rep_id / rep_name are the assignee. Columns: complaint_id, customer_id, customer_code,
    customer_name, rep_id, rep_name, severity, category, opened_at, due_at, resolved_at,
    on_time (None while unresolved), resolution_hours (None while unresolved).
    """
    filters = as_filters(filters)
    which = ComplaintSet(which)
    c = Complaint
    if which is ComplaintSet.RESOLVED:
        chosen = within(c.resolved_at, period, timestamps=True)
    elif which is ComplaintSet.OPENED:
        chosen = within(c.opened_at, period, timestamps=True)
    else:
        moment = effective_as_of(period, as_of)
        chosen = and_(c.opened_at <= moment, or_(c.resolved_at.is_(None), c.resolved_at > moment), c.due_at < moment)
    query = (
        select(
            c.id.label("complaint_id"),
            c.customer_id,
            *_who(c.assignee_id),
            c.severity,
            c.category,
            c.opened_at,
            c.due_at,
            c.resolved_at,
        )
        .join(Customer, Customer.id == c.customer_id)
        .join(User, User.id == c.assignee_id)
        .where(
            complaint_scope(actor, filters),
            chosen,
        )
        .order_by(c.due_at, c.id)
        .limit(limit)
    )
    rows = []
    for row in session.execute(query):
        record = dict(row._mapping)
        resolved_at = record["resolved_at"]
        record["on_time"] = None if resolved_at is None else resolved_at <= record["due_at"]
        record["resolution_hours"] = (
            None if resolved_at is None else (resolved_at - record["opened_at"]).total_seconds() / SECONDS_PER_HOUR
        )
        rows.append(record)
    return pd.DataFrame(rows, columns=COMPLAINT_COLUMNS)


VISIT_COLUMNS = [
    "interaction_id",
    "occurred_at",
    "customer_id",
    "customer_code",
    "customer_name",
    "rep_id",
    "rep_name",
    "outcome",
    "subject",
    "location",
    "next_follow_up",
]


def visits(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None, limit: int = DEFAULT_LIMIT
) -> pd.DataFrame:
    """Return the visits behind the visit count and visit conversion, newest first.

    Columns: interaction_id, occurred_at, customer_id, customer_code, customer_name, rep_id,
    rep_name, outcome, subject, location, next_follow_up.
    """
    filters = as_filters(filters)
    i = Interaction
    query = (
        select(
            i.id.label("interaction_id"),
            i.occurred_at,
            i.customer_id,
            *_who(i.rep_id),
            i.outcome,
            i.subject,
            i.location,
            i.next_follow_up,
        )
        .join(Customer, Customer.id == i.customer_id)
        .join(User, User.id == i.rep_id)
        .where(
            interaction_scope(actor, filters),
            i.kind == InteractionKind.VISIT.value,
            within(i.occurred_at, period, timestamps=True),
        )
        .order_by(i.occurred_at.desc(), i.id.desc())
        .limit(limit)
    )
    return _frame(session, query, VISIT_COLUMNS)
