"""Deterministic demo data: exact counts, dates, determinism, the story, credentials, refusals."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, case, create_engine, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from crm.audit import data_version
from crm.db import make_engine
from crm.models import (
    AttitudeScore,
    AuditEvent,
    Base,
    Complaint,
    Contact,
    Customer,
    Interaction,
    Opportunity,
    Order,
    Product,
    Role,
    SurveyResponse,
    Target,
    Tier,
    User,
)
from crm.seed import (
    SCALES,
    SLA_HOURS,
    SeedError,
    expected_counts,
    generate_password,
    seed,
    write_credentials,
)
from tests.conftest import BACKENDS, fresh_database_url
from tests.factories import make_customer, make_user

AS_OF = date(2026, 3, 18)  # a Wednesday
AS_OF_END = datetime.combine(AS_OF + timedelta(days=1), time.min)  # datetimes on AS_OF are still "on or before"
PASSWORD = "seed-test-password"
CJK = re.compile(r"[\u4e00-\u9fff]")
# Every seeded table, for whole-database comparisons (users without the salted password hash).
SEEDED_MODELS: tuple[type[Base], ...] = (
    User,
    Product,
    Customer,
    Contact,
    Opportunity,
    Order,
    Interaction,
    Complaint,
    SurveyResponse,
    Target,
    AttitudeScore,
    AuditEvent,
)


@contextmanager
def fresh_engine(backend: str, sqlite_template: Path, pg_template: str | None, directory: Path) -> Iterator[Engine]:
    """Open an engine on a new migrated database of this backend, dropped afterwards."""
    urls = fresh_database_url(backend, sqlite_template, pg_template, directory)
    eng = make_engine(next(urls))
    try:
        yield eng
    finally:
        eng.dispose()
        urls.close()


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest,
    sqlite_template: Path,
    pg_template: str | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Engine, Any, list[tuple[str, int, int]]]]:
    """One tiny seeded database per backend, shared by the read-only tests of this module."""
    calls: list[tuple[str, int, int]] = []
    directory = tmp_path_factory.mktemp("seeded")
    with fresh_engine(request.param, sqlite_template, pg_template, directory) as eng:
        result = seed(
            eng,
            scale="tiny",
            seed=42,
            password=PASSWORD,
            as_of=AS_OF,
            progress=lambda table, done, total: calls.append((table, done, total)),
        )
        yield eng, result, calls


def count(eng: Engine, model: type[Base], *where: Any) -> int:
    with Session(eng) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def dump(eng: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Return every seeded row of every table, ordered by id (users without the password hash)."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with Session(eng) as session:
        for model in SEEDED_MODELS:
            table = model.__table__
            columns = [c for c in table.columns if c.name != "password_hash"]
            rows[table.name] = [tuple(r) for r in session.execute(select(*columns).order_by(table.c.id))]
    return rows


# --- counts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (User, 1 + 2 + 2 * 2),  # admin, a manager per team, 2 teams x 2 reps
        (Product, 7),  # the Maven catalogue
        (Customer, 60),
        (Contact, 48 + 14),  # 80% of 60 are companies, each with a contact; 30% of 48 have a second
        (Opportunity, 60),
        (Order, 200),
        (Interaction, 600),
        (Complaint, 30),
        (SurveyResponse, 100),
        (Target, 4 * 13),  # 4 reps x (12 full months + the current one)
        (AttitudeScore, 4 * 12),  # 4 reps x 12 full months, scored by their manager
        (AuditEvent, 1),  # the one 'seed' event
    ],
)
def test_tiny_scale_inserts_exact_counts(seeded: Any, model: type[Base], expected: int) -> None:
    eng, result, _ = seeded
    name = model.__table__.name
    assert count(eng, model) == expected
    assert result.counts[name] == expected
    assert expected_counts("tiny")[name] == expected


def test_result_lists_users_and_the_counts_match_the_scale_constants(seeded: Any) -> None:
    _, result, _ = seeded
    tiny = SCALES["tiny"]
    assert result.usernames == ("admin", "manager1", "manager2", "rep1", "rep2", "rep3", "rep4")
    assert (tiny.customers, tiny.interactions, tiny.orders) == (60, 600, 200)
    assert dict(result.counts) == expected_counts("tiny")
    assert (result.scale, result.locale, result.seed, result.as_of) == ("tiny", "en_US", 42, AS_OF)
    assert result.elapsed_seconds > 0


def test_progress_reports_every_table_up_to_its_total(seeded: Any) -> None:
    _, result, calls = seeded
    finals = {table: (done, total) for table, done, total in calls}
    for table, rows in result.counts.items():
        if table != "audit_events":
            assert finals[table] == (rows, rows)
    assert all(0 <= done <= total for _, done, total in calls)


def test_seed_writes_one_audit_event_and_bumps_the_data_version(seeded: Any) -> None:
    eng, _, _ = seeded
    with Session(eng) as session:
        event = session.scalars(select(AuditEvent)).one()
        admin_id = session.scalar(select(User.id).where(User.username == "admin"))
        assert (event.action, event.entity, event.actor_id) == ("seed", "database", admin_id)
        assert event.changes is not None and event.changes["customers"] == [0, 60]
        assert data_version(session) == 1


# --- dates and consistency ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "column",
    [
        User.created_at,
        Customer.created_at,
        Customer.updated_at,
        Customer.deleted_at,
        Contact.created_at,
        Interaction.occurred_at,
        Interaction.created_at,
        Opportunity.created_on,
        Opportunity.engaged_on,
        Opportunity.closed_on,
        Order.ordered_on,
        Order.created_at,
        SurveyResponse.responded_on,
        SurveyResponse.created_at,
        Complaint.opened_at,
        Complaint.resolved_at,
        Complaint.created_at,
        Target.month,
        Target.updated_at,
        AttitudeScore.period_start,
        AttitudeScore.period_end,
        AttitudeScore.updated_at,
        AuditEvent.at,
    ],
    ids=lambda column: str(column),
)
def test_no_date_is_after_as_of(seeded: Any, column: InstrumentedAttribute[Any]) -> None:
    eng, _, _ = seeded
    limit = AS_OF_END if column.type.python_type is datetime else AS_OF + timedelta(days=1)
    model = column.class_
    assert count(eng, model, column >= limit) == 0
    assert count(eng, model, column.is_not(None)) > 0 or column is Customer.deleted_at


def test_rows_are_internally_consistent(seeded: Any) -> None:
    eng, _, _ = seeded
    with Session(eng) as session:
        for customer in session.scalars(select(Customer)):
            assert customer.code == f"C{customer.id:06d}"
            assert customer.name_key == customer.name.lower()
        for opp in session.scalars(select(Opportunity)):
            # won and lost deals are closed; open ones are not; the dates run forwards
            assert (opp.closed_on is not None) == (opp.stage in ("won", "lost"))
            assert opp.engaged_on is None or opp.created_on <= opp.engaged_on
            assert opp.closed_on is None or (opp.engaged_on or opp.created_on) <= opp.closed_on
        for complaint in session.scalars(select(Complaint)):
            assert complaint.due_at == complaint.opened_at + timedelta(hours=SLA_HOURS[complaint.severity])
        won_with_customer = session.scalars(
            select(Opportunity).where(Opportunity.stage == "won", Opportunity.customer_id.is_not(None))
        ).all()
        assert won_with_customer
        for opp in won_with_customer:
            order = session.scalars(select(Order).where(Order.opportunity_id == opp.id)).one()
            assert (order.customer_id, order.rep_id, order.ordered_on, order.amount) == (
                opp.customer_id,
                opp.owner_id,
                opp.closed_on,
                opp.amount,
            )


# --- the story ------------------------------------------------------------------------------------


def test_story_reps_differ_and_overdue_complaints_hurt_satisfaction(seeded: Any) -> None:
    eng, _, _ = seeded
    with Session(eng) as session:
        by_rep = select(SurveyResponse.rep_id, func.avg(SurveyResponse.overall)).group_by(SurveyResponse.rep_id)
        csat_by_rep = {rep_id: float(mean) for rep_id, mean in session.execute(by_rep)}
        assert len(csat_by_rep) == 4
        assert max(csat_by_rep.values()) - min(csat_by_rep.values()) >= 0.3
        overdue_open = (Complaint.resolved_at.is_(None)) & (Complaint.due_at < datetime.combine(AS_OF, time.min))
        assert count(eng, Complaint, overdue_open) >= 1
        late = overdue_open | (Complaint.resolved_at > Complaint.due_at)
        soured = select(Complaint.customer_id).where(late)
        flag = case((SurveyResponse.customer_id.in_(soured), 1), else_=0)
        by_flag = select(flag, func.avg(SurveyResponse.overall)).group_by(flag)
        csat = {soured_flag: float(mean) for soured_flag, mean in session.execute(by_flag)}
        assert csat[1] < csat[0]


def test_story_every_rep_has_follow_ups_due_today_and_overdue(seeded: Any) -> None:
    eng, _, _ = seeded
    with Session(eng) as session:
        reps = session.scalars(select(User.id).where(User.role == Role.REP.value)).all()
        for rep_id in reps:
            mine = Interaction.rep_id == rep_id
            assert count(eng, Interaction, mine, Interaction.next_follow_up == AS_OF) >= 1
            assert count(eng, Interaction, mine, Interaction.next_follow_up < AS_OF) >= 1


def test_story_pool_pyramid_conversion_and_seasons(seeded: Any) -> None:
    eng, _, _ = seeded
    live = Customer.deleted_at.is_(None)
    assert count(eng, Customer, Customer.owner_id.is_(None), live) >= 1
    tiers = [count(eng, Customer, Customer.tier == tier.value) for tier in Tier]
    assert tiers == sorted(tiers, reverse=True) and tiers[0] > tiers[-1]
    # Customers created during the year, some of which bought: lead conversion has a numerator.
    window_start = datetime(2025, 3, 1)  # 12 full months before March 2026
    assert count(eng, Customer, Customer.created_at >= window_start) >= 10
    converted = select(Order.customer_id).join(Customer, Customer.id == Order.customer_id)
    converted = converted.where(Customer.created_at >= window_start)
    with Session(eng) as session:
        assert session.scalar(select(func.count(func.distinct(converted.subquery().c.customer_id)))) >= 1

    def orders_in(*months: tuple[int, int]) -> int:
        return sum(
            count(eng, Order, Order.ordered_on >= date(y, m, 1), Order.ordered_on < date(y + m // 12, m % 12 + 1, 1))
            for y, m in months
        )

    # Q4 peak against the Chinese New Year (February) and August dips.
    assert orders_in((2025, 11), (2025, 12)) > 1.3 * orders_in((2025, 8), (2026, 2))


# --- determinism and locale -----------------------------------------------------------------------


def test_same_seed_gives_identical_data_and_another_seed_differs(
    engine: Engine, sqlite_template: Path, pg_template: str | None, tmp_path: Path
) -> None:
    backend = engine.dialect.name
    seed(engine, scale="tiny", seed=7, password=PASSWORD, as_of=AS_OF)
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    with (
        fresh_engine(backend, sqlite_template, pg_template, tmp_path / "b") as again,
        fresh_engine(backend, sqlite_template, pg_template, tmp_path / "c") as other,
    ):
        seed(again, scale="tiny", seed=7, password="another password", as_of=AS_OF)
        seed(other, scale="tiny", seed=8, password=PASSWORD, as_of=AS_OF)
        first, second, third = dump(engine), dump(again), dump(other)

    def total(rows: dict[str, list[tuple[Any, ...]]]) -> float:
        amount = [c.name for c in Order.__table__.columns if c.name != "password_hash"].index("amount")
        return sum(float(row[amount]) for row in rows["orders"])

    def names(rows: dict[str, list[tuple[Any, ...]]]) -> list[str]:
        return [row[2] for row in rows["customers"]]  # id, code, name, ...

    assert first == second
    assert total(first) == total(second) and names(first) == names(second)
    assert total(first) != total(third)
    assert names(first) != names(third)


def test_zh_cn_locale_writes_chinese(engine: Engine) -> None:
    seed(engine, scale="tiny", locale="zh_CN", seed=42, password=PASSWORD, as_of=AS_OF)
    with Session(engine) as session:
        names = session.scalars(select(Customer.name)).all()
        assert len(names) == 60 and all(CJK.search(name) for name in names)
        assert any(name.endswith("公司") for name in names)
        teams = set(session.scalars(select(User.team).where(User.team.is_not(None))))
        assert teams == {"华北", "华南"}
        reps = session.scalars(select(User).where(User.role == Role.REP.value)).all()
        assert all(CJK.search(rep.display_name) and rep.language == "zh-CN" for rep in reps)
        cities = session.scalars(select(Customer.city)).all()
        assert all(CJK.search(city or "") for city in cities)


# --- refusals and credentials ---------------------------------------------------------------------


def test_seeding_a_seeded_database_raises_and_changes_nothing(engine: Engine) -> None:
    seed(engine, scale="tiny", seed=42, password=PASSWORD, as_of=AS_OF)
    with pytest.raises(SeedError, match="already has 60 customers"):
        seed(engine, scale="tiny", seed=43, password=PASSWORD, as_of=AS_OF)
    assert count(engine, Customer) == 60
    assert count(engine, User) == 7


def test_seeding_refuses_a_hand_made_customer(session: Session, engine: Engine) -> None:
    rep = make_user(session, "someone", role=Role.REP)
    make_customer(session, "Acme", owner=rep)
    session.commit()
    with pytest.raises(SeedError, match="already has 1 customers"):
        seed(engine, scale="tiny", seed=42, password=PASSWORD, as_of=AS_OF)
    assert count(engine, User) == 1


def test_seeding_refuses_existing_demo_usernames(session: Session, engine: Engine) -> None:
    make_user(session, "admin", role=Role.ADMIN)
    session.commit()
    with pytest.raises(SeedError, match="users admin already exist"):
        seed(engine, scale="tiny", seed=42, password=PASSWORD, as_of=AS_OF)
    assert count(engine, Customer) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"locale": "fr_FR"}, "unsupported locale"),
        ({"password": ""}, "password"),
        ({"password": "x" * 73}, "password"),  # bcrypt reads at most 72 bytes
        ({"scale": "huge"}, "unknown scale"),
    ],
)
def test_invalid_arguments_are_refused_before_touching_the_database(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"scale": "tiny", "password": PASSWORD, "as_of": AS_OF, **kwargs}
    unused = create_engine("sqlite://")
    with pytest.raises(SeedError, match=message):
        seed(unused, **arguments)


def test_generated_passwords_are_long_and_random() -> None:
    first, second = generate_password(), generate_password()
    assert len(first) >= 16 and len(second) >= 16
    assert first != second


def test_credentials_file_is_private_and_lists_every_user(tmp_path: Path) -> None:
    path = tmp_path / "data" / "demo_credentials.txt"
    usernames = ("admin", "manager1", "rep1", "rep2")
    write_credentials(path, usernames, "s3cret-pass")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text(encoding="utf-8").splitlines()
    for username in usernames:
        assert f"{username}\ts3cret-pass" in lines
    # A file left readable by an earlier tool is tightened on rewrite.
    path.chmod(0o644)
    write_credentials(path, ("admin",), "other")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "s3cret-pass" not in path.read_text(encoding="utf-8")
