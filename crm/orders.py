"""Orders (交易记录): validated, scoped, audited writes and the order list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import desc, select
from sqlalchemy.orm import Session

from crm.access import Actor
from crm.errors import Validator
from crm.models import Customer, Order, Product, User
from crm.periods import Period
from crm.validation import (
    RawDate,
    RawInt,
    RawNumber,
    clean_date,
    clean_id,
    clean_int,
    clean_money,
    clean_text,
    create_audited,
    customer_and_rep,
    find_by_key,
    get_visible_record,
    record_scope,
    soft_delete_audited,
)

ENTITY = "order"
MAX_QUANTITY = 1_000_000
IDEMPOTENCY_KEY_MAX = 64
LIST_LIMIT = 200

LIST_COLUMNS = [
    "id",
    "ordered_on",
    "customer_id",
    "customer_code",
    "customer_name",
    "amount",
    "quantity",
    "product_id",
    "product_name",
    "rep_id",
    "rep_name",
]


@dataclass(frozen=True)
class OrderInput:
    """Raw values of the order form; an empty rep means the actor."""

    customer_id: RawInt
    ordered_on: RawDate
    amount: RawNumber
    quantity: RawInt = 1
    product_id: RawInt = None
    rep_id: RawInt = None


def _visible_order(session: Session, *, actor: Actor, order_id: int) -> Order:
    """Return a live order the actor may see, else raise 'not found or not yours'."""
    return get_visible_record(
        session, actor=actor, model=Order, rep_column=Order.rep_id, record_id=order_id, entity=ENTITY
    )


def create_order(
    session: Session,
    *,
    actor: Actor,
    data: OrderInput,
    now: datetime,
    idempotency_key: str | None = None,
) -> Order:
    """Record an order on a customer the actor may edit; the same key twice stores one order."""
    existing = find_by_key(session, Order, idempotency_key)
    if existing is not None:
        return _visible_order(session, actor=actor, order_id=existing.id)
    v = Validator()
    customer_id = clean_id(v, "customer_id", data.customer_id, required=True)
    ordered_on = clean_date(v, "ordered_on", data.ordered_on, required=True, now=now)
    amount = clean_money(v, "amount", data.amount, required=True)
    quantity = clean_int(v, "quantity", data.quantity, required=True, minimum=1, maximum=MAX_QUANTITY)
    product_id = clean_id(v, "product_id", data.product_id)
    rep_id = clean_id(v, "rep_id", data.rep_id)
    clean_text(v, "idempotency_key", idempotency_key, max_length=IDEMPOTENCY_KEY_MAX)
    if product_id is not None and session.get(Product, product_id) is None:
        v.add("product_id", "error.unknown")
    v.raise_if_any()
    assert customer_id is not None  # required above
    customer, rep_id = customer_and_rep(session, actor=actor, customer_id=customer_id, rep_id=rep_id)
    row = Order(
        customer_id=customer.id,
        rep_id=rep_id,
        ordered_on=ordered_on,
        amount=amount,
        quantity=quantity,
        product_id=product_id,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    saved, inserted = create_audited(session, actor=actor, row=row, key=idempotency_key, entity=ENTITY, now=now)
    return saved if inserted else _visible_order(session, actor=actor, order_id=saved.id)


def delete_order(session: Session, *, actor: Actor, order_id: int, now: datetime) -> Order:
    """Soft-delete an order the actor may see (a rep: their own or on their customers)."""
    row = _visible_order(session, actor=actor, order_id=order_id)
    soft_delete_audited(session, actor=actor, row=row, entity=ENTITY, now=now)
    return row


def list_orders(
    session: Session,
    *,
    actor: Actor,
    customer_id: int | None = None,
    period: Period | None = None,
    limit: int = LIST_LIMIT,
) -> pd.DataFrame:
    """Return the newest live orders the actor may see (columns: LIST_COLUMNS; amount is float)."""
    query = (
        select(
            Order.id,
            Order.ordered_on,
            Order.customer_id,
            Customer.code,
            Customer.name,
            Order.amount,
            Order.quantity,
            Order.product_id,
            Product.name,
            Order.rep_id,
            User.display_name,
        )
        .join(Customer, Customer.id == Order.customer_id)
        .join(User, User.id == Order.rep_id)
        .outerjoin(Product, Product.id == Order.product_id)
        .where(
            record_scope(actor, rep_column=Order.rep_id, customer_column=Order.customer_id),
            Order.deleted_at.is_(None),
            Customer.deleted_at.is_(None),
        )
        .order_by(desc(Order.ordered_on), desc(Order.id))
        .limit(max(0, limit))
    )
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    if period is not None:
        query = query.where(Order.ordered_on >= period.start, Order.ordered_on < period.end)
    frame = pd.DataFrame([tuple(row) for row in session.execute(query)], columns=LIST_COLUMNS)
    frame["amount"] = frame["amount"].map(float).astype("float64")
    return frame
