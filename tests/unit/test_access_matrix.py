"""SPEC §4 at the crm/ layer: every role × record × action, against the table written out below.

World: team A = rep_a1, rep_a2, manager_a; team B = rep_b1, manager_b; plus an admin.
Customers a1, a2, b1 are owned by the rep of the same name; `pool` has no owner.
Child records (visits, orders, surveys, complaints, deals) are named "<rep>_on_<customer>":
`a1_on_b1` is rep_a1's record on rep_b1's customer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.access import Actor, manages_rep
from crm.complaints import ComplaintInput, list_complaints, open_complaint
from crm.customers import (
    CustomerInput,
    create_customer,
    customer_profile,
    delete_customer,
    list_customers,
    reassign_customer,
    restore_customer,
    update_customer,
)
from crm.errors import CrmError, NotFoundError, PermissionDeniedError
from crm.interactions import InteractionInput, log_interaction, recent_interactions
from crm.models import Customer, Role
from crm.opportunities import OpportunityInput, create_opportunity, opportunities_by_stage
from crm.orders import OrderInput, create_order, list_orders
from crm.surveys import SurveyInput, list_surveys, record_survey
from crm.targets import AttitudeInput, TargetInput, set_attitude_score, set_target
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
OK = "allowed"
NF = "not found or not yours"
NO = "permission denied"

ACTORS = ["rep_a1", "rep_a2", "rep_b1", "manager_a", "manager_b", "admin"]
CUSTOMERS = ["a1", "a2", "b1", "pool"]
OWNERS = ["default", "rep_a1", "rep_a2", "rep_b1", "manager_a"]
REPS = ["rep_a1", "rep_a2", "rep_b1"]
RECORDS = ["a1_on_a1", "a1_on_a2", "a2_on_a2", "a1_on_b1", "b1_on_b1", "a2_on_pool", "b1_on_a1"]

# SPEC §4 "see customers and everything under them", "edit / soft-delete customer",
# "log interaction / order / survey / complaint": own | team's + pool | all.
CUSTOMER_SCOPE = {
    "rep_a1": {"a1": OK, "a2": NF, "b1": NF, "pool": NF},
    "rep_a2": {"a1": NF, "a2": OK, "b1": NF, "pool": NF},
    "rep_b1": {"a1": NF, "a2": NF, "b1": OK, "pool": NF},
    "manager_a": {"a1": OK, "a2": OK, "b1": NF, "pool": OK},
    "manager_b": {"a1": NF, "a2": NF, "b1": OK, "pool": OK},
    "admin": {"a1": OK, "a2": OK, "b1": OK, "pool": OK},
}
# "restore from recycle bin, reassign owner": no | team's | all.
MANAGE_SCOPE = {
    "rep_a1": {"a1": NO, "a2": NO, "b1": NO, "pool": NO},
    "rep_a2": {"a1": NO, "a2": NO, "b1": NO, "pool": NO},
    "rep_b1": {"a1": NO, "a2": NO, "b1": NO, "pool": NO},
    "manager_a": {"a1": OK, "a2": OK, "b1": NF, "pool": OK},
    "manager_b": {"a1": NF, "a2": NF, "b1": OK, "pool": OK},
    "admin": {"a1": OK, "a2": OK, "b1": OK, "pool": OK},
}
# "create customer": owned by self | for any rep of the team (or the pool) | any.
CREATE_FOR = {
    "rep_a1": {"default": OK, "rep_a1": OK, "rep_a2": NO, "rep_b1": NO, "manager_a": NO},
    "rep_a2": {"default": OK, "rep_a1": NO, "rep_a2": OK, "rep_b1": NO, "manager_a": NO},
    "rep_b1": {"default": OK, "rep_a1": NO, "rep_a2": NO, "rep_b1": OK, "manager_a": NO},
    "manager_a": {"default": OK, "rep_a1": OK, "rep_a2": OK, "rep_b1": NO, "manager_a": OK},
    "manager_b": {"default": OK, "rep_a1": NO, "rep_a2": NO, "rep_b1": OK, "manager_a": NO},
    "admin": {"default": OK, "rep_a1": OK, "rep_a2": OK, "rep_b1": OK, "manager_a": OK},
}
# "appraisal: enter attitude scores, set targets": no | team's | all.
APPRAISE = {
    "rep_a1": {"rep_a1": NO, "rep_a2": NO, "rep_b1": NO},
    "rep_a2": {"rep_a1": NO, "rep_a2": NO, "rep_b1": NO},
    "rep_b1": {"rep_a1": NO, "rep_a2": NO, "rep_b1": NO},
    "manager_a": {"rep_a1": OK, "rep_a2": OK, "rep_b1": NO},
    "manager_b": {"rep_a1": NO, "rep_a2": NO, "rep_b1": OK},
    "admin": {"rep_a1": OK, "rep_a2": OK, "rep_b1": OK},
}
# "appraisal: see scorecard": own | team's | all.
SCORECARD = {
    "rep_a1": {"rep_a1": OK, "rep_a2": NO, "rep_b1": NO},
    "rep_a2": {"rep_a1": NO, "rep_a2": OK, "rep_b1": NO},
    "rep_b1": {"rep_a1": NO, "rep_a2": NO, "rep_b1": OK},
    "manager_a": {"rep_a1": OK, "rep_a2": OK, "rep_b1": NO},
    "manager_b": {"rep_a1": NO, "rep_a2": NO, "rep_b1": OK},
    "admin": {"rep_a1": OK, "rep_a2": OK, "rep_b1": OK},
}
# "see … everything under them" plus §4's "own" for a rep: every record on which they are the rep,
# even on a customer another rep owns; a manager: the team's records and those on visible customers.
RECORD_SCOPE = {
    "rep_a1": {
        "a1_on_a1": OK,
        "a1_on_a2": OK,
        "a2_on_a2": NF,
        "a1_on_b1": OK,
        "b1_on_b1": NF,
        "a2_on_pool": NF,
        "b1_on_a1": OK,
    },
    "rep_a2": {
        "a1_on_a1": NF,
        "a1_on_a2": OK,
        "a2_on_a2": OK,
        "a1_on_b1": NF,
        "b1_on_b1": NF,
        "a2_on_pool": OK,
        "b1_on_a1": NF,
    },
    "rep_b1": {
        "a1_on_a1": NF,
        "a1_on_a2": NF,
        "a2_on_a2": NF,
        "a1_on_b1": OK,
        "b1_on_b1": OK,
        "a2_on_pool": NF,
        "b1_on_a1": OK,
    },
    "manager_a": {
        "a1_on_a1": OK,
        "a1_on_a2": OK,
        "a2_on_a2": OK,
        "a1_on_b1": OK,
        "b1_on_b1": NF,
        "a2_on_pool": OK,
        "b1_on_a1": OK,
    },
    "manager_b": {
        "a1_on_a1": NF,
        "a1_on_a2": NF,
        "a2_on_a2": NF,
        "a1_on_b1": OK,
        "b1_on_b1": OK,
        "a2_on_pool": OK,
        "b1_on_a1": OK,
    },
    "admin": dict.fromkeys(RECORDS, OK),
}


@pytest.fixture
def world(session: Session) -> SimpleNamespace:
    manager_a = make_user(session, "manager_a", role=Role.MANAGER, team="A")
    manager_b = make_user(session, "manager_b", role=Role.MANAGER, team="B")
    users = {
        "rep_a1": make_user(session, "rep_a1", team="A", manager=manager_a),
        "rep_a2": make_user(session, "rep_a2", team="A", manager=manager_a),
        "rep_b1": make_user(session, "rep_b1", team="B", manager=manager_b),
        "manager_a": manager_a,
        "manager_b": manager_b,
        "admin": make_user(session, "admin", role=Role.ADMIN),
    }
    customers = {
        "a1": make_customer(session, "Customer A1", owner=users["rep_a1"]),
        "a2": make_customer(session, "Customer A2", owner=users["rep_a2"]),
        "b1": make_customer(session, "Customer B1", owner=users["rep_b1"]),
        "pool": make_customer(session, "Pool customer", owner=None),
    }
    records: dict[str, dict[str, int]] = {kind: {} for kind in ("visit", "order", "survey", "complaint", "deal")}
    for offset, name in enumerate(RECORDS):
        rep_key, customer_key = name.split("_on_")
        rep, customer = users[f"rep_{rep_key}"], customers[customer_key]
        day = date(2026, 2, 1) + timedelta(days=offset)
        records["visit"][name] = make_interaction(
            session, customer, rep, datetime(2026, 2, 1, 9) + timedelta(offset)
        ).id
        records["order"][name] = make_order(session, customer, rep, day, 100 + offset).id
        records["survey"][name] = make_survey(session, customer, rep, day, 4).id
        records["complaint"][name] = make_complaint(
            session, customer, rep, datetime(2026, 2, 1, 9) + timedelta(offset)
        ).id
        records["deal"][name] = make_opportunity(session, customer, rep, "prospecting").id
    session.commit()
    return SimpleNamespace(users=users, customers=customers, records=records)


def customer_id(world: SimpleNamespace, key: str) -> int:
    return world.customers[key].id


def see_customer(session: Session, world: SimpleNamespace, who: Actor, key: str) -> None:
    customer_profile(session, actor=who, customer_id=customer_id(world, key))


def list_customer(session: Session, world: SimpleNamespace, who: Actor, key: str) -> bool:
    return customer_id(world, key) in set(list_customers(session, actor=who, page_size=100).rows["id"])


def edit_customer(session: Session, world: SimpleNamespace, who: Actor, key: str) -> None:
    version = session.scalar(select(Customer.version).where(Customer.id == customer_id(world, key)))
    data = CustomerInput(name=f"Renamed {key}", version=version)
    update_customer(session, actor=who, customer_id=customer_id(world, key), data=data, now=NOW)


def soft_delete(session: Session, world: SimpleNamespace, who: Actor, key: str) -> None:
    delete_customer(session, actor=who, customer_id=customer_id(world, key), now=NOW)


def restore(session: Session, world: SimpleNamespace, who: Actor, key: str) -> None:
    admin = actor(world.users["admin"])
    delete_customer(session, actor=admin, customer_id=customer_id(world, key), now=NOW)
    restore_customer(session, actor=who, customer_id=customer_id(world, key), now=NOW)


def reassign_to_pool(session: Session, world: SimpleNamespace, who: Actor, key: str) -> None:
    reassign_customer(session, actor=who, customer_id=customer_id(world, key), owner_id=None, now=NOW)


def log_visit(session: Session, world: SimpleNamespace, who: Actor, key: str) -> None:
    data = InteractionInput(customer_id=customer_id(world, key), kind="visit", occurred_at=NOW)
    log_interaction(session, actor=who, data=data, now=NOW)


def log_order(session: Session, world: SimpleNamespace, who: Actor, key: str) -> None:
    data = OrderInput(customer_id=customer_id(world, key), ordered_on=NOW.date(), amount="99.90")
    create_order(session, actor=who, data=data, now=NOW)


def log_survey(session: Session, world: SimpleNamespace, who: Actor, key: str) -> None:
    data = SurveyInput(customer_id=customer_id(world, key), responded_on=NOW.date(), overall=5)
    record_survey(session, actor=who, data=data, now=NOW)


def log_complaint(session: Session, world: SimpleNamespace, who: Actor, key: str) -> None:
    data = ComplaintInput(customer_id(world, key), "delivery", "medium", "Late delivery")
    open_complaint(session, actor=who, data=data, now=NOW)


def log_deal(session: Session, world: SimpleNamespace, who: Actor, key: str) -> None:
    create_opportunity(session, actor=who, data=OpportunityInput(customer_id=customer_id(world, key)), now=NOW)


def create_for(session: Session, world: SimpleNamespace, who: Actor, owner: str) -> str | None:
    owner_id = None if owner == "default" else world.users[owner].id
    customer = create_customer(session, actor=who, data=CustomerInput(name="New", owner_id=owner_id), now=NOW)
    # The default owner is the rep themself; for a manager or an admin it is the pool.
    expected = owner_id if owner_id is not None else (who.id if who.is_rep else None)
    return None if customer.owner_id == expected else f"wrong owner {customer.owner_id}"


def set_targets(session: Session, world: SimpleNamespace, who: Actor, rep: str) -> None:
    set_target(session, actor=who, data=TargetInput(world.users[rep].id, "2026-03", visit_target=12), now=NOW)


def score_attitude(session: Session, world: SimpleNamespace, who: Actor, rep: str) -> None:
    data = AttitudeInput(world.users[rep].id, date(2026, 3, 1), date(2026, 4, 1), 80, 80, 80, 80)
    set_attitude_score(session, actor=who, data=data, now=NOW)


def see_scorecard(session: Session, world: SimpleNamespace, who: Actor, rep: str) -> bool | str:
    return manages_rep(session, actor=who, rep_id=world.users[rep].id) or NO


def sees_record(kind: str, lister: Callable[[Session, Actor], list[int]]) -> Callable[..., bool]:
    def check(session: Session, world: SimpleNamespace, who: Actor, name: str) -> bool:
        return world.records[kind][name] in lister(session, who)

    return check


LISTERS: dict[str, Callable[[Session, Actor], list[int]]] = {
    "visit": lambda s, a: list(recent_interactions(s, actor=a, limit=100)["id"]),
    "order": lambda s, a: list(list_orders(s, actor=a)["id"]),
    "survey": lambda s, a: list(list_surveys(s, actor=a)["id"]),
    "complaint": lambda s, a: list(list_complaints(s, actor=a, as_of=NOW)["id"]),
    "deal": lambda s, a: list(opportunities_by_stage(s, actor=a)["id"]),
}

ACTIONS: dict[str, tuple[Callable[..., object], dict[str, dict[str, str]]]] = {
    "see customer": (see_customer, CUSTOMER_SCOPE),
    "customer in list": (list_customer, CUSTOMER_SCOPE),
    "edit customer": (edit_customer, CUSTOMER_SCOPE),
    "soft-delete customer": (soft_delete, CUSTOMER_SCOPE),
    "restore customer": (restore, MANAGE_SCOPE),
    "reassign owner": (reassign_to_pool, MANAGE_SCOPE),
    "log interaction": (log_visit, CUSTOMER_SCOPE),
    "log order": (log_order, CUSTOMER_SCOPE),
    "log survey": (log_survey, CUSTOMER_SCOPE),
    "log complaint": (log_complaint, CUSTOMER_SCOPE),
    "log opportunity": (log_deal, CUSTOMER_SCOPE),
    "create customer for": (create_for, CREATE_FOR),
    "set targets": (set_targets, APPRAISE),
    "enter attitude scores": (score_attitude, APPRAISE),
    "see scorecard": (see_scorecard, SCORECARD),
    **{f"see {kind}": (sees_record(kind, lister), RECORD_SCOPE) for kind, lister in LISTERS.items()},
}


def outcome(session: Session, run: Callable[[], object]) -> str:
    """Run one case in a SAVEPOINT that is always rolled back, and name what happened."""
    savepoint = session.begin_nested()
    try:
        result = run()
    except NotFoundError as error:
        return NF if "not found or not yours" in str(error) else f"odd message: {error}"
    except PermissionDeniedError:
        return NO
    except CrmError as error:
        return f"{type(error).__name__}: {error}"
    finally:
        savepoint.rollback()
    if result is False:
        return NF  # a read that leaves the record out
    if isinstance(result, str):
        return result
    return OK


def test_table_covers_every_role_and_target() -> None:
    axes = {id(CUSTOMER_SCOPE): CUSTOMERS, id(MANAGE_SCOPE): CUSTOMERS, id(CREATE_FOR): OWNERS}
    axes |= {id(APPRAISE): REPS, id(SCORECARD): REPS, id(RECORD_SCOPE): RECORDS}
    for name, (_run, table) in ACTIONS.items():
        assert list(table) == ACTORS, name
        for row in table.values():
            assert sorted(row) == sorted(axes[id(table)]), name


def test_access_matrix(session: Session, world: SimpleNamespace) -> None:
    mismatches = []
    cases = 0
    for action, (run, table) in ACTIONS.items():
        for actor_name, row in table.items():
            who = actor(world.users[actor_name])
            for target, expected in row.items():
                got = outcome(session, lambda run=run, who=who, target=target: run(session, world, who, target))
                cases += 1
                if got != expected:
                    mismatches.append(f"{action}: {actor_name} → {target}: expected {expected!r}, got {got!r}")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches)
    # 11 customer actions × 6 × 4 + 6 × 5 owners + 3 rep actions × 6 × 3 + 5 record kinds × 6 × 7
    assert cases == 11 * 24 + 30 + 3 * 18 + 5 * 42
