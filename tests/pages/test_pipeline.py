"""AppTest: the pipeline page for every role, on the hand-built world of Feb 2026.

The world (tests/pages/conftest.py) closes two deals in Feb 2026, both created 2026-01-01:
won for rep_a1 on Alpha (1,200, closed 2026-02-10) and lost for rep_b1 on Beta (900, closed
2026-02-20). Tests add open deals where they need them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from crm.access import Actor
from crm.clock import today
from crm.db import make_engine
from crm.i18n import t
from crm.models import Opportunity, Product
from crm.opportunities import BOARD_LIMIT, OpportunityInput, update_opportunity
from tests.pages.conftest import World, page_text, run_page

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "pipeline.py")
ADD = "pipeline:add"
TOKEN = f"token:{ADD}"
MOVE = "pipeline:move"
NEW_TITLE = "Pump line upgrade"


# --- helpers --------------------------------------------------------------------------------


@contextmanager
def database(world: World) -> Iterator[Session]:
    engine = make_engine(world.url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
            session.commit()
    finally:
        engine.dispose()


def add_deal(world: World, *, customer_id: int | None, owner: Actor, stage: str, amount: int, title: str) -> int:
    """Insert an open deal created 2026-02-01 (bypassing the page) and return its id."""
    with database(world) as session:
        row = Opportunity(
            customer_id=customer_id,
            owner_id=owner.id,
            stage=stage,
            amount=Decimal(amount),
            title=title,
            created_on=date(2026, 2, 1),
        )
        session.add(row)
        session.flush()
        return row.id


def add_products(world: World, *products: tuple[str, str | None]) -> dict[str, int]:
    """Insert products (name, series) and return their ids by name."""
    with database(world) as session:
        rows = [Product(name=name, series=series, list_price=Decimal(100)) for name, series in products]
        session.add_all(rows)
        session.flush()
        return {row.name: row.id for row in rows}


def deal(world: World, opportunity_id: int) -> Opportunity:
    with database(world) as session:
        row = session.get(Opportunity, opportunity_id)
        assert row is not None
        return row


def deals_titled(world: World, title: str) -> list[Opportunity]:
    with database(world) as session:
        return list(session.scalars(select(Opportunity).where(Opportunity.title == title)))


def open_feb_2026(who: Actor | None) -> AppTest:
    """Open the page and pick February 2026 as a custom period."""
    at = run_page(PAGE, who)
    at.selectbox(key="pipeline:period:preset").select("custom").run()
    at.date_input(key="pipeline:period:start").set_value(date(2026, 2, 1))
    at.date_input(key="pipeline:period:end").set_value(date(2026, 2, 28)).run()
    assert not at.exception
    return at


def board(at: AppTest) -> pd.DataFrame:
    """Return the board: the one table with an age column (an empty one when nothing is listed)."""
    for element in at.dataframe:
        if t("pipeline.col.age_days") in element.value.columns:
            return element.value
    assert t("common.no_rows") in [i.value for i in at.info]
    columns = [t(f"pipeline.col.{name}") for name in ("stage", "title", "customer", "owner")]
    return pd.DataFrame(columns=columns)


def board_rows(at: AppTest) -> list[tuple[str, str, str]]:
    frame = board(at)
    columns = [frame[t(f"pipeline.col.{name}")].astype(str) for name in ("stage", "customer", "owner")]
    return sorted(zip(*columns, strict=True))


def metric(at: AppTest, key: str) -> str:
    [value] = [m.value for m in at.metric if m.label == t(key)]
    return str(value)


def chart_rows(at: AppTest, title_key: str) -> pd.DataFrame:
    """Return the data of the Altair chart with this title (Streamlit ships the rows as Arrow)."""
    for element in at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart"):
        proto = element.proto
        if json.loads(proto.spec).get("title") != t(title_key):
            continue
        frames = [dataframe_util.convert_arrow_bytes_to_pandas_df(ds.data.data) for ds in proto.datasets]
        return pd.concat(frames, ignore_index=True)
    raise AssertionError(f"no chart titled {t(title_key)!r}")


def element_after(at: AppTest, key: str) -> Any:
    """Return the element drawn right after a widget (where its field message goes)."""
    nodes = [node for node in at.main if not hasattr(node, "children")]
    index = next(i for i, node in enumerate(nodes) if getattr(node, "key", None) == key)
    return nodes[index + 1]


def akey(at: AppTest, name: str) -> str:
    return f"{ADD}:{at.session_state['pipeline:add:entry']}:{name}"


def fill_add(at: AppTest, *, customer: int | None, amount: float, title: str = NEW_TITLE) -> AppTest:
    if customer is not None:
        at.selectbox(key=akey(at, "customer")).select(customer).run()
    at.text_input(key=akey(at, "title")).input(title)
    at.number_input(key=akey(at, "amount")).set_value(amount)
    return at


def submit_add(at: AppTest) -> AppTest:
    return at.button(key=akey(at, "submit")).click().run()


def mkey(opportunity_id: int, name: str) -> str:
    return f"{MOVE}:{opportunity_id}:{name}"


def pick(at: AppTest, opportunity_id: int) -> AppTest:
    return at.selectbox(key=f"{MOVE}:pick").select(opportunity_id).run()


# --- guard and scope ------------------------------------------------------------------------


def test_guard_without_login_shows_warning_and_no_data(world: World) -> None:
    at = run_page(PAGE, None)
    assert not at.exception
    assert [w.value for w in at.warning] == [t("app.login_required")]
    assert not at.dataframe and not at.metric and not at.selectbox
    assert not any(name in page_text(at) for name in ("Alpha", "Beta", "Rep_A1"))


@pytest.mark.parametrize(
    ("who", "rows"),
    [
        ("rep_a1", [("Won", "Alpha Trading", "Rep_A1")]),
        ("rep_a2", [("Prospecting", "Atlas Foods", "Rep_A2")]),
        ("manager_a", [("Prospecting", "Atlas Foods", "Rep_A2"), ("Won", "Alpha Trading", "Rep_A1")]),
        ("manager_b", [("Engaging", "Beta Machines", "Rep_B1"), ("Lost", "Beta Machines", "Rep_B1")]),
        (
            "admin",
            [
                ("Engaging", "Beta Machines", "Rep_B1"),
                ("Lost", "Beta Machines", "Rep_B1"),
                ("Prospecting", "Atlas Foods", "Rep_A2"),
                ("Won", "Alpha Trading", "Rep_A1"),
            ],
        ),
    ],
)
def test_board_shows_only_the_scope(world: World, who: str, rows: list[tuple[str, str, str]]) -> None:
    add_deal(world, customer_id=world.customer_a2, owner=world.rep_a2, stage="prospecting", amount=500, title="Atlas")
    add_deal(world, customer_id=world.customer_b1, owner=world.rep_b1, stage="engaging", amount=700, title="Beta")
    at = open_feb_2026(getattr(world, who))
    assert board_rows(at) == rows
    # The move picker offers exactly the deals on the board.
    assert len(at.selectbox(key=f"{MOVE}:pick").options) == len(rows)


@pytest.mark.parametrize(
    ("who", "won", "lost", "win_rate"),
    [
        ("admin", "1", "1", "50.0%"),  # 1 / (1 + 1)
        ("manager_a", "1", "0", "100.0%"),  # 1 / (1 + 0)
        ("manager_b", "0", "1", "0.0%"),  # 0 / (0 + 1)
        ("rep_a1", "1", "0", "100.0%"),
        ("rep_a2", "0", "0", "n/a"),  # nothing closed: no rate, not 0
    ],
)
def test_cards_for_feb_2026(world: World, who: str, won: str, lost: str, win_rate: str) -> None:
    at = open_feb_2026(getattr(world, who))
    assert metric(at, "pipeline.card.won") == won
    assert metric(at, "pipeline.card.lost") == lost
    assert metric(at, "pipeline.card.win_rate") == win_rate
    assert metric(at, "pipeline.card.open") == "0"  # the world has no open deal


def test_open_cards_count_open_deals_and_their_amount(world: World) -> None:
    add_deal(world, customer_id=world.customer_a1, owner=world.rep_a1, stage="prospecting", amount=500, title="A")
    add_deal(world, customer_id=None, owner=world.rep_a1, stage="engaging", amount=1500, title="B")
    add_deal(world, customer_id=world.customer_b1, owner=world.rep_b1, stage="engaging", amount=7000, title="C")
    at = run_page(PAGE, world.rep_a1)
    assert not at.exception
    assert metric(at, "pipeline.card.open") == "2"  # rep_b1's deal is not rep_a1's
    assert metric(at, "pipeline.card.open_amount") == "2,000"  # 500 + 1,500
    assert t("pipeline.no_customer") in list(board(at)[t("pipeline.col.customer")])


def test_open_cards_count_every_open_deal_beyond_the_board(world: World) -> None:
    # One more open deal than the board lists, each worth 10: the cards count all of them in SQL.
    with database(world) as session:
        session.add_all(
            Opportunity(
                owner_id=world.rep_a1.id,
                stage="prospecting",
                amount=Decimal(10),
                title=f"Bulk {number}",
                created_on=date(2026, 2, 1),
            )
            for number in range(BOARD_LIMIT + 1)
        )
    at = run_page(PAGE, world.rep_a1)
    assert not at.exception
    assert len(board(at)) == BOARD_LIMIT
    assert t("pipeline.board_capped", limit=BOARD_LIMIT) in [c.value for c in at.caption]
    assert metric(at, "pipeline.card.open") == str(BOARD_LIMIT + 1)  # 501, not "500+"
    assert metric(at, "pipeline.card.open_amount") == f"{(BOARD_LIMIT + 1) * 10:,}"  # 5,010


def test_open_cards_follow_the_sidebar_filters(world: World) -> None:
    add_deal(world, customer_id=world.customer_a1, owner=world.rep_a1, stage="prospecting", amount=500, title="A")
    add_deal(world, customer_id=world.pool_customer, owner=world.rep_a2, stage="engaging", amount=300, title="P")
    add_deal(world, customer_id=world.customer_b1, owner=world.rep_b1, stage="engaging", amount=7000, title="B")
    at = run_page(PAGE, world.admin)
    assert (metric(at, "pipeline.card.open"), metric(at, "pipeline.card.open_amount")) == ("3", "7,800")
    at.selectbox(key="pipeline:team").select("North").run()
    assert (metric(at, "pipeline.card.open"), metric(at, "pipeline.card.open_amount")) == ("2", "800")  # 500 + 300
    at.selectbox(key="pipeline:tier").select("lead").run()
    assert (metric(at, "pipeline.card.open"), metric(at, "pipeline.card.open_amount")) == ("1", "300")  # the pool


@pytest.mark.parametrize(
    ("who", "bars"),
    [
        ("admin", {"Rep_A1": 1.0, "Rep_B1": 0.0}),
        ("rep_a1", {"Rep_A1": 1.0}),  # a rep sees only their own bar
        ("rep_b1", {"Rep_B1": 0.0}),
    ],
)
def test_win_rate_by_rep_chart(world: World, who: str, bars: dict[str, float]) -> None:
    at = open_feb_2026(getattr(world, who))
    rows = chart_rows(at, "pipeline.chart.win_rate")
    assert dict(zip(rows["rep_name"], rows["win_rate"], strict=True)) == bars


def test_visit_conversion_by_rep_chart(world: World) -> None:
    at = open_feb_2026(world.admin)
    rows = chart_rows(at, "pipeline.chart.visit_conversion")
    # rep_a1 visited Alpha on Feb 5 and 12; Alpha ordered on Feb 10 → only the Feb 5 visit converted: 1/2.
    # rep_b1 visited Beta on Feb 3; Beta ordered on Feb 12 → 1/1.
    assert dict(zip(rows["rep_name"], rows["rate"], strict=True)) == {"Rep_A1": 1 / 2, "Rep_B1": 1 / 1}


# --- add an opportunity ---------------------------------------------------------------------


def test_rep_adds_an_opportunity(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    token = at.session_state[TOKEN]
    assert not any(box.key == akey(at, "owner") for box in at.selectbox)  # a rep owns their deals
    fill_add(at, customer=world.customer_a1, amount=2500)
    submit_add(at)
    assert not at.exception
    [row] = deals_titled(world, NEW_TITLE)
    assert (row.owner_id, row.customer_id, row.amount, row.stage, row.closed_on) == (
        world.rep_a1.id,
        world.customer_a1,
        Decimal("2500.00"),
        "prospecting",
        None,
    )
    assert [s.value for s in at.success] == [t("pipeline.add.saved", name=NEW_TITLE)]
    assert at.session_state[TOKEN] != token
    assert at.text_input(key=akey(at, "title")).value == ""  # a new, empty entry
    assert NEW_TITLE in list(board(at)[t("pipeline.col.title")])
    assert metric(at, "pipeline.card.open") == "1"


def test_negative_amount_is_refused_next_to_the_field_and_input_kept(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    token = at.session_state[TOKEN]
    fill_add(at, customer=world.customer_a1, amount=-5)
    submit_add(at)
    assert not at.exception
    assert deals_titled(world, NEW_TITLE) == []
    assert t("common.fix_fields") in [e.value for e in at.error]
    assert element_after(at, akey(at, "amount")).value == t("error.negative")
    assert at.text_input(key=akey(at, "title")).value == NEW_TITLE
    assert at.number_input(key=akey(at, "amount")).value == -5
    assert at.selectbox(key=akey(at, "customer")).value == world.customer_a1
    assert at.session_state[TOKEN] == token
    # Correcting the amount saves the same entry.
    at.number_input(key=akey(at, "amount")).set_value(5)
    submit_add(at)
    assert [row.amount for row in deals_titled(world, NEW_TITLE)] == [Decimal("5.00")]


def test_double_submit_with_the_same_token_stores_one_opportunity(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    token = at.session_state[TOKEN]
    fill_add(at, customer=None, amount=100)
    submit_add(at)
    [row] = deals_titled(world, NEW_TITLE)
    assert row.idempotency_key == token  # the form's token is stored with the deal
    # The second click of a double click arrives before the token was rotated.
    at.session_state[TOKEN] = token
    fill_add(at.run(), customer=None, amount=100)
    submit_add(at)
    assert not at.exception
    assert len(deals_titled(world, NEW_TITLE)) == 1
    assert [s.value for s in at.success]  # the user still sees it as saved


def test_same_token_from_another_session_stores_one_opportunity(world: World) -> None:
    """The key is checked in the database, not in one browser session's memory."""
    first = run_page(PAGE, world.rep_a1)
    token = first.session_state[TOKEN]
    submit_add(fill_add(first, customer=None, amount=100))
    assert len(deals_titled(world, NEW_TITLE)) == 1
    second = run_page(PAGE, world.rep_a1)  # e.g. the request replayed after a reconnect
    second.session_state[TOKEN] = token
    submit_add(fill_add(second.run(), customer=None, amount=100))
    assert not second.exception
    assert len(deals_titled(world, NEW_TITLE)) == 1
    assert [s.value for s in second.success] == [t("pipeline.add.saved", name=NEW_TITLE)]
    assert second.session_state[TOKEN] != token  # the next entry is a new deal


