"""Satisfaction charts: CSAT and dimension trend, dimension means, NPS trend, CSAT by rep and by tier.

Every builder takes a frame of crm.kpi.satisfaction (a handful of rows per month, rep or tier)
and draws it; none touches the database.
"""

from __future__ import annotations

from datetime import date

import altair as alt
import pandas as pd

from crm.charts import SERIES_COLORS, TIER_ORDER, empty, style
from crm.i18n import enum_label, t
from crm.kpi.satisfaction import DIMENSIONS, Satisfaction

SCORE_MIN, SCORE_MAX = 1, 5
NPS_MIN, NPS_MAX = -100, 100
MONTH_FORMAT = "%Y-%m"
SCORE_FORMAT = ".2f"
NPS_FORMAT = ".1f"
CSAT_STROKE, DIMENSION_STROKE = 3.5, 1.5
NPS_COLORS = {"positive": "#2e7d32", "zero": "#9aa0a6", "negative": "#c62828"}
RULE_COLOR = "#6b7280"
# One bar per rep or dimension needs room for its label: the chart grows with the rows.
BAR_ROW_PX = 28
AXES_PX = 90
MIN_BAR_CHART_PX = 160

TREND_TITLE = "satisfaction.chart.csat_trend"
DIMENSIONS_TITLE = "satisfaction.chart.dimensions"
NPS_TITLE = "satisfaction.chart.nps_trend"
BY_REP_TITLE = "satisfaction.chart.by_rep"
BY_TIER_TITLE = "satisfaction.chart.by_tier"


def month_label(day: date) -> str:
    """Label a month by text, so the axis never shifts a month across time zones."""
    return day.strftime(MONTH_FORMAT)


def dimension_label(name: str) -> str:
    return t(f"satisfaction.dimension.{name}")


def _score_scale() -> alt.Scale:
    return alt.Scale(domain=[SCORE_MIN, SCORE_MAX], nice=False)


# Score bars start at the lowest possible score (1), not at 0, which lies outside the 1–5 axis.
BAR_BASELINE = alt.datum(SCORE_MIN)


def _bar_height(rows: int) -> int:
    return max(MIN_BAR_CHART_PX, BAR_ROW_PX * rows + AXES_PX)


