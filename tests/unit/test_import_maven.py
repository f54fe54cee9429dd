"""Maven dataset import: the real 8,800-deal file, and small hand-made files for the edge cases."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

import crm.importing
from crm.audit import data_version
from crm.errors import PermissionDeniedError, ValidationError
from crm.importing import CLEANED, CREATED, REJECTED, UNCHANGED, import_maven, username_slug
from crm.models import AuditEvent, Customer, Opportunity, Order, Product, Role, User
from tests.factories import actor, make_user

# CI clones the repository next to shared/, so the dataset sits beside the repository root.
MAVEN_DIR = Path(__file__).resolve().parents[3] / "shared/datasets/maven_crm"
AT = datetime(2026, 1, 15, 8, 0)
TABLES = (User, Product, Customer, Opportunity, Order, AuditEvent)


def read_csv(directory: Path, name: str) -> list[dict[str, str]]:
    with (directory / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def table_counts(session: Session) -> dict[str, int]:
    return {m.__name__: int(session.scalar(select(func.count()).select_from(m)) or 0) for m in TABLES}


def expected_owner(pipeline: list[dict[str, str]], account: str) -> str | None:
    """The agent with most deals on the account; ties go to the alphabetically first name."""
    deals = Counter(row["sales_agent"] for row in pipeline if row["account"] == account)
    return min(deals.items(), key=lambda item: (-item[1], item[0]))[0] if deals else None


@pytest.fixture
def admin(session: Session) -> User:
    return make_user(session, "admin", role=Role.ADMIN)


# --- the real dataset ---------------------------------------------------------------------------


@pytest.mark.slow
def test_real_dataset_imports_every_row_and_matches_the_csv(session: Session, admin: User) -> None:
    pipeline = read_csv(MAVEN_DIR, "sales_pipeline.csv")
    accounts = read_csv(MAVEN_DIR, "accounts.csv")
    teams = read_csv(MAVEN_DIR, "sales_teams.csv")
    calls: list[tuple[int, int]] = []
    report = import_maven(
        session,
        actor=actor(admin),
        directory=MAVEN_DIR,
        dry_run=False,
        at=AT,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert report.ok and report.committed
    counts = table_counts(session)
    assert counts["Opportunity"] == len(pipeline) == 8800
    assert (counts["Product"], counts["Customer"]) == (7, 85)
    assert report.count("opportunity", CREATED) == 8800

    roles = {role: n for role, n in session.execute(select(User.role, func.count()).group_by(User.role))}
    assert roles == {"admin": 1, "manager": 6, "rep": 35}
    assert len(teams) == 35
    users = {u.display_name: u for u in session.scalars(select(User))}
    for row in teams:
        rep, manager = users[row["sales_agent"]], users[row["manager"]]
        assert (rep.username, rep.role, rep.team, rep.region) == (
            username_slug(row["sales_agent"]),
            "rep",
            row["manager"],
            row["regional_office"],
        )
        assert (rep.manager_id, manager.role, manager.team, manager.region) == (
            manager.id,
            "manager",
            row["manager"],
            row["regional_office"],
        )
        # Unusable until an admin resets it: bcrypt hashes start with '$'.
        assert rep.password_hash.startswith("!")
    assert users["Anna Snelling"].username == "anna.snelling"
    assert users["Mei-Mei Johns"].username == "mei-mei.johns"

    # Per-agent won and lost counts equal a direct count of the file.
    expected_closed = Counter(
        (row["sales_agent"], row["deal_stage"].lower()) for row in pipeline if row["deal_stage"] in ("Won", "Lost")
    )
    closed = session.execute(
        select(User.display_name, Opportunity.stage, func.count())
        .join(User, Opportunity.owner_id == User.id)
        .where(Opportunity.stage.in_(["won", "lost"]))
        .group_by(User.display_name, Opportunity.stage)
    ).all()
    assert {(name, stage): n for name, stage, n in closed} == expected_closed
    stages = {
        stage: n for stage, n in session.execute(select(Opportunity.stage, func.count()).group_by(Opportunity.stage))
    }
    assert stages == dict(Counter(row["deal_stage"].lower() for row in pipeline))

    won, all_closed = session.execute(
        select(func.sum(case((Opportunity.stage == "won", 1), else_=0)), func.count()).where(
            Opportunity.stage.in_(["won", "lost"]), Opportunity.closed_on.is_not(None)
        )
    ).one()
    assert (won, all_closed) == (4238, 6711)
    assert round(100 * won / all_closed, 1) == 63.2

    # Won deals with an account became orders on their close date; the rest of the pipeline kept its gaps.
    won_with_account = [r for r in pipeline if r["deal_stage"] == "Won" and r["account"]]
    assert counts["Order"] == len(won_with_account) == report.count("order", CREATED)
    order_total = session.scalar(select(func.sum(Order.amount)))
    assert order_total == sum(Decimal(r["close_value"]) for r in won_with_account)
    mismatched = session.scalar(
        select(func.count())
        .select_from(Order)
        .join(Opportunity, Order.opportunity_id == Opportunity.id)
        .where(
            (Order.ordered_on != Opportunity.closed_on)
            | (Order.amount != Opportunity.amount)
            | (Order.rep_id != Opportunity.owner_id)
            | (Order.customer_id != Opportunity.customer_id)
        )
    )
    assert mismatched == 0
    no_account = session.scalar(select(func.count()).where(Opportunity.customer_id.is_(None)))
    assert no_account == sum(1 for r in pipeline if not r["account"]) == 1425
    no_amount = session.scalar(select(func.count()).where(Opportunity.amount.is_(None)))
    assert no_amount == sum(1 for r in pipeline if not r["close_value"])
    first_engaged = min(date.fromisoformat(r["engage_date"]) for r in pipeline if r["engage_date"])
    assert first_engaged == date(2016, 10, 20)
    fallback = session.scalar(
        select(func.count()).where(Opportunity.engaged_on.is_(None), Opportunity.created_on == first_engaged)
    )
    assert fallback == sum(1 for r in pipeline if not r["engage_date"]) == 500

    # Every cleaning is reported on its own line.
    gtxpro_lines = {n for n, r in enumerate(pipeline, start=2) if r["product"] == "GTXPro"}
    product_cleanings = [r for r in report.rows if r.action == CLEANED and r.field == "product"]
    assert {r.line for r in product_cleanings} == gtxpro_lines and len(product_cleanings) == 1480
    assert {r.message for r in product_cleanings} == {"product 'GTXPro' cleaned to 'GTX Pro'"}
    sector_lines = {n for n, r in enumerate(accounts, start=2) if r["sector"] == "technolgy"}
    sector_cleanings = [r for r in report.rows if r.action == CLEANED and r.field == "industry"]
    assert {r.line for r in sector_cleanings} == sector_lines and len(sector_cleanings) == 12
    gtx_pro = session.scalar(select(Product.id).where(Product.name == "GTX Pro"))
    on_gtx_pro = session.scalar(select(func.count()).where(Opportunity.product_id == gtx_pro))
    assert on_gtx_pro == sum(1 for r in pipeline if r["product"] in ("GTXPro", "GTX Pro"))
    assert session.scalar(select(func.count()).where(Customer.industry == "technolgy")) == 0

    # Customers: code, tier from won deals, owner by most deals with the alphabetical tie-break.
    won_accounts = {r["account"] for r in won_with_account}
    names = {u.id: u.display_name for u in users.values()}
    for customer in session.scalars(select(Customer)):
        assert customer.code == f"C{customer.id:06d}" and customer.name_key == customer.name.lower()
        assert customer.tier == ("customer" if customer.name in won_accounts else "prospect")
        owner = names.get(customer.owner_id) if customer.owner_id else None
        assert owner == expected_owner(pipeline, customer.name), customer.name
    acme = session.scalar(select(Customer).where(Customer.name == "Acme Corporation"))
    assert acme is not None
    # Four agents have 9 deals each with Acme; the alphabetically first wins.
    assert names[acme.owner_id or 0] == "Daniell Hammack"
    assert (acme.industry, acme.region, acme.size, acme.kind) == ("technology", "United States", "large", "company")
    assert acme.notes == "Established 1996; revenue 1100.04 M USD"

    # One audit event summarising the import, one data-version bump; progress ends at total.
    audit = session.scalars(select(AuditEvent)).all()
    assert [(a.action, a.entity) for a in audit] == [("import", "maven")]
    # A row cleaned twice (GTXPro and no engage date) counts once.
    cleaned_rows = sum(1 for r in pipeline if r["product"] == "GTXPro" or not r["engage_date"])
    assert audit[0].changes is not None
    assert audit[0].changes["opportunity"] == [None, {"created": 8800, "cleaned": cleaned_rows}]
    assert audit[0].changes["source"] == [None, str(MAVEN_DIR)]
    assert data_version(session) == 1
    assert calls[-1][0] == calls[-1][1] and len(calls) > 10
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@pytest.mark.slow
def test_real_dataset_dry_run_writes_nothing_and_reports_what_the_real_run_does(session: Session, admin: User) -> None:
    before = table_counts(session)
    dry = import_maven(session, actor=actor(admin), directory=MAVEN_DIR, dry_run=True, at=AT)
    assert table_counts(session) == before and data_version(session) == 0
    assert dry.dry_run and not dry.committed and dry.count("opportunity", CREATED) == 8800
    real = import_maven(session, actor=actor(admin), directory=MAVEN_DIR, dry_run=False, at=AT)
    assert dry.rows == real.rows
    assert table_counts(session)["Opportunity"] == 8800


@pytest.mark.slow
def test_real_dataset_second_import_adds_nothing(session: Session, admin: User) -> None:
    import_maven(session, actor=actor(admin), directory=MAVEN_DIR, dry_run=False, at=AT)
    after_first = table_counts(session)
    again = import_maven(session, actor=actor(admin), directory=MAVEN_DIR, dry_run=False, at=AT)
    after_second = table_counts(session)
    assert after_second == {**after_first, "AuditEvent": after_first["AuditEvent"] + 1}
    assert not any(row.action == CREATED for row in again.rows)
    assert (again.count("opportunity", UNCHANGED), again.count("order", UNCHANGED)) == (8800, 4238)
    assert (again.count("user", UNCHANGED), again.count("customer", UNCHANGED)) == (41, 85)


# --- small hand-made datasets --------------------------------------------------------------------

HEADERS = {
    "products.csv": "product,series,sales_price",
    "sales_teams.csv": "sales_agent,manager,regional_office",
    "accounts.csv": "account,sector,year_established,revenue,employees,office_location,subsidiary_of",
    "sales_pipeline.csv": "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value",
}
PRODUCTS = ["GTX Pro,GTX,4821", "MG Special,MG,55"]
TEAMS = ["Zed Agent,Mia Boss,East", "Amy Agent,Mia Boss,East", "Bob Agent,Ned Boss,West"]
ACCOUNTS = [
    "Tie Co,technolgy,2000,10.5,1000,China,",  # 1000 employees: large
    "Mid Co,retail,1990,1,999,Japan,Tie Co",  # medium
    "Low Co,retail,1990,1,100,Japan,",  # medium (boundary)
    "Tiny Co,retail,,,99,Japan,",  # small
]
PIPELINE = [
    "O1,Zed Agent,GTXPro,Tie Co,Won,2017-01-05,2017-02-01,4000",
    "O2,Zed Agent,MG Special,Tie Co,Lost,2017-01-06,2017-02-02,0",
    "O3,Amy Agent,MG Special,Tie Co,Engaging,2017-01-03,,",
    "O4,Amy Agent,MG Special,Tie Co,Prospecting,,,",
    "O5,Bob Agent,MG Special,Tie Co,Won,2017-01-09,2017-03-01,50",
    "O6,Bob Agent,MG Special,Mid Co,Lost,2017-01-10,2017-03-02,0",
]


def write_maven(directory: Path, **extra: list[str]) -> Path:
    """Write the hand-made dataset (plus extra rows per file stem) into the directory."""
    data = {"products": PRODUCTS, "sales_teams": TEAMS, "accounts": ACCOUNTS, "sales_pipeline": PIPELINE}
    directory.mkdir(parents=True, exist_ok=True)
    for stem, rows in data.items():
        lines = [HEADERS[f"{stem}.csv"], *rows, *extra.get(stem, [])]
        (directory / f"{stem}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def test_owner_tie_break_tier_size_and_created_dates(session: Session, admin: User, tmp_path: Path) -> None:
    report = import_maven(session, actor=actor(admin), directory=write_maven(tmp_path), dry_run=False, at=AT)
    assert report.ok
    customers = {c.name: c for c in session.scalars(select(Customer))}
    users = {u.id: u.username for u in session.scalars(select(User))}
    # Tie Co: Zed 2 deals, Amy 2, Bob 1 -> Amy (alphabetically before Zed).
    owners = {name: users.get(c.owner_id) if c.owner_id else None for name, c in customers.items()}
    assert owners == {"Tie Co": "amy.agent", "Mid Co": "bob.agent", "Low Co": None, "Tiny Co": None}
    tiers = {name: c.tier for name, c in customers.items()}
    assert tiers == {"Tie Co": "customer", "Mid Co": "prospect", "Low Co": "prospect", "Tiny Co": "prospect"}
    sizes = {name: c.size for name, c in customers.items()}
    assert sizes == {"Tie Co": "large", "Mid Co": "medium", "Low Co": "medium", "Tiny Co": "small"}
    assert customers["Mid Co"].notes == "Established 1990; revenue 1 M USD; subsidiary of Tie Co"
    assert customers["Tiny Co"].notes is None
    # created_at: the account's first engage date (Tie Co's earliest is O3 on 2017-01-03), else the import time.
    assert customers["Tie Co"].created_at == datetime(2017, 1, 3)
    assert customers["Low Co"].created_at == AT
    # O4 has no engage date: created on the file's first engage date.
    o4 = session.scalar(select(Opportunity).where(Opportunity.external_id == "O4"))
    assert o4 is not None and (o4.created_on, o4.engaged_on, o4.amount, o4.stage) == (
        date(2017, 1, 3),
        None,
        None,
        "prospecting",
    )
    cleaned = sorted((r.line, r.field, r.message) for r in report.rows if r.action == CLEANED)
    assert cleaned == [
        (2, "industry", "industry 'technolgy' cleaned to 'technology'"),
        (2, "product", "product 'GTXPro' cleaned to 'GTX Pro'"),
        (5, "created_on", "no engage_date: created_on set to 2017-01-03, the file's first engage date"),
    ]
    orders = [tuple(row) for row in session.execute(select(Order.ordered_on, Order.amount).order_by(Order.ordered_on))]
    assert orders == [(date(2017, 2, 1), Decimal("4000.00")), (date(2017, 3, 1), Decimal("50.00"))]


def test_rows_that_cannot_be_mapped_are_reported_and_the_rest_imported(
    session: Session, admin: User, tmp_path: Path
) -> None:
    directory = write_maven(
        tmp_path,
        sales_pipeline=[
            "O7,Ghost Agent,MG Special,Tie Co,Won,2017-01-05,2017-02-01,10",  # line 8
            "O8,Zed Agent,Unknown Thing,Tie Co,Lost,2017-01-05,2017-02-01,0",
            "O9,Zed Agent,MG Special,Nowhere Inc,Lost,2017-01-05,2017-02-01,0",
            "O10,Zed Agent,MG Special,Tie Co,Lost,2017-13-05,2017-02-01,0",
            "O11,Zed Agent,MG Special,Tie Co,Stalled,2017-01-05,,",
            "O12,Zed Agent,MG Special,Tie Co,Lost,2017-01-05,2017-02-01,-5",
            "O1,Zed Agent,MG Special,Tie Co,Lost,2017-01-05,2017-02-01,0",  # duplicate id
            "O15,Amy Agent,MG Special,,Won,2017-01-05,2017-02-03,70",  # won without an account: no order
        ],
    )
    report = import_maven(session, actor=actor(admin), directory=directory, dry_run=False, at=AT)
    assert not report.ok and report.committed
    rejected = [
        (r.line, r.entity, r.field, r.error.key if r.error else None) for r in report.rows if r.action == REJECTED
    ]
    assert rejected == [
        (8, "opportunity", "sales_agent", "error.not_found"),
        (9, "opportunity", "product", "error.not_found"),
        (10, "opportunity", "account", "error.not_found"),
        (11, "opportunity", "engage_date", "error.invalid_date"),
        (12, "opportunity", "deal_stage", "error.invalid_choice"),
        (13, "opportunity", "close_value", "error.negative"),
        (14, "opportunity", "opportunity_id", "error.duplicate"),
        (15, "order", "account", "error.required"),
    ]
    ids = set(session.scalars(select(Opportunity.external_id)))
    assert ids == {"O1", "O2", "O3", "O4", "O5", "O6", "O15"}
    assert session.scalar(select(func.count()).select_from(Order)) == 2  # O1 and O5, not O15


@pytest.mark.parametrize("role", [Role.MANAGER, Role.REP])
def test_only_admins_may_import_maven(session: Session, tmp_path: Path, role: Role) -> None:
    user = make_user(session, "someone", role=role, team="north")
    with pytest.raises(PermissionDeniedError):
        import_maven(session, actor=actor(user), directory=write_maven(tmp_path), dry_run=True, at=AT)


def test_missing_file_is_a_validation_error(session: Session, admin: User, tmp_path: Path) -> None:
    directory = write_maven(tmp_path)
    (directory / "accounts.csv").unlink()
    with pytest.raises(ValidationError) as caught:
        import_maven(session, actor=actor(admin), directory=directory, dry_run=True, at=AT)
    assert caught.value.fields["directory"].key == "error.not_found"


def test_an_exception_rolls_the_whole_import_back(
    session: Session, admin: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    # The audit summary is the last write: everything before it must be undone too.
    monkeypatch.setattr(crm.importing, "record", fail)
    before = table_counts(session)
    with pytest.raises(RuntimeError):
        import_maven(session, actor=actor(admin), directory=write_maven(tmp_path), dry_run=False, at=AT)
    assert table_counts(session) == before
    session.commit()
    assert table_counts(session) == before