def test_add_form_saves_the_product(world: World) -> None:
    ids = add_products(world, ("Valve X", "Valves"), ("Pump A", "Pumps"), ("Spare kit", None))
    at = run_page(PAGE, world.rep_a1)
    box = at.selectbox(key=akey(at, "product"))
    assert box.value is None  # optional, empty by default
    # By series, then name; products without a series last.
    assert box.options == [t("pipeline.field.product_none"), "Pumps · Pump A", "Valves · Valve X", "Spare kit"]
    fill_add(at, customer=world.customer_a1, amount=2500)
    at.selectbox(key=akey(at, "product")).select(ids["Pump A"])
    submit_add(at)
    assert not at.exception
    [row] = deals_titled(world, NEW_TITLE)
    assert row.product_id == ids["Pump A"]
    shown = board(at).set_index(t("pipeline.col.title"))
    assert shown.loc[NEW_TITLE, t("pipeline.col.product")] == "Pump A"
    assert at.selectbox(key=akey(at, "product")).value is None  # the new entry starts empty


def test_deal_without_product_saves_none(world: World) -> None:
    add_products(world, ("Pump A", "Pumps"))
    at = run_page(PAGE, world.rep_a1)
    submit_add(fill_add(at, customer=None, amount=10))
    [row] = deals_titled(world, NEW_TITLE)
    assert row.product_id is None
    assert board(at).set_index(t("pipeline.col.title")).loc[NEW_TITLE, t("pipeline.col.product")] == t("common.none")


