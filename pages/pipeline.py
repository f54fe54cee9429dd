"""Pipeline (销售机会): funnel, deals by stage, win rate and visit conversion by rep; add, move, close a deal."""

# The login guard (ui.require_login) is the first statement after the imports.

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from crm import kpi, ui
from crm.access import Actor, Filters
from crm.charts import pipeline as charts
from crm.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from crm.i18n import enum_label, t
from crm.models import StageKind
from crm.opportunities import (
    BOARD_LIMIT,
    OpportunityInput,
    ProductChoice,
    StageInfo,
    StageMove,
    create_opportunity,
    delete_opportunity,
    move_stage,
    open_pipeline,
    opportunities_by_stage,
    pipeline_stages,
    product_choices,
)
from crm.periods import Period

actor = ui.require_login()

PAGE = "pipeline"
ADD_FORM = f"{PAGE}:add"  # also the name of the form's idempotency token
ADD_ENTRY = f"{PAGE}:add:entry"
MOVE = f"{PAGE}:move"
AMOUNT_STEP = 1000.0
DATE_FORMAT = "YYYY-MM-DD"
CLOSED_LIMIT = 100

state = st.session_state


# --- small helpers ------------------------------------------------------------------------------


def flash(area: str, kind: str, text: str) -> None:
    """Keep a message for the next run, shown next to the form that caused it."""
    state[f"{PAGE}:flash:{area}"] = (kind, text)


def show_flash(area: str) -> None:
    message = state.pop(f"{PAGE}:flash:{area}", None)
    if message:
        kind, text = message
        (st.success if kind == "success" else st.error)(text)


def missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def deal_name(deal_id: int, title: Any) -> str:
    return t("pipeline.untitled", id=deal_id) if missing(title) or not str(title).strip() else str(title)


def stage_label(key: str) -> str:
    return enum_label("stage", key)


def load_stages() -> list[StageInfo]:
    with ui.reading() as session:
        return pipeline_stages(session)


def load_products() -> dict[int, str]:
    """Return the product picker's options: id -> "series · name" (by series, then name)."""
    with ui.reading() as session:
        choices = product_choices(session)
    return {choice.id: product_label(choice) for choice in choices}


def product_label(choice: ProductChoice) -> str:
    return choice.name if choice.series is None else f"{choice.series} · {choice.name}"


# --- headline cards, charts, board --------------------------------------------------------------


def cards(who: Actor, period: Period, filters: Filters) -> None:
    figures = ui.cached(kpi.win_loss_compared)(actor=who, period=period, filters=filters)
    now, before = figures.current, figures.previous
    # Counted in SQL over every open deal in scope, not over the (capped) board.
    pipeline = ui.cached(open_pipeline)(actor=who, filters=filters)
    open_cells = st.columns(5)
    with open_cells[0]:
        ui.metric_card(t("pipeline.card.open"), str(pipeline.count), None, help_text=t("pipeline.card.open_help"))
    with open_cells[1]:
        ui.metric_card(
            t("pipeline.card.open_amount"),
            ui.fmt_money(pipeline.amount),
            None,
            help_text=t("pipeline.card.open_help"),
        )
    with open_cells[2]:
        ui.metric_card(
            t("pipeline.card.won"),
            str(now.won),
            ui.fmt_delta(now.won, before.won, is_rate=False),
            help_text=t("pipeline.card.won_help", amount=ui.fmt_money(now.won_amount)),
        )
    with open_cells[3]:
        ui.metric_card(
            t("pipeline.card.lost"), str(now.lost), ui.fmt_delta(now.lost, before.lost, is_rate=False), inverse=True
        )
    with open_cells[4]:
        ui.metric_card(
            t("pipeline.card.win_rate"),
            ui.fmt_rate(now.win_rate),
            ui.fmt_delta(now.win_rate, before.win_rate, is_rate=True),
            help_text=t("pipeline.card.win_rate_help"),
        )


