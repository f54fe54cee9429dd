"""CSV import of customers and interactions: encodings, Chinese headers, matching, all-or-nothing."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.audit import data_version
from crm.errors import NotFoundError, PermissionDeniedError
from crm.importing import CLEANED, CREATED, REJECTED, UNCHANGED, UPDATED, import_customers, import_interactions
from crm.models import AuditEvent, Customer, Interaction, Role, User
from tests.factories import actor, make_customer, make_interaction, make_user

AT = datetime(2026, 3, 1, 12, 0)


@pytest.fixture
def people(session: Session) -> dict[str, User]:
    """An admin; team north (manager + two reps); team south (manager + one rep)."""
    admin = make_user(session, "admin", role=Role.ADMIN)
    mgr = make_user(session, "mgr", role=Role.MANAGER, team="north")
    rep1 = make_user(session, "rep1", team="north", manager=mgr)
    rep2 = make_user(session, "rep2", team="north", manager=mgr)
    south = make_user(session, "south", role=Role.MANAGER, team="south")
    rep3 = make_user(session, "rep3", team="south", manager=south)
    return {u.username: u for u in (admin, mgr, rep1, rep2, south, rep3)}


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.replace("\n", "\r\n").encode(encoding)


def count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def actions(report, entity: str) -> list[tuple[int, str]]:
    return [(row.line, row.action) for row in report.rows if row.entity == entity and row.action != CLEANED]


CHINESE_CUSTOMERS = """名称,电话,等级,规模,类型,负责人,来源,邮箱
华为技术, 13800000001 ,重要,大,公司,rep1,展会,info@huawei.example
小米科技,13800000002,线索,中,个人,,推荐,
"""


@pytest.mark.parametrize(
    ("encoding", "reported"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030"), ("gbk", "gb18030")],
)
def test_customers_with_chinese_headers_and_values_in_every_encoding(
    session: Session, people: dict[str, User], encoding: str, reported: str
) -> None:
    report = import_customers(
        session, actor=actor(people["admin"]), data=csv_bytes(CHINESE_CUSTOMERS, encoding), dry_run=False, at=AT
    )
    assert report.encoding == reported
    assert report.ok and report.committed
    assert actions(report, "customer") == [(2, CREATED), (3, CREATED)]
    huawei = session.scalar(select(Customer).where(Customer.name == "华为技术"))
    assert huawei is not None
    assert (huawei.phone, huawei.tier, huawei.size, huawei.kind, huawei.source, huawei.owner_id) == (
        "13800000001",
        "key",
        "large",
        "company",
        "exhibition",
        people["rep1"].id,
    )
    assert huawei.code == f"C{huawei.id:06d}"
    assert huawei.name_key == "华为技术"
    xiaomi = session.scalar(select(Customer).where(Customer.name == "小米科技"))
    assert xiaomi is not None
    # No owner cell and no owner_username: the unassigned pool.
    assert (xiaomi.tier, xiaomi.size, xiaomi.kind, xiaomi.source, xiaomi.owner_id) == (
        "lead",
        "medium",
        "person",
        "referral",
        None,
    )
    cleaned = {(row.line, row.field) for row in report.rows if row.action == CLEANED}
    assert cleaned == {
        (2, "phone"),  # trimmed
        (2, "tier"),
        (2, "size"),
        (2, "kind"),
        (2, "source"),
        (3, "tier"),
        (3, "size"),
        (3, "kind"),
        (3, "source"),
    }
    assert any(row.message == "tier: '重要' mapped to 'key'" for row in report.rows)


def test_english_headers_case_folded_enums_and_default_owner(session: Session, people: dict[str, User]) -> None:
    data = csv_bytes("Name,Tier,Source,Phone\nAcme,KEY,Cold Call,010-1234567\n")
    report = import_customers(
        session, actor=actor(people["mgr"]), data=data, dry_run=False, at=AT, owner_username="rep2"
    )
    assert report.ok and report.committed
    acme = session.scalar(select(Customer).where(Customer.name == "Acme"))
    assert acme is not None
    assert (acme.tier, acme.source, acme.owner_id) == ("key", "cold_call", people["rep2"].id)
    messages = sorted(row.message for row in report.rows if row.action == CLEANED)
    assert messages == ["source: 'Cold Call' case-folded to 'cold_call'", "tier: 'KEY' case-folded to 'key'"]


def test_unknown_default_owner_is_refused(session: Session, people: dict[str, User]) -> None:
    with pytest.raises(NotFoundError):
        import_customers(
            session, actor=actor(people["admin"]), data=csv_bytes("name\nA\n"), dry_run=False, at=AT, owner_username="x"
        )


@pytest.mark.parametrize(
    ("row", "field", "key"),
    [
        (",13800000009,,,", "name", "error.required"),
        ("Acme,12,,,", "phone", "error.invalid_phone"),
        ("Acme,,not-an-email,,", "email", "error.invalid_email"),
        ("Acme,,,gold,", "tier", "error.invalid_choice"),
        ("Acme,,,,nobody", "owner", "error.not_found"),
        ("Acme,,,,rep3", "owner", "error.not_allowed"),  # rep3 is on team south, the importer manages north
        ("A" * 201 + ",,,,", "name", "error.too_long"),
    ],
)
def test_a_rejected_row_leaves_the_database_untouched(
    session: Session, people: dict[str, User], row: str, field: str, key: str
) -> None:
    data = csv_bytes(f"name,phone,email,tier,owner\nGood Co,13800000000,,,rep1\n{row}\n")
    before = (count(session, Customer), count(session, AuditEvent), data_version(session))
    dry = import_customers(session, actor=actor(people["mgr"]), data=data, dry_run=True, at=AT)
    real = import_customers(session, actor=actor(people["mgr"]), data=data, dry_run=False, at=AT)
    assert (count(session, Customer), count(session, AuditEvent), data_version(session)) == before
    assert not real.ok and not real.committed and real.refused
    assert dry.rows == real.rows and not dry.refused
    rejected = [r for r in real.rows if r.action == REJECTED]
    assert [(r.line, r.field) for r in rejected] == [(3, field)]
    assert rejected[0].error is not None and rejected[0].error.key == key
    # The good row is still reported as what it would have been.
    assert (2, CREATED) in actions(real, "customer")


def test_missing_name_column_rejects_the_file(session: Session, people: dict[str, User]) -> None:
    report = import_customers(
        session, actor=actor(people["admin"]), data=csv_bytes("phone,colour\n13800000000,red\n"), dry_run=False, at=AT
    )
    assert report.refused
    assert [(r.line, r.action, r.field) for r in report.rows] == [(1, CLEANED, "colour"), (1, REJECTED, "header")]
    assert report.rows[1].error is not None and report.rows[1].error.params == {"columns": "name"}
    assert count(session, Customer) == 0


def test_matching_by_code_and_by_name_and_phone_updates_instead_of_duplicating(
    session: Session, people: dict[str, User]
) -> None:
    by_code = make_customer(session, "Old Name", owner=people["rep1"], phone="13800000001")
    by_phone = make_customer(session, "Beta", owner=people["rep1"], phone="13800000002", tier="lead")
    same = make_customer(session, "Gamma", owner=None, phone="13800000003", tier="prospect")
    data = csv_bytes(
        "code,name,phone,tier,owner\n"
        f"{by_code.code},New Name,13800000001,,\n"
        ",Beta,13800000002,key,rep2\n"
        ",Gamma,13800000003,prospect,\n"
        ",Beta,13900000000,,\n"  # same name, other phone: a different customer
    )
    versions = (by_code.version, by_phone.version, same.version)
    report = import_customers(session, actor=actor(people["mgr"]), data=data, dry_run=False, at=AT)
    assert report.ok and report.committed
    assert actions(report, "customer") == [(2, UPDATED), (3, UPDATED), (4, UNCHANGED), (5, CREATED)]
    messages = {r.line: r.message for r in report.rows if r.action == UPDATED}
    assert messages == {2: "name: 'Old Name' → 'New Name'", 3: "tier: 'lead' → 'key'; owner: 'rep1' → 'rep2'"}
    session.refresh(by_code)
    session.refresh(by_phone)
    assert (by_code.name, by_code.name_key) == ("New Name", "new name")
    # Updated rows go through the ORM, so their optimistic-locking version moves on; the unchanged one does not.
    assert (by_code.version, by_phone.version, same.version) == (versions[0] + 1, versions[1] + 1, versions[2])
    assert (by_phone.tier, by_phone.owner_id, by_phone.updated_by_id) == ("key", people["rep2"].id, people["mgr"].id)
    assert count(session, Customer) == 4  # 3 + the one new Beta
    # Per-record audit events (2 updates + 1 create) and one import summary bumping the version once.
    audit = session.execute(select(AuditEvent.action, AuditEvent.entity).order_by(AuditEvent.id)).all()
    assert sorted(audit) == sorted(
        [("create", "customer"), ("update", "customer"), ("update", "customer"), ("import", "customer")]
    )
    assert data_version(session) == 1
    again = import_customers(session, actor=actor(people["mgr"]), data=data, dry_run=False, at=AT)
    assert actions(again, "customer") == [(2, UNCHANGED), (3, UNCHANGED), (4, UNCHANGED), (5, UNCHANGED)]
    assert count(session, Customer) == 4


def test_unknown_code_falls_back_to_name_and_phone_and_generates_a_code(
    session: Session, people: dict[str, User]
) -> None:
    data = csv_bytes("code,name,phone\nX-42,Delta,13800000004\n")
    first = import_customers(session, actor=actor(people["admin"]), data=data, dry_run=False, at=AT)
    delta = session.scalar(select(Customer).where(Customer.name == "Delta"))
    assert delta is not None and delta.code == f"C{delta.id:06d}"
    assert [(r.action, r.field) for r in first.rows] == [(CLEANED, "code"), (CREATED, None)]
    second = import_customers(session, actor=actor(people["admin"]), data=data, dry_run=False, at=AT)
    assert [r.action for r in second.rows] == [UNCHANGED]


@pytest.mark.parametrize(
    ("importer", "row", "field", "key"),
    [
        ("mgr", "{code},South Co,", "code", "error.not_found"),  # another team's customer, by code
        ("mgr", ",South Co,13800000005", "name", "error.duplicate"),  # and by name + phone
        ("mgr", "{deleted},Gone,", "code", "error.not_allowed"),  # in the recycle bin
        ("admin", "{deleted},Gone,", "code", "error.not_allowed"),
    ],
)
def test_matches_the_importer_may_not_update_are_rejected(
    session: Session, people: dict[str, User], importer: str, row: str, field: str, key: str
) -> None:
    south = make_customer(session, "South Co", owner=people["rep3"], phone="13800000005")
    gone = make_customer(session, "Gone", owner=people["rep1"])
    gone.deleted_at = AT
    session.flush()
    data = csv_bytes("code,name,phone\n" + row.format(code=south.code, deleted=gone.code) + "\n")
    report = import_customers(session, actor=actor(people[importer]), data=data, dry_run=False, at=AT)
    assert [(r.action, r.field) for r in report.rows] == [(REJECTED, field)]
    assert report.rows[0].error is not None and report.rows[0].error.key == key
    assert count(session, Customer) == 2


def test_duplicate_rows_in_one_file_are_rejected(session: Session, people: dict[str, User]) -> None:
    data = csv_bytes("name,phone\nEcho,13800000006\nEcho,13800000006\n")
    report = import_customers(session, actor=actor(people["admin"]), data=data, dry_run=False, at=AT)
    assert actions(report, "customer") == [(2, CREATED), (3, REJECTED)]
    assert report.refused and count(session, Customer) == 0


def test_dry_run_reports_but_writes_nothing(session: Session, people: dict[str, User]) -> None:
    report = import_customers(
        session, actor=actor(people["admin"]), data=csv_bytes(CHINESE_CUSTOMERS), dry_run=True, at=AT
    )
    assert report.ok and report.dry_run and not report.committed and not report.refused
    assert report.count("customer", CREATED) == 2
    assert (count(session, Customer), count(session, AuditEvent), data_version(session)) == (0, 0, 0)


@pytest.mark.parametrize("importer", ["rep1", "rep3"])
def test_reps_may_not_import(session: Session, people: dict[str, User], importer: str) -> None:
    with pytest.raises(PermissionDeniedError):
        import_customers(session, actor=actor(people[importer]), data=csv_bytes("name\nA\n"), dry_run=True, at=AT)
    with pytest.raises(PermissionDeniedError):
        import_interactions(
            session, actor=actor(people[importer]), data=csv_bytes("customer,kind,occurred_at\n"), dry_run=True, at=AT
        )


# --- interactions ---------------------------------------------------------------------------------

CHINESE_INTERACTIONS = """客户,方式,时间,负责人,主题,结果,下次跟进,备注
{code},拜访,2026-02-10 09:30,rep1,季度回顾,积极,2026-02-20,谈了续约
华为技术,电话,2026/02/11 14:00,,报价,中性,,
"""


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_interactions_with_chinese_headers_and_values(session: Session, people: dict[str, User], encoding: str) -> None:
    huawei = make_customer(session, "华为技术", owner=people["rep1"])
    data = csv_bytes(CHINESE_INTERACTIONS.format(code=huawei.code), encoding)
    report = import_interactions(session, actor=actor(people["mgr"]), data=data, dry_run=False, at=AT)
    assert report.ok and report.committed and report.encoding == encoding
    assert actions(report, "interaction") == [(2, CREATED), (3, CREATED)]
    rows = session.execute(
        select(
            Interaction.customer_id,
            Interaction.rep_id,
            Interaction.kind,
            Interaction.occurred_at,
            Interaction.subject,
            Interaction.outcome,
            Interaction.next_follow_up,
            Interaction.notes,
        ).order_by(Interaction.occurred_at)
    ).all()
    assert [tuple(r) for r in rows] == [
        (
            huawei.id,
            people["rep1"].id,
            "visit",
            datetime(2026, 2, 10, 9, 30),
            "季度回顾",
            "positive",
            date(2026, 2, 20),
            "谈了续约",
        ),
        # No rep cell: the importing manager is the rep.
        (huawei.id, people["mgr"].id, "call", datetime(2026, 2, 11, 14, 0), "报价", "neutral", None, None),
    ]
    assert {r.message for r in report.rows if r.action == CLEANED} == {
        "kind: '拜访' mapped to 'visit'",
        "outcome: '积极' mapped to 'positive'",
        "kind: '电话' mapped to 'call'",
        "outcome: '中性' mapped to 'neutral'",
    }
    assert count(session, AuditEvent) == 3  # two creates and the import summary


def test_interaction_reimport_dedupes_and_updates_changed_fields(session: Session, people: dict[str, User]) -> None:
    acme = make_customer(session, "Acme", owner=people["rep1"])
    header = "customer,kind,occurred_at,rep,subject,notes\n"
    first = csv_bytes(header + "Acme,visit,2026-02-10 09:30,rep1,Review,\nAcme,call,2026-02-10 09:30,rep1,Review,\n")
    assert import_interactions(session, actor=actor(people["admin"]), data=first, dry_run=False, at=AT).committed
    second = csv_bytes(
        header + "Acme,visit,2026-02-10 09:30,rep1,Review,Signed\nAcme,call,2026-02-10 09:30,rep1,Review,\n"
    )
    report = import_interactions(session, actor=actor(people["admin"]), data=second, dry_run=False, at=AT)
    assert actions(report, "interaction") == [(2, UPDATED), (3, UNCHANGED)]
    assert report.rows[0].message == "notes: (empty) → 'Signed'"
    notes = session.scalars(
        select(Interaction.notes).where(Interaction.customer_id == acme.id).order_by(Interaction.kind.desc())
    ).all()
    assert notes == ["Signed", None]
    assert count(session, Interaction) == 2


def test_existing_interaction_from_elsewhere_is_matched(session: Session, people: dict[str, User]) -> None:
    acme = make_customer(session, "Acme", owner=people["rep1"])
    existing = make_interaction(session, acme, people["rep1"], datetime(2026, 2, 1, 10, 0), kind="call")
    data = csv_bytes(
        f"customer,kind,occurred_at,rep,subject\n{acme.code},call,2026-02-01T10:00:00,rep1,{existing.subject}\n"
    )
    report = import_interactions(session, actor=actor(people["mgr"]), data=data, dry_run=False, at=AT)
    assert actions(report, "interaction") == [(2, UNCHANGED)]
    assert count(session, Interaction) == 1


@pytest.mark.parametrize(
    ("row", "field", "key"),
    [
        ("South Co,visit,2026-02-10 09:00,,", "customer", "error.not_found"),  # another team's customer
        ("Nobody Inc,visit,2026-02-10 09:00,,", "customer", "error.not_found"),
        ("Twin,visit,2026-02-10 09:00,,", "customer", "error.duplicate"),  # two visible customers named Twin
        ("Acme,visit,2026-02-10 09:00,rep3,", "rep", "error.not_allowed"),  # rep of team south
        ("Acme,visit,2026-02-10 09:00,ghost,", "rep", "error.not_found"),
        ("Acme,dance,2026-02-10 09:00,,", "kind", "error.invalid_choice"),
        ("Acme,visit,yesterday,,", "occurred_at", "error.invalid_date"),
        ("Acme,visit,2026-04-01 09:00,,", "occurred_at", "error.in_future"),
        ("Acme,visit,,,", "occurred_at", "error.required"),
        ("Acme,visit,2026-02-10 09:00,,2026-02-09", "next_follow_up", "error.date_order"),
        ("Acme,visit,2026-02-10 09:00,,someday", "next_follow_up", "error.invalid_date"),
    ],
)
def test_bad_interaction_rows_are_rejected_and_nothing_is_written(
    session: Session, people: dict[str, User], row: str, field: str, key: str
) -> None:
    make_customer(session, "Acme", owner=people["rep1"])
    make_customer(session, "South Co", owner=people["rep3"])
    make_customer(session, "Twin", owner=people["rep1"])
    make_customer(session, "Twin", owner=people["rep2"])
    data = csv_bytes(f"customer,kind,occurred_at,rep,next_follow_up\nAcme,call,2026-02-10 08:00,rep2,\n{row}\n")
    report = import_interactions(session, actor=actor(people["mgr"]), data=data, dry_run=False, at=AT)
    assert report.refused
    rejected = [r for r in report.rows if r.action == REJECTED]
    assert [(r.line, r.field) for r in rejected] == [(3, field)]
    assert rejected[0].error is not None and rejected[0].error.key == key
    assert (count(session, Interaction), count(session, AuditEvent)) == (0, 0)


def test_email_and_phone_are_normalised_like_the_edit_form(session: Session, people: dict[str, User]) -> None:
    data = csv_bytes('name,phone,email\nZeta,"+86  138 0000 0007",Info@ZETA.Example\n')
    report = import_customers(session, actor=actor(people["admin"]), data=data, dry_run=False, at=AT)
    zeta = session.scalar(select(Customer).where(Customer.name == "Zeta"))
    assert zeta is not None and (zeta.phone, zeta.email) == ("+86 138 0000 0007", "Info@zeta.example")
    assert sorted(r.message for r in report.rows if r.action == CLEANED) == [
        "email: 'Info@ZETA.Example' normalised to 'Info@zeta.example'",
        "phone: '+86  138 0000 0007' normalised to '+86 138 0000 0007'",
    ]
    again = import_customers(session, actor=actor(people["admin"]), data=data, dry_run=False, at=AT)
    assert [r.action for r in again.rows] == [UNCHANGED]
