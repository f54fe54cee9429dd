"""Appraisal scorecards (SPEC §6): sub-scores, rescaling, composite, grades, ranks, targets, attitude, scope."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import openpyxl
import pytest
from sqlalchemy.orm import Session

from crm.access import Filters
from crm.appraisal import (
    EXPORT_COLUMNS,
    METRICS,
    RECORD_COLUMNS,
    Scorecard,
    current_scheme,
    export_leaderboard_csv,
    export_leaderboard_xlsx,
    grade_distribution,
    grade_for,
    leaderboard,
    scorecard,
    scorecard_records,
)
from crm.errors import NotFoundError, ValidationError
from crm.models import Role, User
from crm.periods import Period
from tests.factories import (
    actor,
    make_attitude,
    make_complaint,
    make_customer,
    make_interaction,
    make_opportunity,
    make_order,
    make_survey,
    make_target,
    make_user,
)

MARCH = Period.month(2026, 3)
Q1 = Period.quarter(2026, 1)
DEFAULT_WEIGHTS = {
    "revenue": 30,
    "new_customers": 15,
    "visits": 10,
    "win_rate": 10,
    "csat": 15,
    "complaint_on_time": 10,
    "attitude": 10,
}


@dataclass
class Team:
    admin: User
    manager: User
    rep: User


def make_team(session: Session) -> Team:
    admin = make_user(session, "admin", role=Role.ADMIN)
    manager = make_user(session, "boss", role=Role.MANAGER, team="north")
    rep = make_user(session, "rita", team="north", manager=manager)
    return Team(admin=admin, manager=manager, rep=rep)


def build_full_rep(session: Session, t: Team, *, leave_out: frozenset[str] = frozenset()) -> None:
    """Give t.rep data for every metric in March (hand sub-scores in the comments).

    revenue 1500 / 2000 → 75; new customers 1 / 4 → 25; visits 10 / 8 → 125 capped at 100;
    win rate 2 / 3 → 66.67; CSAT mean (5+4+4+3)/4 = 4 → 100×(4−1)/4 = 75; on time 3 / 4 → 75;
    attitude scorers 75 and 90 → 82.5.
    """
    customer = make_customer(session, "Acme", owner=t.rep)
    if "targets" not in leave_out:
        make_target(
            session,
            t.rep,
            date(2026, 3, 1),
            revenue=None if "revenue_target" in leave_out else 2000,
            new_customers=0 if "new_customer_target" in leave_out else 4,  # a zero target means no data
            visits=None if "visit_target" in leave_out else 8,
        )
    make_order(session, customer, t.rep, date(2026, 3, 5), 1500)
    for day in range(1, 11):
        make_interaction(session, customer, t.rep, datetime(2026, 3, day, 10, 0), kind="visit")
    if "deals" not in leave_out:
        make_opportunity(session, customer, t.rep, "won", closed_on=date(2026, 3, 6))
        make_opportunity(session, customer, t.rep, "won", closed_on=date(2026, 3, 7))
        make_opportunity(session, customer, t.rep, "lost", closed_on=date(2026, 3, 8))
    if "responses" not in leave_out:
        for day, overall in zip((2, 3, 4, 5), (5, 4, 4, 3), strict=True):
            make_survey(session, customer, t.rep, date(2026, 3, day), overall)
    if "complaints" not in leave_out:
        for day, hours in zip((2, 3, 4, 5), (1, 5, 24, 25), strict=True):  # 25 h on a 24 h SLA is late
            make_complaint(
                session, customer, t.rep, datetime(2026, 3, day, 9), sla_hours=24, resolved_after_hours=hours
            )
    if "attitude" not in leave_out:
        make_attitude(session, t.rep, t.manager, date(2026, 3, 1), date(2026, 4, 1), (80, 90, 70, 60))  # 75
        make_attitude(session, t.rep, t.admin, date(2026, 3, 1), date(2026, 4, 1), (90, 90, 90, 90))  # 90


def only_card(session: Session, t: Team, period: Period = MARCH) -> Scorecard:
    return scorecard(session, actor=actor(t.admin), rep_id=t.rep.id, period=period)


def test_every_sub_score_formula_and_the_composite(session: Session) -> None:
    t = make_team(session)
    build_full_rep(session, t)
    card = only_card(session, t)
    assert card.scores["revenue"] == pytest.approx(100 * 1500 / 2000)
    assert card.scores["new_customers"] == pytest.approx(100 * 1 / 4)
    assert card.scores["visits"] == 100.0  # 100 × 10 / 8 = 125, capped
    assert card.scores["win_rate"] == pytest.approx(100 * 2 / 3)
    assert card.scores["csat"] == pytest.approx(100 * ((5 + 4 + 4 + 3) / 4 - 1) / 4)
    assert card.scores["complaint_on_time"] == pytest.approx(100 * 3 / 4)
    assert card.scores["attitude"] == pytest.approx((75 + 90) / 2)
    # (30×75 + 15×25 + 10×100 + 10×66.667 + 15×75 + 10×75 + 10×82.5) / 100 = 69.9167 → 69.9
    assert card.composite == 69.9
    assert (card.grade, card.bonus_coefficient) == ("C", 1.0)
    assert card.metrics_left_out == ()
    assert card.weights == pytest.approx({metric: float(weight) for metric, weight in DEFAULT_WEIGHTS.items()})
    assert card.scheme_version == 1
    assert card.frozen is False
    # The raw figures behind the sub-scores.
    assert (card.revenue_actual, card.revenue_target) == (Decimal("1500.00"), Decimal("2000.00"))
    assert (card.new_customers, card.new_customer_target, card.visits, card.visit_target) == (1, 4, 10, 8)
    assert (card.won, card.lost, card.csat_count, card.csat_mean) == (2, 1, 4, 4.0)
    assert (card.complaints_resolved, card.complaints_on_time) == (4, 3)
    assert (card.attitude_mean, card.attitude_count) == (82.5, 2)


# Hand sub-scores of build_full_rep and Σ weight × sub-score with every metric present.
S = {
    "revenue": 75,
    "new_customers": 25,
    "visits": 100,
    "win_rate": 200 / 3,
    "csat": 75,
    "complaint_on_time": 75,
    "attitude": 82.5,
}
FULL_SUM = sum(DEFAULT_WEIGHTS[m] * S[m] for m in METRICS)  # 6991.667


@pytest.mark.parametrize(
    ("leave_out", "left_out_metrics", "weights_used", "expected"),
    [
        ({"revenue_target"}, ("revenue",), 70, 67.7),  # (6991.667 − 2250) / 70 = 67.738
        ({"new_customer_target"}, ("new_customers",), 85, 77.8),  # target 0: (6991.667 − 375) / 85 = 77.843
        ({"visit_target"}, ("visits",), 90, 66.6),  # (6991.667 − 1000) / 90 = 66.574
        ({"targets"}, ("revenue", "new_customers", "visits"), 45, 74.8),  # 3366.667 / 45 = 74.815
        ({"deals"}, ("win_rate",), 90, 70.3),  # (6991.667 − 666.667) / 90 = 70.278
        ({"responses"}, ("csat",), 85, 69.0),  # (6991.667 − 1125) / 85 = 69.020
        ({"complaints"}, ("complaint_on_time",), 90, 69.4),  # (6991.667 − 750) / 90 = 69.352
        ({"attitude"}, ("attitude",), 90, 68.5),  # (6991.667 − 825) / 90 = 68.519
        # 30 + 15 + 10 + 15 + 10 = 80 used: (6991.667 − 666.667 − 750) / 80 = 69.6875
        ({"deals", "complaints"}, ("win_rate", "complaint_on_time"), 80, 69.7),
    ],
)
def test_a_metric_without_data_is_left_out_and_the_weights_rescaled(
    session: Session,
    leave_out: set[str],
    left_out_metrics: tuple[str, ...],
    weights_used: int,
    expected: float,
) -> None:
    t = make_team(session)
    build_full_rep(session, t, leave_out=frozenset(leave_out))
    card = only_card(session, t)
    assert card.metrics_left_out == left_out_metrics
    for metric in left_out_metrics:
        assert card.scores[metric] is None
    assert sum(DEFAULT_WEIGHTS[m] for m in METRICS if m not in left_out_metrics) == weights_used
    hand = (FULL_SUM - sum(DEFAULT_WEIGHTS[m] * S[m] for m in left_out_metrics)) / weights_used
    assert hand == pytest.approx(expected, abs=0.05)
    assert card.composite == expected
    # Each remaining weight is rescaled so the weights used sum to 100.
    assert card.weights == pytest.approx(
        {m: 100 * DEFAULT_WEIGHTS[m] / weights_used for m in METRICS if m not in left_out_metrics}
    )


def revenue_only_rep(session: Session, name: str, manager: User, amount: str | int, target: int = 1000) -> User:
    """A rep whose only metric is revenue: composite = 100 × amount / target."""
    rep = make_user(session, name, team="north", manager=manager)
    customer = make_customer(session, f"{name} customer", owner=None)  # no new customers for the rep
    make_target(session, rep, date(2026, 3, 1), revenue=target)
    make_order(session, customer, rep, date(2026, 3, 10), amount)
    return rep


@pytest.mark.parametrize(
    ("amount", "composite", "grade", "coefficient"),
    [
        (1000, 100.0, "A", 1.5),
        (900, 90.0, "A", 1.5),  # edge inclusive
        (899, 89.9, "B", 1.2),
        ("899.5", 90.0, "A", 1.5),  # 89.95 rounds half up to 90.0, then grades A
        ("898.5", 89.9, "B", 1.2),  # 89.85 → 89.9 (banker's rounding would give 89.8)
        (800, 80.0, "B", 1.2),
        (799, 79.9, "C", 1.0),
        (600, 60.0, "C", 1.0),
        (599, 59.9, "D", 0.5),
        ("102.5", 10.3, "D", 0.5),  # 10.25 → 10.3 half up
        (0, 0.0, "D", 0.5),
        (2500, 100.0, "A", 1.5),  # 250 capped at 100
    ],
)
def test_grade_band_edges_and_bonus_coefficients(
    session: Session, amount: str | int, composite: float, grade: str, coefficient: float
) -> None:
    t = make_team(session)
    rep = revenue_only_rep(session, "ed", t.manager, amount)
    card = scorecard(session, actor=actor(t.admin), rep_id=rep.id, period=MARCH)
    assert card.metrics_left_out == tuple(m for m in METRICS if m != "revenue")
    assert card.weights == {"revenue": 100.0}
    assert (card.composite, card.grade, card.bonus_coefficient) == (composite, grade, coefficient)


@pytest.mark.parametrize(
    ("composite", "grade"),
    [
        (Decimal("100"), "A"),
        (Decimal("90.0"), "A"),
        (Decimal("89.9"), "B"),
        (Decimal("80.0"), "B"),
        (Decimal("79.9"), "C"),
        (Decimal("60.0"), "C"),
        (Decimal("59.9"), "D"),
        (Decimal("0"), "D"),
        (89.9, "B"),
        (90.0, "A"),
    ],
)
def test_grade_for_default_bands(session: Session, composite: Decimal | float, grade: str) -> None:
    assert grade_for(composite, current_scheme(session).bands) == grade


def test_lowest_grade_covers_everything_below_its_band() -> None:
    bands = {"A": Decimal(90), "B": Decimal(80), "C": Decimal(60), "D": Decimal(40)}
    assert grade_for(Decimal("12.0"), bands) == "D"


def test_ranks_share_ties_and_reps_without_metrics_go_last(session: Session) -> None:
    t = make_team(session)
    top = revenue_only_rep(session, "top", t.manager, 900)
    tie1 = revenue_only_rep(session, "tie1", t.manager, 800)
    tie2 = revenue_only_rep(session, "tie2", t.manager, 800)
    low = revenue_only_rep(session, "low", t.manager, 500)
    board = leaderboard(session, actor=actor(t.admin), period=MARCH, filters=Filters())
    # t.rep has no data at all: composite None, no grade, no rank, last.
    assert [(c.username, c.composite, c.rank) for c in board] == [
        ("top", 90.0, 1),
        ("tie1", 80.0, 2),
        ("tie2", 80.0, 2),
        ("low", 50.0, 4),  # "1224"
        ("rita", None, None),
    ]
    assert board[-1].grade is None
    assert board[-1].bonus_coefficient is None
    assert board[-1].metrics_left_out == METRICS
    assert {top.id, tie1.id, tie2.id, low.id} == {c.rep_id for c in board[:4]}


def test_a_quarter_sums_its_three_months_targets(session: Session) -> None:
    t = make_team(session)
    customer = make_customer(session, "Q customer", owner=None)
    make_target(session, t.rep, date(2026, 1, 1), revenue=1000, visits=2)
    make_target(session, t.rep, date(2026, 2, 1), revenue=1000, visits=2)
    make_target(session, t.rep, date(2026, 3, 1), revenue=2000)  # no visit target in March
    make_target(session, t.rep, date(2026, 4, 1), revenue=9000, visits=50)  # Q2: not counted
    for month in (1, 2, 3):
        make_order(session, customer, t.rep, date(2026, month, 15), 1000)
    make_interaction(session, customer, t.rep, datetime(2026, 2, 2, 10), kind="visit")
    card = only_card(session, t, Q1)
    assert card.revenue_target == Decimal(1000 + 1000 + 2000)
    assert card.visit_target == 2 + 2
    assert card.new_customer_target is None
    assert card.scores["revenue"] == pytest.approx(100 * 3000 / 4000)
    assert card.scores["visits"] == pytest.approx(100 * 1 / 4)
    # March alone: target 2000, revenue 1000; no visit target → visits left out.
    march = only_card(session, t, MARCH)
    assert march.scores["revenue"] == pytest.approx(100 * 1000 / 2000)
    assert "visits" in march.metrics_left_out


def test_attitude_is_the_mean_of_items_then_of_scorers(session: Session) -> None:
    t = make_team(session)
    make_attitude(session, t.rep, t.manager, date(2026, 1, 1), date(2026, 2, 1), (80, 80, 80, 80))  # 80
    make_attitude(session, t.rep, t.manager, date(2026, 2, 1), date(2026, 3, 1), (60, 70, 50, 60))  # 60
    make_attitude(session, t.rep, t.admin, date(2026, 1, 1), date(2026, 4, 1), (90, 100, 80, 90))  # 90
    make_attitude(session, t.rep, t.admin, date(2026, 3, 15), date(2026, 4, 15), (0, 0, 0, 0))  # sticks out of Q1
    card = only_card(session, t, Q1)
    # manager: (80 + 60) / 2 = 70; admin: 90 → mean over scorers (70 + 90) / 2 = 80
    assert card.attitude_count == 2
    assert card.attitude_mean == pytest.approx((70 + 90) / 2)
    assert card.scores["attitude"] == pytest.approx(80)
    assert card.composite == 80.0
    # February alone: only the manager's February score lies within it.
    feb = only_card(session, t, Period.month(2026, 2))
    assert (feb.attitude_mean, feb.attitude_count) == (60.0, 1)


def test_deleted_records_do_not_count(session: Session) -> None:
    t = make_team(session)
    customer = make_customer(session, "Gone", owner=t.rep)
    make_target(session, t.rep, date(2026, 3, 1), revenue=1000)
    make_order(session, customer, t.rep, date(2026, 3, 3), 500)
    make_survey(session, customer, t.rep, date(2026, 3, 3), 5)
    customer.deleted_at = datetime(2026, 3, 20)
    session.flush()
    card = only_card(session, t)
    assert card.revenue_actual == Decimal("0.00")
    assert card.scores["revenue"] == 0.0
    assert "csat" in card.metrics_left_out


@dataclass
class Company:
    admin: User
    north_manager: User
    south_manager: User
    n1: User
    n2: User
    s1: User


def make_company(session: Session) -> Company:
    admin = make_user(session, "admin", role=Role.ADMIN)
    nm = make_user(session, "nm", role=Role.MANAGER, team="north")
    sm = make_user(session, "sm", role=Role.MANAGER, team="south")
    n1 = revenue_only_rep(session, "n1", nm, 700)
    n2 = revenue_only_rep(session, "n2", nm, 950)
    s1 = make_user(session, "s1", team="south", manager=sm)
    make_target(session, s1, date(2026, 3, 1), revenue=1000)
    make_order(session, make_customer(session, "S", owner=None), s1, date(2026, 3, 9), 850)
    return Company(admin=admin, north_manager=nm, south_manager=sm, n1=n1, n2=n2, s1=s1)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("admin", [("n2", 1), ("s1", 2), ("n1", 3)]),  # 95.0, 85.0, 70.0
        ("north_manager", [("n2", 1), ("n1", 2)]),
        ("south_manager", [("s1", 1)]),
        ("n1", [("n1", 1)]),
    ],
)
def test_leaderboard_is_scoped(session: Session, who: str, expected: list[tuple[str, int]]) -> None:
    co = make_company(session)
    board = leaderboard(session, actor=actor(getattr(co, who)), period=MARCH, filters=Filters())
    assert [(card.username, card.rank) for card in board] == expected


def test_leaderboard_honours_filters(session: Session) -> None:
    co = make_company(session)
    board = leaderboard(session, actor=actor(co.admin), period=MARCH, filters=Filters(team="south"))
    assert [card.username for card in board] == ["s1"]


@pytest.mark.parametrize(
    ("who", "target", "allowed"),
    [
        ("n1", "n1", True),
        ("n1", "n2", False),  # another rep of the same team
        ("north_manager", "n2", True),
        ("north_manager", "s1", False),  # another team
        ("admin", "s1", True),
    ],
)
def test_scorecard_is_not_found_outside_the_scope(session: Session, who: str, target: str, allowed: bool) -> None:
    co = make_company(session)
    rep_id = getattr(co, target).id
    viewer = actor(getattr(co, who))
    if allowed:
        assert scorecard(session, actor=viewer, rep_id=rep_id, period=MARCH).rep_id == rep_id
    else:
        with pytest.raises(NotFoundError):
            scorecard(session, actor=viewer, rep_id=rep_id, period=MARCH)
        with pytest.raises(NotFoundError):
            scorecard_records(session, actor=viewer, rep_id=rep_id, period=MARCH, metric="revenue")


def test_grade_distribution_counts_every_grade(session: Session) -> None:
    co = make_company(session)
    board = leaderboard(session, actor=actor(co.admin), period=MARCH, filters=Filters())
    frame = grade_distribution(board)
    # n2 95.0 → A, s1 85.0 → B, n1 70.0 → C
    assert list(frame.columns) == ["grade", "reps"]
    assert frame.to_dict("records") == [
        {"grade": "A", "reps": 1},
        {"grade": "B", "reps": 1},
        {"grade": "C", "reps": 1},
        {"grade": "D", "reps": 0},
    ]


def test_as_dict_has_the_export_keys(session: Session) -> None:
    t = make_team(session)
    build_full_rep(session, t, leave_out=frozenset({"deals"}))
    row = only_card(session, t).as_dict()
    assert set(row) == {
        "rep",
        "rep_name",
        *METRICS,
        "composite",
        "grade",
        "rank",
        "bonus_coefficient",
        "metrics_left_out",
    }
    assert (row["rep"], row["rep_name"]) == ("rita", "Rita")
    assert row["win_rate"] is None
    assert row["attitude"] == 82.5
    assert row["visits"] == 100.0
    assert row["metrics_left_out"] == ["win_rate"]
    assert (row["composite"], row["grade"], row["rank"], row["bonus_coefficient"]) == (70.3, "C", 1, 1.0)


def test_csv_export_has_bom_and_neutralises_formulas(session: Session) -> None:
    co = make_company(session)
    co.n1.display_name = "=HYPERLINK(1)"
    session.flush()
    board = leaderboard(session, actor=actor(co.admin), period=MARCH, filters=Filters())
    data = export_leaderboard_csv(board)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [(r["rank"], r["rep"], r["composite"], r["grade"]) for r in rows] == [
        ("1", "n2", "95.0", "A"),
        ("2", "s1", "85.0", "B"),
        ("3", "n1", "70.0", "C"),
    ]
    assert rows[2]["rep_name"] == "'=HYPERLINK(1)"
    assert rows[0]["metrics_left_out"] == "new_customers, visits, win_rate, csat, complaint_on_time, attitude"


def test_xlsx_export_opens_in_openpyxl(session: Session) -> None:
    co = make_company(session)
    co.n1.display_name = "@SUM(A1)"
    session.flush()
    board = leaderboard(session, actor=actor(co.admin), period=MARCH, filters=Filters())
    workbook = openpyxl.load_workbook(io.BytesIO(export_leaderboard_xlsx(board)))
    sheet = workbook.active
    assert sheet is not None
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == list(EXPORT_COLUMNS)
    assert [(row[0], row[1], row[3]) for row in values[1:]] == [(1, "n2", 95.0), (2, "s1", 85.0), (3, "n1", 70.0)]
    assert values[3][2] == "'@SUM(A1)"


@pytest.mark.parametrize(
    ("metric", "rows"),
    [
        ("revenue", 1),
        ("new_customers", 1),
        ("visits", 10),
        ("win_rate", 3),
        ("csat", 4),
        ("complaint_on_time", 4),
        ("attitude", 2),
    ],
)
def test_records_behind_each_number(session: Session, metric: str, rows: int) -> None:
    t = make_team(session)
    build_full_rep(session, t)
    frame = scorecard_records(session, actor=actor(t.manager), rep_id=t.rep.id, period=MARCH, metric=metric)
    assert list(frame.columns) == list(RECORD_COLUMNS[metric])
    assert len(frame) == rows


def test_records_details(session: Session) -> None:
    t = make_team(session)
    build_full_rep(session, t)
    rep = actor(t.rep)
    orders = scorecard_records(session, actor=rep, rep_id=t.rep.id, period=MARCH, metric="revenue")
    assert orders["amount"].tolist() == [1500.0]
    deals = scorecard_records(session, actor=rep, rep_id=t.rep.id, period=MARCH, metric="win_rate")
    assert deals["result"].tolist() == ["won", "won", "lost"]
    complaints = scorecard_records(session, actor=rep, rep_id=t.rep.id, period=MARCH, metric="complaint_on_time")
    assert complaints["on_time"].tolist() == [True, True, True, False]  # 1, 5, 24 h on time; 25 h late
    attitude = scorecard_records(session, actor=rep, rep_id=t.rep.id, period=MARCH, metric="attitude")
    assert sorted(attitude["mean"].tolist()) == [75.0, 90.0]
    visits = scorecard_records(session, actor=rep, rep_id=t.rep.id, period=MARCH, metric="visits", limit=3)
    assert len(visits) == 3
    assert visits["occurred_at"].iloc[0] == datetime(2026, 3, 1, 10, 0)
    assert visits["occurred_at"].iloc[2] - visits["occurred_at"].iloc[0] == timedelta(days=2)


def test_records_of_an_unknown_metric_are_refused(session: Session) -> None:
    t = make_team(session)
    with pytest.raises(ValidationError) as err:
        scorecard_records(session, actor=actor(t.admin), rep_id=t.rep.id, period=MARCH, metric="mood")
    assert err.value.fields["metric"].key == "error.invalid_choice"