def test_manager_adds_a_deal_for_a_rep_of_the_team(world: World) -> None:
    at = run_page(PAGE, world.manager_a)
    assert at.selectbox(key=akey(at, "owner")).options == ["Manager_A (me)", "Rep_A1", "Rep_A2"]
    fill_add(at, customer=world.customer_a2, amount=800)
    at.selectbox(key=akey(at, "owner")).select(world.rep_a2.id)
    submit_add(at)
    assert not at.exception
    [row] = deals_titled(world, NEW_TITLE)
    assert (row.owner_id, row.customer_id) == (world.rep_a2.id, world.customer_a2)


def test_rep_is_not_offered_another_reps_customer(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    labels = at.selectbox(key=akey(at, "customer")).options
    assert [label.split(" · ")[1] for label in labels] == ["Alpha Trading"]


# --- move / close ---------------------------------------------------------------------------


def test_move_to_lost_without_reason_is_refused(world: World) -> None:
    deal_id = add_deal(
        world, customer_id=world.customer_a1, owner=world.rep_a1, stage="engaging", amount=3000, title="X"
    )
    at = pick(run_page(PAGE, world.rep_a1), deal_id)
    at.selectbox(key=mkey(deal_id, "stage")).select("lost")
    at.button(key=mkey(deal_id, "submit")).click().run()
    assert not at.exception
    assert element_after(at, mkey(deal_id, "lost_reason")).value == t("error.required")
    assert at.selectbox(key=mkey(deal_id, "stage")).value == "lost"  # input kept
    row = deal(world, deal_id)
    assert (row.stage, row.closed_on) == ("engaging", None)
    # With a reason it closes as lost.
    at.text_input(key=mkey(deal_id, "lost_reason")).input("Price too high")
    at.button(key=mkey(deal_id, "submit")).click().run()
    row = deal(world, deal_id)
    assert (row.stage, row.lost_reason, row.closed_on) == ("lost", "Price too high", today())


def test_move_to_won_sets_the_close_date(world: World) -> None:
    deal_id = add_deal(
        world, customer_id=world.customer_a1, owner=world.rep_a1, stage="prospecting", amount=3000, title="X"
    )
    at = pick(run_page(PAGE, world.rep_a1), deal_id)
    assert at.selectbox(key=mkey(deal_id, "stage")).value == "engaging"  # the next stage by default
    assert at.date_input(key=mkey(deal_id, "on")).value == today()
    at.selectbox(key=mkey(deal_id, "stage")).select("won")
    at.date_input(key=mkey(deal_id, "on")).set_value(date(2026, 2, 25))
    at.button(key=mkey(deal_id, "submit")).click().run()
    assert not at.exception
    row = deal(world, deal_id)
    assert (row.stage, row.closed_on, row.lost_reason) == ("won", date(2026, 2, 25), None)
    assert [s.value for s in at.success] == [t("pipeline.move.saved", name="X", stage="Won")]


def test_stale_move_names_who_changed_it_and_reload_retries(world: World) -> None:
    deal_id = add_deal(
        world, customer_id=world.customer_a1, owner=world.rep_a1, stage="prospecting", amount=3000, title="X"
    )
    at = pick(run_page(PAGE, world.rep_a1), deal_id)
    # The manager edits the deal after the rep opened it.
    with database(world) as session:
        update_opportunity(
            session,
            actor=world.manager_a,
            opportunity_id=deal_id,
            data=OpportunityInput(title="X renamed", customer_id=world.customer_a1, amount=3500, version=1),
            now=datetime(2026, 2, 2, 10, 30),
        )
    at.selectbox(key=mkey(deal_id, "stage")).select("won")
    at.button(key=mkey(deal_id, "submit")).click().run()
    assert not at.exception
    assert [w.value for w in at.warning] == [t("common.stale", who="Manager_A", at="2026-02-02 10:30")]
    assert deal(world, deal_id).stage == "prospecting"
    assert at.selectbox(key=mkey(deal_id, "stage")).value == "won"  # the typed input is kept
    at.button(key=f"{MOVE}:reload").click().run()
    assert not at.warning
    at.button(key=mkey(deal_id, "submit")).click().run()
    row = deal(world, deal_id)
    assert (row.stage, row.title, row.closed_on) == ("won", "X renamed", today())


def test_delete_needs_confirmation(world: World) -> None:
    deal_id = add_deal(
        world, customer_id=world.customer_a1, owner=world.rep_a1, stage="prospecting", amount=3000, title="X"
    )
    at = pick(run_page(PAGE, world.rep_a1), deal_id)
    assert at.button(key=mkey(deal_id, "delete")).disabled
    at.checkbox(key=mkey(deal_id, "confirm")).check().run()
    at.button(key=mkey(deal_id, "delete")).click().run()
    assert not at.exception
    assert deal(world, deal_id).deleted_at is not None
    assert "X" not in list(board(at)[t("pipeline.col.title")])
    assert [s.value for s in at.success] == [t("pipeline.delete.done", name="X")]
