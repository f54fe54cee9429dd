"""Orders and opportunities: validation, soft delete, stage moves, optimistic locking, the pipeline board."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pandas as pd
import pytest
from sqlalchemy import func, select

from crm.access import Filters
from crm.customers import customer_profile
from crm.errors import ConflictError, FieldError, NotFoundError, PermissionDeniedError, ValidationError
from crm.models import AuditEvent, Opportunity, Order, Product, Role
from crm.opportunities import (
    OpenPipeline,
    OpportunityInput,
    ProductChoice,
    StageMove,
    create_opportunity,
    delete_opportunity,
    move_stage,
    open_pipeline,
    opportunities_by_stage,
    pipeline_stages,
    product_choices,
    update_opportunity,
)
from crm.orders import OrderInput, create_order, delete_order, list_orders
from crm.periods import Period
from tests.factories import actor, make_customer, make_opportunity, make_order, make_org, make_user, soft_delete

NOW = datetime(2026, 3, 10, 12, 0)  # UTC noon: the latest local date on earth is 2026-03-11
TODAY = NOW.date()


@pytest.fixture
def world(session):
    manager = make_user(session, "mgr", role=Role.MANAGER, team="north")
    rep = make_user(session, "rep", team="north", manager=manager)
    rep2 = make_user(session, "rep2", team="north", manager=manager)
    other = make_user(session, "other", team="south")
    acme = make_customer(session, "Acme", owner=rep)
    beta = make_customer(session, "Beta", owner=rep2)
    south = make_customer(session, "Southern", owner=other)
    product = Product(name="GTX Pro", series="GTX", list_price=Decimal("4821"))
    session.add(product)
    session.flush()
    return SimpleNamespace(
        manager=manager, rep=rep, rep2=rep2, other=other, acme=acme, beta=beta, south=south, product=product
    )


def order(customer: int, **fields) -> OrderInput:
    return dataclasses.replace(OrderInput(customer_id=customer, ordered_on=TODAY, amount="100"), **fields)


def test_create_order(session, world) -> None:
    row = create_order(
        session,
        actor=actor(world.rep),
        data=order(world.acme.id, amount="1,234.505", quantity="3", product_id=world.product.id),
        now=NOW,
    )
    session.commit()
    assert (row.amount, row.quantity, row.product_id, row.rep_id) == (
        Decimal("1234.51"),  # rounded half-up to cents
        3,
        world.product.id,
        world.rep.id,
    )
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.entity == "order")).all()
    assert event.changes["amount"] == [None, "1234.51"]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("customer_id", None, FieldError("error.required")),
        ("amount", None, FieldError("error.required")),
        ("amount", "-0.01", FieldError("error.negative")),
        ("amount", "ten", FieldError("error.invalid_number")),
        ("amount", "NaN", FieldError("error.invalid_number")),
        ("amount", "1000000000000", FieldError("error.out_of_range", {"min": 0, "max": "999999999999.99"})),
        ("quantity", 0, FieldError("error.out_of_range", {"min": 1, "max": 1_000_000})),
        ("quantity", None, FieldError("error.required")),
        ("ordered_on", None, FieldError("error.required")),
        ("ordered_on", date(2026, 3, 12), FieldError("error.in_future")),
        ("ordered_on", "2026-02-30", FieldError("error.invalid_date")),
        ("product_id", 999, FieldError("error.unknown")),
        ("rep_id", 0, FieldError("error.invalid_number")),
    ],
)
def test_order_fields_are_validated(session, world, field: str, value: object, error: FieldError) -> None:
    data = order(world.acme.id, **{field: value})
    with pytest.raises(ValidationError) as caught:
        create_order(session, actor=actor(world.rep), data=data, now=NOW)
    assert caught.value.fields == {field: error}


@pytest.mark.parametrize(
    ("ordered_on", "amount"),
    [
        (date(2026, 3, 11), 0),  # already 3/11 in UTC+12..14 at 12:00 UTC; a free order is allowed
        ("2026-03-01", 0.1),
    ],
)
def test_order_boundaries_accepted(session, world, ordered_on: object, amount: object) -> None:
    row = create_order(
        session, actor=actor(world.rep), data=order(world.acme.id, ordered_on=ordered_on, amount=amount), now=NOW
    )
    assert row.amount == Decimal(str(amount)).quantize(Decimal("0.01"))


def test_order_all_errors_at_once_and_input_untouched(session, world) -> None:
    data = OrderInput(customer_id=world.acme.id, ordered_on="2027-01-01", amount=-5, quantity=0)
    copy = dataclasses.replace(data)
    with pytest.raises(ValidationError) as caught:
        create_order(session, actor=actor(world.rep), data=data, now=NOW)
    assert set(caught.value.fields) == {"ordered_on", "amount", "quantity"}
    assert data == copy


def test_order_scope_and_idempotency(session, world) -> None:
    with pytest.raises(NotFoundError):
        create_order(session, actor=actor(world.rep), data=order(world.beta.id), now=NOW)
    with pytest.raises(PermissionDeniedError):
        create_order(session, actor=actor(world.rep), data=order(world.acme.id, rep_id=world.rep2.id), now=NOW)
    first = create_order(session, actor=actor(world.rep), data=order(world.acme.id), now=NOW, idempotency_key="o1")
    again = create_order(session, actor=actor(world.rep), data=order(world.acme.id), now=NOW, idempotency_key="o1")
    assert again.id == first.id
    assert session.scalar(select(func.count()).select_from(Order)) == 1


def test_soft_deleted_order_leaves_lists_and_lifetime_value(session, world) -> None:
    keep = make_order(session, world.acme, world.rep, date(2026, 3, 1), 300)
    gone = make_order(session, world.acme, world.rep, date(2026, 3, 2), 200)
    make_order(session, world.beta, world.rep2, date(2026, 3, 3), 50)
    rep = actor(world.rep)
    assert customer_profile(session, actor=rep, customer_id=world.acme.id).lifetime_value == 300 + 200
    with pytest.raises(NotFoundError):
        delete_order(session, actor=actor(world.other), order_id=gone.id, now=NOW)
    delete_order(session, actor=rep, order_id=gone.id, now=NOW)
    session.commit()
    assert list(list_orders(session, actor=rep)["id"]) == [keep.id]
    assert customer_profile(session, actor=rep, customer_id=world.acme.id).lifetime_value == 300
    assert list(list_orders(session, actor=actor(world.manager))["amount"]) == [50.0, 300.0]
    march_first = Period(date(2026, 3, 1), date(2026, 3, 2))
    assert list(list_orders(session, actor=actor(world.manager), period=march_first)["id"]) == [keep.id]
    with pytest.raises(NotFoundError):
        delete_order(session, actor=rep, order_id=gone.id, now=NOW)  # already in the bin


def test_pipeline_stages_come_from_data(session) -> None:
    assert [(s.key, s.kind.value) for s in pipeline_stages(session)] == [
        ("prospecting", "open"),
        ("engaging", "open"),
        ("won", "won"),
        ("lost", "lost"),
    ]


def test_create_opportunity_defaults_and_scope(session, world) -> None:
    row = create_opportunity(
        session, actor=actor(world.rep), data=OpportunityInput(title="Fleet deal", amount="5000"), now=NOW
    )
    assert (row.customer_id, row.owner_id, row.stage, row.created_on, row.version) == (
        None,  # a deal may start without a customer
        world.rep.id,
        "prospecting",
        TODAY,
        1,
    )
    on_customer = create_opportunity(
        session, actor=actor(world.rep), data=OpportunityInput(customer_id=world.acme.id, stage="engaging"), now=NOW
    )
    assert (on_customer.customer_id, on_customer.engaged_on) == (world.acme.id, TODAY)
    with pytest.raises(NotFoundError):
        create_opportunity(session, actor=actor(world.rep), data=OpportunityInput(customer_id=world.beta.id), now=NOW)
    with pytest.raises(PermissionDeniedError):
        create_opportunity(session, actor=actor(world.rep), data=OpportunityInput(owner_id=world.rep2.id), now=NOW)


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        (
            OpportunityInput(stage="signed"),
            {"stage": FieldError("error.invalid_choice", {"choices": "prospecting, engaging, won, lost"})},
        ),
        (OpportunityInput(stage="lost"), {"lost_reason": FieldError("error.required")}),
        (
            OpportunityInput(amount=-1, title="x" * 201, created_on="2027-01-01"),
            {
                "amount": FieldError("error.negative"),
                "title": FieldError("error.too_long", {"max": 200}),
                "created_on": FieldError("error.in_future"),
            },
        ),
    ],
)
def test_opportunity_validation(session, world, data: OpportunityInput, errors: dict) -> None:
    with pytest.raises(ValidationError) as caught:
        create_opportunity(session, actor=actor(world.rep), data=data, now=NOW)
    assert caught.value.fields == errors


def test_stage_moves_close_and_reopen(session, world) -> None:
    rep = actor(world.rep)
    deal = create_opportunity(
        session, actor=rep, data=OpportunityInput(customer_id=world.acme.id, created_on=date(2026, 2, 1)), now=NOW
    )
    move_stage(session, actor=rep, opportunity_id=deal.id, data=StageMove("engaging", 1, on=date(2026, 2, 5)), now=NOW)
    assert (deal.stage, deal.engaged_on, deal.closed_on, deal.version) == ("engaging", date(2026, 2, 5), None, 2)

    with pytest.raises(ValidationError) as caught:
        move_stage(session, actor=rep, opportunity_id=deal.id, data=StageMove("lost", 2), now=NOW)
    assert caught.value.fields == {"lost_reason": FieldError("error.required")}

    move_stage(
        session,
        actor=rep,
        opportunity_id=deal.id,
        data=StageMove("lost", 2, on="2026-03-01", lost_reason="Price"),
        now=NOW,
    )
    assert (deal.stage, deal.closed_on, deal.lost_reason) == ("lost", date(2026, 3, 1), "Price")

    move_stage(session, actor=rep, opportunity_id=deal.id, data=StageMove("engaging", 3), now=NOW)
    assert (deal.stage, deal.closed_on, deal.lost_reason) == ("engaging", None, None)  # reopened
    assert deal.engaged_on == date(2026, 2, 5)  # the first engagement date stays

    move_stage(session, actor=rep, opportunity_id=deal.id, data=StageMove("won", 4), now=NOW)
    session.commit()
    assert (deal.stage, deal.closed_on, deal.version) == ("won", TODAY, 5)  # closed on the move date by default
    moves = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.entity == "opportunity", AuditEvent.action == "move")
        .order_by(AuditEvent.id)
    ).all()
    assert [m.changes["stage"] for m in moves] == [
        ["prospecting", "engaging"],
        ["engaging", "lost"],
        ["lost", "engaging"],
        ["engaging", "won"],
    ]
    assert moves[1].changes["closed_on"] == [None, "2026-03-01"]
    assert moves[2].changes["closed_on"] == ["2026-03-01", None]


@pytest.mark.parametrize(
    ("move", "errors"),
    [
        (
            StageMove("closed", 1),
            {"stage": FieldError("error.invalid_choice", {"choices": "prospecting, engaging, won, lost"})},
        ),
        (StageMove("won", 1, on=date(2026, 1, 31)), {"on": FieldError("error.date_order")}),  # before created_on
        (StageMove("won", 1, on=date(2026, 3, 12)), {"on": FieldError("error.in_future")}),
        (StageMove("won", None), {"version": FieldError("error.required")}),
        (StageMove("lost", 1, lost_reason="x" * 201), {"lost_reason": FieldError("error.too_long", {"max": 200})}),
    ],
)
def test_stage_move_validation(session, world, move: StageMove, errors: dict) -> None:
    deal = make_opportunity(session, world.acme, world.rep, "prospecting", created_on=date(2026, 2, 1))
    with pytest.raises(ValidationError) as caught:
        move_stage(session, actor=actor(world.rep), opportunity_id=deal.id, data=move, now=NOW)
    assert caught.value.fields == errors
    assert deal.stage == "prospecting"


def test_stale_stage_move_names_who_moved_it(session, world) -> None:
    deal = create_opportunity(
        session, actor=actor(world.rep), data=OpportunityInput(customer_id=world.acme.id), now=NOW
    )
    moved_at = NOW + timedelta(minutes=3)
    move_stage(session, actor=actor(world.manager), opportunity_id=deal.id, data=StageMove("engaging", 1), now=moved_at)
    session.commit()
    with pytest.raises(ConflictError) as caught:
        move_stage(
            session,
            actor=actor(world.rep),
            opportunity_id=deal.id,
            data=StageMove("won", 1),  # the rep's board still showed version 1
            now=moved_at + timedelta(minutes=1),
        )
    assert (caught.value.changed_by, caught.value.changed_at) == ("Mgr", moved_at)
    assert deal.stage == "engaging"


def test_update_and_delete_opportunity(session, world) -> None:
    rep = actor(world.rep)
    deal = create_opportunity(session, actor=rep, data=OpportunityInput(title="Deal", amount=100), now=NOW)
    update_opportunity(
        session,
        actor=rep,
        opportunity_id=deal.id,
        data=OpportunityInput(title="Big deal", amount="2500", customer_id=world.acme.id, version=1),
        now=NOW,
    )
    assert (deal.title, deal.amount, deal.customer_id, deal.version) == (
        "Big deal",
        Decimal("2500.00"),
        world.acme.id,
        2,
    )
    with pytest.raises(ConflictError):
        update_opportunity(session, actor=rep, opportunity_id=deal.id, data=OpportunityInput(version=1), now=NOW)
    with pytest.raises(NotFoundError):
        update_opportunity(
            session,
            actor=rep,
            opportunity_id=deal.id,
            data=OpportunityInput(customer_id=world.beta.id, version=2),
            now=NOW,
        )
    with pytest.raises(NotFoundError):
        delete_opportunity(session, actor=actor(world.other), opportunity_id=deal.id, now=NOW)
    delete_opportunity(session, actor=rep, opportunity_id=deal.id, now=NOW)
    session.commit()
    assert opportunities_by_stage(session, actor=rep).empty
    update = session.scalars(select(AuditEvent).where(AuditEvent.action == "update")).one()
    assert update.changes == {
        "title": ["Deal", "Big deal"],
        "amount": ["100.00", "2500.00"],
        "customer_id": [None, world.acme.id],
    }


def test_board_by_stage_is_scoped(session, world) -> None:
    a = make_opportunity(session, world.acme, world.rep, "engaging", amount=100)
    b = make_opportunity(session, world.acme, world.rep2, "prospecting", amount=900)  # rep2's deal on rep's customer
    c = make_opportunity(session, world.beta, world.rep, "prospecting", amount=50)  # rep's deal on rep2's customer
    d = make_opportunity(session, world.beta, world.rep2, "won", amount=70, closed_on=date(2026, 1, 15))
    e = make_opportunity(session, None, world.rep2, "prospecting", amount=10)
    f = make_opportunity(session, world.south, world.other, "lost", amount=5, closed_on=date(2026, 3, 1))
    board = opportunities_by_stage(session, actor=actor(world.rep))
    assert list(board["id"]) == [b.id, c.id, a.id]  # by stage position, then amount high to low
    assert list(board["stage_kind"]) == ["open", "open", "open"]
    manager_board = opportunities_by_stage(session, actor=actor(world.manager))
    assert list(manager_board["id"]) == [b.id, c.id, e.id, a.id, d.id]
    recent = opportunities_by_stage(session, actor=actor(world.manager), closed_since=date(2026, 2, 1))
    assert list(recent["id"]) == [b.id, c.id, e.id, a.id]
    by_rep = opportunities_by_stage(session, actor=actor(world.manager), filters=Filters(rep_id=world.rep2.id))
    assert list(by_rep["id"]) == [b.id, e.id, d.id]
    assert list(opportunities_by_stage(session, actor=actor(world.other))["id"]) == [f.id]
    assert board.loc[0, "amount"] == 900.0


# --- products, idempotency, open pipeline totals ------------------------------------------------


def test_product_choices_by_series_then_name(session, world) -> None:
    for name, series in [("Zeta", "A"), ("Alpha", "B"), ("Beta", None), ("Apex", "A")]:
        session.add(Product(name=name, series=series, list_price=Decimal("1")))
    session.flush()
    choices = product_choices(session)
    assert [(c.name, c.series) for c in choices] == [
        ("Apex", "A"),
        ("Zeta", "A"),
        ("Alpha", "B"),
        ("GTX Pro", "GTX"),
        ("Beta", None),  # no series: last
    ]
    assert choices[3] == ProductChoice(id=world.product.id, name="GTX Pro", series="GTX")


def test_opportunity_product_is_saved_and_shown_on_the_board(session, world) -> None:
    rep = actor(world.rep)
    with_product = create_opportunity(
        session, actor=rep, data=OpportunityInput(title="Pumps", amount=200, product_id=world.product.id), now=NOW
    )
    without = create_opportunity(session, actor=rep, data=OpportunityInput(title="Other", amount=100), now=NOW)
    assert with_product.product_id == world.product.id
    board = opportunities_by_stage(session, actor=rep).set_index("id")
    assert board.loc[with_product.id, "product_name"] == "GTX Pro"
    assert board.loc[with_product.id, "product_id"] == world.product.id
    assert pd.isna(board.loc[without.id, "product_name"])


def test_same_idempotency_key_twice_stores_one_opportunity(session, world) -> None:
    rep = actor(world.rep)
    data = OpportunityInput(title="Fleet deal", customer_id=world.acme.id, amount="5000")
    first = create_opportunity(session, actor=rep, data=data, now=NOW, idempotency_key="form-1")
    again = create_opportunity(session, actor=rep, data=data, now=NOW, idempotency_key="form-1")
    other = create_opportunity(session, actor=rep, data=data, now=NOW, idempotency_key="form-2")
    session.commit()
    assert again.id == first.id
    assert other.id != first.id
    assert first.idempotency_key == "form-1"
    assert session.scalar(select(func.count()).select_from(Opportunity)) == 2  # form-1 once, form-2 once
    creates = session.scalars(
        select(AuditEvent).where(AuditEvent.entity == "opportunity", AuditEvent.action == "create")
    )
    assert sorted(int(event.entity_id) for event in creates) == sorted([first.id, other.id])


def test_double_submit_race_is_stopped_by_the_unique_key(session, world, monkeypatch) -> None:
    rep = actor(world.rep)
    data = OpportunityInput(title="Fleet deal", amount="5000")
    first = create_opportunity(session, actor=rep, data=data, now=NOW, idempotency_key="race")
    session.commit()
    # The second click's lookup ran before the first click committed: only the UNIQUE key stops it.
    monkeypatch.setattr("crm.opportunities.find_by_key", lambda *_args: None)
    again = create_opportunity(session, actor=rep, data=data, now=NOW, idempotency_key="race")
    session.commit()
    assert again.id == first.id
    assert session.scalar(select(func.count()).select_from(Opportunity)) == 1


def test_idempotency_key_length_is_checked(session, world) -> None:
    with pytest.raises(ValidationError) as caught:
        create_opportunity(session, actor=actor(world.rep), data=OpportunityInput(), now=NOW, idempotency_key="k" * 65)
    assert caught.value.fields == {"idempotency_key": FieldError("error.too_long", {"max": 64})}


@pytest.fixture
def pipeline(session):
    """Open, closed, deleted deals across two teams and regions (see the test for the figures)."""
    org = make_org(session)
    cust_a = make_customer(session, "A", owner=org.rep_a, tier="key")
    cust_b = make_customer(session, "B", owner=org.rep_b, tier="customer")
    cust_c = make_customer(session, "C", owner=org.rep_c, tier="key")
    gone = make_customer(session, "Gone", owner=org.rep_a, tier="key")
    make_opportunity(session, cust_a, org.rep_a, "prospecting", amount=100)  # d1
    make_opportunity(session, cust_a, org.rep_b, "engaging", amount=250)  # d2: rep_b's deal on rep_a's customer
    make_opportunity(session, None, org.rep_a, "engaging", amount=40)  # d3: no customer yet
    make_opportunity(session, cust_b, org.rep_b, "prospecting", amount=1000)  # d4
    make_opportunity(session, cust_c, org.rep_c, "engaging", amount=7)  # d5
    no_amount = make_opportunity(session, cust_c, org.rep_c, "prospecting")  # d6: counts, adds 0
    no_amount.amount = None
    make_opportunity(session, cust_a, org.rep_a, "won", amount=5000, closed_on=date(2026, 2, 1))  # closed
    make_opportunity(session, cust_b, org.rep_b, "lost", amount=300, closed_on=date(2026, 2, 1))  # closed
    soft_delete(session, make_opportunity(session, cust_a, org.rep_a, "prospecting", amount=900))  # deleted deal
    make_opportunity(session, gone, org.rep_a, "prospecting", amount=60)  # on a deleted customer
    soft_delete(session, gone)
    return org


@pytest.mark.parametrize(
    ("who", "filters", "count", "amount"),
    [
        ("admin", {}, 6, 100 + 250 + 40 + 1000 + 7 + 0),  # d1–d6
        ("rep_a", {}, 3, 100 + 250 + 40),  # own d1, d3 and d2 on their customer
        ("rep_b", {}, 2, 250 + 1000),  # d2, d4
        ("north_manager", {}, 4, 100 + 250 + 40 + 1000),  # d1–d4
        ("south_manager", {}, 2, 7 + 0),  # d5, d6
        ("admin", {"team": "north"}, 4, 100 + 250 + 40 + 1000),
        ("admin", {"region": "east"}, 4, 100 + 40 + 7 + 0),  # owners rep_a and rep_c: d1, d3, d5, d6
        ("admin", {"rep": "rep_b"}, 2, 250 + 1000),
        ("admin", {"tier": "key"}, 4, 100 + 250 + 7 + 0),  # customers A and C; d3 has no customer
        ("north_manager", {"tier": "customer"}, 1, 1000),  # d4 on B
        ("rep_a", {"region": "west"}, 1, 250),  # d2: owner rep_b is in the west
    ],
)
def test_open_pipeline_totals(session, pipeline, who: str, filters: dict, count: int, amount: float) -> None:
    narrowing = {name: value for name, value in filters.items() if name != "rep"}  # the table is shared: no pop
    rep = filters.get("rep")
    scope = Filters(**narrowing, rep_id=None if rep is None else getattr(pipeline, rep).id)
    who_acts = actor(getattr(pipeline, who))
    totals = open_pipeline(session, actor=who_acts, filters=scope)
    assert totals == OpenPipeline(count=count, amount=pytest.approx(amount))
    assert isinstance(totals.amount, float)
    # The same deals the board lists as open.
    board = opportunities_by_stage(session, actor=who_acts, filters=scope)
    assert int((board["stage_kind"] == "open").sum()) == count


def test_open_pipeline_of_nothing_is_zero(session, world) -> None:
    assert open_pipeline(session, actor=actor(world.rep)) == OpenPipeline(count=0, amount=0.0)
