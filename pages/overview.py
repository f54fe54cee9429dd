"""Overview dashboard (every role, scoped to what the user may see): headline KPIs, trends, drill-down.

The figures refresh themselves every 30 s while the page is open; any save bumps the data version
in the cache key, so the next refresh shows it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from crm import appraisal, kpi, ui
from crm.access import Filters
from crm.charts import overview as charts
from crm.charts import translated
from crm.csvio import dataframe_to_csv
from crm.i18n import t
from crm.periods import Period, add_months

actor = ui.require_login()

PREFIX = "overview"
REFRESH_EVERY = "30s"
CARDS_PER_ROW = 4
# (headline key, how it is shown): the commercial row, the customer row, then the activity row.
CARDS = (
    ("revenue", "money"),
    ("win_rate", "rate"),
    ("lead_conversion_rate", "rate"),
    ("repeat_purchase_rate", "rate"),
    ("csat_score", "score"),
    ("nps", "points"),
    ("retention_rate", "rate"),
    ("complaint_on_time_rate", "rate"),
    ("visits", "count"),
    ("orders", "count"),
    ("active_customers", "count"),
    ("churn_rate", "rate"),
)
# Cards where a rise is bad news: their change is coloured red when it goes up.
INVERSE_CARDS = frozenset({"churn_rate"})
RECORD_LIMIT = 200
RECORD_SETS = ("none", "orders", "deals", "responses", "resolved", "overdue")
# Columns each record set shows, and the enum kind of the columns holding enum values.
RECORD_VIEWS: dict[str, list[str]] = {
    "orders": ["ordered_on", "customer_code", "customer_name", "rep_name", "amount", "quantity"],
    "deals": ["closed_on", "title", "outcome", "amount", "customer_code", "customer_name", "rep_name", "lost_reason"],
    "responses": [
        "responded_on",
        "customer_code",
        "customer_name",
        "rep_name",
        "overall",
        "quality",
        "service",
        "price",
        "after_sales",
        "recommend",
        "comment",
    ],
    "complaints": [
        "customer_code",
        "customer_name",
        "rep_name",
        "severity",
        "category",
        "opened_at",
        "due_at",
        "resolved_at",
        "on_time",
        "resolution_hours",
    ],
}
RECORD_ENUMS = {"outcome": "stage", "severity": "severity"}
HOURS_DECIMALS = 1
# Which records a click on a month of a chart opens: survey months are clipped to the period
# (only responses in the period count), retention months are whole calendar months.
MONTH_CHARTS = {"csat": "responses", "nps": "responses", "retention": "orders"}
MONTH_DRILL_KEY = f"{PREFIX}:month_drill"  # (chart, "2026-02")
REP_DRILL_KEY = f"{PREFIX}:rep_drill"  # rep id
# Vega-Lite specs filled from templates built once per chart and language (about a millisecond each).
CHART_BUILDERS: dict[str, Callable[[pd.DataFrame], dict[str, Any]]] = {
    "csat": charts.csat_trend_spec,
    "nps": charts.nps_trend_spec,
    "funnel": charts.funnel_spec,
    "retention": charts.retention_trend_spec,
    "reps": charts.rep_composites_spec,
    "own_rep": functools.partial(charts.rep_composites_spec, own=True),
}


# --- cards ------------------------------------------------------------------------------------


def fmt_value(kind: str, value: float | None) -> str:
    if kind == "rate":
        return ui.fmt_rate(value)
    if kind == "money":
        return ui.fmt_money(value)
    return ui.fmt_number(value, {"score": 2, "count": 0}.get(kind, 1))


def fmt_change(kind: str, metric: kpi.Metric) -> str | None:
    """Describe the change: points for rates, % for money, plain difference for scores."""
    if kind in ("rate", "money"):
        return ui.fmt_delta(metric.value, metric.previous, is_rate=kind == "rate")
    if metric.delta is None:
        return None
    return {"score": f"{metric.delta:+.2f}", "count": f"{metric.delta:+,.0f}"}.get(kind, f"{metric.delta:+.1f}")


def card_help(key: str, kind: str, data: kpi.Overview) -> str:
    metric = data.metric(key)
    parts = [t(f"overview.help.{key}")]
    if key == "csat_score":
        parts.append(t("overview.help.csat_pct", pct=ui.fmt_rate(data.metric("csat_pct").value)))
    if key == "complaint_on_time_rate":
        parts.append(t("overview.help.overdue", count=ui.fmt_number(data.overdue_complaints.value)))
    parts.append(
        t("overview.previous_value", period=data.previous_period.label(), value=fmt_value(kind, metric.previous))
    )
    return "\n\n".join(parts)


def render_cards(data: kpi.Overview) -> None:
    for row_start in range(0, len(CARDS), CARDS_PER_ROW):
        columns = st.columns(CARDS_PER_ROW)
        for column, (key, kind) in zip(columns, CARDS[row_start : row_start + CARDS_PER_ROW], strict=True):
            metric = data.metric(key)
            with column:
                ui.metric_card(
                    t(f"overview.card.{key}"),
                    fmt_value(kind, metric.value),
                    fmt_change(kind, metric),
                    help_text=card_help(key, kind, data),
                    inverse=key in INVERSE_CARDS,
                )
    notes = [t("overview.vs_previous", period=data.previous_period.label())]
    overdue = int(data.overdue_complaints.value or 0)
    if overdue:
        notes.append(t("overview.overdue", count=overdue))
    st.caption(" · ".join(notes))


# --- records behind a figure ------------------------------------------------------------------


def fetch_records(name: str, *, window: Period, filters: Filters, as_of: Any) -> pd.DataFrame:
    """Return the records behind a figure, scoped exactly like it (cached like the figures)."""
    if name == "orders":
        return ui.cached(kpi.orders_in_period)(actor=actor, period=window, filters=filters, limit=RECORD_LIMIT)
    if name == "deals":
        return ui.cached(kpi.closed_opportunities)(actor=actor, period=window, filters=filters, limit=RECORD_LIMIT)
    if name == "responses":
        return ui.cached(kpi.survey_responses)(actor=actor, period=window, filters=filters, limit=RECORD_LIMIT)
    which = kpi.ComplaintSet.RESOLVED if name == "resolved" else kpi.ComplaintSet.OVERDUE
    return ui.cached(kpi.complaints)(
        actor=actor, period=window, as_of=as_of, which=which, filters=filters, limit=RECORD_LIMIT
    )


def view_of(name: str) -> str:
    return "complaints" if name in ("resolved", "overdue") else name


def file_name(name: str, window: Period) -> str:
    last_day = window.end - timedelta(days=1)
    return f"{name}_{window.start:%Y%m%d}-{last_day:%Y%m%d}.csv"


def render_records(name: str, records: pd.DataFrame, *, window: Period, key: str) -> None:
    """Show the records as a table with translated headers and a CSV download of the same rows."""
    view = RECORD_VIEWS[view_of(name)]
    shown = records[view].copy()
    for column, kind in RECORD_ENUMS.items():
        if column in shown.columns:
            shown = translated(shown, column, kind)
    if "resolution_hours" in shown.columns:
        shown["resolution_hours"] = shown["resolution_hours"].astype("float64").round(HOURS_DECIMALS)
    headers = {column: t(f"overview.col.{column}") for column in view}
    count = t("overview.records.count", count=len(shown))
    if len(shown) >= RECORD_LIMIT:
        count += " · " + t("overview.records.limited", limit=RECORD_LIMIT)
    st.caption(count)
    if shown.empty:
        st.info(t("common.no_rows"))
        return
    ui.dataframe(shown, columns=headers)
    st.download_button(
        t("common.download_csv"),
        data=dataframe_to_csv(shown.rename(columns=headers)),
        file_name=file_name(name, window),
        mime="text/csv",
        key=f"{key}:csv",
    )


def render_figure_records(period: Period, filters: Filters, as_of: Any) -> None:
    choice = st.selectbox(
        t("overview.records.show"),
        RECORD_SETS,
        format_func=lambda name: t(f"overview.records.{name}"),
        key=f"{PREFIX}:records",
    )
    if choice == "none":
        st.caption(t("overview.click_hint"))
        return
    records = fetch_records(choice, window=period, filters=filters, as_of=as_of)
    render_records(choice, records, window=period, key=f"{PREFIX}:records")


# --- chart clicks ------------------------------------------------------------------------------


def selection_points(event: Any, name: str) -> list[dict[str, Any]]:
    """Return the points selected by a chart's selection parameter (empty when none)."""
    try:
        points = event["selection"][name]
    except (KeyError, TypeError):
        return []
    return [point for point in points or [] if isinstance(point, dict)]


