"""AppTest: the appraisal page (SPEC §6) for every role, on the hand-built world of Feb 2026.

The world (tests/pages/conftest.py) gives each rep a Feb 2026 target of revenue 1000, one new
customer and two visits. With the default weights (revenue 30, new customers 15, visits 10,
win rate 10, CSAT 15, complaints on time 10, attitude 10) the composites are:

- rep_a1: revenue 1200 → 100, new customer Alpha → 100, visits 2/2 → 100, 1 won of 1 → 100,
  CSAT (5 − 1) / 4 → 100; no complaint and no attitude score → left out. Composite 100.0 (A).
- rep_a2: revenue 800 → 80, new customer Atlas → 100, visits 0/2 → 0; no deal, response,
  complaint or attitude → left out. Composite (30·80 + 15·100 + 10·0) / 55 = 3900 / 55 = 70.9 (C).
- rep_b1: revenue 500 → 50, new customer Beta → 100, visits 1/2 → 50, 0 won of 1 → 0,
  CSAT (2 − 1) / 4 → 25, complaint resolved after 30 h with a 24 h SLA → 0; no attitude.
  Composite (1500 + 1500 + 500 + 0 + 375 + 0) / 90 = 3875 / 90 = 43.1 (D).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from crm import orders
from crm.access import Actor
from crm.db import make_engine
from crm.models import AppraisalPeriod, AppraisalScheme, AttitudeScore, AuditEvent, Target
from tests.pages.conftest import World, page_text, run_page

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "appraisal.py")
ALL_TABS = ["Leaderboard", "Scorecard", "Targets", "Attitude", "Scheme"]
REP_A1_COMPOSITE = 100.0
REP_A2_COMPOSITE = round(3900 / 55, 1)  # 70.9
REP_B1_COMPOSITE = round(3875 / 90, 1)  # 43.1


# --- helpers --------------------------------------------------------------------------------


def open_feb_2026(who: Actor | None) -> AppTest:
    """Open the page and pick February 2026 with the period selector."""
    at = run_page(PAGE, who)
    at.selectbox(key="appraisal:preset").select("pick_month").run()
    at.number_input(key="appraisal:year").set_value(2026)
    at.selectbox(key="appraisal:month").select(2).run()
    assert not at.exception
    return at


def leaderboard(at: AppTest) -> pd.DataFrame:
    frame = at.dataframe[0].value
    assert "Composite" in frame.columns
    return frame


def row_of(at: AppTest, rep: str) -> pd.Series:
    frame = leaderboard(at)
    rows = frame[frame["Rep"] == rep]
    assert len(rows) == 1, f"{rep} not on the leaderboard:\n{frame}"
    return rows.iloc[0]


def composite_of(at: AppTest, rep: str) -> float:
    return float(row_of(at, rep)["Composite"])


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    """Return the first shown table that has this column."""
    for element in at.dataframe:
        if column in element.value.columns:
            return element.value
    raise AssertionError(f"no table with column {column!r}")


def widget_keys(at: AppTest, kind: str) -> set[str]:
    return {element.key for element in at.get(kind) if getattr(element, "key", None)}


def chart_payloads(at: AppTest) -> list[tuple[dict, list[pd.DataFrame]]]:
    """Return each Altair chart's vega-lite spec and its data (Streamlit ships the rows as Arrow)."""
    elements = at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart")
    payloads = []
    for element in elements:
        proto = element.proto
        frames = [dataframe_util.convert_arrow_bytes_to_pandas_df(ds.data.data) for ds in proto.datasets]
        if proto.data.data:
            frames.append(dataframe_util.convert_arrow_bytes_to_pandas_df(proto.data.data))
        payloads.append((json.loads(proto.spec), frames))
    return payloads


def count_rows(world: World, model: type) -> int:
    engine = make_engine(world.url)
    try:
        with Session(engine) as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        engine.dispose()


def add_order(world: World, *, customer_id: int, rep: Actor, on: date, amount: int) -> None:
    """Record an order through crm (validated, audited: the data version moves like in the app)."""
    engine = make_engine(world.url)
    try:
        with Session(engine) as session:
            orders.create_order(
                session,
                actor=world.admin,
                data=orders.OrderInput(customer_id=customer_id, ordered_on=on, amount=amount, rep_id=rep.id),
                now=datetime(2026, 3, 1, 9, 0),
            )
            session.commit()
    finally:
        engine.dispose()


