"""Log interaction (联系记录 / 拜访): the fastest form in the app; a double click stores one record."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

import pandas as pd
import streamlit as st

from crm import ui
from crm.access import Actor, get_visible_customer
from crm.errors import NotFoundError, PermissionDeniedError, ValidationError
from crm.i18n import enum_label, t
from crm.interactions import (
    MAX_DURATION_MINUTES,
    InteractionInput,
    log_interaction,
    recent_interactions,
)
from crm.models import InteractionKind, Outcome

actor = ui.require_login()

PAGE = "log_interaction"
FORM = "log_interaction"
PARAM = "customer"
KINDS = [kind.value for kind in InteractionKind]
OUTCOMES = [outcome.value for outcome in Outcome]
DEFAULT_KIND = InteractionKind.VISIT.value
DURATION_STEP = 5
RECENT_LIMIT = 10
SUBMIT_SHORTCUT = "Mod+Enter"
ENTRY = f"{PAGE}:entry"
# The widgets of one entry carry its number: after a save the next entry gets new, empty widgets,
# and values a browser sends late for the saved entry (the second click of a double click) never
# land in the next one. The kind is kept from entry to entry.
ENTRY_FIELDS = frozenset(
    {"search", "customer", "date", "time", "duration", "subject", "outcome", "notes", "next", "location", "rep"}
    | {"form", "submit"}
)

state = st.session_state


def key(name: str, entry: int | None = None) -> str:
    """Return the state key of a field, of the current entry unless another is named."""
    if name in ENTRY_FIELDS:
        return f"{PAGE}:{state.get(ENTRY, 0) if entry is None else entry}:{name}"
    return f"{PAGE}:{name}"


def seed_defaults(who: Actor) -> str:
    """Fill the fields that default to something (now, the user) before they are drawn; return the token."""
    now = ui.utcnow().replace(second=0, microsecond=0)
    state.setdefault(ENTRY, 0)
    state.setdefault(key("kind"), DEFAULT_KIND)
    state.setdefault(key("date"), now.date())
    state.setdefault(key("time"), now.time())
    state.setdefault(key("rep"), who.id)
    state.setdefault(key("known"), {})
    # The token belongs to the entry on screen and is handed to the save: both clicks of a
    # double click carry the same one, whatever the first click changed in the session.
    return ui.new_form_token(FORM)


def remember(choices: dict[int, str]) -> None:
    """Keep the labels of customers seen in the picker, so a chosen one survives a new search."""
    state[key("known")] = {**state.get(key("known"), {}), **choices}


def apply_link(who: Actor) -> bool:
    """Preselect the customer of `?customer=ID` once; return False when it is not the user's."""
    raw = st.query_params.get(PARAM)
    if not raw:
        return True
    try:
        with ui.reading() as session:
            customer = get_visible_customer(session, actor=who, customer_id=int(raw))
            customer_id, label = customer.id, f"{customer.code or ''} · {customer.name}"
    except (ValueError, NotFoundError):
        return False
    if state.get(key("linked")) != raw:
        state[key("linked")] = raw
        remember({customer_id: label})
        state[key("customer")] = customer_id
    return True


def field_messages(error: Exception | None) -> dict[str, str]:
    """Return the per-field messages of a refused save, in the current language.

    Callbacks keep the error itself: they may run on a fresh thread before app.py set the
    language, so the text is made when the page is drawn.
    """
    if isinstance(error, ValidationError):
        messages = ui.translate_errors(error)
        reason = error.fields.get("next_follow_up")
        if reason is not None and reason.key == "error.date_order":
            # The generic message speaks of a start date; say what the follow-up must not precede.
            messages["next_follow_up"] = t("log_interaction.follow_up_before")
        return messages
    if isinstance(error, NotFoundError):
        return {"customer_id": t("common.not_found")}
    if isinstance(error, PermissionDeniedError):
        return {"rep_id": t("common.not_allowed")}
    return {}


def save(who: Actor, entry: int, token: str) -> None:
    """Save one entry once per token; start a new entry on success, keep the input on refusal."""
    kind = state.get(key("kind"))

    def value(name: str) -> Any:
        return state.get(key(name, entry))

    day, clock = value("date"), value("time")
    occurred_at = datetime.combine(day, clock or time.min) if day is not None else None
    data = InteractionInput(
        customer_id=value("customer"),
        kind=kind,
        occurred_at=occurred_at,
        rep_id=None if who.is_rep else value("rep"),
        duration_minutes=value("duration"),
        subject=value("subject") or None,
        notes=value("notes") or None,
        outcome=value("outcome"),
        next_follow_up=value("next"),
        location=(value("location") or None) if kind == InteractionKind.VISIT.value else None,
    )
    try:
        with ui.writing() as session:
            saved = log_interaction(session, actor=who, data=data, now=ui.utcnow(), idempotency_key=token)
            summary = (saved.kind, saved.occurred_at, saved.customer_id)
    except (ValidationError, NotFoundError, PermissionDeniedError) as error:
        state[key("errors")] = error
        return
    if ui.new_form_token(FORM) == token:
        ui.rotate_form_token(FORM)
    state[ENTRY] = max(state.get(ENTRY, 0), entry + 1)
    name = state.get(key("known"), {}).get(summary[2], "")
    state[key("saved")] = (summary[0], name, summary[1].strftime("%Y-%m-%d %H:%M"))
    state.pop(key("errors"), None)
    # The link preselected a customer for one entry; the next entry starts from an empty picker.
    st.query_params.pop(PARAM, None)
    state.pop(key("linked"), None)


