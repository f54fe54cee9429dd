"""Customers and contacts: validation, owner rules, optimistic locking, recycle bin, search, profile."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from crm.access import get_visible_customer
from crm.audit import data_version
from crm.contacts import ContactInput, create_contact, delete_contact, list_contacts, update_contact
from crm.customers import (
    CustomerInput,
    create_customer,
    customer_list_rows,
    customer_profile,
    customer_regions,
    delete_customer,
    find_duplicates,
    list_customers,
    reassign_customer,
    restore_customer,
    update_customer,
)
from crm.errors import ConflictError, FieldError, NotFoundError, PermissionDeniedError, ValidationError
from crm.interactions import customer_choices
from crm.models import AuditEvent, Contact, Customer, Role
from tests.factories import (
    actor,
    make_complaint,
    make_customer,
    make_interaction,
    make_opportunity,
    make_order,
    make_survey,
    make_user,
)

NOW = datetime(2026, 3, 10, 9, 0)


@pytest.fixture
def people(session):
    manager = make_user(session, "mgr", role=Role.MANAGER, team="north")
    rep = make_user(session, "rep", team="north", manager=manager)
    rep2 = make_user(session, "rep2", team="north", manager=manager)
    other = make_user(session, "other", team="south")
    admin = make_user(session, "admin", role=Role.ADMIN)
    return SimpleNamespace(manager=manager, rep=rep, rep2=rep2, other=other, admin=admin)


def audit_events(session, entity: str, entity_id: int) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity == entity, AuditEvent.entity_id == str(entity_id))
            .order_by(AuditEvent.id)
        )
    )


def test_create_sets_code_name_key_owner_and_audit(session, people) -> None:
    before = data_version(session)
    customer = create_customer(
        session,
        actor=actor(people.rep),
        data=CustomerInput(name="  Acme Ltd ", phone="138-0000-1111", email="Buyer@ACME.CN", tier="Prospect"),
        now=NOW,
    )
    session.commit()
    assert customer.code == f"C{customer.id:06d}"
    assert (customer.name, customer.name_key) == ("Acme Ltd", "acme ltd")
    assert customer.owner_id == people.rep.id  # a rep creates for themself by default
    assert customer.email == "Buyer@acme.cn"  # the domain part is case-insensitive
    assert customer.tier == "prospect"
    assert (customer.version, customer.created_at, customer.updated_by_id) == (1, NOW, people.rep.id)
    [event] = audit_events(session, "customer", customer.id)
    assert (event.action, event.actor_id, event.at) == ("create", people.rep.id, NOW)
    assert event.changes["name"] == [None, "Acme Ltd"]
    assert event.changes["code"] == [None, customer.code]
    assert "version" not in event.changes
    assert data_version(session) == before + 1


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("name", "", FieldError("error.required")),
        ("name", "   ", FieldError("error.required")),
        ("name", "x" * 201, FieldError("error.too_long", {"max": 200})),
        ("kind", "robot", FieldError("error.invalid_choice", {"choices": "company, person"})),
        ("tier", "vip", FieldError("error.invalid_choice", {"choices": "lead, prospect, customer, key, strategic"})),
        ("status", "gone", FieldError("error.invalid_choice", {"choices": "active, lost"})),
        (
            "source",
            "tv",
            FieldError("error.invalid_choice", {"choices": "exhibition, referral, website, cold_call, event, other"}),
        ),
        ("size", "huge", FieldError("error.invalid_choice", {"choices": "large, medium, small"})),
        ("industry", "x" * 65, FieldError("error.too_long", {"max": 64})),
        ("region", "x" * 65, FieldError("error.too_long", {"max": 64})),
        ("province", "x" * 65, FieldError("error.too_long", {"max": 64})),
        ("city", "x" * 65, FieldError("error.too_long", {"max": 64})),
        ("address", "x" * 301, FieldError("error.too_long", {"max": 300})),
        ("phone", "call me", FieldError("error.invalid_phone")),
        ("phone", "1234", FieldError("error.invalid_phone")),  # 4 digits < 5
        ("phone", "1" * 21, FieldError("error.invalid_phone")),  # 21 digits > 20
        ("phone", "138#0000", FieldError("error.invalid_phone")),
        ("email", "buyer.acme.cn", FieldError("error.invalid_email")),
        ("email", "buyer@acme", FieldError("error.invalid_email")),
        ("website", "x" * 255, FieldError("error.too_long", {"max": 254})),
        ("notes", "x" * 4001, FieldError("error.too_long", {"max": 4000})),
        ("owner_id", "abc", FieldError("error.invalid_number")),
    ],
)
def test_each_field_is_validated(session, people, field: str, value: str, error: FieldError) -> None:
    data = dataclasses.replace(CustomerInput(name="Acme"), **{field: value})
    with pytest.raises(ValidationError) as caught:
        create_customer(session, actor=actor(people.admin), data=data, now=NOW)
    assert caught.value.fields == {field: error}


@pytest.mark.parametrize("phone", ["12345", "+86 (010) 1234-5678", "1" * 20, "138 0000 1111"])
def test_valid_phones_are_accepted(session, people, phone: str) -> None:
    customer = create_customer(session, actor=actor(people.rep), data=CustomerInput(name="Acme", phone=phone), now=NOW)
    assert customer.phone == phone


def test_every_bad_field_reported_at_once_and_input_untouched(session, people) -> None:
    data = CustomerInput(name="", tier="vip", phone="abc", email="nope", notes="x" * 4001)
    copy = dataclasses.replace(data)
    with pytest.raises(ValidationError) as caught:
        create_customer(session, actor=actor(people.rep), data=data, now=NOW)
    assert set(caught.value.fields) == {"name", "tier", "phone", "email", "notes"}
    assert data == copy
    assert session.scalar(select(func.count()).select_from(Customer)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


@pytest.mark.parametrize(
    ("who", "owner", "expected_owner"),
    [
        ("rep", None, "rep"),  # a rep's customer is always their own
        ("manager", None, None),  # a manager's default is the unassigned pool
        ("manager", "rep2", "rep2"),
        ("admin", "other", "other"),
        ("admin", None, None),
    ],
)
def test_owner_defaults(session, people, who: str, owner: str | None, expected_owner: str | None) -> None:
    owner_id = getattr(people, owner).id if owner else None
    customer = create_customer(
        session, actor=actor(getattr(people, who)), data=CustomerInput(name="Acme", owner_id=owner_id), now=NOW
    )
    assert customer.owner_id == (getattr(people, expected_owner).id if expected_owner else None)


def test_owner_must_be_an_active_seller(session, people) -> None:
    gone = make_user(session, "gone", team="north", active=False)
    for owner in (gone, people.admin):
        with pytest.raises(ValidationError) as caught:
            create_customer(
                session, actor=actor(people.admin), data=CustomerInput(name="Acme", owner_id=owner.id), now=NOW
            )
        assert caught.value.fields == {"owner_id": FieldError("error.not_allowed")}


def test_update_audits_old_and_new_values(session, people) -> None:
    customer = create_customer(session, actor=actor(people.rep), data=CustomerInput(name="Acme", tier="lead"), now=NOW)
    later = NOW + timedelta(hours=2)
    update_customer(
        session,
        actor=actor(people.manager),
        customer_id=customer.id,
        data=CustomerInput(name="Acme Group", tier="key", version=1),
        now=later,
    )
    session.commit()
    assert (customer.name, customer.tier, customer.version) == ("Acme Group", "key", 2)
    assert (customer.updated_at, customer.updated_by_id) == (later, people.manager.id)
    create, edit = audit_events(session, "customer", customer.id)
    assert (edit.action, edit.actor_id, edit.at) == ("update", people.manager.id, later)
    assert edit.changes == {
        "name": ["Acme", "Acme Group"],
        "name_key": ["acme", "acme group"],
        "tier": ["lead", "key"],
    }


def test_update_without_changes_writes_nothing(session, people) -> None:
    customer = create_customer(session, actor=actor(people.rep), data=CustomerInput(name="Acme"), now=NOW)
    update_customer(
        session,
        actor=actor(people.rep),
        customer_id=customer.id,
        data=CustomerInput(name="Acme", version=1),
        now=NOW + timedelta(hours=1),
    )
    assert customer.version == 1
    assert [e.action for e in audit_events(session, "customer", customer.id)] == ["create"]


def test_update_requires_the_loaded_version(session, people) -> None:
    customer = create_customer(session, actor=actor(people.rep), data=CustomerInput(name="Acme"), now=NOW)
    with pytest.raises(ValidationError) as caught:
        update_customer(
            session, actor=actor(people.rep), customer_id=customer.id, data=CustomerInput(name="B"), now=NOW
        )
    assert caught.value.fields == {"version": FieldError("error.required")}


def test_stale_edit_names_who_changed_it(session, people) -> None:
    customer = create_customer(session, actor=actor(people.rep), data=CustomerInput(name="Acme"), now=NOW)
    changed_at = NOW + timedelta(minutes=30)
    update_customer(
        session,
        actor=actor(people.manager),
        customer_id=customer.id,
        data=CustomerInput(name="Acme Group", version=1),
        now=changed_at,
    )
    session.commit()
    stale = CustomerInput(name="Acme Corp", version=1)  # the rep loaded the form before the manager saved
    with pytest.raises(ConflictError) as caught:
        update_customer(session, actor=actor(people.rep), customer_id=customer.id, data=stale, now=NOW + timedelta(1))
    assert (caught.value.changed_by, caught.value.changed_at) == ("Mgr", changed_at)
    assert customer.name == "Acme Group"


def test_concurrent_save_caught_at_flush(session, people) -> None:
    customer = create_customer(session, actor=actor(people.rep), data=CustomerInput(name="Acme"), now=NOW)
    session.commit()
    changed_at = NOW + timedelta(minutes=5)
    # Another writer saves behind this session's back; its identity map still says version 1.
    session.execute(
        update(Customer.__table__)
        .where(Customer.__table__.c.id == customer.id)
        .values(version=2, name="Acme Group", updated_by_id=people.manager.id, updated_at=changed_at)
    )
    assert customer.version == 1
    with pytest.raises(ConflictError) as caught:
        update_customer(
            session,
            actor=actor(people.rep),
            customer_id=customer.id,
            data=CustomerInput(name="Acme Corp", version=1),
            now=NOW + timedelta(minutes=10),
        )
    assert (caught.value.changed_by, caught.value.changed_at) == ("Mgr", changed_at)
    session.commit()  # the savepoint kept the transaction usable
    assert session.scalar(select(Customer.name).where(Customer.id == customer.id)) == "Acme Group"
    assert [e.action for e in audit_events(session, "customer", customer.id)] == ["create"]


def test_soft_delete_hides_and_restore_brings_back(session, people) -> None:
    rep = actor(people.rep)
    keep = create_customer(session, actor=rep, data=CustomerInput(name="Beta"), now=NOW)
    gone = create_customer(session, actor=rep, data=CustomerInput(name="Acme"), now=NOW)
    deleted_at = NOW + timedelta(hours=1)
    delete_customer(session, actor=rep, customer_id=gone.id, now=deleted_at)
    session.commit()
    assert list(list_customers(session, actor=rep).rows["name"]) == ["Beta"]
    assert [c.name for c in customer_choices(session, actor=rep, query="")] == ["Beta"]
    with pytest.raises(NotFoundError):
        get_visible_customer(session, actor=rep, customer_id=gone.id)
    with pytest.raises(NotFoundError):
        update_customer(session, actor=rep, customer_id=gone.id, data=CustomerInput(name="X", version=2), now=NOW)
    assert list(list_customers(session, actor=rep, only_deleted=True).rows["name"]) == ["Acme"]
    assert list(list_customers(session, actor=rep, include_deleted=True).rows["name"]) == ["Acme", "Beta"]
    with pytest.raises(PermissionDeniedError):
        restore_customer(session, actor=rep, customer_id=gone.id, now=NOW)

    restore_customer(session, actor=actor(people.manager), customer_id=gone.id, now=deleted_at + timedelta(1))
    session.commit()
    assert list(list_customers(session, actor=rep).rows["name"]) == ["Acme", "Beta"]
    actions = [(e.action, e.changes) for e in audit_events(session, "customer", gone.id)][1:]
    assert actions == [
        ("delete", {"deleted_at": [None, deleted_at.isoformat()]}),
        ("restore", {"deleted_at": [deleted_at.isoformat(), None]}),
    ]
    assert keep.deleted_at is None


def test_reassign_within_team_and_to_pool(session, people) -> None:
    customer = make_customer(session, "Acme", owner=people.rep)
    manager = actor(people.manager)
    reassign_customer(session, actor=manager, customer_id=customer.id, owner_id=people.rep2.id, now=NOW)
    assert customer.owner_id == people.rep2.id
    with pytest.raises(PermissionDeniedError):
        reassign_customer(session, actor=manager, customer_id=customer.id, owner_id=people.other.id, now=NOW)
    reassign_customer(session, actor=manager, customer_id=customer.id, owner_id=None, now=NOW)
    session.commit()
    assert customer.owner_id is None
    changes = [e.changes for e in audit_events(session, "customer", customer.id) if e.action == "reassign"]
    assert changes == [
        {"owner_id": [people.rep.id, people.rep2.id]},
        {"owner_id": [people.rep2.id, None]},
    ]
    with pytest.raises(PermissionDeniedError):
        reassign_customer(session, actor=actor(people.rep), customer_id=customer.id, owner_id=None, now=NOW)


@pytest.fixture
def directory(session, people):
    make_customer(session, "Acme Ltd", owner=people.rep, phone="138-0000-1111", tier="key", region="east")
    make_customer(session, "acorn_100%", owner=people.rep, phone="139 2222", tier="lead", region="west")
    make_customer(session, "Beta Co", owner=people.rep2, phone="010 5555", tier="key", region="east")
    make_customer(session, "Pool Inc", owner=None, tier="lead")
    make_customer(session, "Southern", owner=people.other, tier="key")
    return people


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("", ["Acme Ltd", "acorn_100%", "Beta Co", "Pool Inc"]),
        ("ac", ["Acme Ltd", "acorn_100%"]),  # name prefix, case-insensitive
        ("ACM", ["Acme Ltd"]),
        ("acorn_1", ["acorn_100%"]),
        ("acorn%", []),  # % is a literal, not a wildcard
        ("a_me", []),  # _ is a literal, not a wildcard
        ("me", []),  # prefix only, not substring
        ("138", ["Acme Ltd"]),  # phone prefix
        ("010 5", ["Beta Co"]),
        ("Southern", []),  # another team's customer stays invisible
    ],
)
def test_search_by_name_and_phone_prefix(session, directory, query: str, names: list[str]) -> None:
    page = list_customers(session, actor=actor(directory.manager), query=query)
    assert list(page.rows["name"]) == names
    assert page.total == len(names)


def test_search_by_code_prefix(session, directory) -> None:
    acme = session.scalar(select(Customer).where(Customer.name == "Acme Ltd"))
    page = list_customers(session, actor=actor(directory.manager), query=acme.code.lower())
    assert list(page.rows["code"]) == [acme.code]


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        ({"tier": "key"}, ["Acme Ltd", "Beta Co"]),
        ({"region": "east"}, ["Acme Ltd", "Beta Co"]),
        ({"owner_id": "rep2"}, ["Beta Co"]),
        ({"unassigned": True}, ["Pool Inc"]),
        ({"tier": "lead", "query": "p"}, ["Pool Inc"]),
    ],
)
def test_list_filters(session, directory, filters: dict, names: list[str]) -> None:
    if "owner_id" in filters:
        filters = {**filters, "owner_id": getattr(directory, filters["owner_id"]).id}
    page = list_customers(session, actor=actor(directory.manager), **filters)
    assert list(page.rows["name"]) == names


def test_paging_keeps_the_total(session, directory) -> None:
    page = list_customers(session, actor=actor(directory.manager), page=2, page_size=3)
    # 4 visible customers by name: Acme Ltd, acorn_100%, Beta Co | Pool Inc
    assert (page.total, page.pages, list(page.rows["name"])) == (4, 2, ["Pool Inc"])
    assert list(page.rows.columns)[:4] == ["id", "code", "name", "kind"]
    assert page.rows.loc[0, "owner_name"] is None


def test_rep_lists_only_own_customers(session, directory) -> None:
    assert list(list_customers(session, actor=actor(directory.rep)).rows["name"]) == ["Acme Ltd", "acorn_100%"]
    assert list(list_customers(session, actor=actor(directory.admin)).rows["name"]) == [
        "Acme Ltd",
        "acorn_100%",
        "Beta Co",
        "Pool Inc",
        "Southern",
    ]


def test_find_duplicates(session, directory) -> None:
    manager = actor(directory.manager)
    acme = session.scalar(select(Customer).where(Customer.name == "Acme Ltd"))
    [by_name] = find_duplicates(session, actor=manager, name=" ACME LTD ", phone=None)
    assert (by_name.id, by_name.same_name, by_name.same_phone, by_name.owner_name) == (acme.id, True, False, "Rep")
    [by_phone] = find_duplicates(session, actor=manager, name="Other", phone="(138) 0000 1111")
    assert (by_phone.id, by_phone.same_name, by_phone.same_phone) == (acme.id, False, True)
    assert find_duplicates(session, actor=manager, name="Acme Ltd", phone=None, exclude_id=acme.id) == []
    assert find_duplicates(session, actor=manager, name="", phone="") == []
    # The other team's customer is no duplicate the manager can be told about.
    assert find_duplicates(session, actor=manager, name="southern", phone=None) == []
    assert [d.name for d in find_duplicates(session, actor=actor(directory.admin), name="southern", phone=None)] == [
        "Southern"
    ]


def test_customer_profile(session, people) -> None:
    customer = make_customer(session, "Acme", owner=people.rep)
    make_interaction(session, customer, people.rep, datetime(2026, 1, 5, 10))
    make_interaction(session, customer, people.rep2, datetime(2026, 2, 5, 10))
    make_order(session, customer, people.rep, date(2026, 1, 6), "100.50")
    make_order(session, customer, people.rep, date(2026, 2, 6), 250)
    make_order(session, customer, people.rep, date(2026, 2, 7), 999).deleted_at = NOW
    make_opportunity(session, customer, people.rep, "won", amount=300, closed_on=date(2026, 2, 1))
    make_survey(session, customer, people.rep, date(2026, 2, 8), 4, recommend=9)
    make_complaint(session, customer, people.rep, datetime(2026, 2, 9, 8))
    create_contact(session, actor=actor(people.rep), customer_id=customer.id, data=ContactInput(name="Zhang"), now=NOW)
    create_contact(
        session,
        actor=actor(people.rep),
        customer_id=customer.id,
        data=ContactInput(name="Wang", is_primary=True),
        now=NOW,
    )
    session.commit()
    profile = customer_profile(session, actor=actor(people.rep), customer_id=customer.id)
    assert profile.customer.id == customer.id
    assert profile.owner_name == "Rep"
    assert [c.name for c in profile.contacts] == ["Wang", "Zhang"]  # primary first
    assert list(profile.interactions["rep_name"]) == ["Rep2", "Rep"]  # newest first
    assert list(profile.orders["amount"]) == [250.0, 100.5]  # the deleted order is left out
    assert profile.lifetime_value == pytest.approx(100.50 + 250)
    assert profile.order_count == 2
    assert list(profile.opportunities["stage"]) == ["won"]
    assert list(profile.surveys["recommend"]) == [9]
    assert list(profile.complaints["severity"]) == ["high"]
    with pytest.raises(NotFoundError, match="not found or not yours"):
        customer_profile(session, actor=actor(people.other), customer_id=customer.id)


def test_contacts_keep_one_primary(session, people) -> None:
    customer = make_customer(session, "Acme", owner=people.rep)
    rep = actor(people.rep)
    first = create_contact(
        session, actor=rep, customer_id=customer.id, data=ContactInput(name="Li", is_primary=True), now=NOW
    )
    second = create_contact(
        session, actor=rep, customer_id=customer.id, data=ContactInput(name="Wu", is_primary="yes"), now=NOW
    )
    assert (first.is_primary, second.is_primary) == (False, True)
    update_contact(
        session,
        actor=rep,
        contact_id=first.id,
        data=ContactInput(name="Li Lei", is_primary=True, title="CTO"),
        now=NOW,
    )
    assert (first.is_primary, second.is_primary, first.title) == (True, False, "CTO")
    primaries = select(func.count()).select_from(Contact).where(Contact.is_primary.is_(True))
    assert session.scalar(primaries) == 1
    delete_contact(session, actor=rep, contact_id=second.id, now=NOW)
    session.commit()
    assert [c.name for c in list_contacts(session, actor=rep, customer_id=customer.id)] == ["Li Lei"]
    [deleted] = [e for e in audit_events(session, "contact", second.id) if e.action == "delete"]
    assert deleted.changes["name"] == ["Wu", None]


def test_contact_validation_and_scope(session, people) -> None:
    customer = make_customer(session, "Acme", owner=people.rep)
    data = ContactInput(name="", phone="x", email="y", birthday=date(2026, 3, 12), is_primary="maybe")
    with pytest.raises(ValidationError) as caught:
        create_contact(session, actor=actor(people.rep), customer_id=customer.id, data=data, now=NOW)
    assert caught.value.fields == {
        "name": FieldError("error.required"),
        "phone": FieldError("error.invalid_phone"),
        "email": FieldError("error.invalid_email"),
        "birthday": FieldError("error.in_future"),
        "is_primary": FieldError("error.invalid_choice", {"choices": "yes, no"}),
    }
    contact = create_contact(
        session, actor=actor(people.rep), customer_id=customer.id, data=ContactInput(name="Li"), now=NOW
    )
    with pytest.raises(NotFoundError):
        create_contact(
            session, actor=actor(people.other), customer_id=customer.id, data=ContactInput(name="X"), now=NOW
        )
    with pytest.raises(NotFoundError):
        update_contact(session, actor=actor(people.other), contact_id=contact.id, data=ContactInput(name="X"), now=NOW)
    with pytest.raises(NotFoundError):
        delete_contact(session, actor=actor(people.other), contact_id=contact.id, now=NOW)


@pytest.mark.parametrize(
    ("who", "regions"),
    [
        ("rep", ["east", "west"]),  # Acme (east), acorn (west)
        ("rep2", ["east"]),  # Beta Co
        ("manager", ["east", "west"]),  # team north + pool (Pool Inc has no region)
        ("other", []),  # Southern has no region
    ],
)
def test_customer_regions_are_scoped_and_distinct(session, directory, who: str, regions: list[str]) -> None:
    assert customer_regions(session, actor=actor(getattr(directory, who))) == regions


def test_customer_regions_skip_deleted(session, directory) -> None:
    acorn = session.scalar(select(Customer).where(Customer.name == "acorn_100%"))
    delete_customer(session, actor=actor(directory.rep), customer_id=acorn.id, now=NOW)
    assert customer_regions(session, actor=actor(directory.rep)) == ["east"]


@pytest.mark.parametrize(
    ("who", "filters", "names"),
    [
        ("manager", {}, ["Acme Ltd", "acorn_100%", "Beta Co", "Pool Inc"]),
        ("manager", {"tier": "key"}, ["Acme Ltd", "Beta Co"]),
        ("manager", {"unassigned": True}, ["Pool Inc"]),
        ("manager", {"query": "ac"}, ["Acme Ltd", "acorn_100%"]),
        ("rep", {}, ["Acme Ltd", "acorn_100%"]),
        ("admin", {"region": "east"}, ["Acme Ltd", "Beta Co"]),
    ],
)
def test_customer_list_rows_match_the_list_without_paging(
    session, directory, who: str, filters: dict, names: list[str]
) -> None:
    who_actor = actor(getattr(directory, who))
    rows = customer_list_rows(session, actor=who_actor, **filters)
    assert list(rows["name"]) == names
    assert list(rows.columns) == list(list_customers(session, actor=who_actor).rows.columns)
    # A page of 1 row still reports the same total the export returns.
    assert list_customers(session, actor=who_actor, page_size=1, **filters).total == len(rows)


def test_customer_list_rows_recycle_bin(session, directory) -> None:
    acme = session.scalar(select(Customer).where(Customer.name == "Acme Ltd"))
    delete_customer(session, actor=actor(directory.rep), customer_id=acme.id, now=NOW)
    manager = actor(directory.manager)
    assert list(customer_list_rows(session, actor=manager, only_deleted=True)["name"]) == ["Acme Ltd"]
    assert "Acme Ltd" not in list(customer_list_rows(session, actor=manager)["name"])
    assert list(customer_list_rows(session, actor=manager, only_deleted=True)["owner_name"]) == ["Rep"]