def on_month_pick(chart: str) -> None:
    """Remember the month clicked on a trend chart; a click off the points forgets it."""
    points = selection_points(st.session_state.get(f"{PREFIX}:chart:{chart}"), charts.MONTH_SELECTION)
    if points and charts.MONTH_FIELD in points[0]:
        st.session_state[MONTH_DRILL_KEY] = (chart, charts.month_label(str(points[0][charts.MONTH_FIELD])))
    elif st.session_state.get(MONTH_DRILL_KEY, (None,))[0] == chart:
        st.session_state.pop(MONTH_DRILL_KEY, None)


def on_rep_pick() -> None:
    points = selection_points(st.session_state.get(f"{PREFIX}:chart:reps"), charts.REP_SELECTION)
    if points and charts.REP_FIELD in points[0]:
        st.session_state[REP_DRILL_KEY] = int(points[0][charts.REP_FIELD])
    else:
        st.session_state.pop(REP_DRILL_KEY, None)


def chart_spec(kind: str, frame: pd.DataFrame) -> dict[str, Any]:
    """Return a chart's Vega-Lite spec in the current language."""
    # No st.cache_data: a hit (hash the frame, unpickle the spec) costs twice what filling a template does.
    return CHART_BUILDERS[kind](frame)


def show_chart(name: str, kind: str, frame: pd.DataFrame, on_pick: Callable[[], None] | None) -> None:
    """Draw a chart; listen to clicks (key overview:chart:<name>) when it has something to click."""
    spec = chart_spec(kind, frame)
    if on_pick is not None and charts.has_selection(spec):
        st.vega_lite_chart(spec=spec, width="stretch", key=f"{PREFIX}:chart:{name}", on_select=on_pick)
    else:
        st.vega_lite_chart(spec=spec, width="stretch")


