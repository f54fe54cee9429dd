"""AppTest: the overview dashboard for every role, on the hand-built world of Feb 2026.

The world (tests/pages/conftest.py), February 2026:
- orders: rep_a1 1,200 (Alpha), rep_a2 800 (Atlas), rep_b1 500 (Beta); none in January.
- deals closed: rep_a1 won one, rep_b1 lost one.
- surveys: rep_a1 overall 5 / recommend 10 (Alpha), rep_b1 overall 2 / recommend 3 (Beta).
- complaints: rep_b1's one, resolved after 30 h against a 24 h SLA (late).
- every customer was created on 2026-01-01, so nobody was created in February (lead conversion n/a).
The clock is set to 2026-02-20 so the "this month" preset is February 2026.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy.orm import Session
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from crm import i18n, orders, ui
from crm.access import Actor
from crm.charts import ROWS, to_spec
from crm.charts import overview as charts
from crm.db import make_engine
from crm.ui import ACTOR_KEY
from tests.pages.conftest import PAGE_TIMEOUT_S, ROOT, World, page_text, run_page

PAGE = "pages/overview.py"
TODAY = date(2026, 2, 20)
NOW = datetime(2026, 2, 20, 12, 0)
CSAT_TITLE = "Customer satisfaction by month"
NPS_TITLE = "Net Promoter Score by month"
CHART_SPECS = {
    "csat": charts.csat_trend_spec,
    "nps": charts.nps_trend_spec,
    "funnel": charts.funnel_spec,
    "retention": charts.retention_trend_spec,
    "reps": charts.rep_composites_spec,
}


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages read the clock through crm.ui; pin it to 20 Feb 2026."""
    monkeypatch.setattr(ui, "today", lambda: TODAY)
    monkeypatch.setattr(ui, "utcnow", lambda: NOW)


# --- helpers --------------------------------------------------------------------------------


def who(world: World, name: str) -> Actor:
    actor: Actor = getattr(world, name)
    return actor


def open_page(actor: Actor, preset: str = "this_month", **state: object) -> AppTest:
    """Open the overview as the actor on a period preset (relative to the pinned clock), in one run."""
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=PAGE_TIMEOUT_S)
    at.session_state[ACTOR_KEY] = actor
    # The sidebar's preset selectbox reads its value from the session state, as after a pick.
    at.session_state["filters:period:preset"] = preset
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="filters:period:preset").value == preset
    return at


def card(at: AppTest, label: str) -> str:
    values = [metric.value for metric in at.metric if metric.label == label]
    assert len(values) == 1, [metric.label for metric in at.metric]
    return str(values[0])


def chart_payloads(at: AppTest) -> list[tuple[dict, list[pd.DataFrame]]]:
    """Return each Altair chart's vega-lite spec and its data (Streamlit ships the rows as Arrow)."""
    payloads = []
    for element in at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart"):
        proto = element.proto
        frames = [dataframe_util.convert_arrow_bytes_to_pandas_df(ds.data.data) for ds in proto.datasets]
        if proto.data.data:
            frames.append(dataframe_util.convert_arrow_bytes_to_pandas_df(proto.data.data))
        payloads.append((json.loads(proto.spec), frames))
    return payloads


def chart_titled(at: AppTest, title: str) -> tuple[dict, list[pd.DataFrame]]:
    for spec, frames in chart_payloads(at):
        if title in json.dumps(spec, ensure_ascii=False):
            return spec, frames
    raise AssertionError(f"no chart titled {title!r}")


def everything_shown(at: AppTest) -> str:
    """Page text plus every chart's spec and data: what a user could read anywhere on the page."""
    parts = [page_text(at)]
    for spec, frames in chart_payloads(at):
        parts.append(json.dumps(spec, ensure_ascii=False))
        parts.extend(frame.to_string() for frame in frames)
    return "\n".join(parts)