def funnel_table(frame: pd.DataFrame) -> None:
    if frame.empty or int(frame["opportunities"].sum()) == 0:
        return
    shown = frame[["stage", "opportunities", "step_conversion", "from_start"]].copy()
    shown["stage"] = shown["stage"].map(stage_label)
    shown["step_conversion"] = shown["step_conversion"].map(lambda v: "" if missing(v) else ui.fmt_rate(v))
    shown["from_start"] = shown["from_start"].map(lambda v: ui.fmt_rate(None if missing(v) else v))
    ui.dataframe(
        shown,
        columns={
            "stage": t("pipeline.col.stage"),
            "opportunities": t("pipeline.col.opportunities"),
            "step_conversion": t("pipeline.col.step_conversion"),
            "from_start": t("pipeline.col.from_start"),
        },
    )


def chart_section(who: Actor, period: Period, filters: Filters) -> None:
    funnel = ui.cached(kpi.funnel)(actor=who, period=period, filters=filters)
    win_rates = ui.cached(kpi.win_rate_by_rep)(actor=who, period=period, filters=filters)
    visits = ui.cached(kpi.visit_conversion_by_rep)(actor=who, period=period, filters=filters)
    left, right = st.columns(2)
    left.altair_chart(charts.funnel(funnel, period_label=period.label()), width="stretch")
    right.altair_chart(charts.win_rate_by_rep(win_rates), width="stretch")
    left, right = st.columns(2)
    right.altair_chart(charts.visit_conversion_by_rep(visits), width="stretch")
    with left:
        funnel_table(funnel)


def board_table(board: pd.DataFrame, period: Period, today: date) -> None:
    st.subheader(t("pipeline.board"))
    st.caption(t("pipeline.board_caption", start=period.start.isoformat()))
    if len(board) >= BOARD_LIMIT:
        st.caption(t("pipeline.board_capped", limit=BOARD_LIMIT))
    if board.empty:
        st.info(t("common.no_rows"))
        return
    shown = board[
        ["stage", "id", "title", "customer_name", "product_name", "owner_name", "amount", "created_on", "closed_on"]
        + ["lost_reason"]
    ].copy()
    is_open = board["stage_kind"] == StageKind.OPEN.value
    created = pd.to_datetime(board["created_on"])
    age = (pd.Timestamp(today) - created).dt.days.where(is_open).astype("Int64")
    shown.insert(shown.columns.get_loc("created_on") + 1, "age_days", age)
    shown["stage"] = shown["stage"].map(stage_label)
    shown["title"] = [deal_name(i, title) for i, title in zip(shown["id"], shown["title"], strict=True)]
    shown["customer_name"] = shown["customer_name"].map(lambda v: t("pipeline.no_customer") if missing(v) else v)
    shown["product_name"] = shown["product_name"].map(lambda v: t("common.none") if missing(v) else v)
    ui.dataframe(
        shown.drop(columns=["id"]),
        columns={
            "stage": t("pipeline.col.stage"),
            "title": t("pipeline.col.title"),
            "customer_name": t("pipeline.col.customer"),
            "product_name": t("pipeline.col.product"),
            "owner_name": t("pipeline.col.owner"),
            "amount": t("pipeline.col.amount"),
            "created_on": t("pipeline.col.created_on"),
            "age_days": t("pipeline.col.age_days"),
            "closed_on": t("pipeline.col.closed_on"),
            "lost_reason": t("pipeline.col.lost_reason"),
        },
    )