# --- guard and scope ------------------------------------------------------------------------


def test_guard_without_login_shows_warning_and_no_data(world: World) -> None:
    at = run_page(PAGE, None)
    assert not at.exception
    assert "Please log in to see this page." in [w.value for w in at.warning]
    assert not at.dataframe
    assert not at.tabs
    assert "Rep_A1" not in page_text(at)


@pytest.mark.parametrize(
    ("who", "reps", "tabs"),
    [
        ("rep_a1", ["Rep_A1"], ALL_TABS[:2]),
        ("manager_a", ["Rep_A1", "Rep_A2"], ALL_TABS[:4]),
        ("manager_b", ["Rep_B1"], ALL_TABS[:4]),
        ("admin", ["Rep_A1", "Rep_A2", "Rep_B1"], ALL_TABS),
    ],
)
def test_each_role_sees_its_reps_and_tabs(world: World, who: str, reps: list[str], tabs: list[str]) -> None:
    at = open_feb_2026(getattr(world, who))
    assert sorted(leaderboard(at)["Rep"]) == reps
    assert [tab.label for tab in at.tabs] == tabs
    # Only an admin may narrow by team; the others are scoped by crm anyway.
    assert ("appraisal:team" in widget_keys(at, "selectbox")) == (who == "admin")


def test_rep_cannot_open_another_reps_scorecard_by_id(world: World) -> None:
    at = run_page(PAGE, world.rep_a1, rep=str(world.rep_b1.id))
    assert not at.exception
    assert "Not found or not yours." in [e.value for e in at.error]
    assert "appraisal:rep" not in widget_keys(at, "selectbox")
    assert "Rep_B1" not in page_text(at)


def test_admin_team_filter_narrows_the_leaderboard(world: World) -> None:
    at = open_feb_2026(world.admin)
    at.selectbox(key="appraisal:team").select("South").run()
    assert list(leaderboard(at)["Rep"]) == ["Rep_B1"]


# --- figures --------------------------------------------------------------------------------


def test_leaderboard_shows_hand_computed_composites(world: World) -> None:
    at = open_feb_2026(world.admin)
    frame = leaderboard(at)
    assert list(frame["Rep"]) == ["Rep_A1", "Rep_A2", "Rep_B1"]  # best first
    assert list(frame["Rank"]) == [1, 2, 3]
    assert list(frame["Composite"]) == [REP_A1_COMPOSITE, REP_A2_COMPOSITE, REP_B1_COMPOSITE]
    assert list(frame["Grade"]) == ["A", "C", "D"]
    assert list(frame["Bonus coefficient"]) == [1.5, 1.0, 0.5]
    a2 = row_of(at, "Rep_A2")
    assert a2["Revenue"] == 80.0  # 100 × 800 / 1000
    assert a2["Visits"] == 0.0
    assert pd.isna(a2["Win rate"]) and pd.isna(a2["CSAT"])  # blank when left out
    assert a2["Left out"] == "Win rate, CSAT, Complaints resolved on time, Attitude"
    b1 = row_of(at, "Rep_B1")
    assert b1["CSAT"] == 25.0  # 100 × (2 − 1) / 4
    assert b1["Complaints resolved on time"] == 0.0


def test_scorecard_shows_metrics_left_out_and_records(world: World) -> None:
    at = open_feb_2026(world.admin)
    at.selectbox(key="appraisal:rep").select(world.rep_b1.id).run()
    metrics = frame_with(at, "Metric").set_index("Metric")
    assert metrics.loc["Revenue", "Actual"] == "500"
    assert metrics.loc["Revenue", "Target"] == "1,000"
    assert metrics.loc["Win rate", "Actual"] == "0.0% (0 won of 1 closed)"
    assert metrics.loc["Win rate", "Sub-score"] == 0.0
    # Attitude is left out: the other 90 points of weight are rescaled to 100.
    assert metrics.loc["Revenue", "Weight used"] == pytest.approx(30 * 100 / 90)
    assert pd.isna(metrics.loc["Attitude", "Weight used"])
    assert any("Attitude (no attitude score)" in info.value for info in at.info)

    at.selectbox(key="appraisal:records_metric").select("revenue").run()
    records = frame_with(at, "Ordered on")
    assert list(records["Customer"]) == ["Beta Machines"]
    assert list(records["Amount"]) == [500.0]
    at.selectbox(key="appraisal:records_metric").select("complaint_on_time").run()
    assert list(frame_with(at, "On time")["On time"]) == ["No"]  # resolved after 30 h, due after 24 h