def records_table(at: AppTest) -> pd.DataFrame:
    for element in at.dataframe:
        if "Customer" in element.value.columns:
            return element.value
    raise AssertionError("no records table shown")


def save_order(world: World, *, rep: Actor, customer_id: int, amount: int) -> None:
    """Record an order through crm (validated and audited, so the data version moves as in the app)."""
    engine = make_engine(world.url)
    try:
        with Session(engine) as session:
            orders.create_order(
                session,
                actor=rep,
                data=orders.OrderInput(customer_id=customer_id, ordered_on=date(2026, 2, 18), amount=amount),
                now=NOW,
            )
            session.commit()
    finally:
        engine.dispose()


# --- guard ----------------------------------------------------------------------------------


def test_guard_without_login_shows_warning_and_no_figures(world: World) -> None:
    at = run_page(PAGE, None)
    assert not at.exception
    assert [w.value for w in at.warning] == ["Please log in to see this page."]
    assert len(at.metric) == 0
    assert chart_payloads(at) == []


# --- cards ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "revenue", "win_rate", "csat", "nps", "visits", "active"),
    [
        # rep_a1: own order 1,200; 1 won of 1 closed; one response overall 5, recommend 10 (promoter);
        # visits on Feb 5 and 12; one customer (Alpha) ordered.
        ("rep_a1", "1,200", "100.0%", "5.00", "100.0", "2", "1"),
        # manager_a (North): 1,200 + 800; only rep_a1's deal closed (won); only rep_a1's response;
        # rep_a1's 2 visits; Alpha and Atlas ordered.
        ("manager_a", f"{1200 + 800:,}", "100.0%", "5.00", "100.0", "2", "2"),
        # admin: 1,200 + 800 + 500; 1 won / (1 won + 1 lost); CSAT (5 + 2) / 2; NPS 50% − 50%;
        # 2 + 1 visits; Alpha, Atlas and Beta ordered.
        (
            "admin",
            f"{1200 + 800 + 500:,}",
            f"{1 / (1 + 1):.1%}",
            f"{(5 + 2) / 2:.2f}",
            f"{100 * (1 - 1) / 2:.1f}",
            f"{2 + 1}",
            "3",
        ),
    ],
)
def test_cards_show_the_hand_computed_figures_of_each_scope(
    world: World, name: str, revenue: str, win_rate: str, csat: str, nps: str, visits: str, active: str
) -> None:
    at = open_page(who(world, name))
    assert at.title[0].value == "Overview · 2026-02"
    # Three rows of four: commercial, customer, activity.
    assert len(at.metric) == 12
    assert card(at, "Visits") == visits
    assert card(at, "Active customers") == active
    assert card(at, "Orders") == active  # one order per ordering customer in the world
    assert card(at, "Revenue") == revenue
    assert card(at, "Win rate") == win_rate
    assert card(at, "CSAT (1–5)") == csat
    assert card(at, "NPS") == nps
    # Nobody was created in February: lead conversion has no denominator.
    assert card(at, "Lead conversion") == "n/a"
    assert "previous period, 2026-01" in page_text(at)


def test_admin_complaint_on_time_rate_counts_the_late_resolution(world: World) -> None:
    at = open_page(world.admin)
    # rep_b1's complaint: resolved 30 h after opening against a 24 h SLA → 0 on time of 1.
    assert card(at, "Complaints resolved on time") == f"{0 / 1:.1%}"
    # A rep without resolved complaints has no denominator.
    assert card(open_page(world.rep_a1), "Complaints resolved on time") == "n/a"


def test_month_without_surveys_or_deals_shows_na(world: World) -> None:
    at = open_page(world.admin)
    at.sidebar.selectbox(key="filters:period:preset").select("last_month").run()  # January 2026
    assert not at.exception
    assert at.title[0].value == "Overview · 2026-01"
    for label in ("CSAT (1–5)", "NPS", "Win rate", "Complaints resolved on time", "Repeat purchase"):
        assert card(at, label) == "n/a", label
    assert card(at, "Revenue") == "0"
    # The CSAT chart says there is nothing to show instead of drawing an empty frame.
    spec, frames = chart_titled(at, CSAT_TITLE)
    assert "Nothing to show" in json.dumps(spec) + "".join(frame.to_string() for frame in frames)