def closed_deals(who: Actor, period: Period, filters: Filters) -> None:
    """List the deals behind won / lost / win rate."""
    with st.expander(t("pipeline.closed")):
        frame = ui.cached(kpi.closed_opportunities)(actor=who, period=period, filters=filters, limit=CLOSED_LIMIT)
        if frame.empty:
            st.caption(t("common.no_rows"))
            return
        shown = frame[
            ["closed_on", "title", "opportunity_id", "outcome", "amount", "customer_name", "rep_name", "lost_reason"]
        ].copy()
        shown["title"] = [deal_name(i, title) for i, title in zip(shown["opportunity_id"], shown["title"], strict=True)]
        shown["outcome"] = shown["outcome"].map(stage_label)
        shown["customer_name"] = shown["customer_name"].map(lambda v: t("pipeline.no_customer") if missing(v) else v)
        ui.dataframe(
            shown.drop(columns=["opportunity_id"]),
            columns={
                "closed_on": t("pipeline.col.closed_on"),
                "title": t("pipeline.col.title"),
                "outcome": t("pipeline.col.outcome"),
                "amount": t("pipeline.col.amount"),
                "customer_name": t("pipeline.col.customer"),
                "rep_name": t("pipeline.col.owner"),
                "lost_reason": t("pipeline.col.lost_reason"),
            },
        )


# --- add an opportunity -------------------------------------------------------------------------


def akey(name: str, entry: int | None = None) -> str:
    """Return the state key of an add-form field; every saved entry gets new, empty widgets."""
    return f"{ADD_FORM}:{state.get(ADD_ENTRY, 0) if entry is None else entry}:{name}"


def seed_add_defaults(who: Actor, stages: list[StageInfo]) -> str:
    """Fill the fields that default to something before they are drawn; return the form's token."""
    state.setdefault(ADD_ENTRY, 0)
    state.setdefault(akey("created_on"), ui.today())
    state.setdefault(akey("owner"), who.id)
    first_open = next((s.key for s in stages if s.kind is StageKind.OPEN), None)
    state.setdefault(akey("stage"), first_open)
    state.setdefault(f"{ADD_FORM}:known", {})
    return ui.new_form_token(ADD_FORM)


def finish_add(entry: int, token: str, name: str) -> None:
    """Start a new, empty entry after a save and say what was saved."""
    # The second click of a double click carries the old token: leave the new entry's alone.
    if ui.new_form_token(ADD_FORM) == token:
        ui.rotate_form_token(ADD_FORM)
    state[ADD_ENTRY] = max(state.get(ADD_ENTRY, 0), entry + 1)
    state.pop(f"{ADD_FORM}:errors", None)
    flash("add", "success", t("pipeline.add.saved", name=name))


def save_add(who: Actor, entry: int, token: str) -> None:
    """Create the deal once per token; keep the input and show per-field messages on refusal."""

    def value(name: str) -> Any:
        return state.get(akey(name, entry))

    data = OpportunityInput(
        title=(value("title") or "").strip() or None,
        customer_id=value("customer"),
        owner_id=None if who.is_rep else value("owner"),
        product_id=value("product"),
        amount=value("amount"),
        stage=value("stage"),
        created_on=value("created_on"),
    )
    try:
        with ui.writing() as session:
            row = create_opportunity(session, actor=who, data=data, now=ui.utcnow(), idempotency_key=token)
            name = deal_name(row.id, row.title)
    except ValidationError as error:
        state[f"{ADD_FORM}:errors"] = ui.translate_errors(error)
        return
    except NotFoundError:
        state[f"{ADD_FORM}:errors"] = {"customer_id": t("common.not_found")}
        return
    except PermissionDeniedError:
        state[f"{ADD_FORM}:errors"] = {"owner_id": t("common.not_allowed")}
        return
    finish_add(entry, token, name)


