"""AppTest: the satisfaction page for every role, on the hand-built world of Feb 2026.

The world (tests/pages/conftest.py) has two survey responses in February 2026 and none before:
Alpha Trading by rep_a1 on 2026-02-15 (overall 5, recommend 10: a promoter) and Beta Machines by
rep_b1 on 2026-02-16 (overall 2, recommend 3: a detractor). For the whole company that gives
CSAT score (5 + 2) / 2 = 3.50, CSAT % 1 of 2 = 50.0% and NPS 50% − 50% = 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from crm.access import Actor
from crm.clock import utcnow
from crm.db import make_engine
from crm.i18n import t
from crm.models import SurveyResponse
from crm.surveys import SurveyInput, record_survey
from crm.ui import ACTOR_KEY, ISSUED_AT_KEY
from tests.pages.conftest import PAGE_TIMEOUT_S, ROOT, World, page_text, run_page

PAGE = str(ROOT / "pages" / "satisfaction.py")
K = "satisfaction"
TOKEN = "token:satisfaction_survey"
FEB_2026 = (date(2026, 2, 1), date(2026, 2, 28))
COMMENT = "Delivery was late but support was quick"
CARDS = (
    "satisfaction.card.csat_score",
    "satisfaction.card.csat_pct",
    "satisfaction.card.nps",
    "satisfaction.card.responses",
)
NAMES = ("Alpha Trading", "Atlas Foods", "Beta Machines", "Pool Prospect")
CHART_TITLES = (
    "satisfaction.chart.csat_trend",
    "satisfaction.chart.nps_trend",
    "satisfaction.chart.dimensions",
    "satisfaction.chart.by_tier",
    "satisfaction.chart.by_rep",
)


# --- helpers --------------------------------------------------------------------------------


@contextmanager
def database(world: World) -> Iterator[Session]:
    engine = make_engine(world.url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        engine.dispose()


def pick_period(at: AppTest, start: date, end: date) -> AppTest:
    """Choose a custom period [start, end] (inclusive) in the sidebar."""
    at.selectbox(key=f"{K}:filters:period:preset").select("custom").run()
    at.date_input(key=f"{K}:filters:period:start").set_value(start)
    at.date_input(key=f"{K}:filters:period:end").set_value(end).run()
    assert not at.exception
    return at


def open_feb_2026(who: Actor) -> AppTest:
    return pick_period(run_page(PAGE, who), *FEB_2026)


def cards(at: AppTest) -> dict[str, tuple[str, str]]:
    """Return card label key -> (value, delta) for the four headline cards."""
    shown = {metric.label: (metric.value, metric.delta) for metric in at.metric}
    return {key: shown[t(key)] for key in CARDS}


def values(at: AppTest) -> tuple[str, ...]:
    return tuple(value for value, _ in cards(at).values())


def charts(at: AppTest) -> dict[str, list[pd.DataFrame]]:
    """Return each Altair chart's rows by its title (Streamlit ships the rows as Arrow)."""
    shown: dict[str, list[pd.DataFrame]] = {}
    for element in at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart"):
        proto = element.proto
        frames = [dataframe_util.convert_arrow_bytes_to_pandas_df(ds.data.data) for ds in proto.datasets]
        if proto.data.data:
            frames.append(dataframe_util.convert_arrow_bytes_to_pandas_df(proto.data.data))
        shown[json.loads(proto.spec)["title"]] = frames
    return shown


def chart(at: AppTest, title_key: str, column: str) -> pd.DataFrame:
    """Return the rows of the chart with this title that have this column."""
    [frame] = [frame for frame in charts(at)[t(title_key)] if column in frame.columns]
    return frame


def is_empty_chart(frames: list[pd.DataFrame]) -> bool:
    """Tell whether a chart is the 'nothing to show' placeholder."""
    return len(frames) == 1 and frames[0].get("text", pd.Series()).tolist() == [t("common.no_rows")]


