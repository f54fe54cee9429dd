"""AppTest: the loyalty page for every role, on the hand-built world of Feb 2026.

The world (tests/pages/conftest.py) has three orders, all in February 2026 and none before:
Alpha Trading 1,200 (rep_a1, 02-10), Atlas Foods 800 (rep_a2, 02-11), Beta Machines 500
(rep_b1, 02-12). Alpha, Atlas and Beta are tier "customer"; Pool Prospect (no owner) is a lead.
For the whole company in February: 3 active customers, none with two orders (repeat 0 of 3 =
0.0%), retention n/a (nobody was active in January), lifetime value (1,200 + 800 + 500) / 3 =
833.33 per active customer, and the top ceil(20% × 3) = 1 customer brings 1,200 / 2,500 = 48.0%.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.orm import Session
from streamlit import dataframe_util
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from crm import orders
from crm.access import Actor
from crm.clock import utcnow
from crm.db import make_engine
from crm.i18n import t
from crm.models import Customer, User
from crm.ui import ACTOR_KEY, ISSUED_AT_KEY
from tests.factories import make_customer, make_interaction, make_order
from tests.pages.conftest import PAGE_TIMEOUT_S, ROOT, World, page_text, run_page

PAGE = str(ROOT / "pages" / "loyalty.py")
K = "loyalty"
FEB_2026 = (date(2026, 2, 1), date(2026, 2, 28))
CARDS = (
    "loyalty.card.active",
    "loyalty.card.repeat",
    "loyalty.card.retention",
    "loyalty.card.churn",
    "loyalty.card.clv",
    "loyalty.card.top_share",
)
NA = t("common.na")
NAMES = ("Alpha Trading", "Atlas Foods", "Beta Machines", "Pool Prospect")
PARETO_MAX_POINTS = 101  # the origin and one point per whole percent of customers


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
    """Return card label key -> (value, delta)."""
    shown = {metric.label: (metric.value, metric.delta) for metric in at.metric}
    return {key: shown[t(key)] for key in CARDS}


def values(at: AppTest) -> tuple[str, ...]:
    return tuple(value for value, _ in cards(at).values())


def charts(at: AppTest) -> dict[str, tuple[dict[str, Any], list[pd.DataFrame]]]:
    """Return each Altair chart's spec and rows by its title (Streamlit ships the rows as Arrow)."""
    shown = {}
    for element in at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart"):
        proto = element.proto
        frames = [dataframe_util.convert_arrow_bytes_to_pandas_df(ds.data.data) for ds in proto.datasets]
        if proto.data.data:
            frames.append(dataframe_util.convert_arrow_bytes_to_pandas_df(proto.data.data))
        spec = json.loads(proto.spec)
        shown[spec["title"]] = (spec, frames)
    return shown


def chart_frames(at: AppTest, title_key: str) -> list[pd.DataFrame]:
    return charts(at)[t(title_key)][1]


def pyramid_counts(at: AppTest) -> dict[str, int]:
    [frame] = [frame for frame in chart_frames(at, "loyalty.chart.pyramid") if "customers" in frame.columns]
    return {label: int(count) for label, count in zip(frame["label"], frame["customers"], strict=True) if count}


def at_risk_table(at: AppTest) -> pd.DataFrame:
    [frame] = [frame.value for frame in at.dataframe if t("loyalty.col.days_silent") in frame.value.columns]
    return frame


def add_order(world: World, *, customer_id: int, rep: Actor, on: date, amount: int) -> None:
    """Record an order through crm (validated, audited: the data version moves like in the app)."""
    with database(world) as session:
        orders.create_order(
            session,
            actor=world.admin,
            data=orders.OrderInput(customer_id=customer_id, ordered_on=on, amount=amount, rep_id=rep.id),
            now=datetime(2026, 3, 1, 9, 0),
        )
        session.commit()


def add_january_orders(world: World) -> None:
    """Alpha 300 (rep_a1) and Pool Prospect 200 (rep_a2) in January 2026."""
    add_order(world, customer_id=world.customer_a1, rep=world.rep_a1, on=date(2026, 1, 20), amount=300)
    add_order(world, customer_id=world.pool_customer, rep=world.rep_a2, on=date(2026, 1, 25), amount=200)


