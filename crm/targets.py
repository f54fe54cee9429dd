"""Monthly targets and attitude scores (行为考核): set by a rep's manager or an admin, audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.access import Actor, kpi_rep_ids, manages_rep, require_role
from crm.audit import diff, record, snapshot
from crm.errors import PermissionDeniedError, Validator
from crm.models import AttitudeScore, Role, Target, User
from crm.periods import Period, month_start
from crm.validation import (
    RawDate,
    RawInt,
    RawNumber,
    RawText,
    clean_date,
    clean_id,
    clean_int,
    clean_money,
    clean_text,
)

TARGET_ENTITY = "target"
ATTITUDE_ENTITY = "attitude_score"
# Upper bound of a monthly count target: far above any real plan, it only catches typos.
MAX_MONTHLY_COUNT = 100_000
ITEM_MIN = 0
ITEM_MAX = 100
ATTITUDE_ITEMS = ("initiative", "cooperation", "responsibility", "discipline")
COMMENT_MAX = 4000
MONTH_FORMAT_LENGTH = len("2026-01")

TARGET_COLUMNS = ["id", "rep_id", "rep_name", "month", "revenue_target", "new_customer_target", "visit_target"]
ATTITUDE_COLUMNS = [
    "id",
    "rep_id",
    "rep_name",
    "scorer_id",
    "scorer_name",
    "period_start",
    "period_end",
    "initiative",
    "cooperation",
    "responsibility",
    "discipline",
    "mean",
    "comment",
]


@dataclass(frozen=True)
class TargetInput:
    """Raw values of the target form; `month` is any day of the month or 'YYYY-MM'."""

    rep_id: RawInt
    month: RawDate
    revenue_target: RawNumber = None
    new_customer_target: RawInt = None
    visit_target: RawInt = None


@dataclass(frozen=True)
class AttitudeInput:
    """Raw values of the attitude form: four items 0–100 for a rep over [period_start, period_end)."""

    rep_id: RawInt
    period_start: RawDate
    period_end: RawDate
    initiative: RawInt
    cooperation: RawInt
    responsibility: RawInt
    discipline: RawInt
    comment: RawText = None


def _clean_month(v: Validator, raw: RawDate) -> date | None:
    if isinstance(raw, str) and len(raw.strip()) == MONTH_FORMAT_LENGTH:
        raw = raw.strip() + "-01"
    day = clean_date(v, "month", raw, required=True)
    return None if day is None else month_start(day)


def _require_manager_of(session: Session, *, actor: Actor, rep_id: int, action: str) -> None:
    """Refuse reps, and managers acting on a rep outside their team; the target must be a rep."""
    require_role(actor, Role.MANAGER, Role.ADMIN)
    if not manages_rep(session, actor=actor, rep_id=rep_id):
        raise PermissionDeniedError(action)
    rep = session.get(User, rep_id)
    if rep is None or rep.role != Role.REP.value:
        v = Validator()
        v.add("rep_id", "error.not_allowed")
        v.raise_if_any()


def set_target(session: Session, *, actor: Actor, data: TargetInput, now: datetime) -> Target:
    """Create or replace a rep's targets for one month (managers for their team, admins)."""
    v = Validator()
    rep_id = clean_id(v, "rep_id", data.rep_id, required=True)
    month = _clean_month(v, data.month)
    values: dict[str, Any] = {
        "revenue_target": clean_money(v, "revenue_target", data.revenue_target),
        "new_customer_target": clean_int(
            v, "new_customer_target", data.new_customer_target, minimum=0, maximum=MAX_MONTHLY_COUNT
        ),
        "visit_target": clean_int(v, "visit_target", data.visit_target, minimum=0, maximum=MAX_MONTHLY_COUNT),
    }
    v.raise_if_any()
    assert rep_id is not None and month is not None  # required above
    _require_manager_of(session, actor=actor, rep_id=rep_id, action="set targets for this rep")
    row = session.scalar(select(Target).where(Target.rep_id == rep_id, Target.month == month))
    if row is None:
        row = Target(rep_id=rep_id, month=month, set_by_id=actor.id, updated_at=now, **values)
        session.add(row)
        session.flush()
        record(
            session,
            actor=actor,
            action="create",
            entity=TARGET_ENTITY,
            entity_id=row.id,
            changes=diff({}, snapshot(row)),
            at=now,
        )
        return row
    before = snapshot(row)
    for name, value in values.items():
        setattr(row, name, value)
    row.set_by_id = actor.id
    row.updated_at = now
    session.flush()
    changes = {key: change for key, change in diff(before, snapshot(row)).items() if key != "updated_at"}
    if changes:
        record(session, actor=actor, action="update", entity=TARGET_ENTITY, entity_id=row.id, changes=changes, at=now)
    return row