def test_leaderboard_chart_carries_names_and_composites(world: World) -> None:
    at = open_feb_2026(world.admin)
    payloads = chart_payloads(at)
    assert len(payloads) == 2
    spec, frames = payloads[0]
    assert "Composite score by rep" in json.dumps(spec)
    bars = next(frame for frame in frames if "composite" in frame.columns)
    assert dict(zip(bars["rep"], bars["composite"], strict=True)) == {
        "Rep_A1": REP_A1_COMPOSITE,
        "Rep_A2": REP_A2_COMPOSITE,
        "Rep_B1": REP_B1_COMPOSITE,
    }
    rules = next(frame for frame in frames if "minimum" in frame.columns)
    assert list(rules["minimum"]) == [90.0, 80.0, 60.0]  # default bands A, B, C
    colours = spec["layer"][0]["encoding"]["color"]["scale"]["range"]
    assert colours == ["#2e7d32", "#1f6feb", "#f9a825", "#c62828"]
    _, distribution = payloads[1]
    grades = next(frame for frame in distribution if "reps" in frame.columns)
    assert dict(zip(grades["grade"], grades["reps"], strict=True)) == {"A": 1, "B": 0, "C": 1, "D": 1}


def test_export_buttons_are_offered(world: World) -> None:
    at = open_feb_2026(world.rep_a1)
    assert {button.label for button in at.get("download_button")} == {"Download CSV", "Download Excel"}


# --- targets and attitude -------------------------------------------------------------------


def target_key(field: str, rep: Actor, month: date) -> str:
    """Key of a target field: the form is per rep and month, so a message never lands on another."""
    return f"appraisal:target:{field}:{rep.id}:{month:%Y-%m}"


def fill_target(at: AppTest, *, rep: Actor, month: date, revenue: float, customers: int, visits: int) -> AppTest:
    at.selectbox(key="appraisal:target:rep").select(rep.id)
    at.date_input(key="appraisal:target:month").set_value(month)
    at.run()
    at.number_input(key=target_key("revenue", rep, month)).set_value(revenue)
    at.number_input(key=target_key("new_customers", rep, month)).set_value(customers)
    at.number_input(key=target_key("visits", rep, month)).set_value(visits)
    return at.button(key="appraisal:target:save").click().run()


def targets_of(world: World, rep: Actor, month: date) -> list[tuple[Decimal | None, int | None, int | None]]:
    engine = make_engine(world.url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Target.revenue_target, Target.new_customer_target, Target.visit_target).where(
                    Target.rep_id == rep.id, Target.month == month
                )
            ).all()
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()


def test_manager_sets_a_target(world: World) -> None:
    at = open_feb_2026(world.manager_a)
    assert "Rep_B1" not in at.selectbox(key="appraisal:target:rep").options  # other team
    at = fill_target(at, rep=world.rep_a2, month=date(2026, 3, 15), revenue=5000, customers=2, visits=10)
    assert not at.exception
    assert targets_of(world, world.rep_a2, date(2026, 3, 1)) == [(Decimal("5000.00"), 2, 10)]
    assert "Targets saved for Rep_A2, 2026-03." in [s.value for s in at.success]


def test_target_form_starts_from_the_targets_already_set(world: World) -> None:
    at = open_feb_2026(world.manager_a)
    at.selectbox(key="appraisal:target:rep").select(world.rep_a1.id)
    at.date_input(key="appraisal:target:month").set_value(date(2026, 2, 1))
    at.run()
    feb = date(2026, 2, 1)
    # The world's Feb 2026 targets: revenue 1000, one new customer, two visits.
    assert at.number_input(key=target_key("revenue", world.rep_a1, feb)).value == 1000.0
    assert at.number_input(key=target_key("new_customers", world.rep_a1, feb)).value == 1
    assert at.number_input(key=target_key("visits", world.rep_a1, feb)).value == 2


def test_invalid_target_shows_message_and_keeps_input(world: World) -> None:
    at = open_feb_2026(world.manager_a)
    at = fill_target(at, rep=world.rep_a2, month=date(2026, 3, 1), revenue=-5, customers=2, visits=10)
    assert not at.exception
    assert "Must not be negative." in [e.value for e in at.error]
    march = date(2026, 3, 1)
    assert at.number_input(key=target_key("revenue", world.rep_a2, march)).value == -5
    assert at.number_input(key=target_key("visits", world.rep_a2, march)).value == 10
    assert targets_of(world, world.rep_a2, date(2026, 3, 1)) == []