def k(at: AppTest, name: str) -> str:
    """Return the key of a form field of the entry on screen (each saved entry gets new widgets)."""
    return f"{K}:{at.session_state[f'{K}:entry']}:{name}"


def element_after(at: AppTest, key: str) -> Any:
    """Return the element drawn right after the widget with this key (its field message)."""
    nodes = [node for node in at.main if not hasattr(node, "children")]
    index = next(i for i, node in enumerate(nodes) if getattr(node, "key", None) == key)
    return nodes[index + 1]


def saved_rows(world: World) -> list[SurveyResponse]:
    """Return the responses the tests saved (the world's own have no comment)."""
    with database(world) as session:
        return list(session.scalars(select(SurveyResponse).where(SurveyResponse.comment == COMMENT)))


def fill(at: AppTest, *, customer: int, overall: int | None, recommend: int | None = 8) -> AppTest:
    """Fill the survey form the way a rep would: customer, scores, a comment."""
    at.selectbox(key=k(at, "customer")).select(customer).run()
    if overall is not None:
        at.number_input(key=k(at, "overall")).set_value(overall)
    if recommend is not None:
        at.number_input(key=k(at, "recommend")).set_value(recommend)
    at.radio(key=k(at, "service")).set_value(4)
    at.text_area(key=k(at, "comment")).input(COMMENT)
    return at


def submit(at: AppTest) -> AppTest:
    return at.button(key=k(at, "submit")).click().run()


def add_survey(world: World, *, customer_id: int, rep: Actor, on: date, overall: int, recommend: int) -> None:
    """Record a response through crm (validated, audited: the data version moves like in the app)."""
    with database(world) as session:
        record_survey(
            session,
            actor=world.admin,
            data=SurveyInput(
                customer_id=customer_id, responded_on=on, overall=overall, recommend=recommend, rep_id=rep.id
            ),
            now=datetime(2026, 3, 1, 9, 0),
        )
        session.commit()


