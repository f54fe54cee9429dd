"""CSV export: BOM, formula-injection neutralising, scope, and a clean round trip through the import."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import datetime

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from crm.csvio import dataframe_to_csv, neutralise, unneutralise
from crm.importing import CUSTOMER_EXPORT_COLUMNS, UNCHANGED, export_customers_csv, import_customers
from crm.models import Role, User
from tests.factories import actor, make_customer, make_user

AT = datetime(2026, 3, 1, 12, 0)


def parse(data: bytes) -> list[list[str]]:
    assert data.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(data[len(codecs.BOM_UTF8) :].decode("utf-8"), newline="")))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+SUM(A1:A2)", "'+SUM(A1:A2)"),
        ("-1+2", "'-1+2"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\tHYPERLINK", "'\tHYPERLINK"),
        ("\r=1", "'\r=1"),
        ("-12.5", "-12.5"),  # a plain number cannot be a formula
        ("+8613800000000", "+8613800000000"),
        ("+86 138 0000 0000", "'+86 138 0000 0000"),
        ("Acme", "Acme"),
        ("a=b", "a=b"),
        (None, None),
        (-3, -3),
    ],
)
def test_neutralise(value: object, expected: object) -> None:
    assert neutralise(value) == expected
    if isinstance(value, str):
        assert unneutralise(str(expected)) == value


def test_dataframe_to_csv_neutralises_text_and_keeps_numbers() -> None:
    frame = pd.DataFrame(
        {
            "name": ["=cmd", "-1+2", "@x", "plain", None],
            "amount": [-12.5, 3.0, 0.0, -1.0, 2.25],
            "count": [-1, 2, 3, 4, 5],
        }
    )
    rows = parse(dataframe_to_csv(frame))
    assert rows == [
        ["name", "amount", "count"],
        ["'=cmd", "-12.5", "-1"],
        ["'-1+2", "3.0", "2"],
        ["'@x", "0.0", "3"],
        ["plain", "-1.0", "4"],
        ["", "2.25", "5"],
    ]


@pytest.fixture
def team(session: Session) -> dict[str, User]:
    admin = make_user(session, "admin", role=Role.ADMIN)
    mgr = make_user(session, "mgr", role=Role.MANAGER, team="north")
    rep1 = make_user(session, "rep1", team="north", manager=mgr)
    rep2 = make_user(session, "rep2", team="north", manager=mgr)
    south = make_user(session, "rep3", team="south")
    return {u.username: u for u in (admin, mgr, rep1, rep2, south)}


def seed_customers(session: Session, team: dict[str, User]) -> None:
    evil = make_customer(session, '=HYPERLINK("http://x")', owner=team["rep1"], phone="+86 138 0000 0001")
    evil.notes = "-1+2\nsecond line, with a comma"
    evil.email = "-evil@example.com"
    full = make_customer(session, "华为技术", owner=team["rep2"], phone="13800000002", tier="key")
    full.kind, full.industry, full.region, full.province, full.city = "company", "telecom", "华南", "广东", "深圳"
    full.address, full.size, full.status, full.source = "坂田", "large", "active", "exhibition"
    full.website, full.email = "https://huawei.example", "info@huawei.example"
    make_customer(session, "Pool Co", owner=None)
    make_customer(session, "South Co", owner=team["rep3"])
    gone = make_customer(session, "Deleted Co", owner=team["rep1"])
    gone.deleted_at = AT
    session.flush()


def test_export_has_bom_headers_and_neutralised_cells(session: Session, team: dict[str, User]) -> None:
    seed_customers(session, team)
    rows = parse(export_customers_csv(session, actor=actor(team["admin"])))
    assert rows[0] == list(CUSTOMER_EXPORT_COLUMNS)
    by_name = {row[1]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert set(by_name) == {'\'=HYPERLINK("http://x")', "华为技术", "Pool Co", "South Co"}  # not the deleted one
    evil = by_name['\'=HYPERLINK("http://x")']
    assert (evil["phone"], evil["notes"], evil["email"], evil["owner"]) == (
        "'+86 138 0000 0001",
        "'-1+2\nsecond line, with a comma",
        "'-evil@example.com",
        "rep1",
    )
    assert by_name["Pool Co"]["owner"] == ""
    assert by_name["华为技术"]["city"] == "深圳"


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("admin", {'\'=HYPERLINK("http://x")', "华为技术", "Pool Co", "South Co"}),
        ("mgr", {'\'=HYPERLINK("http://x")', "华为技术", "Pool Co"}),  # team north and the pool
        ("rep2", {"华为技术"}),  # own customers only
        ("rep3", {"South Co"}),
    ],
)
def test_export_is_scoped_to_what_the_actor_sees(
    session: Session, team: dict[str, User], who: str, expected: set[str]
) -> None:
    seed_customers(session, team)
    rows = parse(export_customers_csv(session, actor=actor(team[who])))
    assert {row[1] for row in rows[1:]} == expected


@pytest.mark.parametrize("who", ["admin", "mgr"])
def test_export_reimports_as_all_unchanged(session: Session, team: dict[str, User], who: str) -> None:
    seed_customers(session, team)
    data = export_customers_csv(session, actor=actor(team[who]))
    report = import_customers(session, actor=actor(team[who]), data=data, dry_run=False, at=AT)
    expected_rows = 4 if who == "admin" else 3
    assert [row.action for row in report.rows] == [UNCHANGED] * expected_rows
    assert report.encoding == "utf-8-sig"