def forget_month() -> None:
    st.session_state.pop(MONTH_DRILL_KEY, None)


def month_window(label: str, *, clip_to: Period | None) -> Period | None:
    """Return the calendar month "2026-02" (clipped to a period), or None if it is no month of it."""
    try:
        first = date.fromisoformat(f"{label}-01")
    except ValueError:
        return None
    start, end = first, add_months(first, 1)
    if clip_to is not None:
        start, end = max(start, clip_to.start), min(end, clip_to.end)
    return Period(start, end) if start < end else None


def render_month_records(charts_here: Sequence[str], period: Period, filters: Filters) -> None:
    """Under a row of charts, list the records of the month clicked on one of them."""
    picked = st.session_state.get(MONTH_DRILL_KEY)
    if not picked or picked[0] not in charts_here:
        return
    chart, label = picked
    name = MONTH_CHARTS[chart]
    window = month_window(label, clip_to=period if name == "responses" else None)
    if window is None:
        st.session_state.pop(MONTH_DRILL_KEY, None)
        return
    with st.container(border=True):
        title, close = st.columns([5, 1])
        title.markdown(f"**{t(f'overview.records.month_{name}', month=label)}**")
        close.button(t("overview.records.close"), key=f"{PREFIX}:close:{chart}", on_click=forget_month)
        records = fetch_records(name, window=window, filters=filters, as_of=window.end_dt)
        render_records(name, records, window=window, key=f"{PREFIX}:month:{chart}")


