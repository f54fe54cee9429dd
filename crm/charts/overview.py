"""Charts of the overview dashboard, reusable by other screens: satisfaction, NPS, funnel, retention, reps.

Each chart comes two ways from one definition: an Altair chart with its rows inline (`csat_trend`)
and a ready Vega-Lite spec (`csat_trend_spec`). The spec is filled from a template that Altair
built once per chart and language, with its rows in the dataset ROWS and the data-dependent values
(months, stage and rep order) as placeholders: building with Altair costs 30–60 ms a chart,
filling a template well under one. Each takes an aggregated frame as a crm.kpi function returns
it (a row per month, stage or rep) and handles an empty one. Months are shown as "2026-01" text,
so a click on a month (the point selection MONTH_SELECTION, field "month") hands the page that
same text back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeAlias

import altair as alt
import numpy as np
import pandas as pd

from crm.appraisal import Scorecard
from crm.charts import (
    GRADE_COLORS,
    PERCENT_FORMAT,
    ROWS,
    SERIES_COLORS,
    TEMPLATE_CACHE_ENTRIES,
    empty,
    empty_spec,
    slot,
    style,
    template_spec,
    with_rows,
)
from crm.i18n import LANGUAGES, enum_label, get_language, set_language, t
from crm.models import StageKind

# Selection parameter names the page reads back from st.vega_lite_chart(..., on_select=...).
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
COMPOSITE_KEYS = ("layer", "hconcat", "vconcat", "concat")
# One bar per rep needs room for its label; the chart grows with the list beyond the shared height.
BAR_ROW_PX = 28
AXES_PX = 90
MIN_BAR_CHART_PX = 160
MAX_BAR_CHART_PX = 420
# Where a template leaves the months of the x axis (sort and domain) and a bar chart's row order open.
MONTHS_SLOT = slot("months")
ORDER_SLOT = slot("order")

# A list of values, or the placeholder of a template that each request fills with them.
Values: TypeAlias = list[str] | str
ChartData: TypeAlias = pd.DataFrame | alt.NamedData


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


def _month_labels(frame: pd.DataFrame) -> list[str]:
    return [month_label(value) for value in frame[MONTH_FIELD]]


def _month_axis(months: Values) -> alt.X:
    return alt.X(
        f"{MONTH_FIELD}:O",
        title=t("overview.axis.month"),
        sort=months,
        scale=alt.Scale(domain=months),
        axis=alt.Axis(labelAngle=0),
    )


def _month_pick() -> Any:
    return alt.selection_point(name=MONTH_SELECTION, fields=[MONTH_FIELD], on="click", clear="dblclick")


def has_selection(spec: dict[str, Any]) -> bool:
    """Tell whether a spec listens to clicks (a chart of empty data has nothing to click)."""
    if any(isinstance(param, dict) and param.get("select") for param in spec.get("params", [])):
        return True
    return any(has_selection(view) for key in COMPOSITE_KEYS for view in spec.get(key, []) if isinstance(view, dict))


# --- rows: what each chart plots, shaped from the aggregated frame -------------------------------
# Each builds its DataFrame once from plain columns (well under a millisecond): pandas' melt alone
# costs ~2.5 ms on a few rows, more than a whole chart's share of the page.


def _stacked(
    frame: pd.DataFrame, *, keep: Sequence[str], values: Mapping[str, str], name: str, value: str
) -> dict[str, np.ndarray]:
    """Return the columns of `frame.melt(keep, values)` less its missing numbers, the melted names relabelled.

    A row per row of `frame` and column of `values` (column → label) that holds a number: the
    `keep` columns, the label in `name` and the number in `value`, ordered column by column.
    """
    numbers = np.concatenate([frame[column].to_numpy(dtype="float64", na_value=np.nan) for column in values])
    present = ~np.isnan(numbers)
    columns = {column: np.tile(frame[column].to_numpy(), len(values))[present] for column in keep}
    columns[name] = np.repeat(np.array(list(values.values()), dtype=object), len(frame))[present]
    columns[value] = numbers[present]
    return columns


def _csat_is_empty(frame: pd.DataFrame) -> bool:
    return frame.empty or not frame["responses"].sum()


def _csat_measures() -> dict[str, str]:
    return {"csat": t("overview.series.csat"), **{name: t(f"overview.series.{name}") for name in DIMENSIONS}}


def _csat_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Return a row per month and measure (month, responses, measure, score, overall) and the months."""
    months = _month_labels(frame)
    measures = _csat_measures()
    columns = _stacked(
        frame.assign(**{MONTH_FIELD: months}),
        keep=[MONTH_FIELD, "responses"],
        values=measures,
        name="measure",
        value="score",
    )
    columns["overall"] = columns["measure"] == measures["csat"]
    return pd.DataFrame(columns), months


def _nps_is_empty(frame: pd.DataFrame) -> bool:
    return frame.empty or not frame["recommend_responses"].sum()