def csat_trend(trend: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw mean overall score and the four dimension means per month, on the 1–5 scale.

    `trend` is a csat_trend frame (month, responses, csat, quality, service, price, after_sales, …).
    """
    if trend.empty or int(trend["responses"].sum()) == 0:
        return empty(TREND_TITLE)
    measures = {"csat": t("satisfaction.series.csat"), **{name: dimension_label(name) for name in DIMENSIONS}}
    months = [month_label(day) for day in trend["month"]]
    long = (
        trend.assign(label=months)[["label", "responses", *measures]]
        .melt(id_vars=["label", "responses"], var_name="measure", value_name="score")
        .dropna(subset=["score"])
    )
    long["measure"] = long["measure"].map(measures)
    month_title, score_title, measure_title = (
        t("satisfaction.axis.month"),
        t("satisfaction.axis.score"),
        t("satisfaction.axis.measure"),
    )
    labels = list(measures.values())
    chart = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "label:O", title=month_title, sort=months, scale=alt.Scale(domain=months), axis=alt.Axis(labelAngle=0)
            ),
            y=alt.Y("score:Q", title=score_title, scale=_score_scale()),
            color=alt.Color(
                "measure:N",
                title=measure_title,
                sort=labels,
                scale=alt.Scale(domain=labels, range=SERIES_COLORS[: len(labels)]),
            ),
            # The overall CSAT is the headline: drawn thicker than the dimensions.
            strokeWidth=alt.condition(
                alt.datum.measure == labels[0], alt.value(CSAT_STROKE), alt.value(DIMENSION_STROKE)
            ),
            tooltip=[
                alt.Tooltip("label:O", title=month_title),
                alt.Tooltip("measure:N", title=measure_title),
                alt.Tooltip("score:Q", title=score_title, format=SCORE_FORMAT),
                alt.Tooltip("responses:Q", title=t("satisfaction.axis.responses")),
            ],
        )
    )
    return style(chart, title_key=TREND_TITLE)


def dimension_frame(summary: Satisfaction) -> pd.DataFrame:
    """Return the four dimension means of a summary as rows: dimension (label), mean (NaN if none)."""
    return pd.DataFrame(
        {
            "dimension": [dimension_label(name) for name in DIMENSIONS],
            "mean": pd.array([getattr(summary, name) for name in DIMENSIONS], dtype="Float64").astype("float64"),
        }
    )


def dimension_bars(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw each dimension's mean score as a horizontal bar on the 1–5 scale.

    `frame` columns: dimension (translated label), mean (NaN when nobody rated it).
    """
    rated = frame.dropna(subset=["mean"])
    if rated.empty:
        return empty(DIMENSIONS_TITLE)
    dimension_title, score_title = t("satisfaction.axis.dimension"), t("satisfaction.axis.score")
    order = list(frame["dimension"])
    base = alt.Chart(rated).encode(
        x=alt.X("mean:Q", title=score_title, scale=_score_scale()),
        y=alt.Y("dimension:N", title=dimension_title, sort=order, scale=alt.Scale(domain=order)),
    )
    bars = base.mark_bar(color=SERIES_COLORS[0]).encode(
        x2=BAR_BASELINE,
        tooltip=[
            alt.Tooltip("dimension:N", title=dimension_title),
            alt.Tooltip("mean:Q", title=score_title, format=SCORE_FORMAT),
        ],
    )
    values = base.mark_text(align="left", dx=4).encode(text=alt.Text("mean:Q", format=SCORE_FORMAT))
    return style(alt.layer(bars, values), title_key=DIMENSIONS_TITLE).properties(height=_bar_height(len(order)))


def _sign(value: float) -> str:
    if value > 0:
        return "positive"
    return "negative" if value < 0 else "zero"


def nps_bars(nps: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw NPS per month as bars coloured by sign, with a rule at zero.

    `nps` is an nps_trend frame (month, recommend_responses, promoters, detractors, nps); a month
    without a recommend score keeps its place on the axis but has no bar.
    """
    scored = nps.dropna(subset=["nps"])
    if scored.empty:
        return empty(NPS_TITLE)
    months = [month_label(day) for day in nps["month"]]
    frame = scored.assign(label=[month_label(day) for day in scored["month"]], sign=scored["nps"].map(_sign))
    month_title, nps_title = t("satisfaction.axis.month"), t("satisfaction.axis.nps")
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(
                "label:O", title=month_title, sort=months, scale=alt.Scale(domain=months), axis=alt.Axis(labelAngle=0)
            ),
            y=alt.Y("nps:Q", title=nps_title, scale=alt.Scale(domain=[NPS_MIN, NPS_MAX])),
            color=alt.Color(
                "sign:N", scale=alt.Scale(domain=list(NPS_COLORS), range=list(NPS_COLORS.values())), legend=None
            ),
            tooltip=[
                alt.Tooltip("label:O", title=month_title),
                alt.Tooltip("nps:Q", title=nps_title, format=NPS_FORMAT),
                alt.Tooltip("recommend_responses:Q", title=t("satisfaction.axis.recommend_responses")),
            ],
        )
    )
    zero = alt.Chart(pd.DataFrame({"zero": [0]})).mark_rule(color=RULE_COLOR).encode(y="zero:Q")
    return style(alt.layer(bars, zero), title_key=NPS_TITLE)


def csat_by_rep(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw each rep's mean overall score as a horizontal bar, best first.

    `frame` is a satisfaction_by_rep frame (rep_name, responses, csat, csat_pct, …).
    """
    shown = frame.dropna(subset=["csat"])
    if shown.empty:
        return empty(BY_REP_TITLE)
    rep_title, score_title = t("satisfaction.axis.rep"), t("satisfaction.axis.score")
    order = list(shown.sort_values("csat", ascending=False, kind="stable")["rep_name"])
    base = alt.Chart(shown[["rep_name", "responses", "csat", "csat_pct"]]).encode(
        x=alt.X("csat:Q", title=score_title, scale=_score_scale()),
        y=alt.Y("rep_name:N", title=rep_title, sort=order, axis=alt.Axis(labelOverlap=False)),
    )
    bars = base.mark_bar(color=SERIES_COLORS[0]).encode(
        x2=BAR_BASELINE,
        tooltip=[
            alt.Tooltip("rep_name:N", title=rep_title),
            alt.Tooltip("csat:Q", title=score_title, format=SCORE_FORMAT),
            alt.Tooltip("csat_pct:Q", title=t("satisfaction.card.csat_pct"), format=".1%"),
            alt.Tooltip("responses:Q", title=t("satisfaction.axis.responses")),
        ],
    )
    values = base.mark_text(align="left", dx=4).encode(text=alt.Text("csat:Q", format=SCORE_FORMAT))
    return style(alt.layer(bars, values), title_key=BY_REP_TITLE).properties(height=_bar_height(len(shown)))


def csat_by_tier(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw the mean overall score per customer tier, strategic first (tiers without responses stay empty).

    `frame` is a satisfaction_by_tier frame (tier, responses, csat, …).
    """
    shown = frame.dropna(subset=["csat"])
    if shown.empty:
        return empty(BY_TIER_TITLE)
    order = [enum_label("tier", tier) for tier in TIER_ORDER if tier in set(frame["tier"])]
    rows = shown[["tier", "responses", "csat"]].assign(tier=shown["tier"].map(lambda value: enum_label("tier", value)))
    tier_title, score_title = t("satisfaction.axis.tier"), t("satisfaction.axis.score")
    base = alt.Chart(rows).encode(
        x=alt.X("csat:Q", title=score_title, scale=_score_scale()),
        y=alt.Y("tier:N", title=tier_title, sort=order, scale=alt.Scale(domain=order)),
    )
    bars = base.mark_bar(color=SERIES_COLORS[1]).encode(
        x2=BAR_BASELINE,
        tooltip=[
            alt.Tooltip("tier:N", title=tier_title),
            alt.Tooltip("csat:Q", title=score_title, format=SCORE_FORMAT),
            alt.Tooltip("responses:Q", title=t("satisfaction.axis.responses")),
        ],
    )
    values = base.mark_text(align="left", dx=4).encode(text=alt.Text("csat:Q", format=SCORE_FORMAT))
    return style(alt.layer(bars, values), title_key=BY_TIER_TITLE).properties(height=_bar_height(len(order)))
