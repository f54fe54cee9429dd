"""Charts of the overview dashboard, reusable by other screens: satisfaction, NPS, funnel, retention, reps.

Each builder takes an aggregated frame as a crm.kpi function returns it (a row per month, stage
or rep) and handles an empty one. Months are shown as "2026-01" text, so a click on a month
(the point selection MONTH_SELECTION, field "month") hands the page that same text back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import altair as alt
import pandas as pd

from crm.appraisal import Scorecard
from crm.charts import GRADE_COLORS, PERCENT_FORMAT, SERIES_COLORS, empty, style
from crm.i18n import enum_label, t
from crm.models import StageKind

# Selection parameter names the page reads back from st.altair_chart(..., on_select=...).
MONTH_SELECTION = "month_pick"
REP_SELECTION = "rep_pick"
MONTH_FIELD = "month"
REP_FIELD = "rep_id"

CSAT_TITLE = "overview.chart.csat"
NPS_TITLE = "overview.chart.nps"
FUNNEL_TITLE = "overview.chart.funnel"
RETENTION_TITLE = "overview.chart.retention"
REPS_TITLE = "overview.chart.reps"
OWN_REP_TITLE = "overview.chart.own_rep"

SCORE_MIN, SCORE_MAX = 1, 5
NPS_MIN, NPS_MAX = -100, 100
COMPOSITE_MAX = 100
DIMENSIONS = ("quality", "service", "price", "after_sales")
OVERALL_STROKE = 3.5
DIMENSION_STROKE = 1.5
POINT_SIZE = 70
UNSELECTED_OPACITY = 0.35
NPS_POSITIVE = "#2e7d32"
NPS_NEGATIVE = "#c62828"
NPS_ZERO = "#9aa0a6"
LABEL_GAP_PX = 3
LEGEND_COLUMNS = 3
# Streamlit fits title, axes and legend into the height: the four charts of the grid share a
# height that leaves the trend plots room above their legends.
GRID_CHART_PX = 340
ZERO_RULE_COLOR = "#6b7280"
OPEN_STAGE_COLOR = "#1f6feb"
WON_STAGE_COLOR = "#2e7d32"
RETENTION_COLOR = "#2e7d32"
CHURN_COLOR = "#c62828"
TOP_AND_BOTTOM = 5
DEFAULT_THEME_VIEW_KEYS = ("continuousWidth", "continuousHeight")
COMPOSITE_KEYS = ("layer", "hconcat", "vconcat", "concat")
# One bar per rep needs room for its label; the chart grows with the list beyond the shared height.
BAR_ROW_PX = 28
AXES_PX = 90
MIN_BAR_CHART_PX = 160
MAX_BAR_CHART_PX = 420


def month_label(value: date | datetime | pd.Timestamp | str) -> str:
    """Return a month as "2026-01" (the form charts show and selections hand back)."""
    if isinstance(value, str):
        return value[:7]
    return f"{pd.Timestamp(value):%Y-%m}"


def months_until(frame: pd.DataFrame, last_day: date) -> pd.DataFrame:
    """Return the rows of a monthly frame up to the month of `last_day` (a trend does not plot the future)."""
    if frame.empty:
        return frame
    months = pd.to_datetime(frame[MONTH_FIELD])
    return frame[months <= pd.Timestamp(last_day)].reset_index(drop=True)


def _with_month_labels(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out[MONTH_FIELD] = out[MONTH_FIELD].map(month_label)
    return out


def _month_axis(months: Sequence[str]) -> alt.X:
    return alt.X(
        f"{MONTH_FIELD}:O",
        title=t("overview.axis.month"),
        sort=list(months),
        scale=alt.Scale(domain=list(months)),
        axis=alt.Axis(labelAngle=0),
    )


def _month_pick() -> Any:
    return alt.selection_point(name=MONTH_SELECTION, fields=[MONTH_FIELD], on="click", clear="dblclick")


def to_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """Return the chart as a Vega-Lite spec with its (aggregated) rows inline, ready to cache and draw.

    Building and validating an Altair chart costs tens of milliseconds; a page that caches this
    spec per data and language draws it with st.vega_lite_chart at no such cost on later reruns.
    """
    spec: dict[str, Any] = chart.to_dict(validate=False)
    # Altair's default theme fixes views at 300 × 300 px; st.altair_chart switches it off too.
    view = spec.get("config", {}).get("view", {})
    for key in DEFAULT_THEME_VIEW_KEYS:
        view.pop(key, None)
    return spec


def has_selection(spec: dict[str, Any]) -> bool:
    """Tell whether a spec listens to clicks (a chart of empty data has nothing to click)."""
    if any(isinstance(param, dict) and param.get("select") for param in spec.get("params", [])):
        return True
    return any(has_selection(view) for key in COMPOSITE_KEYS for view in spec.get(key, []) if isinstance(view, dict))


def csat_trend(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw the monthly CSAT mean (1–5) as a bold line and the four dimension means as thin ones.

    `frame` has the columns of crm.kpi.csat_trend (month, responses, csat, quality, service,
    price, after_sales); months without responses have no points. Clicking a month selects it.
    """
    if frame.empty or not frame["responses"].sum():
        return empty(CSAT_TITLE)
    shown = _with_month_labels(frame)
    months = list(shown[MONTH_FIELD])
    measures = {"csat": t("overview.series.csat"), **{name: t(f"overview.series.{name}") for name in DIMENSIONS}}
    long = shown.melt(
        id_vars=[MONTH_FIELD, "responses"], value_vars=list(measures), var_name="measure", value_name="score"
    ).dropna(subset=["score"])
    long["overall"] = long["measure"] == "csat"
    long["measure"] = long["measure"].map(measures)
    domain = list(measures.values())
    month_title, measure_title, score_title = (
        t("overview.axis.month"),
        t("overview.axis.measure"),
        t("overview.axis.score"),
    )
    pick = _month_pick()
    base = alt.Chart(long).encode(
        x=_month_axis(months),
        y=alt.Y(
            "score:Q",
            title=score_title,
            scale=alt.Scale(domain=[SCORE_MIN, SCORE_MAX]),
            axis=alt.Axis(tickCount=SCORE_MAX - SCORE_MIN + 1),
        ),
        color=alt.Color(
            "measure:N",
            title=measure_title,
            scale=alt.Scale(domain=domain, range=SERIES_COLORS[: len(domain)]),
            sort=domain,
            # The series names say what they are: no legend title, and rows instead of one long line.
            legend=alt.Legend(title=None, columns=LEGEND_COLUMNS),
        ),
        tooltip=[
            alt.Tooltip(f"{MONTH_FIELD}:O", title=month_title),
            alt.Tooltip("measure:N", title=measure_title),
            alt.Tooltip("score:Q", title=score_title, format=".2f"),
            alt.Tooltip("responses:Q", title=t("overview.axis.responses")),
        ],
    )
    dimensions = base.transform_filter("!datum.overall").mark_line(strokeWidth=DIMENSION_STROKE, opacity=0.8)
    overall = base.transform_filter("datum.overall").mark_line(strokeWidth=OVERALL_STROKE)
    points = (
        base.mark_point(filled=True, size=POINT_SIZE)
        .encode(opacity=alt.condition(pick, alt.value(1.0), alt.value(UNSELECTED_OPACITY)))
        .add_params(pick)
    )
    return style(alt.layer(dimensions, overall, points), title_key=CSAT_TITLE).properties(height=GRID_CHART_PX)