def test_delta_against_previous_period_in_points(world: World) -> None:
    # A custom period 2026-02-10 … 2026-02-19 (10 days); its previous is 2026-01-31 … 2026-02-09.
    at = open_page(
        world.admin, "custom", **{"filters:period:start": date(2026, 2, 10), "filters:period:end": date(2026, 2, 19)}
    )
    # Revenue 2,500 now, 0 before: no % change from zero. Win rate: rep_a1 won on 02-10 (in it),
    # rep_b1 lost on 02-20 (after it) → 100.0%; n/a before → no delta.
    assert card(at, "Revenue") == "2,500"
    assert card(at, "Win rate") == "100.0%"
    assert "2026-01-31 – 2026-02-09" in page_text(at)


def test_rep_sees_no_other_reps_name_anywhere(world: World) -> None:
    at = open_page(world.rep_a1)
    for choice in ("orders", "deals", "responses", "resolved"):
        at.selectbox(key="overview:records").select(choice).run()
        assert not at.exception
        shown = everything_shown(at)
        assert "Rep_A1" in shown
        for other in ("Rep_A2", "Rep_B1", "Manager_A", "Atlas Foods", "Beta Machines"):
            assert other not in shown, (choice, other)
    # No scope filters for a rep (only the period and the tier).
    assert {box.key for box in at.sidebar.selectbox} == {"filters:period:preset", "filters:tier"}


def test_manager_does_not_see_the_other_team(world: World) -> None:
    at = open_page(world.manager_a, **{"overview:records": "orders"})
    shown = everything_shown(at)
    assert "Rep_A2" in shown and "Rep_A1" in shown
    assert "Rep_B1" not in shown and "Beta Machines" not in shown


# --- charts ---------------------------------------------------------------------------------


def test_csat_chart_spec_and_data_carry_the_month(world: World) -> None:
    at = open_page(world.admin)
    spec, frames = chart_titled(at, CSAT_TITLE)
    data = pd.concat(frames)
    assert set(data["month"]) == {"2026-02"}
    overall = data[data["measure"] == "CSAT (overall)"]
    assert overall["score"].tolist() == [pytest.approx((5 + 2) / 2)]
    # The month axis is "2026-02" text, and a click on a month is listened to.
    assert "2026-02" in json.dumps(spec)
    assert charts.MONTH_SELECTION in json.dumps(spec)
    nps_spec, nps_frames = chart_titled(at, NPS_TITLE)
    bars = pd.concat(frame for frame in nps_frames if "nps" in frame.columns)
    # rep_a1's promoter and rep_b1's detractor: 100 × (1 − 1) / 2.
    assert bars["nps"].tolist() == [pytest.approx(0.0)]


def test_every_chart_is_drawn_with_translated_titles(world: World) -> None:
    at = open_page(world.manager_a)
    titles = json.dumps([spec.get("title") for spec, _ in chart_payloads(at)])
    for title in (
        CSAT_TITLE,
        NPS_TITLE,
        "Sales funnel: deals created in the period",
        "Retention and churn by month",
        "Top and bottom reps by appraisal composite",
    ):
        assert title in titles


def test_reps_chart_lists_the_team_and_a_rep_only_themselves(world: World) -> None:
    _, frames = chart_titled(open_page(world.manager_a), "Top and bottom reps")
    reps = set(pd.concat(frames)["rep"])
    # Ranked among the team; composites as on the appraisal page (rep_a1 100.0, rep_a2 70.9).
    assert reps == {"#1 Rep_A1", "#2 Rep_A2"}
    _, own = chart_titled(open_page(world.rep_a1), "Your appraisal composite")
    assert set(pd.concat(own)["rep"]) == {"Rep_A1"}


