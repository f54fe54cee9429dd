"""The summary tables (crm.summaries) stay exact through every write path, and KPIs read from them
equal a from-scratch recomputation over the records."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import Session

from crm import cli, summaries
from crm.access import Filters
from crm.complaints import ComplaintInput, ResolutionInput, assign_complaint, open_complaint, resolve_complaint
from crm.customers import CustomerInput, create_customer, delete_customer, reassign_customer, restore_customer
from crm.customers import update_customer as edit_customer
from crm.db import WRITE_OPTION, dispose_engines
from crm.interactions import InteractionInput, delete_interaction, log_interaction
from crm.kpi import kpi_summary
from crm.kpi.reps import rep_figures
from crm.models import (
    Complaint,
    Customer,
    Interaction,
    Opportunity,
    Order,
    PipelineStage,
    RepDayStat,
    SurveyResponse,
    User,
)
from crm.opportunities import OpportunityInput, StageMove, create_opportunity, move_stage, update_opportunity
from crm.orders import OrderInput, create_order, delete_order
from crm.periods import Period
from crm.seed import seed
from crm.surveys import SurveyInput, delete_survey, record_survey
from tests.factories import (
    BASE_TIME,
    Org,
    actor,
    make_complaint,
    make_customer,
    make_interaction,
    make_opportunity,
    make_order,
    make_org,
    make_survey,
    soft_delete,
)

SEED = 20261122
CONCURRENT_WAIT_S = 0.5  # long enough for the second writer to reach the lock the first one holds
STEPS = 160
NOW = datetime(2026, 12, 31, 18, 0)
FIRST_DAY = date(2026, 1, 1)
YEAR_DAYS = 360
PERIODS = [
    Period.quarter(2026, 1),
    Period.quarter(2026, 2),
    Period.quarter(2026, 3),
    Period.quarter(2026, 4),
    Period(date(2026, 2, 10), date(2026, 5, 20)),  # neither a month nor a quarter
]


def stats(session: Session) -> dict[tuple[int, date], dict[str, Any]]:
    """Return the stored rep_day_stats rows as {(rep, day): {measure: value}} (non-zero measures only)."""
    rows = session.execute(select(RepDayStat)).scalars()
    return {(row.rep_id, row.day): {m: getattr(row, m) for m in summaries.MEASURES if getattr(row, m)} for row in rows}


# --------------------------------------------------------------------------------------------
# Hand-made cases


@pytest.fixture
def org(session: Session) -> Org:
    return make_org(session)


def test_each_record_counts_on_its_day_for_its_rep(session: Session, org: Org) -> None:
    acme = make_customer(session, "Acme", owner=org.rep_a)
    make_interaction(session, acme, org.rep_a, datetime(2026, 3, 1, 9), kind="visit")
    make_interaction(session, acme, org.rep_a, datetime(2026, 3, 1, 17), kind="call")
    make_order(session, acme, org.rep_b, date(2026, 3, 1), "120.50")
    make_order(session, acme, org.rep_b, date(2026, 3, 1), 80)
    make_survey(session, acme, org.rep_a, date(2026, 3, 2), 4, recommend=9, quality=5)
    make_survey(session, acme, org.rep_a, date(2026, 3, 2), 2, recommend=3)
    make_opportunity(session, acme, org.rep_c, "won", amount=500, closed_on=date(2026, 3, 3))
    make_opportunity(session, acme, org.rep_c, "lost", amount=700, closed_on=date(2026, 3, 3))
    make_opportunity(session, acme, org.rep_c, "engaging", closed_on=None)
    # Opened 1 March 08:00, due 24 h later, resolved 30.5 h later on 2 March: late.
    make_complaint(session, acme, org.rep_b, datetime(2026, 3, 1, 8), resolved_after_hours=30.5)
    make_complaint(session, acme, org.rep_b, datetime(2026, 3, 1, 8))  # still open: no row
    assert stats(session) == {
        (org.rep_a.id, date(2026, 3, 1)): {"interactions": 2, "visits": 1, "calls": 1},
        (org.rep_b.id, date(2026, 3, 1)): {"orders": 2, "revenue": Decimal("200.50")},
        (org.rep_a.id, date(2026, 3, 2)): {
            "responses": 2,
            "csat_sum": 4 + 2,
            "csat_good": 1,
            "recommend_n": 2,
            "promoters": 1,
            "detractors": 1,
            "quality_sum": 5,
            "quality_n": 1,
        },
        (org.rep_c.id, date(2026, 3, 3)): {"won": 1, "lost": 1, "won_amount": Decimal(500)},
        (org.rep_b.id, date(2026, 3, 2)): {"complaints_resolved": 1, "resolution_seconds": int(30.5 * 3600)},
    }
    assert summaries.verify(session) == []


def test_a_changed_rep_or_date_moves_the_tally(session: Session, org: Org) -> None:
    acme = make_customer(session, "Acme", owner=org.rep_a)
    visit = make_interaction(session, acme, org.rep_a, datetime(2026, 3, 1, 9))
    visit.rep_id = org.rep_b.id
    visit.occurred_at = datetime(2026, 3, 5, 9)
    session.flush()
    assert stats(session) == {(org.rep_b.id, date(2026, 3, 5)): {"interactions": 1, "visits": 1}}
    visit.kind = "email"
    session.flush()
    assert stats(session) == {(org.rep_b.id, date(2026, 3, 5)): {"interactions": 1}}


def test_old_values_are_known_even_when_the_objects_were_expired(engine: Engine, session: Session, org: Org) -> None:
    acme = make_customer(session, "Acme", owner=org.rep_a)
    order = make_order(session, acme, org.rep_a, date(2026, 3, 1), 100)
    session.commit()
    # A session that expires everything on commit: the change below has no old value loaded.
    with Session(bind=engine.execution_options(**{WRITE_OPTION: True})) as other:
        row = other.get(Order, order.id)
        assert row is not None
        other.commit()
        row.rep_id = org.rep_b.id
        row.ordered_on = date(2026, 4, 1)
        other.commit()
        assert stats(other) == {(org.rep_b.id, date(2026, 4, 1)): {"orders": 1, "revenue": Decimal(100)}}
        assert summaries.verify(other) == []


def _two_writers(
    engine: Engine, first_write: Callable[[Session], object], second_write: Callable[[Session], object]
) -> None:
    """Run the second write while the first one is flushed (and summarised) but not committed."""
    writer = engine.execution_options(**{WRITE_OPTION: True})
    errors: list[BaseException] = []

    def second_writer() -> None:
        try:
            with Session(bind=writer) as other:
                second_write(other)
                other.commit()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    with Session(bind=writer) as first:
        first_write(first)
        thread = threading.Thread(target=second_writer)
        thread.start()
        time.sleep(CONCURRENT_WAIT_S)
        first.commit()
    thread.join(timeout=30)
    assert errors == []


def test_concurrent_saves_on_one_rep_day_both_count(engine: Engine, session: Session, org: Org) -> None:
    acme = make_customer(session, "Acme", owner=org.rep_a)
    session.commit()
    _two_writers(
        engine,
        lambda s: make_interaction(s, acme, org.rep_a, datetime(2026, 3, 1, 9)),
        lambda s: make_interaction(s, acme, org.rep_a, datetime(2026, 3, 1, 11)),
    )
    session.expire_all()
    assert stats(session) == {(org.rep_a.id, date(2026, 3, 1)): {"interactions": 2, "visits": 2}}
    assert summaries.verify(session) == []


def test_concurrent_first_orders_keep_the_earliest(engine: Engine, session: Session, org: Org) -> None:
    acme = make_customer(session, "Acme", owner=org.rep_a)
    session.commit()
    _two_writers(
        engine,
        lambda s: make_order(s, acme, org.rep_a, date(2026, 3, 1), 10),
        lambda s: make_order(s, acme, org.rep_b, date(2026, 5, 1), 10),
    )
    session.expire_all()
    assert session.get(Customer, acme.id).first_order_on == date(2026, 3, 1)
    assert summaries.verify(session) == []


def test_records_of_a_deleted_customer_leave_the_summaries_and_come_back_on_restore(session: Session, org: Org) -> None:
    acme = make_customer(session, "Acme", owner=org.rep_a)
    beta = make_customer(session, "Beta", owner=org.rep_a)
    make_interaction(session, acme, org.rep_a, datetime(2026, 3, 1, 9))
    make_interaction(session, beta, org.rep_a, datetime(2026, 3, 1, 10))
    make_order(session, acme, org.rep_a, date(2026, 3, 2), 100)
    make_opportunity(session, acme, org.rep_a, "won", closed_on=date(2026, 3, 3))
    make_survey(session, acme, org.rep_a, date(2026, 3, 4), 5)
    make_complaint(session, acme, org.rep_a, datetime(2026, 3, 5, 8), resolved_after_hours=2)
    before = stats(session)
    admin = actor(org.admin)

    delete_customer(session, actor=admin, customer_id=acme.id, now=NOW)
    # Only Beta's visit is left.
    assert stats(session) == {(org.rep_a.id, date(2026, 3, 1)): {"interactions": 1, "visits": 1}}
    # first_order_on is the customer's own first order whatever its recycle-bin state.
    assert acme.first_order_on == date(2026, 3, 2)
    assert summaries.verify(session) == []

    restore_customer(session, actor=admin, customer_id=acme.id, now=NOW)
    assert stats(session) == before
    assert summaries.verify(session) == []


def test_first_order_and_first_won_follow_the_live_records(session: Session, org: Org) -> None:
    acme = make_customer(session, "Acme", owner=org.rep_a)
    assert (acme.first_order_on, acme.first_won_on) == (None, None)
    late = make_order(session, acme, org.rep_a, date(2026, 5, 1), 10)
    early = make_order(session, acme, org.rep_b, date(2026, 2, 1), 10)
    deal = make_opportunity(session, acme, org.rep_a, "won", closed_on=date(2026, 4, 1))
    assert (acme.first_order_on, acme.first_won_on) == (date(2026, 2, 1), date(2026, 4, 1))
    soft_delete(session, early)
    assert acme.first_order_on == date(2026, 5, 1)
    early.deleted_at = None
    late.ordered_on = date(2026, 1, 15)
    deal.stage = "lost"
    session.flush()
    assert (acme.first_order_on, acme.first_won_on) == (date(2026, 1, 15), None)
    session.delete(late)
    session.flush()
    assert acme.first_order_on == date(2026, 2, 1)
    stored = session.execute(select(Customer.first_order_on).where(Customer.id == acme.id)).scalar_one()
    assert stored == date(2026, 2, 1)


def test_a_stage_whose_kind_changes_moves_its_deals(session: Session, org: Org) -> None:
    acme = make_customer(session, "Acme", owner=org.rep_a)
    stage = PipelineStage(key="signed", position=95, kind="open")
    session.add(stage)
    session.flush()
    make_opportunity(session, acme, org.rep_a, "signed", amount=300, closed_on=date(2026, 6, 1))
    assert stats(session) == {}
    stage.kind = "won"
    session.flush()
    assert stats(session) == {(org.rep_a.id, date(2026, 6, 1)): {"won": 1, "won_amount": Decimal(300)}}
    assert acme.first_won_on == date(2026, 6, 1)


def test_rebuild_catches_up_with_bulk_inserts_and_verify_reports_drift(session: Session, org: Org) -> None:
    acme = make_customer(session, "Acme", owner=org.rep_a)
    # Core inserts bypass the ORM flush hooks (like the seed and the importer's bulk loads).
    session.execute(
        insert(Interaction),
        [
            {"customer_id": acme.id, "rep_id": org.rep_a.id, "kind": "visit", "occurred_at": moment, "created_at": NOW}
            for moment in (datetime(2026, 3, 1, 9), datetime(2026, 3, 1, 11))
        ],
    )
    session.execute(
        insert(Order),
        [
            {
                "customer_id": acme.id,
                "rep_id": org.rep_b.id,
                "ordered_on": date(2026, 3, 2),
                "amount": 5,
                "quantity": 1,
                "created_at": NOW,
            }
        ],
    )
    problems = summaries.verify(session)
    assert problems == [
        f"rep_day_stats rep {org.rep_a.id} on 2026-03-01: missing",
        f"rep_day_stats rep {org.rep_b.id} on 2026-03-02: missing",
        f"rep_month_customers rep {org.rep_b.id} in 2026-03: missing",
        f"customer {acme.id}: first_order_on None (expected 2026-03-02), first_won_on None (expected None)",
    ]
    result = summaries.rebuild(session)
    assert (result.rep_days, result.customers_with_orders, result.customers_with_wins) == (2, 1, 0)
    assert summaries.verify(session) == []
    assert stats(session)[(org.rep_a.id, date(2026, 3, 1))] == {"interactions": 2, "visits": 2}
    assert acme.first_order_on == date(2026, 3, 2)

    session.execute(update(RepDayStat).where(RepDayStat.rep_id == org.rep_a.id).values(visits=RepDayStat.visits + 1))
    assert summaries.verify(session) == [
        f"rep_day_stats rep {org.rep_a.id} on 2026-03-01: visits 3 (expected 2)",
        "day_stats on 2026-03-01: differs",  # it no longer is the sum of the (tampered) rep rows
        f"rep_month_stats rep {org.rep_a.id} in 2026-03: differs",
    ]
    summaries.refresh_rep_days(session, {(org.rep_a.id, date(2026, 3, 1))})
    assert summaries.verify(session) == []


def order_months(session: Session) -> dict[tuple[int, date], dict[int, int]]:
    """Return rep_month_customers as {(rep, month): {customer: orders}}."""
    return {
        (row.rep_id, row.month): dict(
            zip(summaries.unpack(row.customer_ids).tolist(), summaries.unpack(row.order_counts).tolist(), strict=True)
        )
        for row in summaries.order_months(session, months=[date(2026, m, 1) for m in range(1, 13)])
    }


def test_order_months_follow_every_order_change(session: Session, org: Org) -> None:
    acme = make_customer(session, "Acme", owner=org.rep_a)
    beta = make_customer(session, "Beta", owner=org.rep_a)
    first = make_order(session, acme, org.rep_a, date(2026, 3, 1), 10)
    make_order(session, acme, org.rep_a, date(2026, 3, 31), 10)
    make_order(session, beta, org.rep_a, date(2026, 3, 15), 10)
    make_order(session, beta, org.rep_b, date(2026, 4, 1), 10)
    march, april = date(2026, 3, 1), date(2026, 4, 1)
    assert order_months(session) == {
        (org.rep_a.id, march): {acme.id: 2, beta.id: 1},
        (org.rep_b.id, april): {beta.id: 1},
    }
    # Moving an order to another rep and month rewrites both the old and the new row.
    first.rep_id, first.ordered_on = org.rep_b.id, date(2026, 4, 30)
    session.flush()
    assert order_months(session) == {
        (org.rep_a.id, march): {acme.id: 1, beta.id: 1},
        (org.rep_b.id, april): {acme.id: 1, beta.id: 1},
    }
    soft_delete(session, first)
    assert order_months(session) == {
        (org.rep_a.id, march): {acme.id: 1, beta.id: 1},
        (org.rep_b.id, april): {beta.id: 1},
    }
    first.deleted_at = None
    session.flush()
    assert order_months(session)[(org.rep_b.id, april)] == {acme.id: 1, beta.id: 1}
    # A deleted customer's orders stay in the row (readers leave the customer out) ...
    delete_customer(session, actor=actor(org.admin), customer_id=beta.id, now=NOW)
    assert order_months(session)[(org.rep_a.id, march)] == {acme.id: 1, beta.id: 1}
    # ... and its orders do not count for the loyalty figures.
    summary = kpi_summary(session, actor=actor(org.admin), period=Period.month(2026, 4), filters=Filters())
    assert summary.active_customers == 1
    assert summaries.verify(session) == []


def test_refresh_records_after_a_bulk_insert(session: Session, org: Org) -> None:
    acme = make_customer(session, "Acme", owner=org.rep_a)
    ids = session.scalars(
        insert(Order).returning(Order.id),
        [
            {
                "customer_id": acme.id,
                "rep_id": org.rep_a.id,
                "ordered_on": date(2026, 3, day),
                "amount": 5,
                "quantity": 1,
                "created_at": NOW,
            }
            for day in (3, 20)
        ],
    ).all()
    summaries.refresh_records(session, Order, ids)
    assert summaries.verify(session) == []
    assert acme.first_order_on == date(2026, 3, 3)


def test_the_cli_rebuilds_and_verifies(database_url: str, session: Session, org: Org, monkeypatch, capsys) -> None:
    make_interaction(session, make_customer(session, "Acme", owner=org.rep_a), org.rep_a, datetime(2026, 3, 1, 9))
    session.execute(delete(RepDayStat))
    session.commit()
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    assert cli.main(["summaries", "verify"]) == 1
    assert "missing" in capsys.readouterr().out
    assert cli.main(["summaries", "rebuild"]) == 0
    assert "rep_day_stats 1 rows" in capsys.readouterr().out
    assert cli.main(["summaries", "verify"]) == 0
    assert capsys.readouterr().out.strip() == "summaries exact"
    dispose_engines()


def test_seeded_data_is_summarised(engine: Engine) -> None:
    seed(engine, scale="tiny", seed=3, password="a tiny demo password", as_of=date(2026, 11, 1))
    with Session(engine) as session:
        assert summaries.verify(session) == []
        assert session.scalar(select(RepDayStat.rep_id).limit(1)) is not None


# --------------------------------------------------------------------------------------------
# Random writes through the write functions and the factories, checked against the records


@dataclass
class World:
    session: Session
    org: Org
    rng: random.Random
    customers: list[Customer] = field(default_factory=list)
    interactions: list[Interaction] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    deals: list[Opportunity] = field(default_factory=list)
    surveys: list[SurveyResponse] = field(default_factory=list)
    complaints: list[Complaint] = field(default_factory=list)

    @property
    def reps(self) -> list[User]:
        return [self.org.rep_a, self.org.rep_b, self.org.rep_c]

    @property
    def admin(self) -> Any:
        return actor(self.org.admin)

    def rep(self) -> User:
        return self.rng.choice(self.reps)

    def day(self) -> date:
        return FIRST_DAY + timedelta(days=self.rng.randrange(YEAR_DAYS))

    def moment(self) -> datetime:
        return datetime.combine(self.day(), datetime.min.time()) + timedelta(minutes=self.rng.randrange(24 * 60))

    def live_customer(self) -> Customer:
        return self.rng.choice([c for c in self.customers if c.deleted_at is None])

    def any_customer(self) -> Customer:
        return self.rng.choice(self.customers)

    def pick(self, rows: list[Any], *, live: bool = True) -> Any | None:
        """A record (live, of a live customer, when asked) or None."""
        alive = {c.id for c in self.customers if c.deleted_at is None}
        found = [
            r for r in rows if not live or (r.deleted_at is None and (r.customer_id is None or r.customer_id in alive))
        ]
        return self.rng.choice(found) if found else None


def _customer_ops(w: World) -> list[Callable[[], str]]:
    def create() -> str:
        customer = create_customer(
            w.session,
            actor=w.admin,
            data=CustomerInput(name=f"Customer {len(w.customers)}", owner_id=w.rep().id, tier="customer"),
            now=w.moment(),
        )
        w.customers.append(customer)
        return f"create customer {customer.id}"

    def edit() -> str:
        c = w.live_customer()
        edit_customer(
            w.session,
            actor=w.admin,
            customer_id=c.id,
            data=CustomerInput(name=c.name, tier=w.rng.choice(["lead", "key"]), version=c.version),
            now=NOW,
        )
        return f"edit customer {c.id}"

    def remove() -> str:
        if sum(c.deleted_at is None for c in w.customers) < 3:
            return "keep customers"
        c = w.live_customer()
        delete_customer(w.session, actor=w.admin, customer_id=c.id, now=NOW)
        return f"delete customer {c.id}"

    def restore() -> str:
        gone = [c for c in w.customers if c.deleted_at is not None]
        if not gone:
            return "nothing to restore"
        c = w.rng.choice(gone)
        restore_customer(w.session, actor=w.admin, customer_id=c.id, now=NOW)
        return f"restore customer {c.id}"

    def reassign() -> str:
        c = w.live_customer()
        reassign_customer(w.session, actor=w.admin, customer_id=c.id, owner_id=w.rep().id, now=NOW)
        return f"reassign customer {c.id}"

    return [create, edit, remove, restore, reassign]


def _interaction_ops(w: World) -> list[Callable[[], str]]:
    def log() -> str:
        kind = w.rng.choice(["visit", "call", "email"])
        row = log_interaction(
            w.session,
            actor=w.admin,
            data=InteractionInput(
                customer_id=w.live_customer().id, kind=kind, occurred_at=w.moment(), rep_id=w.rep().id
            ),
            now=NOW,
        )
        w.interactions.append(row)
        return f"log interaction {row.id}"

    def factory() -> str:
        kind = w.rng.choice(["visit", "call", "meeting"])
        row = make_interaction(w.session, w.any_customer(), w.rep(), w.moment(), kind=kind)
        w.interactions.append(row)
        return f"make interaction {row.id}"

    def change() -> str:
        row = w.pick(w.interactions, live=False)
        if row is None:
            return "no interaction"
        what = w.rng.choice(["rep", "date", "kind", "customer"])
        if what == "rep":
            row.rep_id = w.rep().id
        elif what == "date":
            row.occurred_at = w.moment()
        elif what == "kind":
            row.kind = w.rng.choice(["visit", "call", "other"])
        else:
            row.customer_id = w.any_customer().id
        w.session.flush()
        return f"change interaction {row.id} {what}"

    def remove() -> str:
        row = w.pick(w.interactions)
        if row is None:
            return "no interaction"
        delete_interaction(w.session, actor=w.admin, interaction_id=row.id, now=NOW)
        return f"delete interaction {row.id}"

    return [log, factory, change, remove]


def _order_ops(w: World) -> list[Callable[[], str]]:
    def create() -> str:
        row = create_order(
            w.session,
            actor=w.admin,
            data=OrderInput(
                customer_id=w.live_customer().id,
                ordered_on=w.day(),
                amount=f"{w.rng.randrange(1, 100000) / 100:.2f}",
                rep_id=w.rep().id,
            ),
            now=NOW,
        )
        w.orders.append(row)
        return f"create order {row.id}"

    def factory() -> str:
        row = make_order(w.session, w.any_customer(), w.rep(), w.day(), w.rng.randrange(1, 900))
        w.orders.append(row)
        return f"make order {row.id}"

    def change() -> str:
        row = w.pick(w.orders, live=False)
        if row is None:
            return "no order"
        what = w.rng.choice(["rep", "date", "amount", "customer", "restore"])
        if what == "rep":
            row.rep_id = w.rep().id
        elif what == "date":
            row.ordered_on = w.day()
        elif what == "amount":
            row.amount = Decimal(w.rng.randrange(1, 500))
        elif what == "customer":
            row.customer_id = w.any_customer().id
        else:
            row.deleted_at = None
        w.session.flush()
        return f"change order {row.id} {what}"

    def remove() -> str:
        row = w.pick(w.orders)
        if row is None:
            return "no order"
        if w.rng.random() < 0.5:
            delete_order(w.session, actor=w.admin, order_id=row.id, now=NOW)
            return f"delete order {row.id}"
        w.orders.remove(row)
        w.session.delete(row)  # a hard delete (not in the app, but the hooks must follow it)
        w.session.flush()
        return f"hard-delete order {row.id}"

    return [create, factory, change, remove]


def _deal_ops(w: World) -> list[Callable[[], str]]:
    def create() -> str:
        customer = w.live_customer() if w.rng.random() < 0.8 else None
        row = create_opportunity(
            w.session,
            actor=w.admin,
            data=OpportunityInput(
                customer_id=customer.id if customer else None,
                owner_id=w.rep().id,
                amount=str(w.rng.randrange(100, 5000)),
                created_on=FIRST_DAY,
            ),
            now=NOW,
        )
        w.deals.append(row)
        return f"create deal {row.id}"

    def factory() -> str:
        stage = w.rng.choice(["won", "lost", "engaging"])
        closed = w.day() if stage != "engaging" else None
        row = make_opportunity(
            w.session,
            w.any_customer(),
            w.rep(),
            stage,
            amount=w.rng.randrange(1, 900),
            closed_on=closed,
            created_on=FIRST_DAY,
        )
        w.deals.append(row)
        return f"make deal {row.id}"

    def move() -> str:
        row = w.pick(w.deals)
        if row is None:
            return "no deal"
        stage = w.rng.choice(["won", "lost", "prospecting", "engaging"])
        move_stage(
            w.session,
            actor=w.admin,
            opportunity_id=row.id,
            data=StageMove(
                stage=stage, version=row.version, on=w.day(), lost_reason="price" if stage == "lost" else None
            ),
            now=NOW,
        )
        return f"move deal {row.id} to {stage}"

    def edit() -> str:
        row = w.pick(w.deals)
        if row is None:
            return "no deal"
        update_opportunity(
            w.session,
            actor=w.admin,
            opportunity_id=row.id,
            data=OpportunityInput(
                customer_id=w.live_customer().id,
                owner_id=w.rep().id,
                amount=str(w.rng.randrange(1, 999)),
                version=row.version,
            ),
            now=NOW,
        )
        return f"edit deal {row.id}"

    def toggle() -> str:
        row = w.pick(w.deals, live=False)
        if row is None:
            return "no deal"
        row.deleted_at = None if row.deleted_at else BASE_TIME
        w.session.flush()
        return f"toggle deal {row.id}"

    return [create, factory, move, edit, toggle]


def _survey_ops(w: World) -> list[Callable[[], str]]:
    def record() -> str:
        def score() -> int | None:
            return w.rng.choice([None, 1, 2, 3, 4, 5])

        row = record_survey(
            w.session,
            actor=w.admin,
            data=SurveyInput(
                customer_id=w.live_customer().id,
                responded_on=w.day(),
                overall=w.rng.randint(1, 5),
                quality=score(),
                service=score(),
                price=score(),
                after_sales=score(),
                recommend=w.rng.choice([None, *range(11)]),
                rep_id=w.rep().id,
            ),
            now=NOW,
        )
        w.surveys.append(row)
        return f"record survey {row.id}"

    def factory() -> str:
        row = make_survey(
            w.session, w.any_customer(), w.rep(), w.day(), w.rng.randint(1, 5), recommend=w.rng.randint(0, 10)
        )
        w.surveys.append(row)
        return f"make survey {row.id}"

    def change() -> str:
        row = w.pick(w.surveys, live=False)
        if row is None:
            return "no survey"
        row.overall = w.rng.randint(1, 5)
        row.responded_on = w.day()
        row.deleted_at = None
        w.session.flush()
        return f"change survey {row.id}"

    def remove() -> str:
        row = w.pick(w.surveys)
        if row is None:
            return "no survey"
        delete_survey(w.session, actor=w.admin, response_id=row.id, now=NOW)
        return f"delete survey {row.id}"

    return [record, factory, change, remove]


def _complaint_ops(w: World) -> list[Callable[[], str]]:
    def open_() -> str:
        row = open_complaint(
            w.session,
            actor=w.admin,
            data=ComplaintInput(
                customer_id=w.live_customer().id,
                category="quality",
                severity=w.rng.choice(["high", "medium", "low"]),
                description="broken",
                opened_at=w.moment(),
                assignee_id=w.rep().id,
            ),
            now=NOW,
        )
        w.complaints.append(row)
        return f"open complaint {row.id}"

    def factory() -> str:
        hours = w.rng.choice([None, 0.5, 20, 30, 100])
        row = make_complaint(w.session, w.any_customer(), w.rep(), w.moment(), resolved_after_hours=hours)
        w.complaints.append(row)
        return f"make complaint {row.id}"

    def resolve() -> str:
        row = w.pick([c for c in w.complaints if c.resolved_at is None])
        if row is None:
            return "no open complaint"
        resolved_at = min(row.opened_at + timedelta(hours=w.rng.choice([1, 23, 25, 90])), NOW)
        resolve_complaint(
            w.session,
            actor=w.admin,
            complaint_id=row.id,
            data=ResolutionInput(resolution="fixed", resolved_at=resolved_at),
            now=NOW,
        )
        return f"resolve complaint {row.id}"

    def assign() -> str:
        row = w.pick(w.complaints)
        if row is None:
            return "no complaint"
        assign_complaint(w.session, actor=w.admin, complaint_id=row.id, assignee_id=w.rep().id, now=NOW)
        return f"assign complaint {row.id}"

    def toggle() -> str:
        row = w.pick(w.complaints, live=False)
        if row is None:
            return "no complaint"
        if row.deleted_at is None:
            soft_delete(w.session, row)
        else:
            row.deleted_at = None
            w.session.flush()
        return f"toggle complaint {row.id}"

    return [open_, factory, resolve, assign, toggle]


def _checkpoint(w: World) -> str:
    """Commit, and sometimes expire everything, so later changes start from unloaded attributes."""
    w.session.commit()
    if w.rng.random() < 0.5:
        w.session.expire_all()
    return "commit"


def recompute(session: Session, period: Period) -> dict[int, dict[str, Any]]:
    """Recompute the per-rep figures of a period from the records, in Python (the reference)."""
    session.expire_all()
    live = {c.id: c for c in session.scalars(select(Customer)) if c.deleted_at is None}
    kinds = dict(session.execute(select(PipelineStage.key, PipelineStage.kind)).all())
    out: dict[int, dict[str, Any]] = defaultdict(lambda: defaultdict(int))

    def counts(row: Any, day: date | None, *, nullable: bool = False) -> bool:
        alive = row.customer_id in live or (nullable and row.customer_id is None)
        return row.deleted_at is None and alive and day is not None and period.start <= day < period.end

    for i in session.scalars(select(Interaction)):
        if counts(i, i.occurred_at.date()):
            out[i.rep_id]["visits"] += i.kind == "visit"
            out[i.rep_id]["calls"] += i.kind == "call"
    for o in session.scalars(select(Order)):
        if counts(o, o.ordered_on):
            out[o.rep_id]["orders"] += 1
            out[o.rep_id]["revenue"] += o.amount
    for s in session.scalars(select(SurveyResponse)):
        if counts(s, s.responded_on):
            out[s.rep_id]["csat_count"] += 1
            out[s.rep_id]["csat_sum"] += s.overall
    for d in session.scalars(select(Opportunity)):
        if counts(d, d.closed_on, nullable=True) and kinds[d.stage] in {"won", "lost"}:
            out[d.owner_id][kinds[d.stage]] += 1
    for c in session.scalars(select(Complaint)):
        if counts(c, c.resolved_at.date() if c.resolved_at else None):
            out[c.assignee_id]["complaints_resolved"] += 1
            out[c.assignee_id]["complaints_on_time"] += c.resolved_at <= c.due_at
    first_order: dict[int, date] = {}
    for o in session.scalars(select(Order).where(Order.deleted_at.is_(None))):
        first_order[o.customer_id] = min(o.ordered_on, first_order.get(o.customer_id, o.ordered_on))
    for customer in live.values():
        first = first_order.get(customer.id)
        if customer.owner_id is not None and first is not None and period.start <= first < period.end:
            out[customer.owner_id]["new_customers"] += 1
    return out


def customer_orders(session: Session, period: Period) -> dict[int, int]:
    """Return {customer: live orders in the period} for live customers (the reference, in Python)."""
    live = {c.id for c in session.scalars(select(Customer)) if c.deleted_at is None}
    out: dict[int, int] = defaultdict(int)
    for o in session.scalars(select(Order)):
        if o.deleted_at is None and o.customer_id in live and period.start <= o.ordered_on < period.end:
            out[o.customer_id] += 1
    return dict(out)


FIGURES = (
    "revenue", "orders", "new_customers", "visits", "calls", "won", "lost", "csat_sum", "csat_count",
    "complaints_resolved", "complaints_on_time",
)  # fmt: skip


def test_random_writes_keep_the_summaries_exact(session: Session, org: Org) -> None:
    world = World(session=session, org=org, rng=random.Random(SEED))
    for index in range(4):
        world.customers.append(make_customer(session, f"Seed {index}", owner=world.reps[index % 3]))
    ops = [
        *_customer_ops(world),
        *_interaction_ops(world),
        *_order_ops(world),
        *_deal_ops(world),
        *_survey_ops(world),
        *_complaint_ops(world),
        lambda: _checkpoint(world),
    ]
    done = []
    for step in range(STEPS):
        done.append(world.rng.choice(ops)())
        problems = summaries.verify(session)
        assert problems == [], f"after step {step} ({done[-1]}); steps so far: {done}"
    session.commit()
    # The sequence exercised every kind of write (a different seed must not quietly skip some).
    assert sum("delete customer" in d for d in done) >= 2 and sum("restore customer" in d for d in done) >= 1
    assert sum(" rep" in d or " date" in d for d in done) >= 4

    # End with a busy customer in the recycle bin: its orders must not count anywhere below.
    busiest = max(
        (c for c in world.customers if c.deleted_at is None),
        key=lambda c: sum(customer_orders(session, p).get(c.id, 0) for p in PERIODS[:4]),
    )
    assert sum(customer_orders(session, p).get(busiest.id, 0) for p in PERIODS[:4]) >= 2
    delete_customer(session, actor=world.admin, customer_id=busiest.id, now=NOW)
    assert summaries.verify(session) == []

    admin = actor(org.admin)
    for period in PERIODS:
        expected = recompute(session, period)
        figures = {row.rep_id: row for row in rep_figures(session, actor=admin, period=period, filters=Filters())}
        for rep in world.reps:
            got = {name: getattr(figures[rep.id], name) for name in FIGURES}
            want = {name: expected[rep.id].get(name, 0) for name in FIGURES}
            assert got == want, f"{rep.username} in {period}"
        summary = kpi_summary(session, actor=admin, period=period, filters=Filters())
        totals = {name: sum(expected[rep.id].get(name, 0) for rep in world.reps) for name in FIGURES}
        assert (summary.visits, summary.orders, summary.won, summary.lost) == (
            totals["visits"],
            totals["orders"],
            totals["won"],
            totals["lost"],
        )
        assert summary.revenue == pytest.approx(float(totals["revenue"]))
        # Distinct customers: month-aligned periods read rep_month_customers, the odd one the orders.
        this, before = customer_orders(session, period), customer_orders(session, period.previous())
        assert summary.active_customers == len(this), f"active in {period}"
        repeat = sum(count >= 2 for count in this.values())
        assert summary.repeat_purchase_rate == (pytest.approx(repeat / len(this)) if this else None)
        retained = len(set(this) & set(before))
        assert summary.retention_rate == (pytest.approx(retained / len(before)) if before else None)
        csat = totals["csat_sum"] / totals["csat_count"] if totals["csat_count"] else None
        assert summary.csat_score == (None if csat is None else round(csat, 2))
        on_time = (
            totals["complaints_on_time"] / totals["complaints_resolved"] if totals["complaints_resolved"] else None
        )
        assert summary.complaint_on_time_rate == pytest.approx(on_time)