def run_in_app(who: Actor, page: str) -> AppTest:
    """Run the whole app (navigation included) logged in, on one page: page links need the navigation."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=PAGE_TIMEOUT_S)
    at.session_state[ACTOR_KEY] = who
    at.session_state[ISSUED_AT_KEY] = utcnow()
    at.run()
    at.switch_page(page).run()
    assert not at.exception
    return at


@pytest.fixture
def media(monkeypatch: pytest.MonkeyPatch) -> list[MemoryMediaFileStorage]:
    """Keep the in-memory media storage of each AppTest run, so a download's bytes can be read."""
    stores: list[MemoryMediaFileStorage] = []

    def keep(endpoint: str) -> MemoryMediaFileStorage:
        store = MemoryMediaFileStorage(endpoint)
        stores.append(store)
        return store

    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", keep)
    return stores


# --- guard and figures ----------------------------------------------------------------------


def test_guard_without_login_shows_warning_and_no_data(world: World) -> None:
    at = run_page(PAGE, None)
    assert not at.exception
    assert [w.value for w in at.warning] == [t("app.login_required")]
    assert len(at.metric) == 0 and len(at.dataframe) == 0 and not charts(at)
    assert not any(name in page_text(at) for name in NAMES)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("admin", ("3", "0.0%", NA, NA, "833", "48.0%")),  # see the module docstring
        ("rep_a1", ("1", "0.0%", NA, NA, "1,200", "100.0%")),  # Alpha only: 1,200 / 1,200
        # Alpha and Atlas: (1,200 + 800) / 2 = 1,000; top ceil(0.4) = 1: 1,200 / 2,000
        ("manager_a", ("2", "0.0%", NA, NA, "1,000", "60.0%")),
        ("manager_b", ("1", "0.0%", NA, NA, "500", "100.0%")),  # Beta only
    ],
)
def test_cards_of_february(world: World, who: str, expected: tuple[str, ...]) -> None:
    at = open_feb_2026(getattr(world, who))
    assert values(at) == expected


def test_admin_deltas_without_a_previous_period(world: World) -> None:
    at = open_feb_2026(world.admin)
    assert cards(at) == {
        "loyalty.card.active": ("3", "+3"),  # nobody in January
        "loyalty.card.repeat": ("0.0%", ""),  # January's rate is n/a: no delta
        "loyalty.card.retention": (NA, ""),
        "loyalty.card.churn": (NA, ""),
        "loyalty.card.clv": ("833", ""),
        "loyalty.card.top_share": ("48.0%", ""),
    }


def test_retention_with_january_orders(world: World) -> None:
    add_january_orders(world)
    at = open_feb_2026(world.admin)
    assert cards(at) == {
        "loyalty.card.active": ("3", "+1"),  # January: Alpha and Pool; February: Alpha, Atlas, Beta
        "loyalty.card.repeat": ("0.0%", "+0.0 pt"),  # January 0 of 2, February 0 of 3
        # Active in January: Alpha and Pool; of them only Alpha ordered again in February: 1 / 2.
        "loyalty.card.retention": ("50.0%", ""),  # January's own retention is n/a (nobody in December)
        "loyalty.card.churn": ("50.0%", ""),  # 1 − 1 / 2
        # February's active customers to date: Alpha 300 + 1,200, Atlas 800, Beta 500 → 2,800 / 3 = 933.33;
        # January's: Alpha 300, Pool 200 → 250; change (933.33 − 250) / 250 = +273.3%.
        "loyalty.card.clv": ("933", "+273.3%"),
        # Top ceil(20% × 4) = 1 customer: Alpha 1,500 of 3,000 = 50.0%; January: 300 of 500 = 60.0%.
        "loyalty.card.top_share": ("50.0%", "-10.0 pt"),
    }
    [retention] = [f for f in chart_frames(at, "loyalty.chart.retention") if "measure" in f.columns]
    assert retention.set_index("measure")["rate"].to_dict() == {
        t("loyalty.series.retention"): 0.5,
        t("loyalty.series.churn"): 0.5,
    }
    [repeat] = chart_frames(at, "loyalty.chart.repeat")
    assert (repeat["label"].tolist(), repeat["active"].tolist(), repeat["repeat_purchase_rate"].tolist()) == (
        ["2026-02"],
        [3],
        [0.0],
    )