def test_reps_chart_listens_to_clicks_on_a_rep(world: World) -> None:
    spec, frames = chart_titled(open_page(world.manager_a), "Top and bottom reps")
    assert [param["name"] for param in spec["params"]] == [charts.REP_SELECTION]
    assert spec["params"][0]["select"]["fields"] == [charts.REP_FIELD]
    rows = pd.concat(frames)
    assert set(rows[charts.REP_FIELD]) == {world.rep_a1.id, world.rep_a2.id}
    # Two reps: the bar chart keeps its least height.
    assert spec["height"] == charts.MIN_BAR_CHART_PX


def test_charts_follow_the_language_of_each_session(world: World) -> None:
    chinese = open_page(world.admin, language=i18n.ZH)
    spec, frames = chart_titled(chinese, "客户满意度月度趋势")
    assert spec["layer"][0]["encoding"]["x"]["title"] == "月份"
    assert "总体满意度" in set(pd.concat(frames)["measure"])
    # The next session in English gets English charts (templates are kept per language).
    english = open_page(world.admin, language=i18n.EN)
    spec, frames = chart_titled(english, CSAT_TITLE)
    assert spec["layer"][0]["encoding"]["x"]["title"] == "Month"
    assert "CSAT (overall)" in set(pd.concat(frames)["measure"])
    assert "客户满意度月度趋势" not in everything_shown(english)


# --- drill-down -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "customers"),
    [
        ("rep_a1", ["Alpha Trading"]),
        ("manager_a", ["Atlas Foods", "Alpha Trading"]),
        ("admin", ["Beta Machines", "Atlas Foods", "Alpha Trading"]),
    ],
)
def test_revenue_drill_down_lists_the_orders_of_the_scope(world: World, name: str, customers: list[str]) -> None:
    at = open_page(who(world, name), **{"overview:records": "orders"})
    table = records_table(at)
    assert table["Customer"].tolist() == customers  # newest first
    # The rows add up to the revenue card.
    assert f"{table['Amount'].sum():,.0f}" == card(at, "Revenue")
    download = at.get("download_button")
    assert len(download) == 1


def test_win_rate_drill_down_lists_closed_deals(world: World) -> None:
    at = open_page(world.admin, **{"overview:records": "deals"})
    table = records_table(at)
    assert sorted(table["Result"]) == ["Lost", "Won"]


def test_clicked_month_lists_that_months_survey_responses(world: World) -> None:
    # What the CSAT chart's click handler stores; the chart itself cannot be clicked in AppTest.
    at = open_page(world.rep_a1, **{"overview:month_drill": ("csat", "2026-02")})
    assert "Survey responses of 2026-02" in page_text(at)
    table = records_table(at)
    assert table["Customer"].tolist() == ["Alpha Trading"]
    assert table["Overall"].tolist() == [5]
    at.button(key="overview:close:csat").click().run()
    assert "Survey responses of 2026-02" not in page_text(at)


def test_clicked_rep_shows_the_sub_scores(world: World) -> None:
    # What the reps chart's click handler stores.
    at = open_page(world.manager_a, **{"overview:rep_drill": world.rep_a2.id})
    text = page_text(at)
    assert "Scorecard of Rep_A2" in text
    # rep_a2: revenue 800 of 1,000 → 80.0; visits 0 of 2 → 0.0; composite 3900 / 55.
    assert f"{3900 / 55:.1f}" in text
    breakdown = next(e.value for e in at.dataframe if "Sub-score" in e.value.columns)
    scores = dict(zip(breakdown["Metric"], breakdown["Sub-score"], strict=True))
    assert scores["Revenue"] == pytest.approx(80.0)
    assert scores["Visits"] == pytest.approx(0.0)


# --- live -----------------------------------------------------------------------------------