def sub_score(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def render_rep_breakdown(cards: Sequence[appraisal.Scorecard]) -> None:
    """Show the sub-scores behind the composite of the rep clicked on the reps chart."""
    rep_id = st.session_state.get(REP_DRILL_KEY)
    card = next((card for card in cards if card.rep_id == rep_id), None)
    if card is None:
        st.caption(t("overview.reps_hint"))
        return
    st.markdown(
        f"**{t('overview.records.rep', rep=card.display_name)}** · "
        f"{t('overview.axis.composite')} {ui.fmt_number(card.composite, 1)} ({card.grade or '—'})"
    )
    rows = [
        {
            t("overview.col.metric"): t(f"appraisal.metric.{metric}"),
            t("overview.col.sub_score"): sub_score(card.scores.get(metric)),
            t("overview.col.weight"): card.weights.get(metric),
        }
        for metric in appraisal.METRICS
    ]
    ui.dataframe(pd.DataFrame(rows))
    if card.metrics_left_out:
        names = ", ".join(t(f"appraisal.metric.{metric}") for metric in card.metrics_left_out)
        st.caption(t("overview.left_out", metrics=names))


# --- the page -----------------------------------------------------------------------------------


def scope_text() -> str:
    if actor.is_rep:
        return t("overview.scope.own", name=actor.display_name)
    if actor.is_manager:
        return t("overview.scope.team", team=actor.team or "—")
    return t("overview.scope.company")


@st.fragment(run_every=REFRESH_EVERY)
def dashboard(period: Period, filters: Filters) -> None:
    """Draw every figure; reruns on its own every REFRESH_EVERY to pick up new data."""
    now = ui.utcnow()
    # Whole minutes keep the cache warm between refreshes; a past period does not depend on now.
    as_of = min(now.replace(second=0, microsecond=0), period.end_dt)
    data, cards = ui.parallel(
        lambda: ui.cached(kpi.overview)(actor=actor, period=period, as_of=as_of, filters=filters),
        lambda: ui.cached(appraisal.leaderboard)(actor=actor, period=period, filters=filters),
    )

    render_cards(data)
    render_figure_records(period, filters, as_of)

    # Months of the period still to come are not plotted (they would read as a drop to zero).
    last_day = as_of.date()
    left, right = st.columns(2)
    with left:
        csat = charts.months_until(data.csat_by_month, last_day)
        show_chart("csat", "csat", csat, functools.partial(on_month_pick, "csat"))
    with right:
        nps = charts.months_until(data.nps_by_month, last_day)
        show_chart("nps", "nps", nps, functools.partial(on_month_pick, "nps"))
    render_month_records(("csat", "nps"), period, filters)

    left, right = st.columns(2)
    with left:
        show_chart("funnel", "funnel", data.funnel, None)
    with right:
        retention = charts.months_until(data.retention_by_month, last_day)
        show_chart("retention", "retention", retention, functools.partial(on_month_pick, "retention"))
    render_month_records(("retention",), period, filters)

    left, right = st.columns(2)
    with left:
        ranking = charts.ranking_frame(cards, ranked=not actor.is_rep)
        show_chart("reps", "own_rep" if actor.is_rep else "reps", ranking, on_rep_pick)
    with right:
        render_rep_breakdown(cards)
    st.caption(t("overview.updated", time=f"{now:%H:%M:%S}", every=REFRESH_EVERY.removesuffix("s")))


period, filters = ui.period_and_filters(actor)
st.title(t("overview.title", period=period.label()))
st.caption(scope_text())
dashboard(period, filters)