def add_form(who: Actor, stages: list[StageInfo]) -> None:
    token = seed_add_defaults(who, stages)
    st.subheader(t("pipeline.add.title"))
    show_flash("add")
    errors: dict[str, str] = state.get(f"{ADD_FORM}:errors", {})
    if errors:
        st.error(t("common.fix_fields"))
    ui.customer_picker(
        who,
        errors,
        texts="pipeline.field",
        search_key=akey("search"),
        customer_key=akey("customer"),
        known_key=f"{ADD_FORM}:known",
    )
    owners = {} if who.is_rep else ui.rep_choices(who, me=t("pipeline.me", name=who.display_name))
    if owners and state.get(akey("owner")) not in owners:
        state[akey("owner")] = who.id
    open_stages = [s.key for s in stages if s.kind is StageKind.OPEN]
    products = load_products()
    if state.get(akey("product")) not in products:
        state[akey("product")] = None
    entry = state[ADD_ENTRY]
    with st.form(akey("form"), clear_on_submit=False):
        st.text_input(t("pipeline.field.title"), key=akey("title"))
        ui.field_error(errors, "title")
        st.selectbox(
            t("pipeline.field.product"),
            [None, *products],
            key=akey("product"),
            format_func=lambda value: t("pipeline.field.product_none") if value is None else products[value],
        )
        ui.field_error(errors, "product_id")
        amount, stage, created = st.columns(3)
        with amount:
            st.number_input(t("pipeline.field.amount"), value=None, step=AMOUNT_STEP, format="%.2f", key=akey("amount"))
            ui.field_error(errors, "amount")
        with stage:
            st.selectbox(t("pipeline.field.stage"), open_stages, key=akey("stage"), format_func=stage_label)
            ui.field_error(errors, "stage")
        with created:
            st.date_input(t("pipeline.field.created_on"), key=akey("created_on"), format=DATE_FORMAT)
            ui.field_error(errors, "created_on")
        if owners:
            st.selectbox(t("pipeline.field.owner"), list(owners), key=akey("owner"), format_func=owners.__getitem__)
            ui.field_error(errors, "owner_id")
        st.form_submit_button(
            t("pipeline.add.submit"),
            type="primary",
            icon="➕",
            key=akey("submit"),
            on_click=save_add,
            args=(who, entry, token),
        )


# --- move / close / delete ----------------------------------------------------------------------


def mkey(opportunity_id: int, name: str) -> str:
    return f"{MOVE}:{opportunity_id}:{name}"


def forget_loaded() -> None:
    """Drop the version the move form was loaded at, so the board's current one is taken."""
    for name in ("loaded", "conflict", "errors"):
        state.pop(f"{MOVE}:{name}", None)


def save_move(who: Actor, opportunity_id: int, current_stage: str) -> None:
    """Move the deal under optimistic locking with the version the form was loaded at."""
    stage = state.get(mkey(opportunity_id, "stage"))
    if stage == current_stage:
        state[f"{MOVE}:errors"] = {"stage": t("pipeline.move.same_stage")}
        return
    loaded = state.get(f"{MOVE}:loaded")
    data = StageMove(
        stage=stage,
        version=loaded[1] if loaded and loaded[0] == opportunity_id else None,
        on=state.get(mkey(opportunity_id, "on")),
        lost_reason=(state.get(mkey(opportunity_id, "lost_reason")) or "").strip() or None,
    )
    try:
        with ui.writing() as session:
            row = move_stage(session, actor=who, opportunity_id=opportunity_id, data=data, now=ui.utcnow())
            name, moved_to, version = deal_name(row.id, row.title), row.stage, row.version
    except ValidationError as error:
        state[f"{MOVE}:errors"] = ui.translate_errors(error)
        return
    except ConflictError as error:
        # Keep what was typed; the page names who saved in between and offers Reload.
        state[f"{MOVE}:conflict"] = error
        state.pop(f"{MOVE}:errors", None)
        return
    except (NotFoundError, PermissionDeniedError):
        forget_loaded()
        state.pop(f"{MOVE}:pick", None)
        flash("move", "error", t("common.not_found"))
        return
    state[f"{MOVE}:loaded"] = (opportunity_id, version)
    state.pop(f"{MOVE}:errors", None)
    state.pop(f"{MOVE}:conflict", None)
    flash("move", "success", t("pipeline.move.saved", name=name, stage=stage_label(moved_to)))


def delete_deal(who: Actor, opportunity_id: int) -> None:
    try:
        with ui.writing() as session:
            row = delete_opportunity(session, actor=who, opportunity_id=opportunity_id, now=ui.utcnow())
            name = deal_name(row.id, row.title)
    except (NotFoundError, PermissionDeniedError, ConflictError) as error:
        flash("move", "error", t("common.not_found") if not isinstance(error, ConflictError) else t("error.stale"))
        return
    forget_loaded()
    state.pop(f"{MOVE}:pick", None)
    flash("move", "success", t("pipeline.delete.done", name=name))


