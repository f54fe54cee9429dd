"""Per-rep figures of a period: the raw counts behind the appraisal and rep comparisons (SPEC §5, §6).

Every figure belongs to the rep on the record (order's rep, opportunity's owner, interaction's rep,
response's rep, complaint's assignee), except new customers, which belong to the customer's owner.
Without a tier filter every figure but new customers is one GROUP BY rep over the per rep per day
summaries (crm.summaries) and new customers one over customers.first_order_on; under a tier filter
each raw table is read with one GROUP BY rep query. The cost does not grow with the number of
reps. Soft-deleted records and every record of a soft-deleted customer are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, or_, select, true
from sqlalchemy.orm import QueryableAttribute, Session

from crm.access import Actor, Filters, kpi_rep_ids
from crm.kpi import daily
from crm.models import (
    Complaint,
    Customer,
    Interaction,
    InteractionKind,
    Opportunity,
    Order,
    PipelineStage,
    Role,
    StageKind,
    SurveyResponse,
    User,
)
from crm.periods import Period

ZERO_MONEY = Decimal("0.00")


@dataclass(frozen=True)
class RepFigures:
    """One rep's figures for a period; revenue is a Decimal (two places), counts are ints."""

    rep_id: int
    username: str
    display_name: str
    team: str | None
    region: str | None
    active: bool
    revenue: Decimal = ZERO_MONEY
    orders: int = 0
    new_customers: int = 0
    visits: int = 0
    calls: int = 0
    won: int = 0
    lost: int = 0
    csat_sum: int = 0
    csat_count: int = 0
    complaints_resolved: int = 0
    complaints_on_time: int = 0

    @property
    def win_rate(self) -> float | None:
        """Won / (won + lost), None when no deal closed."""
        closed = self.won + self.lost
        return self.won / closed if closed else None

    @property
    def csat_mean(self) -> float | None:
        """Mean overall survey score (1–5), None without responses."""
        return self.csat_sum / self.csat_count if self.csat_count else None

    @property
    def complaint_on_time_rate(self) -> float | None:
        """Complaints resolved by their due time / complaints resolved, None when none was resolved."""
        return self.complaints_on_time / self.complaints_resolved if self.complaints_resolved else None

    @property
    def has_data(self) -> bool:
        """Tell whether any record of the period counts for this rep."""
        return bool(
            self.orders
            or self.new_customers
            or self.visits
            or self.calls
            or self.won
            or self.lost
            or self.csat_count
            or self.complaints_resolved
        )


def tier_clause(tier: str | None) -> ColumnElement[bool]:
    """Return the customer-tier narrowing of the filters as a WHERE clause on Customer."""
    return Customer.tier == tier if tier else true()


def customer_counts(customer_id: QueryableAttribute[Any], tier: str | None) -> ColumnElement[bool]:
    """Return the WHERE clause that the record's customer is live and in the tier filter.

    A semi-join rather than a join: deleted customers are few, so NOT IN over them is one small
    hash lookup per record instead of a row fetch from customers.
    """
    if tier:
        return customer_id.in_(select(Customer.id).where(Customer.deleted_at.is_(None), Customer.tier == tier))
    return customer_id.not_in(select(Customer.id).where(Customer.deleted_at.is_not(None)))


def order_criteria(period: Period, tier: str | None) -> list[ColumnElement[bool]]:
    """Return the WHERE clauses of the orders of a period."""
    return [
        Order.deleted_at.is_(None),
        Order.ordered_on >= period.start,
        Order.ordered_on < period.end,
        customer_counts(Order.customer_id, tier),
    ]


def new_customer_criteria(period: Period, tier: str | None) -> list[ColumnElement[bool]]:
    """Return the WHERE clauses (on Customer) of the live customers whose first live order ever is in the period.

    customers.first_order_on is kept exact by crm.summaries on every write.
    """
    return [
        Customer.deleted_at.is_(None),
        Customer.first_order_on >= period.start,
        Customer.first_order_on < period.end,
        tier_clause(tier),
    ]


def interaction_criteria(period: Period, tier: str | None) -> list[ColumnElement[bool]]:
    """Return the WHERE clauses of the interactions of a period."""
    return [
        Interaction.deleted_at.is_(None),
        Interaction.occurred_at >= period.start_dt,
        Interaction.occurred_at < period.end_dt,
        customer_counts(Interaction.customer_id, tier),
    ]


def closed_opportunity_criteria(period: Period, tier: str | None) -> list[ColumnElement[bool]]:
    """Return the WHERE clauses of opportunities closed won or lost in the period (join PipelineStage).

    A deal without a customer counts unless a tier filter asks for customers of one tier.
    """
    customer_ok = customer_counts(Opportunity.customer_id, tier)
    if not tier:
        customer_ok = or_(Opportunity.customer_id.is_(None), customer_ok)
    return [
        Opportunity.deleted_at.is_(None),
        Opportunity.closed_on >= period.start,
        Opportunity.closed_on < period.end,
        PipelineStage.kind.in_([StageKind.WON.value, StageKind.LOST.value]),
        customer_ok,
    ]


def survey_criteria(period: Period, tier: str | None) -> list[ColumnElement[bool]]:
    """Return the WHERE clauses of the survey responses of a period."""
    return [
        SurveyResponse.deleted_at.is_(None),
        SurveyResponse.responded_on >= period.start,
        SurveyResponse.responded_on < period.end,
        customer_counts(SurveyResponse.customer_id, tier),
    ]


def resolved_complaint_criteria(period: Period, tier: str | None) -> list[ColumnElement[bool]]:
    """Return the WHERE clauses of complaints resolved in the period."""
    return [
        Complaint.deleted_at.is_(None),
        Complaint.resolved_at.is_not(None),
        Complaint.resolved_at >= period.start_dt,
        Complaint.resolved_at < period.end_dt,
        customer_counts(Complaint.customer_id, tier),
    ]