def nps_trend(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw the monthly NPS (−100…100) as bars coloured by sign, with a zero rule and value labels.

    `frame` has the columns of crm.kpi.nps_trend (month, recommend_responses, promoters,
    detractors, nps); a month without recommend scores has no bar. Clicking a bar selects its month.
    """
    if frame.empty or not frame["recommend_responses"].sum():
        return empty(NPS_TITLE)
    shown = _with_month_labels(frame)
    months = list(shown[MONTH_FIELD])
    bars_data = shown.dropna(subset=["nps"]).copy()
    bars_data["sign"] = bars_data["nps"].map(lambda v: "positive" if v > 0 else "negative" if v < 0 else "zero")
    nps_title = t("overview.axis.nps")
    pick = _month_pick()
    base = alt.Chart(bars_data).encode(
        x=_month_axis(months),
        y=alt.Y("nps:Q", title=nps_title, scale=alt.Scale(domain=[NPS_MIN, NPS_MAX])),
    )
    bars = (
        base.mark_bar()
        .encode(
            color=alt.Color(
                "sign:N",
                scale=alt.Scale(domain=["positive", "zero", "negative"], range=[NPS_POSITIVE, NPS_ZERO, NPS_NEGATIVE]),
                legend=None,
            ),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(UNSELECTED_OPACITY)),
            tooltip=[
                alt.Tooltip(f"{MONTH_FIELD}:O", title=t("overview.axis.month")),
                alt.Tooltip("nps:Q", title=nps_title, format=".1f"),
                alt.Tooltip("promoters:Q", title=t("overview.axis.promoters")),
                alt.Tooltip("detractors:Q", title=t("overview.axis.detractors")),
                alt.Tooltip("recommend_responses:Q", title=t("overview.axis.responses")),
            ],
        )
        .add_params(pick)
    )
    # Labels sit beyond the end of each bar: above a positive one, below a negative one.
    text = alt.Text("nps:Q", format=".0f")
    above = (
        base.transform_filter("datum.nps >= 0")
        .mark_text(fontSize=11, baseline="bottom", dy=-LABEL_GAP_PX)
        .encode(text=text)
    )
    below = (
        base.transform_filter("datum.nps < 0").mark_text(fontSize=11, baseline="top", dy=LABEL_GAP_PX).encode(text=text)
    )
    zero = alt.Chart(pd.DataFrame({"zero": [0]})).mark_rule(color=ZERO_RULE_COLOR).encode(y="zero:Q")
    return style(alt.layer(bars, above, below, zero), title_key=NPS_TITLE).properties(height=GRID_CHART_PX)


def funnel(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw the funnel as horizontal bars per stage with the count and the stage-to-stage conversion.

    `frame` has the columns of crm.kpi.funnel (stage, position, kind, opportunities,
    step_conversion, from_start), in funnel order.
    """
    if frame.empty or not frame["opportunities"].sum():
        return empty(FUNNEL_TITLE)
    shown = frame.copy()
    shown["stage_label"] = shown["stage"].map(lambda key: enum_label("stage", key))
    shown["label"] = [
        f"{count:,}" if pd.isna(step) else t("overview.funnel.label", count=f"{count:,}", rate=f"{step:.1%}")
        for count, step in zip(shown["opportunities"], shown["step_conversion"], strict=True)
    ]
    shown["won"] = shown["kind"] == StageKind.WON.value
    order = list(shown["stage_label"])
    stage_title, count_title = t("overview.axis.stage"), t("overview.axis.opportunities")
    base = alt.Chart(shown).encode(
        y=alt.Y("stage_label:N", title=stage_title, sort=order, axis=alt.Axis(labelOverlap=False)),
        x=alt.X("opportunities:Q", title=count_title, axis=alt.Axis(tickMinStep=1)),
    )
    bars = base.mark_bar().encode(
        color=alt.Color(
            "won:N", scale=alt.Scale(domain=[False, True], range=[OPEN_STAGE_COLOR, WON_STAGE_COLOR]), legend=None
        ),
        tooltip=[
            alt.Tooltip("stage_label:N", title=stage_title),
            alt.Tooltip("opportunities:Q", title=count_title),
            alt.Tooltip("step_conversion:Q", title=t("overview.axis.step_conversion"), format=PERCENT_FORMAT),
            alt.Tooltip("from_start:Q", title=t("overview.axis.from_start"), format=PERCENT_FORMAT),
        ],
    )
    labels = base.mark_text(align="left", dx=4, fontSize=11).encode(text="label:N")
    return style(alt.layer(bars, labels), title_key=FUNNEL_TITLE).properties(height=GRID_CHART_PX)


def retention_trend(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw monthly retention and churn (fractions, % axis) as two lines; clicking a month selects it.

    `frame` has the columns of crm.kpi.retention_trend (month, active, previously_active,
    retained, retention_rate, churn_rate); months nobody was active before have no points.
    """
    if frame.empty or frame["retention_rate"].isna().all():
        return empty(RETENTION_TITLE)
    shown = _with_month_labels(frame)
    months = list(shown[MONTH_FIELD])
    series = {"retention_rate": t("overview.series.retention"), "churn_rate": t("overview.series.churn")}
    long = shown.melt(
        id_vars=[MONTH_FIELD, "active", "previously_active", "retained"],
        value_vars=list(series),
        var_name="series",
        value_name="rate",
    ).dropna(subset=["rate"])
    long["series"] = long["series"].map(series)
    domain = list(series.values())
    month_title, series_title, rate_title = (
        t("overview.axis.month"),
        t("overview.axis.series"),
        t("overview.axis.share"),
    )
    pick = _month_pick()
    base = alt.Chart(long).encode(
        x=_month_axis(months),
        y=alt.Y("rate:Q", title=rate_title, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color(
            "series:N",
            title=series_title,
            scale=alt.Scale(domain=domain, range=[RETENTION_COLOR, CHURN_COLOR]),
            legend=alt.Legend(title=None),
        ),
        tooltip=[
            alt.Tooltip(f"{MONTH_FIELD}:O", title=month_title),
            alt.Tooltip("series:N", title=series_title),
            alt.Tooltip("rate:Q", title=t("overview.axis.share_help"), format=PERCENT_FORMAT),
            alt.Tooltip("previously_active:Q", title=t("overview.axis.previously_active")),
            alt.Tooltip("retained:Q", title=t("overview.axis.retained")),
            alt.Tooltip("active:Q", title=t("overview.axis.active")),
        ],
    )
    lines = base.mark_line(strokeWidth=2.5)
    points = (
        base.mark_point(filled=True, size=POINT_SIZE)
        .encode(opacity=alt.condition(pick, alt.value(1.0), alt.value(UNSELECTED_OPACITY)))
        .add_params(pick)
    )
    return style(alt.layer(lines, points), title_key=RETENTION_TITLE).properties(height=GRID_CHART_PX)


RANKING_COLUMNS = ["rep_id", "rep", "rank", "composite", "grade", "group"]


def ranking_frame(cards: Iterable[Scorecard], *, count: int = TOP_AND_BOTTOM, ranked: bool = True) -> pd.DataFrame:
    """Return the top `count` and bottom `count` scorecards by composite (all of them when few).

    `cards` come from crm.appraisal.leaderboard; reps without a composite are left out.
    Columns: rep_id, rep ("#rank name", or the name alone unless `ranked`), rank, composite,
    grade, group ("top" | "bottom").
    """
    scored = [card for card in cards if card.composite is not None]
    scored.sort(key=lambda card: (-(card.composite or 0.0), card.display_name))
    chosen = scored if len(scored) <= 2 * count else scored[:count] + scored[-count:]
    rows = [
        {
            "rep_id": card.rep_id,
            "rep": f"#{card.rank} {card.display_name}" if ranked and card.rank is not None else card.display_name,
            "rank": card.rank,
            "composite": card.composite,
            "grade": card.grade,
            "group": "top" if index < count else "bottom",
        }
        for index, card in enumerate(chosen)
    ]
    return pd.DataFrame(rows, columns=RANKING_COLUMNS)


def rep_composites(frame: pd.DataFrame, *, own: bool = False) -> alt.TopLevelMixin:
    """Draw reps' appraisal composites (0–100) as horizontal bars coloured by grade; clicking picks a rep.

    `frame` has the columns of `ranking_frame`; `own` titles the chart as the viewer's own score.
    """
    title = OWN_REP_TITLE if own else REPS_TITLE
    if frame.empty:
        return empty(title)
    grades = list(GRADE_COLORS)
    order = list(frame.sort_values("composite", ascending=False, kind="stable")["rep"])
    rep_title, composite_title, grade_title = (
        t("overview.axis.rep"),
        t("overview.axis.composite"),
        t("overview.axis.grade"),
    )
    pick = alt.selection_point(name=REP_SELECTION, fields=[REP_FIELD], on="click", clear="dblclick")
    base = alt.Chart(frame).encode(
        y=alt.Y("rep:N", title=rep_title, sort=order, axis=alt.Axis(labelOverlap=False, labelLimit=220)),
        x=alt.X("composite:Q", title=composite_title, scale=alt.Scale(domain=[0, COMPOSITE_MAX])),
    )
    bars = (
        base.mark_bar()
        .encode(
            # The grade is written at the end of each bar, so the chart needs no legend.
            color=alt.Color(
                "grade:N",
                title=grade_title,
                scale=alt.Scale(domain=grades, range=[GRADE_COLORS[g] for g in grades]),
                sort=grades,
                legend=None,
            ),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(UNSELECTED_OPACITY)),
            tooltip=[
                alt.Tooltip("rep:N", title=rep_title),
                alt.Tooltip("composite:Q", title=composite_title, format=".1f"),
                alt.Tooltip("grade:N", title=grade_title),
            ],
        )
        .add_params(pick)
    )
    labels = (
        base.transform_calculate(label="format(datum.composite, '.1f') + ' ' + datum.grade")
        .mark_text(align="left", dx=4, fontSize=11)
        .encode(text="label:N")
    )
    height = min(MAX_BAR_CHART_PX, max(MIN_BAR_CHART_PX, BAR_ROW_PX * len(frame) + AXES_PX))
    return style(alt.layer(bars, labels), title_key=title).properties(height=height)
