"""Satisfaction survey responses (满意度调查): validated, scoped, idempotent, audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import desc, select
from sqlalchemy.orm import Session

from crm.access import Actor, get_visible_customer, require_rep_assignable
from crm.errors import NotFoundError, Validator
from crm.models import Customer, SurveyResponse, User
from crm.periods import Period
from crm.validation import (
    RawDate,
    RawInt,
    RawText,
    clean_date,
    clean_id,
    clean_int,
    clean_text,
    create_audited,
    find_by_key,
    record_scope,
    soft_delete_audited,
)

ENTITY = "survey_response"
SCORE_MIN = 1
SCORE_MAX = 5
RECOMMEND_MIN = 0
RECOMMEND_MAX = 10
COMMENT_MAX = 4000
IDEMPOTENCY_KEY_MAX = 64
LIST_LIMIT = 200
DIMENSIONS = ("quality", "service", "price", "after_sales")

LIST_COLUMNS = [
    "id",
    "responded_on",
    "customer_id",
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


@dataclass(frozen=True)
class SurveyInput:
    """Raw values of the survey form; an empty rep means the actor."""

    customer_id: RawInt
    responded_on: RawDate
    overall: RawInt
    quality: RawInt = None
    service: RawInt = None
    price: RawInt = None
    after_sales: RawInt = None
    recommend: RawInt = None
    comment: RawText = None
    rep_id: RawInt = None


def _visible_response(session: Session, *, actor: Actor, response_id: int) -> SurveyResponse:
    row = session.scalar(
        select(SurveyResponse).where(
            SurveyResponse.id == response_id,
            SurveyResponse.deleted_at.is_(None),
            record_scope(actor, rep_column=SurveyResponse.rep_id, customer_column=SurveyResponse.customer_id),
        )
    )
    if row is None:
        raise NotFoundError(ENTITY, response_id)
    return row


def record_survey(
    session: Session,
    *,
    actor: Actor,
    data: SurveyInput,
    now: datetime,
    idempotency_key: str | None = None,
) -> SurveyResponse:
    """Save a survey response on a customer the actor may edit; the same key twice stores one."""
    existing = find_by_key(session, SurveyResponse, idempotency_key)
    if existing is not None:
        return _visible_response(session, actor=actor, response_id=existing.id)
    v = Validator()
    customer_id = clean_id(v, "customer_id", data.customer_id, required=True)
    responded_on = clean_date(v, "responded_on", data.responded_on, required=True, now=now)
    overall = clean_int(v, "overall", data.overall, required=True, minimum=SCORE_MIN, maximum=SCORE_MAX)
    dimensions = {
        name: clean_int(v, name, getattr(data, name), minimum=SCORE_MIN, maximum=SCORE_MAX) for name in DIMENSIONS
    }
    recommend = clean_int(v, "recommend", data.recommend, minimum=RECOMMEND_MIN, maximum=RECOMMEND_MAX)
    comment = clean_text(v, "comment", data.comment, max_length=COMMENT_MAX)
    rep_id = clean_id(v, "rep_id", data.rep_id)
    clean_text(v, "idempotency_key", idempotency_key, max_length=IDEMPOTENCY_KEY_MAX)
    v.raise_if_any()
    assert customer_id is not None  # required above
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id)
    rep_id = actor.id if rep_id is None else rep_id
    require_rep_assignable(session, actor=actor, rep_id=rep_id)
    row = SurveyResponse(
        customer_id=customer.id,
        rep_id=rep_id,
        responded_on=responded_on,
        overall=overall,
        recommend=recommend,
        comment=comment,
        idempotency_key=idempotency_key,
        created_at=now,
        **dimensions,
    )
    saved, inserted = create_audited(session, actor=actor, row=row, key=idempotency_key, entity=ENTITY, now=now)
    return saved if inserted else _visible_response(session, actor=actor, response_id=saved.id)


def delete_survey(session: Session, *, actor: Actor, response_id: int, now: datetime) -> SurveyResponse:
    """Soft-delete a survey response the actor may see."""
    row = _visible_response(session, actor=actor, response_id=response_id)
    soft_delete_audited(session, actor=actor, row=row, entity=ENTITY, now=now)
    return row


def list_surveys(
    session: Session,
    *,
    actor: Actor,
    customer_id: int | None = None,
    period: Period | None = None,
    limit: int = LIST_LIMIT,
) -> pd.DataFrame:
    """Return the newest survey responses the actor may see (columns: LIST_COLUMNS)."""
    query = (
        select(
            SurveyResponse.id,
            SurveyResponse.responded_on,
            SurveyResponse.customer_id,
            Customer.name,
            SurveyResponse.rep_id,
            User.display_name,
            SurveyResponse.overall,
            SurveyResponse.quality,
            SurveyResponse.service,
            SurveyResponse.price,
            SurveyResponse.after_sales,
            SurveyResponse.recommend,
            SurveyResponse.comment,
        )
        .join(Customer, Customer.id == SurveyResponse.customer_id)
        .join(User, User.id == SurveyResponse.rep_id)
        .where(
            record_scope(actor, rep_column=SurveyResponse.rep_id, customer_column=SurveyResponse.customer_id),
            SurveyResponse.deleted_at.is_(None),
            Customer.deleted_at.is_(None),
        )
        .order_by(desc(SurveyResponse.responded_on), desc(SurveyResponse.id))
        .limit(max(0, limit))
    )
    if customer_id is not None:
        query = query.where(SurveyResponse.customer_id == customer_id)
    if period is not None:
        query = query.where(SurveyResponse.responded_on >= period.start, SurveyResponse.responded_on < period.end)
    return pd.DataFrame([tuple(row) for row in session.execute(query)], columns=LIST_COLUMNS)