def _nps_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Return the months that have an NPS, each with the sign of its bar ("sign"), and every month."""
    months = _month_labels(frame)
    nps = frame["nps"].to_numpy(dtype="float64", na_value=np.nan)
    present = ~np.isnan(nps)
    signs = np.select([nps > 0, nps < 0], ["positive", "negative"], "zero")
    bars = frame[present].assign(**{MONTH_FIELD: np.array(months, dtype=object)[present], "sign": signs[present]})
    return bars, months


def _funnel_is_empty(frame: pd.DataFrame) -> bool:
    return frame.empty or not frame["opportunities"].sum()


def _funnel_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Return the stages with a translated name, a bar label and whether they are won, and the stage order."""
    stages = [enum_label("stage", key) for key in frame["stage"]]
    labels = [
        f"{count:,}" if pd.isna(step) else t("overview.funnel.label", count=f"{count:,}", rate=f"{step:.1%}")
        for count, step in zip(frame["opportunities"], frame["step_conversion"], strict=True)
    ]
    won = (frame["kind"] == StageKind.WON.value).to_numpy()
    return frame.assign(stage_label=stages, label=labels, won=won), stages


def _retention_is_empty(frame: pd.DataFrame) -> bool:
    return bool(frame.empty or frame["retention_rate"].isna().all())


def _retention_series() -> dict[str, str]:
    return {"retention_rate": t("overview.series.retention"), "churn_rate": t("overview.series.churn")}


def _retention_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Return a row per month and series (month, active, previously_active, retained, series, rate), and the months."""
    months = _month_labels(frame)
    columns = _stacked(
        frame.assign(**{MONTH_FIELD: months}),
        keep=[MONTH_FIELD, "active", "previously_active", "retained"],
        values=_retention_series(),
        name="series",
        value="rate",
    )
    return pd.DataFrame(columns), months


def _rep_order(frame: pd.DataFrame) -> list[str]:
    return list(frame.sort_values("composite", ascending=False, kind="stable")["rep"])


def _rep_chart_height(frame: pd.DataFrame) -> int:
    return min(MAX_BAR_CHART_PX, max(MIN_BAR_CHART_PX, BAR_ROW_PX * len(frame) + AXES_PX))


# --- chart definitions: rows inline (a DataFrame) or the template's dataset ROWS -----------------


def _csat_chart(data: ChartData, *, months: Values) -> alt.TopLevelMixin:
    domain = list(_csat_measures().values())
    month_title, measure_title, score_title = (
        t("overview.axis.month"),
        t("overview.axis.measure"),
        t("overview.axis.score"),
    )
    pick = _month_pick()
    base = alt.Chart(data).encode(
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


def _nps_chart(data: ChartData, *, months: Values) -> alt.TopLevelMixin:
    nps_title = t("overview.axis.nps")
    pick = _month_pick()
    base = alt.Chart(data).encode(
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


def _funnel_chart(data: ChartData, *, order: Values) -> alt.TopLevelMixin:
    stage_title, count_title = t("overview.axis.stage"), t("overview.axis.opportunities")
    base = alt.Chart(data).encode(
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


def _retention_chart(data: ChartData, *, months: Values) -> alt.TopLevelMixin:
    domain = list(_retention_series().values())
    month_title, series_title, rate_title = (
        t("overview.axis.month"),
        t("overview.axis.series"),
        t("overview.axis.share"),
    )
    pick = _month_pick()
    base = alt.Chart(data).encode(
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


def _reps_chart(data: ChartData, *, order: Values, title_key: str, height: int) -> alt.TopLevelMixin:
    grades = list(GRADE_COLORS)
    rep_title, composite_title, grade_title = (
        t("overview.axis.rep"),
        t("overview.axis.composite"),
        t("overview.axis.grade"),
    )
    pick = alt.selection_point(name=REP_SELECTION, fields=[REP_FIELD], on="click", clear="dblclick")
    base = alt.Chart(data).encode(
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
    return style(alt.layer(bars, labels), title_key=title_key).properties(height=height)


# --- templates: each chart built once per language, with its rows and data-dependent values open --

_TEMPLATE_CHARTS: dict[str, Callable[[alt.NamedData], alt.TopLevelMixin]] = {
    "csat": lambda rows: _csat_chart(rows, months=MONTHS_SLOT),
    "nps": lambda rows: _nps_chart(rows, months=MONTHS_SLOT),
    "funnel": lambda rows: _funnel_chart(rows, order=ORDER_SLOT),
    "retention": lambda rows: _retention_chart(rows, months=MONTHS_SLOT),
    # The height is set per request (it grows with the reps), so the template's is a stand-in.
    "reps": lambda rows: _reps_chart(rows, order=ORDER_SLOT, title_key=REPS_TITLE, height=MIN_BAR_CHART_PX),
    "own_rep": lambda rows: _reps_chart(rows, order=ORDER_SLOT, title_key=OWN_REP_TITLE, height=MIN_BAR_CHART_PX),
}
TEMPLATE_KINDS = tuple(_TEMPLATE_CHARTS)


@functools.lru_cache(maxsize=TEMPLATE_CACHE_ENTRIES)
def _template(kind: str, language: str) -> dict[str, Any]:
    del language  # a cache key only: callers pass the language t() reads while the chart is built
    return template_spec(_TEMPLATE_CHARTS[kind](alt.NamedData(name=ROWS)))


def template(kind: str) -> Mapping[str, Any]:
    """Return the spec template of a chart kind (TEMPLATE_KINDS) in the current language; never change it."""
    return _template(kind, get_language())


def warm_templates() -> None:
    """Build every chart template in every language now (about 0.2 s a language, once per process).

    Called from a background thread while the login form is shown, so the first overview after
    a server start does not pay for it.
    """
    for language in LANGUAGES:
        set_language(language)
        for kind in TEMPLATE_KINDS:
            _template(kind, language)
        for title_key in (CSAT_TITLE, NPS_TITLE, FUNNEL_TITLE, RETENTION_TITLE, REPS_TITLE, OWN_REP_TITLE):
            empty_spec(title_key)


def _from_template(kind: str, rows: pd.DataFrame, slots: Mapping[str, Any]) -> dict[str, Any]:
    return with_rows(template(kind), rows, slots)


# --- the charts ----------------------------------------------------------------------------------


def csat_trend(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw the monthly CSAT mean (1–5) as a bold line and the four dimension means as thin ones.

    `frame` has the columns of crm.kpi.csat_trend (month, responses, csat, quality, service,
    price, after_sales); months without responses have no points. Clicking a month selects it.
    """
    if _csat_is_empty(frame):
        return empty(CSAT_TITLE)
    rows, months = _csat_rows(frame)
    return _csat_chart(rows, months=months)