def test_attitude_score_changes_the_composite(world: World) -> None:
    at = open_feb_2026(world.manager_a)
    assert composite_of(at, "Rep_A2") == REP_A2_COMPOSITE
    at.selectbox(key="appraisal:attitude:rep").select(world.rep_a2.id).run()
    suffix = f"{world.rep_a2.id}:2026-02"
    for item, score in zip(
        ("initiative", "cooperation", "responsibility", "discipline"), (90, 80, 70, 60), strict=True
    ):
        at.number_input(key=f"appraisal:attitude:{item}:{suffix}").set_value(score)
    at.text_area(key=f"appraisal:attitude:comment:{suffix}").input("Steady month")
    at.button(key="appraisal:attitude:save").click().run()
    assert not at.exception
    assert count_rows(world, AttitudeScore) == 1
    # The form now shows the manager's own score, ready to be corrected.
    assert at.number_input(key=f"appraisal:attitude:initiative:{suffix}").value == 90
    at.selectbox(key="appraisal:rep").select(world.rep_a2.id)
    at.selectbox(key="appraisal:records_metric").select("attitude").run()
    records = frame_with(at, "Scorer")
    assert list(records["Initiative"]) == [90] and list(records["Mean"]) == [75.0]
    assert list(records["Comment"]) == ["Steady month"]
    # Attitude (90 + 80 + 70 + 60) / 4 = 75 now counts with weight 10: (3900 + 10 × 75) / 65.
    assert row_of(at, "Rep_A2")["Attitude"] == 75.0
    assert composite_of(at, "Rep_A2") == round(4650 / 65, 1)  # 71.5


def test_incomplete_attitude_score_is_refused_and_input_kept(world: World) -> None:
    at = open_feb_2026(world.manager_a)
    at.selectbox(key="appraisal:attitude:rep").select(world.rep_a2.id).run()
    suffix = f"{world.rep_a2.id}:2026-02"
    at.number_input(key=f"appraisal:attitude:initiative:{suffix}").set_value(85)
    at.button(key="appraisal:attitude:save").click().run()
    assert not at.exception
    # The other three items are required: one message under each.
    assert [e.value for e in at.error].count("This field is required.") == 3
    assert at.number_input(key=f"appraisal:attitude:initiative:{suffix}").value == 85
    assert count_rows(world, AttitudeScore) == 0
    assert composite_of(at, "Rep_A2") == REP_A2_COMPOSITE


# --- scheme ---------------------------------------------------------------------------------

SCHEME_KEY = "appraisal:scheme:v1"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (f"{SCHEME_KEY}:weight:revenue", 29.0, "Must add up to 100 (now 99)."),
        (f"{SCHEME_KEY}:band:B", 95.0, "Must be lower than the band above (A)."),
        (f"{SCHEME_KEY}:coefficient:A", -1.0, "Must not be negative."),
    ],
)
def test_invalid_scheme_is_refused_and_input_kept(world: World, field: str, value: float, message: str) -> None:
    at = run_page(PAGE, world.admin)
    at.number_input(key=field).set_value(value).run()
    at.button(key="appraisal:scheme:save").click().run()
    assert not at.exception
    assert message in [e.value for e in at.error]
    assert at.number_input(key=field).value == value
    assert count_rows(world, AppraisalScheme) == 1


def test_running_weight_total_is_shown(world: World) -> None:
    at = run_page(PAGE, world.admin)
    assert "Total: 100 of 100 ✓" in [s.value for s in at.success]
    at.number_input(key=f"{SCHEME_KEY}:weight:revenue").set_value(29.0).run()
    assert "Total: 99; the weights must add up to 100." in [w.value for w in at.warning]


