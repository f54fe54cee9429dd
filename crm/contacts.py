"""Contacts of a customer: validated, scoped, audited writes; one primary contact per customer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import desc, select
from sqlalchemy.orm import Session

from crm.access import Actor, get_visible_customer
from crm.audit import diff, record, snapshot
from crm.errors import NotFoundError, Validator
from crm.models import Contact
from crm.validation import RawDate, RawFlag, RawText, clean_date, clean_email, clean_flag, clean_phone, clean_text

ENTITY = "contact"
NAME_MAX = 128
TITLE_MAX = 128
PHONE_MAX = 32


@dataclass(frozen=True)
class ContactInput:
    """Raw values of the contact form."""

    name: RawText
    title: RawText = None
    phone: RawText = None
    email: RawText = None
    is_primary: RawFlag = False
    birthday: RawDate = None


def _clean(data: ContactInput, *, now: datetime) -> dict[str, Any]:
    v = Validator()
    values = {
        "name": clean_text(v, "name", data.name, required=True, max_length=NAME_MAX),
        "title": clean_text(v, "title", data.title, max_length=TITLE_MAX),
        "phone": clean_phone(v, "phone", data.phone, max_length=PHONE_MAX),
        "email": clean_email(v, "email", data.email),
        "is_primary": bool(clean_flag(v, "is_primary", data.is_primary)),
        "birthday": clean_date(v, "birthday", data.birthday, now=now),
    }
    v.raise_if_any()
    return values


def _unset_other_primaries(session: Session, *, actor: Actor, contact: Contact, now: datetime) -> None:
    """Keep one primary contact per customer: the one just saved."""
    others = session.scalars(
        select(Contact).where(
            Contact.customer_id == contact.customer_id, Contact.is_primary.is_(True), Contact.id != contact.id
        )
    ).all()
    for other in others:
        other.is_primary = False
        record(
            session,
            actor=actor,
            action="update",
            entity=ENTITY,
            entity_id=other.id,
            changes={"is_primary": [True, False]},
            at=now,
        )
    session.flush()


def _visible_contact(session: Session, *, actor: Actor, contact_id: int) -> Contact:
    """Return a contact of a customer the actor may see, else raise 'not found or not yours'."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFoundError(ENTITY, contact_id)
    try:
        get_visible_customer(session, actor=actor, customer_id=contact.customer_id)
    except NotFoundError:
        raise NotFoundError(ENTITY, contact_id) from None
    return contact


def create_contact(session: Session, *, actor: Actor, customer_id: int, data: ContactInput, now: datetime) -> Contact:
    """Add a contact to a customer the actor may edit."""
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id)
    values = _clean(data, now=now)
    contact = Contact(customer_id=customer.id, created_at=now, **values)
    session.add(contact)
    session.flush()
    record(
        session,
        actor=actor,
        action="create",
        entity=ENTITY,
        entity_id=contact.id,
        changes=diff({}, snapshot(contact)),
        at=now,
    )
    if contact.is_primary:
        _unset_other_primaries(session, actor=actor, contact=contact, now=now)
    return contact


def update_contact(session: Session, *, actor: Actor, contact_id: int, data: ContactInput, now: datetime) -> Contact:
    """Save the edited fields of a contact."""
    contact = _visible_contact(session, actor=actor, contact_id=contact_id)
    values = _clean(data, now=now)
    before = snapshot(contact)
    for name, value in values.items():
        setattr(contact, name, value)
    session.flush()
    changes = diff(before, snapshot(contact))
    if changes:
        record(session, actor=actor, action="update", entity=ENTITY, entity_id=contact.id, changes=changes, at=now)
    if contact.is_primary:
        _unset_other_primaries(session, actor=actor, contact=contact, now=now)
    return contact


def delete_contact(session: Session, *, actor: Actor, contact_id: int, now: datetime) -> None:
    """Delete a contact; the audit event keeps its last values."""
    contact = _visible_contact(session, actor=actor, contact_id=contact_id)
    changes = {key: [value, None] for key, value in snapshot(contact).items() if value is not None}
    session.delete(contact)
    session.flush()
    record(session, actor=actor, action="delete", entity=ENTITY, entity_id=contact_id, changes=changes, at=now)


def list_contacts(session: Session, *, actor: Actor, customer_id: int) -> list[Contact]:
    """Return a visible customer's contacts, the primary one first."""
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id)
    return list(
        session.scalars(
            select(Contact)
            .where(Contact.customer_id == customer.id)
            .order_by(desc(Contact.is_primary), Contact.name, Contact.id)
        )
    )