def _count_when(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _rows_by_rep(session: Session, query: Select) -> dict[int, Any]:
    return {row[0]: row for row in session.execute(query)}


def figures_for(
    session: Session, *, rep_ids: Select[int], period: Period, tier: str | None = None, include_idle: bool = False
) -> list[RepFigures]:
    """Return the figures of the rep users among `rep_ids`, ordered by display name.

    Inactive reps with no record in the period are left out unless `include_idle`.
    """
    reps = session.execute(
        select(User.id, User.username, User.display_name, User.team, User.region, User.active)
        .where(User.id.in_(rep_ids), User.role == Role.REP.value)
        .order_by(User.display_name, User.id)
    ).all()
    if not reps:
        return []
    scope = [rep.id for rep in reps]

    new_customers = _rows_by_rep(
        session,
        select(Customer.owner_id, func.count())
        .where(Customer.owner_id.in_(scope), *new_customer_criteria(period, tier))
        .group_by(Customer.owner_id),
    )
    if tier:
        tallies = _raw_tallies(session, scope=scope, period=period, tier=tier)
    else:
        tallies = daily.by_rep(session, period=period, rep_ids=scope)

    out = []
    for rep in reps:
        t = tallies.get(rep.id, daily.Tally())
        new_row = new_customers.get(rep.id)
        figures = RepFigures(
            rep_id=rep.id,
            username=rep.username,
            display_name=rep.display_name,
            team=rep.team,
            region=rep.region,
            active=bool(rep.active),
            revenue=_money(t.revenue),
            orders=t.orders,
            new_customers=int(new_row[1]) if new_row else 0,
            visits=t.visits,
            calls=t.calls,
            won=t.won,
            lost=t.lost,
            csat_sum=t.csat_sum,
            csat_count=t.responses,
            complaints_resolved=t.complaints_resolved,
            complaints_on_time=t.complaints_on_time,
        )
        if figures.active or figures.has_data or include_idle:
            out.append(figures)
    return out


def _raw_tallies(session: Session, *, scope: list[int], period: Period, tier: str) -> dict[int, daily.Tally]:
    """Return the per-rep tallies of the period from the raw tables (records of customers of one tier)."""
    orders = _rows_by_rep(
        session,
        select(Order.rep_id, func.coalesce(func.sum(Order.amount), 0), func.count())
        .where(Order.rep_id.in_(scope), *order_criteria(period, tier))
        .group_by(Order.rep_id),
    )
    interactions = _rows_by_rep(
        session,
        select(
            Interaction.rep_id,
            _count_when(Interaction.kind == InteractionKind.VISIT.value),
            _count_when(Interaction.kind == InteractionKind.CALL.value),
        )
        .where(
            Interaction.rep_id.in_(scope),
            Interaction.kind.in_([InteractionKind.VISIT.value, InteractionKind.CALL.value]),
            *interaction_criteria(period, tier),
        )
        .group_by(Interaction.rep_id),
    )
    deals = _rows_by_rep(
        session,
        select(
            Opportunity.owner_id,
            _count_when(PipelineStage.kind == StageKind.WON.value),
            _count_when(PipelineStage.kind == StageKind.LOST.value),
        )
        .join(PipelineStage, PipelineStage.key == Opportunity.stage)
        .where(Opportunity.owner_id.in_(scope), *closed_opportunity_criteria(period, tier))
        .group_by(Opportunity.owner_id),
    )
    surveys = _rows_by_rep(
        session,
        select(SurveyResponse.rep_id, func.coalesce(func.sum(SurveyResponse.overall), 0), func.count())
        .where(SurveyResponse.rep_id.in_(scope), *survey_criteria(period, tier))
        .group_by(SurveyResponse.rep_id),
    )
    complaints = _rows_by_rep(
        session,
        select(Complaint.assignee_id, func.count(), _count_when(Complaint.resolved_at <= Complaint.due_at))
        .where(Complaint.assignee_id.in_(scope), *resolved_complaint_criteria(period, tier))
        .group_by(Complaint.assignee_id),
    )
    out = {}
    for rep_id in scope:
        order_row = orders.get(rep_id)
        interaction_row = interactions.get(rep_id)
        deal_row = deals.get(rep_id)
        survey_row = surveys.get(rep_id)
        complaint_row = complaints.get(rep_id)
        out[rep_id] = daily.Tally(
            revenue=_money(order_row[1]) if order_row else ZERO_MONEY,
            orders=int(order_row[2]) if order_row else 0,
            visits=int(interaction_row[1]) if interaction_row else 0,
            calls=int(interaction_row[2]) if interaction_row else 0,
            won=int(deal_row[1]) if deal_row else 0,
            lost=int(deal_row[2]) if deal_row else 0,
            csat_sum=int(survey_row[1]) if survey_row else 0,
            responses=int(survey_row[2]) if survey_row else 0,
            complaints_resolved=int(complaint_row[1]) if complaint_row else 0,
            complaints_on_time=int(complaint_row[2]) if complaint_row else 0,
        )
    return out


def rep_figures(session: Session, *, actor: Actor, period: Period, filters: Filters) -> list[RepFigures]:
    """Return one row of figures per rep in the actor's KPI scope, narrowed by the filters."""
    return figures_for(session, rep_ids=kpi_rep_ids(actor, filters), period=period, tier=filters.tier)


def _money(value: object) -> Decimal:
    # SQLite hands back a float for a SUM; quantise so both engines return the same Decimal.
    return Decimal(str(value)).quantize(ZERO_MONEY)
