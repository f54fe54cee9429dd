"""Satisfaction (满意度调查): CSAT, dimension and NPS charts, lowest-scoring customers, and the survey form."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from crm import kpi, ui
from crm.access import Actor, Filters, get_visible_customer
from crm.charts import satisfaction as charts
from crm.errors import NotFoundError, PermissionDeniedError, ValidationError
from crm.i18n import enum_label, t
from crm.periods import Period
from crm.surveys import SCORE_MAX, SCORE_MIN, SurveyInput, record_survey

actor = ui.require_login()

PAGE = "satisfaction"
FORM = "satisfaction_survey"
PARAM = "customer"
CUSTOMERS_PAGE = "pages/customers.py"
DIMENSIONS = ("quality", "service", "price", "after_sales")
NOT_RATED = 0  # the dimension radios' "not rated" choice; stored as no score
RATINGS = [NOT_RATED, *range(SCORE_MIN, SCORE_MAX + 1)]
LOWEST_LIMIT = 10
RESPONSES_LIMIT = 100
SCORE_DECIMALS = 2
ENTRY = f"{PAGE}:entry"
# The widgets of one entry carry its number: after a save the next entry gets new, empty widgets,
# and values a browser sends late for the saved entry (the second click of a double click) never
# land in the next one.
ENTRY_FIELDS = frozenset(
    {"search", "customer", "date", "overall", "recommend", "comment", "rep", "form", "submit", *DIMENSIONS}
)

state = st.session_state


def key(name: str, entry: int | None = None) -> str:
    """Return the state key of a form field, of the current entry unless another is named."""
    if name in ENTRY_FIELDS:
        return f"{PAGE}:{state.get(ENTRY, 0) if entry is None else entry}:{name}"
    return f"{PAGE}:{name}"


# --- formatting ---------------------------------------------------------------------------------


def fmt_score(value: float | None) -> str:
    return ui.fmt_number(value, SCORE_DECIMALS)


def fmt_nps(value: float | None) -> str:
    """Show NPS as a whole number, or with one decimal when it is not whole."""
    if value is None:
        return t("common.na")
    shown = round(value, 1) + 0.0  # + 0.0 turns −0.0 into 0.0
    return f"{shown:.0f}" if shown.is_integer() else f"{shown:.1f}"


def difference(value: float | None, previous: float | None, template: str) -> str | None:
    """Describe an absolute change (score points, NPS points, responses), or None if n/a."""
    if value is None or previous is None:
        return None
    return template.format(value - previous)


# --- analysis -----------------------------------------------------------------------------------


def cards(compared: kpi.Compared[kpi.Satisfaction]) -> None:
    now, before = compared.current, compared.previous
    score, pct, nps, responses = st.columns(4)
    with score:
        ui.metric_card(
            t("satisfaction.card.csat_score"),
            fmt_score(now.csat_score),
            difference(now.csat_score, before.csat_score, "{:+.2f}"),
            help_text=t("satisfaction.card.csat_score_help"),
        )
    with pct:
        ui.metric_card(
            t("satisfaction.card.csat_pct"),
            ui.fmt_rate(now.csat_pct),
            ui.fmt_delta(now.csat_pct, before.csat_pct, is_rate=True),
            help_text=t("satisfaction.card.csat_pct_help"),
        )
    with nps:
        ui.metric_card(
            t("satisfaction.card.nps"),
            fmt_nps(now.nps),
            difference(now.nps, before.nps, "{:+.1f}"),
            help_text=t("satisfaction.card.nps_help"),
        )
    with responses:
        ui.metric_card(
            t("satisfaction.card.responses"),
            ui.fmt_number(now.responses),
            difference(now.responses, before.responses, "{:+.0f}"),
        )


def open_customer_picker(lowest: pd.DataFrame) -> None:
    """Offer the listed customers and open the chosen one on the customer page."""
    names = dict(zip(lowest["customer_id"], lowest["customer_name"], strict=True))
    pick, go = st.columns([4, 1], vertical_alignment="bottom")
    with pick:
        chosen = st.selectbox(
            t("satisfaction.lowest.pick"), list(names), key=key("lowest_pick"), format_func=names.__getitem__
        )
    with go:
        if st.button(t("satisfaction.lowest.open"), key=key("lowest_open"), icon="🏢") and chosen is not None:
            st.switch_page(CUSTOMERS_PAGE, query_params={PARAM: str(chosen)})


def lowest_customers(who: Actor, period: Period, filters: Filters) -> None:
    st.subheader(t("satisfaction.lowest.title"))
    st.caption(t("satisfaction.lowest.caption"))
    lowest = ui.cached(kpi.lowest_scoring_customers)(actor=who, period=period, filters=filters, limit=LOWEST_LIMIT)
    if lowest.empty:
        st.caption(t("common.no_rows"))
        return
    shown = lowest[["customer_code", "customer_name", "tier", "csat", "responses", "last_responded_on"]].copy()
    shown["tier"] = shown["tier"].map(lambda value: enum_label("tier", value))
    shown["csat"] = shown["csat"].map(fmt_score)
    ui.dataframe(
        shown,
        columns={
            "customer_code": t("satisfaction.col.code"),
            "customer_name": t("satisfaction.col.customer"),
            "tier": t("satisfaction.col.tier"),
            "csat": t("satisfaction.col.mean_overall"),
            "responses": t("satisfaction.col.responses"),
            "last_responded_on": t("satisfaction.col.last_response"),
        },
    )
    open_customer_picker(lowest)


def responses_behind(who: Actor, period: Period, filters: Filters) -> None:
    with st.expander(t("satisfaction.responses.title")):
        frame = ui.cached(kpi.survey_responses)(actor=who, period=period, filters=filters, limit=RESPONSES_LIMIT)
        if frame.empty:
            st.caption(t("common.no_rows"))
            return
        ui.dataframe(
            frame[["responded_on", "customer_name", "rep_name", "overall", *DIMENSIONS, "recommend", "comment"]],
            columns={
                "responded_on": t("satisfaction.col.responded_on"),
                "customer_name": t("satisfaction.col.customer"),
                "rep_name": t("satisfaction.col.rep"),
                "overall": t("satisfaction.col.overall"),
                **{name: t(f"satisfaction.dimension.{name}") for name in DIMENSIONS},
                "recommend": t("satisfaction.col.recommend"),
                "comment": t("satisfaction.col.comment"),
            },
        )


def analysis(who: Actor) -> None:
    period, filters = ui.period_and_filters(who, key=f"{PAGE}:filters")
    compared = ui.cached(kpi.satisfaction_compared)(actor=who, period=period, filters=filters)
    trend = ui.cached(kpi.csat_trend)(actor=who, period=period, filters=filters)
    by_rep = ui.cached(kpi.satisfaction_by_rep)(actor=who, period=period, filters=filters)
    by_tier = ui.cached(kpi.satisfaction_by_tier)(actor=who, period=period, filters=filters)
    last_day = period.end - timedelta(days=1)
    st.caption(f"{period.start:%Y-%m-%d} – {last_day:%Y-%m-%d} · {t('satisfaction.caption')}")
    cards(compared)
    left, right = st.columns(2)
    left.altair_chart(charts.csat_trend(trend), width="stretch")
    right.altair_chart(charts.nps_bars(kpi.nps_trend(trend)), width="stretch")
    dimensions, tiers, reps = st.columns(3)
    dimensions.altair_chart(charts.dimension_bars(charts.dimension_frame(compared.current)), width="stretch")
    tiers.altair_chart(charts.csat_by_tier(by_tier), width="stretch")
    reps.altair_chart(charts.csat_by_rep(by_rep), width="stretch")
    lowest_customers(who, period, filters)
    responses_behind(who, period, filters)


# --- the survey form ----------------------------------------------------------------------------


def seed_defaults(who: Actor) -> str:
    """Fill the fields that default to something (today, the user) before they are drawn; return the token."""
    state.setdefault(ENTRY, 0)
    state.setdefault(key("date"), ui.today())
    state.setdefault(key("rep"), who.id)
    state.setdefault(key("known"), {})
    for name in DIMENSIONS:
        state.setdefault(key(name), NOT_RATED)
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


def rating(value: Any) -> int | None:
    return None if value in (None, NOT_RATED) else int(value)


def save(who: Actor, entry: int, token: str) -> None:
    """Save one entry once per token; start a new entry on success, keep the input on refusal."""

    def value(name: str) -> Any:
        return state.get(key(name, entry))

    data = SurveyInput(
        customer_id=value("customer"),
        responded_on=value("date"),
        overall=value("overall"),
        recommend=value("recommend"),
        comment=value("comment") or None,
        rep_id=None if who.is_rep else value("rep"),
        **{name: rating(value(name)) for name in DIMENSIONS},
    )
    try:
        with ui.writing() as session:
            saved = record_survey(session, actor=who, data=data, now=ui.utcnow(), idempotency_key=token)
            customer_id, overall = saved.customer_id, saved.overall
    except ValidationError as error:
        state[key("errors")] = ui.translate_errors(error)
        return
    except NotFoundError:
        state[key("errors")] = {"customer_id": t("common.not_found")}
        return
    except PermissionDeniedError:
        state[key("errors")] = {"rep_id": t("common.not_allowed")}
        return
    if ui.new_form_token(FORM) == token:
        ui.rotate_form_token(FORM)
    state[ENTRY] = max(state.get(ENTRY, 0), entry + 1)
    name = state.get(key("known"), {}).get(customer_id, "")
    state[key("saved")] = t("satisfaction.form.saved", customer=name, overall=overall)
    state.pop(key("errors"), None)
    # The link preselected the customer of one entry (apply_link remembers it was applied), so the
    # next entry starts from an empty picker; the URL keeps it so the form's tab stays open.


def rating_label(value: int) -> str:
    return t("satisfaction.form.not_rated") if value == NOT_RATED else str(value)


def survey_form(who: Actor) -> None:
    token = seed_defaults(who)
    st.subheader(t("satisfaction.form.title"))
    saved_message = state.pop(key("saved"), None)
    if saved_message:
        st.success(saved_message, icon="✅")
    if not apply_link(who):
        st.error(t("common.not_found"))
    errors: dict[str, str] = state.get(key("errors"), {})
    if errors:
        st.error(t("common.fix_fields"))
    ui.customer_picker(
        who,
        errors,
        texts="satisfaction.form",
        search_key=key("search"),
        customer_key=key("customer"),
        known_key=key("known"),
    )
    reps: dict[int, str] = (
        {} if who.is_rep else ui.rep_choices(who, me=t("satisfaction.form.me", name=who.display_name))
    )
    if reps and state.get(key("rep")) not in reps:
        state[key("rep")] = who.id
    with st.form(key("form"), clear_on_submit=False, border=True):
        day, overall, recommend = st.columns(3)
        with day:
            st.date_input(t("satisfaction.form.date"), key=key("date"), format="YYYY-MM-DD")
            ui.field_error(errors, "responded_on")
        with overall:
            # No bounds in the widget: a typed 0 or 6 gets the range message under the field.
            st.number_input(t("satisfaction.form.overall"), value=None, step=1, key=key("overall"))
            ui.field_error(errors, "overall")
        with recommend:
            st.number_input(t("satisfaction.form.recommend"), value=None, step=1, key=key("recommend"))
            ui.field_error(errors, "recommend")
        st.caption(t("satisfaction.form.dimensions"))
        columns = st.columns(2)
        for index, name in enumerate(DIMENSIONS):
            with columns[index % 2]:
                st.radio(
                    t(f"satisfaction.dimension.{name}"),
                    RATINGS,
                    key=key(name),
                    horizontal=True,
                    format_func=rating_label,
                )
                ui.field_error(errors, name)
        st.text_area(t("satisfaction.form.comment"), key=key("comment"), height=80)
        ui.field_error(errors, "comment")
        if reps:
            st.selectbox(t("satisfaction.form.rep"), list(reps), key=key("rep"), format_func=reps.__getitem__)
            ui.field_error(errors, "rep_id")
        st.form_submit_button(
            t("satisfaction.form.submit"),
            key=key("submit"),
            on_click=save,
            args=(who, state[ENTRY], token),
            type="primary",
            icon="💾",
        )


# --- page ---------------------------------------------------------------------------------------

st.title(t("satisfaction.title"))
tab_labels = [t("satisfaction.tab.analysis"), t("satisfaction.tab.record")]
# A link with ?customer=ID comes to record a response for that customer: open the form first.
analysis_tab, record_tab = st.tabs(tab_labels, default=tab_labels[1] if st.query_params.get(PARAM) else None)
with analysis_tab:
    analysis(actor)
with record_tab:
    survey_form(actor)