def recent(who: Actor) -> None:
    st.subheader(t("log_interaction.recent"))
    frame = ui.cached(recent_interactions)(actor=who, limit=RECENT_LIMIT)
    if frame.empty:
        st.caption(t("common.no_rows"))
        return
    shown: pd.DataFrame = frame[
        ["occurred_at", "kind", "customer_name", "rep_name", "subject", "outcome", "next_follow_up"]
    ].copy()
    shown["kind"] = shown["kind"].map(lambda value: enum_label("interaction", value))
    shown["outcome"] = shown["outcome"].map(lambda value: enum_label("outcome", value))
    ui.dataframe(
        shown,
        columns={
            "occurred_at": t("customers.col.occurred_at"),
            "kind": t("log_interaction.kind"),
            "customer_name": t("log_interaction.customer"),
            "rep_name": t("customers.col.rep"),
            "subject": t("log_interaction.subject"),
            "outcome": t("log_interaction.outcome"),
            "next_follow_up": t("log_interaction.next_follow_up"),
        },
    )


# --- page ---------------------------------------------------------------------------------------

token = seed_defaults(actor)
st.title(t("nav.log_interaction"))
saved = state.pop(key("saved"), None)
if saved:
    saved_kind, saved_customer, saved_at = saved
    st.success(
        t("log_interaction.saved", kind=enum_label("interaction", saved_kind), customer=saved_customer, at=saved_at),
        icon="✅",
    )
if not apply_link(actor):
    st.error(t("common.not_found"))
errors = field_messages(state.get(key("errors")))
if errors:
    st.error(t("common.fix_fields"))

kind = st.radio(
    t("log_interaction.kind"),
    KINDS,
    key=key("kind"),
    horizontal=True,
    format_func=lambda value: enum_label("interaction", value),
)
ui.field_error(errors, "kind")
ui.customer_picker(
    actor,
    errors,
    texts="log_interaction",
    search_key=key("search"),
    customer_key=key("customer"),
    known_key=key("known"),
)

reps: dict[int, str] = (
    {} if actor.is_rep else ui.rep_choices(actor, me=t("log_interaction.me", name=actor.display_name))
)
if reps and state.get(key("rep")) not in reps:
    state[key("rep")] = actor.id
with st.form(key("form"), clear_on_submit=False, border=True):
    when_day, when_time, duration = st.columns([2, 2, 1])
    with when_day:
        st.date_input(t("log_interaction.date"), key=key("date"), format="YYYY-MM-DD")
        ui.field_error(errors, "occurred_at")
    with when_time:
        st.time_input(t("log_interaction.time"), key=key("time"), step=60)
    with duration:
        st.number_input(
            t("log_interaction.duration"),
            min_value=0,
            max_value=MAX_DURATION_MINUTES,
            step=DURATION_STEP,
            value=None,
            key=key("duration"),
        )
        ui.field_error(errors, "duration_minutes")
    st.radio(
        t("log_interaction.outcome"),
        OUTCOMES,
        index=None,
        key=key("outcome"),
        horizontal=True,
        format_func=lambda value: enum_label("outcome", value),
    )
    ui.field_error(errors, "outcome")
    st.text_input(t("log_interaction.subject"), key=key("subject"))
    ui.field_error(errors, "subject")
    st.text_area(t("log_interaction.notes"), key=key("notes"), height=100)
    ui.field_error(errors, "notes")
    follow_up, place = st.columns(2)
    with follow_up:
        st.date_input(t("log_interaction.next_follow_up"), value=None, key=key("next"), format="YYYY-MM-DD")
        ui.field_error(errors, "next_follow_up")
    with place:
        if kind == InteractionKind.VISIT.value:
            st.text_input(t("log_interaction.location"), key=key("location"))
            ui.field_error(errors, "location")
    if reps:
        st.selectbox(t("log_interaction.rep"), list(reps), key=key("rep"), format_func=reps.__getitem__)
        ui.field_error(errors, "rep_id")
    st.form_submit_button(
        t("log_interaction.submit"),
        key=key("submit"),
        on_click=save,
        args=(actor, state[ENTRY], token),
        help=t("log_interaction.submit_help"),
        type="primary",
        icon="💾",
        shortcut=SUBMIT_SHORTCUT,
    )

recent(actor)
