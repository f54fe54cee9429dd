"""Satisfaction survey responses (满意度调查): validated, scoped, idempotent, audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import desc, select
from sqlalchemy.orm import Session

from crm.access import Actor
from crm.errors import Validator
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
    customer_and_rep,
    find_by_key,
    get_visible_record,
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
    """Return a live survey response the actor may see, else raise 'not found or not yours'."""
    return get_visible_record(
        session,
        actor=actor,
        model=SurveyResponse,
        rep_column=SurveyResponse.rep_id,
        record_id=response_id,
        entity=ENTITY,
    )


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
    customer, rep_id = customer_and_rep(session, actor=actor, customer_id=customer_id, rep_id=rep_id)
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