def deal_label(row: pd.Series) -> str:
    customer = t("pipeline.no_customer") if missing(row["customer_name"]) else row["customer_name"]
    return f"{deal_name(int(row['id']), row['title'])} · {customer} · {stage_label(row['stage'])}"


def move_form(who: Actor, board: pd.DataFrame, stages: list[StageInfo]) -> None:
    st.subheader(t("pipeline.move.title"))
    show_flash("move")
    if board.empty:
        st.caption(t("pipeline.move.none"))
        return
    rows = {int(row["id"]): row for _, row in board.iterrows()}
    if state.get(f"{MOVE}:pick") not in rows:
        state.pop(f"{MOVE}:pick", None)
    picked = st.selectbox(
        t("pipeline.move.pick"),
        list(rows),
        index=None,
        key=f"{MOVE}:pick",
        placeholder=t("pipeline.move.pick_placeholder"),
        format_func=lambda value: deal_label(rows[value]),
    )
    if picked is None:
        return
    row = rows[picked]
    loaded = state.get(f"{MOVE}:loaded")
    if loaded is None or loaded[0] != picked:
        forget_loaded()
        state[f"{MOVE}:loaded"] = (picked, int(row["version"]))
    conflict: ConflictError | None = state.get(f"{MOVE}:conflict")
    if conflict is not None:
        ui.report_error(conflict)
        st.button(t("common.reload"), key=f"{MOVE}:reload", on_click=forget_loaded, icon="🔄")
    errors: dict[str, str] = state.get(f"{MOVE}:errors", {})
    if errors:
        st.error(t("common.fix_fields"))
    st.caption(t("pipeline.move.current", stage=stage_label(row["stage"]), created=row["created_on"]))
    keys = [s.key for s in stages]
    state.setdefault(mkey(picked, "on"), ui.today())
    if state.get(mkey(picked, "stage")) not in keys:
        later = [s.key for s in stages if s.position > int(row["stage_position"])]
        state[mkey(picked, "stage")] = later[0] if later else row["stage"]
    with st.form(mkey(picked, "form"), clear_on_submit=False):
        stage, on = st.columns(2)
        with stage:
            st.selectbox(t("pipeline.move.stage"), keys, key=mkey(picked, "stage"), format_func=stage_label)
            ui.field_error(errors, "stage")
        with on:
            st.date_input(t("pipeline.move.on"), key=mkey(picked, "on"), format=DATE_FORMAT)
            ui.field_error(errors, "on")
        st.text_input(t("pipeline.move.lost_reason"), key=mkey(picked, "lost_reason"))
        ui.field_error(errors, "lost_reason")
        ui.field_error(errors, "version")
        st.form_submit_button(
            t("pipeline.move.submit"),
            type="primary",
            key=mkey(picked, "submit"),
            on_click=save_move,
            args=(who, picked, str(row["stage"])),
        )
    confirm, delete = st.columns([3, 1])
    confirmed = confirm.checkbox(t("pipeline.delete.confirm"), key=mkey(picked, "confirm"))
    delete.button(
        t("pipeline.delete.submit"),
        key=mkey(picked, "delete"),
        disabled=not confirmed,
        on_click=delete_deal,
        args=(who, picked),
        icon="🗑️",
    )


# --- page ---------------------------------------------------------------------------------------

st.title(t("nav.pipeline"))
period, filters = ui.period_and_filters(actor, key=PAGE)
st.caption(t("pipeline.caption", period=period.label()))
stages = load_stages()
board = ui.cached(opportunities_by_stage)(actor=actor, filters=filters, closed_since=period.start)
cards(actor, period, filters)
chart_section(actor, period, filters)
board_table(board, period, ui.today())
closed_deals(actor, period, filters)
add_column, move_column = st.columns(2, gap="large")
with add_column:
    add_form(actor, stages)
with move_column:
    move_form(actor, board, stages)