@pytest.mark.parametrize(
    ("who", "retention"),
    [
        ("rep_a1", ("100.0%", "0.0%")),  # Alpha in January and February: 1 / 1
        ("manager_a", ("50.0%", "50.0%")),  # Alpha and Pool (rep_a2's order) in January, Alpha again: 1 / 2
        ("rep_b1", (NA, NA)),  # none of rep_b1's customers ordered in January
    ],
)
def test_retention_is_scoped(world: World, who: str, retention: tuple[str, str]) -> None:
    add_january_orders(world)
    at = open_feb_2026(getattr(world, who))
    assert values(at)[2:4] == retention


def test_repeat_purchase(world: World) -> None:
    # A second February order for Alpha: 1 of 3 active customers ordered twice.
    add_order(world, customer_id=world.customer_a1, rep=world.rep_a1, on=date(2026, 2, 20), amount=100)
    at = open_feb_2026(world.admin)
    assert values(at)[:2] == ("3", "33.3%")


# --- charts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "counts"),
    [
        ("admin", {"customer": 3, "lead": 1}),  # Alpha, Atlas, Beta + Pool Prospect
        ("manager_a", {"customer": 2, "lead": 1}),  # Alpha, Atlas + the pool
        ("manager_b", {"customer": 1, "lead": 1}),  # Beta + the pool
        ("rep_a1", {"customer": 1}),  # Alpha only
    ],
)
def test_pyramid_counts_per_tier(world: World, who: str, counts: dict[str, int]) -> None:
    at = run_page(PAGE, getattr(world, who))
    assert not at.exception
    assert pyramid_counts(at) == {t(f"enum.tier.{tier}"): count for tier, count in counts.items()}


def test_pyramid_draws_strategic_on_top_and_lead_at_the_bottom(world: World) -> None:
    at = run_page(PAGE, world.admin)
    spec, _ = charts(at)[t("loyalty.chart.pyramid")]
    order = [t(f"enum.tier.{tier}") for tier in ("strategic", "key", "customer", "prospect", "lead")]
    assert spec["layer"][0]["encoding"]["y"]["sort"] == order


def test_pareto_curve_of_february(world: World) -> None:
    at = open_feb_2026(world.admin)
    frames = chart_frames(at, "loyalty.chart.pareto")
    [curve] = [f for f in frames if "revenue_share" in f.columns and "label" not in f.columns]
    # Ranked by lifetime value: Alpha 1,200, Atlas 800, Beta 500 of 2,500.
    assert curve["customer_share"].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert curve["revenue_share"].tolist() == pytest.approx([0, 1200 / 2500, 2000 / 2500, 1])
    [point] = [f for f in frames if "revenue_share" in f.columns and "label" in f.columns]
    assert point["label"].tolist() == [t("loyalty.pareto.point", customers=1, total=3, share="48.0%")]
    [rule] = [f for f in frames if "share" in f.columns]
    assert rule["share"].tolist() == [0.2]


def test_pareto_curve_has_at_most_101_points(world: World) -> None:
    extra = 150
    with database(world) as session:
        rep = session.get(User, world.rep_a1.id)
        assert rep is not None
        for number in range(extra):
            customer = make_customer(session, f"Bulk Buyer {number:03d}", owner=rep)
            make_order(session, customer, rep, date(2026, 2, 5), 100 + number)
        session.commit()
    at = open_feb_2026(world.admin)
    [curve] = [
        f for f in chart_frames(at, "loyalty.chart.pareto") if "revenue_share" in f.columns and "label" not in f.columns
    ]
    assert len(curve) == PARETO_MAX_POINTS  # 153 customers: the origin + one per whole percent
    assert curve["customer_share"].is_monotonic_increasing and curve["revenue_share"].iloc[-1] == pytest.approx(1)
    assert values(at)[0] == str(extra + 3)


# --- the at-risk list -----------------------------------------------------------------------


def days_since(day: date) -> int:
    return (utcnow().date() - day).days