def test_valid_scheme_saves_a_new_version(world: World) -> None:
    at = open_feb_2026(world.admin)
    at.number_input(key=f"{SCHEME_KEY}:weight:revenue").set_value(29.0)
    at.number_input(key=f"{SCHEME_KEY}:weight:new_customers").set_value(16.0)
    at.button(key="appraisal:scheme:save").click().run()
    assert not at.exception
    assert "Scheme version 2 saved." in [s.value for s in at.success]
    assert count_rows(world, AppraisalScheme) == 2
    assert list(frame_with(at, "Version")["Version"]) == [2, 1]
    assert at.number_input(key="appraisal:scheme:v2:weight:revenue").value == 29.0
    # rep_a2 under the new weights: (29 × 80 + 16 × 100 + 10 × 0) / 55 = 3920 / 55.
    assert composite_of(at, "Rep_A2") == round(3920 / 55, 1)  # 71.3


# --- close and reopen -----------------------------------------------------------------------


def confirm(at: AppTest, button: str) -> AppTest:
    at.button(key=button).click().run()
    assert any("Continue?" in w.value for w in at.warning)
    return at.button(key="appraisal:confirm_yes").click().run()


def test_manager_closes_the_period_and_scores_freeze(world: World) -> None:
    at = open_feb_2026(world.manager_a)
    assert "appraisal:reopen" not in widget_keys(at, "button")
    # Cancelling the confirmation closes nothing.
    at.button(key="appraisal:close").click().run()
    at.button(key="appraisal:confirm_no").click().run()
    assert count_rows(world, AppraisalPeriod) == 0

    at = confirm(at, "appraisal:close")
    assert not at.exception
    banner = " ".join(w.value for w in at.warning)
    assert "2026-02 (team North) is closed" in banner
    assert "scheme version 1" in banner and "closed by Manager_A" in banner
    buttons = widget_keys(at, "button")
    assert "appraisal:reopen" not in buttons and "appraisal:close" not in buttons

    # New orders after the close: rep_a2's live revenue would become 1000 → 100 (composite 81.8);
    # rep_a1 is already at 100. rep_b1's team did not close, so their order counts (control).
    add_order(world, customer_id=world.customer_a1, rep=world.rep_a1, on=date(2026, 2, 20), amount=300)
    add_order(world, customer_id=world.customer_a2, rep=world.rep_a2, on=date(2026, 2, 20), amount=200)
    add_order(world, customer_id=world.customer_b1, rep=world.rep_b1, on=date(2026, 2, 20), amount=500)
    at.run()
    assert composite_of(at, "Rep_A1") == REP_A1_COMPOSITE
    assert composite_of(at, "Rep_A2") == REP_A2_COMPOSITE
    admin = open_feb_2026(world.admin)
    assert composite_of(admin, "Rep_A2") == REP_A2_COMPOSITE
    # rep_b1 live: revenue 1000 → 100, so (3000 + 1500 + 500 + 0 + 375 + 0) / 90.
    assert composite_of(admin, "Rep_B1") == round(5375 / 90, 1)  # 59.7


def test_admin_reopens_a_team_period_with_an_audit_event(world: World) -> None:
    manager = confirm(open_feb_2026(world.manager_a), "appraisal:close")
    assert not manager.exception
    add_order(world, customer_id=world.customer_a2, rep=world.rep_a2, on=date(2026, 2, 20), amount=200)

    at = open_feb_2026(world.admin)
    assert "Closed for some teams (North)" in page_text(at)
    at.selectbox(key="appraisal:team").select("North").run()
    assert "appraisal:reopen" in widget_keys(at, "button")
    at = confirm(at, "appraisal:reopen")
    assert not at.exception
    assert "2026-02 reopened; the scores are live again." in [s.value for s in at.success]
    assert "2026-02 (team North) is open" in " ".join(i.value for i in at.info)
    # Live again: (30 × 100 + 15 × 100 + 10 × 0) / 55 with revenue 1000 of 1000.
    assert composite_of(at, "Rep_A2") == round(4500 / 55, 1)  # 81.8
    engine = make_engine(world.url)
    with Session(engine) as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.entity == "appraisal_period")).all()
    engine.dispose()
    assert sorted(actions) == ["close", "reopen"]


def test_admin_closes_the_whole_company(world: World) -> None:
    at = confirm(open_feb_2026(world.admin), "appraisal:close")
    assert not at.exception
    assert "2026-02 (whole company) is closed" in " ".join(w.value for w in at.warning)
    assert "appraisal:reopen" in widget_keys(at, "button")
    rep = open_feb_2026(world.rep_b1)
    assert "2026-02 (whole company) is closed" in " ".join(w.value for w in rep.warning)
    assert "appraisal:close" not in widget_keys(rep, "button")