def test_new_order_changes_the_revenue_card_on_the_next_run(world: World) -> None:
    at = open_page(world.rep_a1)
    assert card(at, "Revenue") == "1,200"
    save_order(world, rep=world.rep_a1, customer_id=world.customer_a1, amount=300)
    at.run()
    assert not at.exception
    assert card(at, "Revenue") == f"{1200 + 300:,}"
    # Two orders of Alpha in February now: repeat purchase 1 / 1 customer.
    assert card(at, "Repeat purchase") == f"{1 / 1:.1%}"


# --- chart builders -------------------------------------------------------------------------


def test_chart_builders_handle_empty_frames_in_chinese() -> None:
    i18n.set_language(i18n.ZH)
    try:
        empty_trend = pd.DataFrame(
            columns=["month", "responses", "csat", "quality", "service", "price", "after_sales"]
        ).astype({"responses": "int64"})
        frames = {
            "csat": empty_trend,
            "nps": pd.DataFrame(columns=["month", "recommend_responses", "nps"]),
            "funnel": pd.DataFrame(columns=["stage", "kind", "opportunities", "step_conversion"]),
            "retention": pd.DataFrame(columns=["month", "retention_rate", "churn_rate"]),
            "reps": pd.DataFrame(columns=charts.RANKING_COLUMNS),
        }
        altair_charts = {
            "csat": charts.csat_trend,
            "nps": charts.nps_trend,
            "funnel": charts.funnel,
            "retention": charts.retention_trend,
            "reps": charts.rep_composites,
        }
        for kind, frame in frames.items():
            # What the page draws (filled from a template) and the Altair chart other screens may use.
            for spec in (CHART_SPECS[kind](frame), to_spec(altair_charts[kind](frame))):
                assert "当前筛选条件下没有数据" in json.dumps(spec, ensure_ascii=False), kind
                assert not charts.has_selection(spec)
    finally:
        i18n.set_language(i18n.EN)


def test_funnel_labels_stage_to_stage_conversion() -> None:
    frame = pd.DataFrame(
        {
            "stage": ["prospecting", "engaging", "won"],
            "position": [1, 2, 3],
            "kind": ["open", "open", "won"],
            "opportunities": [10, 4, 1],
            "step_conversion": [float("nan"), 4 / 10, 1 / 4],
            "from_start": [1.0, 0.4, 0.1],
        }
    )
    rows = charts.funnel_spec(frame)["datasets"][ROWS]
    assert rows["label"].tolist() == ["10", "4 · 40.0% of previous", "1 · 25.0% of previous"]
    spec = json.dumps(charts.funnel(frame).to_dict())
    assert "4 \\u00b7 40.0% of previous" in spec or "4 · 40.0% of previous" in spec


@dataclass(frozen=True)
class Card:
    """The scorecard fields the ranking reads."""

    rep_id: int
    display_name: str
    composite: float | None
    grade: str | None
    rank: int | None


def test_ranking_keeps_the_top_and_bottom_five_and_drops_reps_without_a_composite() -> None:
    # 12 scored reps (composites 100, 95, …, 45) and one without data.
    cards = [Card(n, f"Rep {n}", 100 - 5 * (n - 1), "A", n) for n in range(1, 13)]
    cards.append(Card(99, "Rep idle", None, None, None))
    frame = charts.ranking_frame(cards)  # type: ignore[arg-type]
    assert frame["rank"].tolist() == [1, 2, 3, 4, 5, 8, 9, 10, 11, 12]
    assert frame["group"].tolist() == ["top"] * 5 + ["bottom"] * 5
    assert frame["rep"].iloc[0] == "#1 Rep 1"
    # Ten or fewer reps are all shown, once each.
    assert charts.ranking_frame(cards[:7])["rep_id"].tolist() == [1, 2, 3, 4, 5, 6, 7]  # type: ignore[arg-type]
    assert charts.ranking_frame(cards[:1], ranked=False)["rep"].tolist() == ["Rep 1"]  # type: ignore[arg-type]