@pytest.mark.parametrize(
    ("who", "names"),
    [
        # Never active first, then the longest silent: Atlas (order 02-11), then Beta (order 02-12)
        # before Alpha (visit 02-12 10:00).
        ("admin", ["Pool Prospect", "Atlas Foods", "Beta Machines", "Alpha Trading"]),
        ("manager_a", ["Pool Prospect", "Atlas Foods", "Alpha Trading"]),
        ("manager_b", ["Pool Prospect", "Beta Machines"]),
        ("rep_a1", ["Alpha Trading"]),
    ],
)
def test_at_risk_list_is_scoped(world: World, who: str, names: list[str]) -> None:
    at = run_page(PAGE, getattr(world, who))
    assert not at.exception
    table = at_risk_table(at)
    assert table[t("loyalty.col.customer")].tolist() == names
    assert at.selectbox(key=f"{K}:at_risk:pick").options == names


def test_at_risk_columns(world: World) -> None:
    at = run_page(PAGE, world.admin)
    table = at_risk_table(at)
    assert table[t("loyalty.col.owner")].tolist() == [t("loyalty.pool"), "Rep_A2", "Rep_B1", "Rep_A1"]
    assert table[t("loyalty.col.last_activity")].tolist() == [
        t("loyalty.never"),
        "2026-02-11",
        "2026-02-12",
        "2026-02-12",
    ]
    days = table[t("loyalty.col.days_silent")].tolist()
    assert pd.isna(days[0])
    assert days[1:] == [days_since(date(2026, 2, 11)), days_since(date(2026, 2, 12)), days_since(date(2026, 2, 12))]
    assert table[t("loyalty.col.tier")].tolist() == [t("enum.tier.lead")] + [t("enum.tier.customer")] * 3


def test_recent_visit_takes_a_customer_off_the_list(world: World) -> None:
    with database(world) as session:
        alpha, rep = session.get(Customer, world.customer_a1), session.get(User, world.rep_a1.id)
        assert alpha is not None and rep is not None
        make_interaction(session, alpha, rep, utcnow() - timedelta(days=3))
        session.commit()
    at = run_page(PAGE, world.admin)
    assert "Alpha Trading" not in at_risk_table(at)[t("loyalty.col.customer")].tolist()
    at = run_page(PAGE, world.rep_a1)
    assert [i.value for i in at.info] == [t("loyalty.at_risk.none")]
    assert not any(box.key == f"{K}:at_risk:pick" for box in at.selectbox)


def test_at_risk_csv_download(world: World, media: list[MemoryMediaFileStorage]) -> None:
    at = run_page(PAGE, world.manager_a)
    [button] = [b for b in at.get("download_button") if b.proto.id.endswith(f"{K}:at_risk:csv")]
    filename = button.proto.url.rsplit("/", 1)[1]
    content = media[-1].get_file(filename).content
    assert content.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, for Excel
    exported = pd.read_csv(pd.io.common.BytesIO(content), encoding="utf-8-sig")
    assert exported[t("loyalty.col.customer")].tolist() == ["Pool Prospect", "Atlas Foods", "Alpha Trading"]
    assert list(exported.columns) == list(at_risk_table(at).columns)


def test_log_a_visit_opens_the_visit_form_on_the_customer(world: World) -> None:
    at = run_in_app(world.rep_a1, "pages/loyalty.py")
    at.selectbox(key=f"{K}:at_risk:pick").select(world.customer_a1).run()
    at.button(key=f"{K}:at_risk:log").click().run()
    assert not at.exception
    assert at.query_params["customer"] == str(world.customer_a1)
    assert [title.value for title in at.title] == [t("nav.log_interaction")]
    assert at.selectbox(key="log_interaction:0:customer").value == world.customer_a1


def test_rep_sees_no_other_reps_data_anywhere(world: World) -> None:
    at = open_feb_2026(world.rep_a1)
    shown = page_text(at) + "".join(frame.to_string() for _, frames in charts(at).values() for frame in frames)
    shown += "".join(str(option) for box in at.selectbox for option in box.options)
    assert "Alpha Trading" in shown and "Rep_A1" in shown
    for other in ("Beta", "Rep_B1", "Atlas", "Rep_A2", "Pool"):
        assert other not in shown