def set_attitude_score(session: Session, *, actor: Actor, data: AttitudeInput, now: datetime) -> AttitudeScore:
    """Create or replace the actor's attitude score of a rep for a period (team managers, admins)."""
    v = Validator()
    rep_id = clean_id(v, "rep_id", data.rep_id, required=True)
    period_start = clean_date(v, "period_start", data.period_start, required=True)
    period_end = clean_date(v, "period_end", data.period_end, required=True)
    if period_start is not None and period_end is not None and period_end <= period_start:
        v.add("period_end", "error.date_order")
    values: dict[str, Any] = {
        item: clean_int(v, item, getattr(data, item), required=True, minimum=ITEM_MIN, maximum=ITEM_MAX)
        for item in ATTITUDE_ITEMS
    }
    values["comment"] = clean_text(v, "comment", data.comment, max_length=COMMENT_MAX)
    v.raise_if_any()
    assert rep_id is not None and period_start is not None and period_end is not None  # required above
    _require_manager_of(session, actor=actor, rep_id=rep_id, action="score this rep")
    row = session.scalar(
        select(AttitudeScore).where(
            AttitudeScore.rep_id == rep_id,
            AttitudeScore.period_start == period_start,
            AttitudeScore.period_end == period_end,
            AttitudeScore.scorer_id == actor.id,
        )
    )
    if row is None:
        row = AttitudeScore(
            rep_id=rep_id,
            period_start=period_start,
            period_end=period_end,
            scorer_id=actor.id,
            updated_at=now,
            **values,
        )
        session.add(row)
        session.flush()
        record(
            session,
            actor=actor,
            action="create",
            entity=ATTITUDE_ENTITY,
            entity_id=row.id,
            changes=diff({}, snapshot(row)),
            at=now,
        )
        return row
    before = snapshot(row)
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = now
    session.flush()
    changes = {key: change for key, change in diff(before, snapshot(row)).items() if key != "updated_at"}
    if changes:
        record(session, actor=actor, action="update", entity=ATTITUDE_ENTITY, entity_id=row.id, changes=changes, at=now)
    return row


def list_targets(session: Session, *, actor: Actor, period: Period) -> pd.DataFrame:
    """Return the targets of the months the period touches, for the reps whose figures the actor sees.

    Columns: TARGET_COLUMNS; revenue_target is float (None when not set).
    """
    rows = session.execute(
        select(
            Target.id,
            Target.rep_id,
            User.display_name,
            Target.month,
            Target.revenue_target,
            Target.new_customer_target,
            Target.visit_target,
        )
        .join(User, User.id == Target.rep_id)
        .where(
            Target.rep_id.in_(kpi_rep_ids(actor)), Target.month >= month_start(period.start), Target.month < period.end
        )
        .order_by(User.display_name, Target.rep_id, Target.month)
    ).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=TARGET_COLUMNS)
    frame["revenue_target"] = (
        frame["revenue_target"].map(lambda value: None if value is None else float(value)).astype("float64")
    )
    return frame


def list_attitude_scores(session: Session, *, actor: Actor, period: Period) -> pd.DataFrame:
    """Return the attitude scores of periods inside `period`, for the reps whose figures the actor sees.

    Columns: ATTITUDE_COLUMNS; `mean` is the mean of the four items.
    """
    scorer = User.__table__.alias("scorer")
    rows = session.execute(
        select(
            AttitudeScore.id,
            AttitudeScore.rep_id,
            User.display_name,
            AttitudeScore.scorer_id,
            scorer.c.display_name,
            AttitudeScore.period_start,
            AttitudeScore.period_end,
            AttitudeScore.initiative,
            AttitudeScore.cooperation,
            AttitudeScore.responsibility,
            AttitudeScore.discipline,
            (
                AttitudeScore.initiative
                + AttitudeScore.cooperation
                + AttitudeScore.responsibility
                + AttitudeScore.discipline
            )
            / 4.0,
            AttitudeScore.comment,
        )
        .join(User, User.id == AttitudeScore.rep_id)
        .join(scorer, scorer.c.id == AttitudeScore.scorer_id)
        .where(
            AttitudeScore.rep_id.in_(kpi_rep_ids(actor)),
            AttitudeScore.period_start >= period.start,
            AttitudeScore.period_end <= period.end,
        )
        .order_by(User.display_name, AttitudeScore.rep_id, AttitudeScore.period_start, AttitudeScore.scorer_id)
    ).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=ATTITUDE_COLUMNS)
    frame["mean"] = frame["mean"].map(float).astype("float64")
    return frame