def run_in_app(who: Actor, page: str) -> AppTest:
    """Run the whole app (navigation included) logged in, on one page: page links need the navigation."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=PAGE_TIMEOUT_S)
    at.session_state[ACTOR_KEY] = who
    at.session_state[ISSUED_AT_KEY] = utcnow()
    at.run()
    at.switch_page(page).run()
    assert not at.exception
    return at


# --- guard and scope ------------------------------------------------------------------------


def test_guard_without_login_shows_warning_and_no_data(world: World) -> None:
    at = run_page(PAGE, None)
    assert not at.exception
    assert [w.value for w in at.warning] == [t("app.login_required")]
    assert len(at.metric) == 0 and len(at.dataframe) == 0 and not charts(at)
    assert not any(name in page_text(at) for name in NAMES)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        # (5 + 2) / 2 = 3.50; 1 of 2 satisfied; 1 promoter − 1 detractor of 2 = 0
        ("admin", ("3.50", "50.0%", "0", "2")),
        # Alpha by rep_a1 only: 5 / 1; 1 of 1 satisfied; 1 promoter of 1 = 100
        ("rep_a1", ("5.00", "100.0%", "100", "1")),
        ("manager_a", ("5.00", "100.0%", "100", "1")),  # Atlas (team North) has no response
        # Beta by rep_b1 only: 2 / 1; 0 of 1 satisfied; 1 detractor of 1 = −100
        ("rep_b1", ("2.00", "0.0%", "-100", "1")),
        ("manager_b", ("2.00", "0.0%", "-100", "1")),
        ("rep_a2", (t("common.na"), t("common.na"), t("common.na"), "0")),  # no response of their own
    ],
)
def test_cards_of_february(world: World, who: str, expected: tuple[str, ...]) -> None:
    at = open_feb_2026(getattr(world, who))
    assert values(at) == expected


def test_cards_are_na_without_responses(world: World) -> None:
    # The default period (this quarter, after the world's February) has no response.
    at = run_page(PAGE, world.admin)
    assert not at.exception
    assert values(at) == (t("common.na"), t("common.na"), t("common.na"), "0")
    shown = charts(at)
    assert len(shown) == len(CHART_TITLES)
    assert all(is_empty_chart(shown[t(title)]) for title in CHART_TITLES)


def test_deltas_against_january(world: World) -> None:
    # January: Alpha by rep_a1, overall 3 (not satisfied), recommend 6 (a detractor).
    add_survey(world, customer_id=world.customer_a1, rep=world.rep_a1, on=date(2026, 1, 20), overall=3, recommend=6)
    at = open_feb_2026(world.admin)
    assert cards(at) == {
        "satisfaction.card.csat_score": ("3.50", "+0.50"),  # 3.50 − 3.00
        "satisfaction.card.csat_pct": ("50.0%", "+50.0 pt"),  # 50% − 0%
        "satisfaction.card.nps": ("0", "+100.0"),  # 0 − (−100)
        "satisfaction.card.responses": ("2", "+1"),  # 2 − 1
    }
    # Without a January response there is nothing to compare with.
    at = open_feb_2026(world.rep_b1)
    assert cards(at)["satisfaction.card.csat_score"] == ("2.00", "")


def test_rep_sees_no_other_reps_data_anywhere(world: World) -> None:
    at = open_feb_2026(world.rep_a1)
    shown = page_text(at) + "".join(frame.to_string() for frames in charts(at).values() for frame in frames)
    shown += "".join(str(option) for box in at.selectbox for option in box.options)
    assert "Alpha Trading" in shown and "Rep_A1" in shown
    for other in ("Beta", "Rep_B1", "Atlas", "Rep_A2", "Pool"):
        assert other not in shown


@pytest.mark.parametrize(
    ("who", "by_rep"),
    [
        ("admin", {"Rep_A1": 5.0, "Rep_B1": 2.0}),
        ("manager_a", {"Rep_A1": 5.0}),
        ("rep_a1", {"Rep_A1": 5.0}),
        ("rep_b1", {"Rep_B1": 2.0}),
    ],
)
def test_csat_by_rep_chart(world: World, who: str, by_rep: dict[str, float]) -> None:
    at = open_feb_2026(getattr(world, who))
    frame = chart(at, "satisfaction.chart.by_rep", "rep_name")
    assert dict(zip(frame["rep_name"], frame["csat"], strict=True)) == by_rep


def test_trend_dimension_and_tier_charts(world: World) -> None:
    add_survey(world, customer_id=world.customer_a1, rep=world.rep_a1, on=date(2026, 2, 20), overall=4, recommend=9)
    at = open_feb_2026(world.admin)
    # One month (Feb 2026): overall (5 + 2 + 4) / 3 = 3.67 drawn as the CSAT line.
    trend = chart(at, "satisfaction.chart.csat_trend", "measure")
    assert list(trend["label"].unique()) == ["2026-02"]
    assert trend.set_index("measure")["score"].to_dict() == {t("satisfaction.series.csat"): pytest.approx(3.67)}
    # NPS: 2 promoters (10, 9) − 1 detractor (3) of 3 = 33.3, a positive (green) bar.
    nps = chart(at, "satisfaction.chart.nps_trend", "sign")
    assert (nps["nps"].tolist(), nps["sign"].tolist()) == ([pytest.approx(100 / 3)], ["positive"])
    assert values(at)[2] == "33.3"
    # All three customers are tier "customer": (5 + 2 + 4) / 3.
    tiers = chart(at, "satisfaction.chart.by_tier", "tier")
    assert dict(zip(tiers["tier"], tiers["csat"], strict=True)) == {t("enum.tier.customer"): pytest.approx(3.67)}
    # Nobody rated a dimension: the dimension chart says so instead of drawing empty bars.
    assert is_empty_chart(charts(at)[t("satisfaction.chart.dimensions")])


def test_lowest_scoring_customers(world: World) -> None:
    at = open_feb_2026(world.admin)
    [table] = [frame.value for frame in at.dataframe if t("satisfaction.col.mean_overall") in frame.value.columns]
    assert table[t("satisfaction.col.customer")].tolist() == ["Beta Machines", "Alpha Trading"]
    assert table[t("satisfaction.col.mean_overall")].tolist() == ["2.00", "5.00"]
    assert table[t("satisfaction.col.responses")].tolist() == [1, 1]
    assert [str(day) for day in table[t("satisfaction.col.last_response")]] == ["2026-02-16", "2026-02-15"]
    picker = at.selectbox(key=f"{K}:lowest_pick")
    assert picker.options == ["Beta Machines", "Alpha Trading"]


def test_open_customer_goes_to_the_customer_page(world: World) -> None:
    at = run_in_app(world.admin, "pages/satisfaction.py")
    pick_period(at, *FEB_2026)
    at.selectbox(key=f"{K}:lowest_pick").select(world.customer_b1).run()
    at.button(key=f"{K}:lowest_open").click().run()
    assert not at.exception
    assert at.query_params["customer"] == str(world.customer_b1)
    assert [title.value for title in at.title] == [f"C{world.customer_b1:06d} · Beta Machines"]  # its customer page


# --- the survey form ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "names"),
    [
        ("rep_a1", ["Alpha Trading"]),
        ("manager_a", ["Alpha Trading", "Atlas Foods", "Pool Prospect"]),
        ("manager_b", ["Beta Machines", "Pool Prospect"]),
        ("admin", list(NAMES)),
    ],
)
def test_picker_offers_only_customers_the_user_may_log_on(world: World, who: str, names: list[str]) -> None:
    at = run_page(PAGE, getattr(world, who))
    picker = at.selectbox(key=k(at, "customer"))
    assert [label.split(" · ")[1] for label in picker.options] == names
    assert picker.value is None


def test_valid_response_is_saved_once_and_changes_the_figures(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    token = at.session_state[TOKEN]
    assert values(at)[3] == "0"  # nothing this quarter yet
    assert at.date_input(key=k(at, "date")).value == utcnow().date()  # defaults to today
    fill(at, customer=world.customer_a1, overall=4, recommend=9)
    submit(at)
    assert not at.exception
    [row] = saved_rows(world)
    assert (row.customer_id, row.rep_id, row.overall, row.recommend, row.responded_on) == (
        world.customer_a1,
        world.rep_a1.id,
        4,
        9,
        utcnow().date(),
    )
    assert (row.quality, row.service, row.price, row.after_sales) == (None, 4, None, None)  # "not rated" is empty
    assert row.idempotency_key == token
    [message] = [s.value for s in at.success]
    assert "Alpha Trading" in message
    # The figures of this quarter now count it: 4 / 1, satisfied, one promoter.
    assert values(at) == ("4.00", "100.0%", "100", "1")
    dimensions = chart(at, "satisfaction.chart.dimensions", "dimension")
    assert dict(zip(dimensions["dimension"], dimensions["mean"], strict=True)) == {
        t("satisfaction.dimension.service"): 4.0  # the only dimension rated; "not rated" ones are left out
    }
    # Ready for the next entry: a new token and an empty form.
    assert at.session_state[TOKEN] != token
    assert at.selectbox(key=k(at, "customer")).value is None
    assert at.number_input(key=k(at, "overall")).value is None
    assert at.radio(key=k(at, "service")).value == 0


@pytest.mark.parametrize(
    ("overall", "recommend", "field", "message"),
    [
        (None, 8, "overall", t("error.required")),
        (6, 8, "overall", t("error.out_of_range", min=1, max=5)),
        (0, 8, "overall", t("error.out_of_range", min=1, max=5)),
        (4, 11, "recommend", t("error.out_of_range", min=0, max=10)),
    ],
)
def test_invalid_response_shows_the_message_next_to_the_field_and_keeps_input(
    world: World, overall: int | None, recommend: int, field: str, message: str
) -> None:
    at = run_page(PAGE, world.rep_a1)
    token = at.session_state[TOKEN]
    fill(at, customer=world.customer_a1, overall=overall, recommend=recommend)
    submit(at)
    assert not at.exception
    assert saved_rows(world) == []
    assert t("common.fix_fields") in [e.value for e in at.error]
    assert element_after(at, k(at, field)).value == message
    # Everything typed is still there, and the same entry (same token) goes on.
    assert at.selectbox(key=k(at, "customer")).value == world.customer_a1
    assert at.number_input(key=k(at, "overall")).value == overall
    assert at.number_input(key=k(at, "recommend")).value == recommend
    assert at.radio(key=k(at, "service")).value == 4
    assert at.text_area(key=k(at, "comment")).value == COMMENT
    assert at.session_state[TOKEN] == token
    # Correcting the field saves the entry.
    at.number_input(key=k(at, field)).set_value(5 if field == "overall" else 10)
    submit(at)
    assert len(saved_rows(world)) == 1


def test_customer_is_required(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    at.number_input(key=k(at, "overall")).set_value(4)
    at.text_area(key=k(at, "comment")).input(COMMENT)
    submit(at)
    assert saved_rows(world) == []
    assert element_after(at, k(at, "customer")).value == t("error.required")
    assert at.text_area(key=k(at, "comment")).value == COMMENT


def test_double_submit_with_the_same_token_stores_one_row(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    token = at.session_state[TOKEN]
    fill(at, customer=world.customer_a1, overall=5)
    submit(at)
    assert len(saved_rows(world)) == 1
    # The second click of a double click arrives before the token was rotated.
    at.session_state[TOKEN] = token
    fill(at, customer=world.customer_a1, overall=5)
    submit(at)
    assert not at.exception
    assert len(saved_rows(world)) == 1
    assert [s.value for s in at.success]  # the user still sees it as saved


@pytest.mark.parametrize(
    ("who", "rep", "customer"),
    [
        ("manager_a", "rep_a2", "customer_a2"),  # a manager records for a rep of the team
        ("admin", "rep_b1", "customer_b1"),
    ],
)
def test_manager_records_for_a_rep(world: World, who: str, rep: str, customer: str) -> None:
    at = run_page(PAGE, getattr(world, who))
    assert at.selectbox(key=k(at, "rep")).value == getattr(world, who).id  # defaults to self
    fill(at, customer=getattr(world, customer), overall=3)
    at.selectbox(key=k(at, "rep")).select(getattr(world, rep).id)
    submit(at)
    assert not at.exception
    [row] = saved_rows(world)
    assert (row.rep_id, row.customer_id, row.overall) == (getattr(world, rep).id, getattr(world, customer), 3)


def test_rep_has_no_rep_selector(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    assert not any(box.key == k(at, "rep") for box in at.selectbox)


def test_link_preselects_the_customer(world: World) -> None:
    at = run_page(PAGE, world.rep_a1, customer=str(world.customer_a1))
    assert not at.exception
    assert at.selectbox(key=k(at, "customer")).value == world.customer_a1
    assert not at.error
    at.number_input(key=k(at, "overall")).set_value(5)
    at.text_area(key=k(at, "comment")).input(COMMENT)
    submit(at)
    [row] = saved_rows(world)
    assert row.customer_id == world.customer_a1
    assert at.selectbox(key=k(at, "customer")).value is None  # the link filled one entry only


@pytest.mark.parametrize("customer", ["customer_b1", "customer_a2", "pool_customer"])
def test_link_to_someone_elses_customer_is_not_found(world: World, customer: str) -> None:
    at = run_page(PAGE, world.rep_a1, customer=str(getattr(world, customer)))
    assert not at.exception
    assert [e.value for e in at.error] == [t("common.not_found")]
    assert at.selectbox(key=k(at, "customer")).value is None
    text = page_text(at) + " ".join(at.selectbox(key=k(at, "customer")).options)
    assert not any(name in text for name in ("Atlas", "Beta", "Pool"))