def csat_trend_spec(frame: pd.DataFrame) -> dict[str, Any]:
    """Return the chart of `csat_trend(frame)` as a Vega-Lite spec, filled from its template."""
    if _csat_is_empty(frame):
        return empty_spec(CSAT_TITLE)
    rows, months = _csat_rows(frame)
    return _from_template("csat", rows, {MONTHS_SLOT: months})


def nps_trend(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw the monthly NPS (−100…100) as bars coloured by sign, with a zero rule and value labels.

    `frame` has the columns of crm.kpi.nps_trend (month, recommend_responses, promoters,
    detractors, nps); a month without recommend scores has no bar. Clicking a bar selects its month.
    """
    if _nps_is_empty(frame):
        return empty(NPS_TITLE)
    rows, months = _nps_rows(frame)
    return _nps_chart(rows, months=months)


def nps_trend_spec(frame: pd.DataFrame) -> dict[str, Any]:
    """Return the chart of `nps_trend(frame)` as a Vega-Lite spec, filled from its template."""
    if _nps_is_empty(frame):
        return empty_spec(NPS_TITLE)
    rows, months = _nps_rows(frame)
    return _from_template("nps", rows, {MONTHS_SLOT: months})


def funnel(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw the funnel as horizontal bars per stage with the count and the stage-to-stage conversion.

    `frame` has the columns of crm.kpi.funnel (stage, position, kind, opportunities,
    step_conversion, from_start), in funnel order.
    """
    if _funnel_is_empty(frame):
        return empty(FUNNEL_TITLE)
    rows, order = _funnel_rows(frame)
    return _funnel_chart(rows, order=order)


def funnel_spec(frame: pd.DataFrame) -> dict[str, Any]:
    """Return the chart of `funnel(frame)` as a Vega-Lite spec, filled from its template."""
    if _funnel_is_empty(frame):
        return empty_spec(FUNNEL_TITLE)
    rows, order = _funnel_rows(frame)
    return _from_template("funnel", rows, {ORDER_SLOT: order})


def retention_trend(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw monthly retention and churn (fractions, % axis) as two lines; clicking a month selects it.

    `frame` has the columns of crm.kpi.retention_trend (month, active, previously_active,
    retained, retention_rate, churn_rate); months nobody was active before have no points.
    """
    if _retention_is_empty(frame):
        return empty(RETENTION_TITLE)
    rows, months = _retention_rows(frame)
    return _retention_chart(rows, months=months)


def retention_trend_spec(frame: pd.DataFrame) -> dict[str, Any]:
    """Return the chart of `retention_trend(frame)` as a Vega-Lite spec, filled from its template."""
    if _retention_is_empty(frame):
        return empty_spec(RETENTION_TITLE)
    rows, months = _retention_rows(frame)
    return _from_template("retention", rows, {MONTHS_SLOT: months})


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
    return _reps_chart(frame, order=_rep_order(frame), title_key=title, height=_rep_chart_height(frame))


def rep_composites_spec(frame: pd.DataFrame, *, own: bool = False) -> dict[str, Any]:
    """Return the chart of `rep_composites(frame, own=own)` as a Vega-Lite spec, filled from its template."""
    if frame.empty:
        return empty_spec(OWN_REP_TITLE if own else REPS_TITLE)
    spec = _from_template("own_rep" if own else "reps", frame, {ORDER_SLOT: _rep_order(frame)})
    spec["height"] = _rep_chart_height(frame)
    return spec
