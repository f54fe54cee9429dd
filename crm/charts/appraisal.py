"""Appraisal charts: composite leaderboard bars with grade bands, and the grade distribution."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import altair as alt
import pandas as pd

from crm.charts import GRADE_COLORS, style
from crm.charts import empty as empty_chart
from crm.i18n import t

GRADE_ORDER = list(GRADE_COLORS)  # best first: A, B, C, D
# One bar per rep needs room for its label; the chart grows with the team beyond the shared height.
# Streamlit fits title and axes into the height too, so they get their own allowance.
BAR_ROW_PX = 26
AXES_PX = 90
MIN_BAR_CHART_PX = 200
MAX_COMPOSITE = 100
BAND_RULE_COLOR = "#6b7280"


def _grade_scale() -> alt.Scale:
    return alt.Scale(domain=GRADE_ORDER, range=[GRADE_COLORS[grade] for grade in GRADE_ORDER])


def composite_bars(frame: pd.DataFrame, *, bands: Mapping[str, Decimal | float]) -> alt.TopLevelMixin:
    """Draw each rep's composite as a horizontal bar coloured by grade, with the band minimums as rules.

    `frame` columns: rep (label), composite (0–100), grade (A–D). `bands` maps grade -> minimum
    composite; the lowest grade (minimum 0) gets no rule since it is "everything below".
    """
    title = "appraisal.chart.composites"
    shown = frame.dropna(subset=["composite"])
    if shown.empty:
        return empty_chart(title)
    rep_title, composite_title, grade_title = (
        t("appraisal.col.rep"),
        t("appraisal.col.composite"),
        t("appraisal.col.grade"),
    )
    order = list(shown.sort_values("composite", ascending=False, kind="stable")["rep"])
    base = alt.Chart(shown).encode(
        x=alt.X("composite:Q", title=composite_title, scale=alt.Scale(domain=[0, MAX_COMPOSITE])),
        # An explicit order: a layered chart does not keep sort="-x" across its layers.
        y=alt.Y("rep:N", title=rep_title, sort=order, axis=alt.Axis(labelOverlap=False)),
    )
    # The grade is written at the end of each bar, so the chart needs no legend.
    bars = base.mark_bar().encode(
        color=alt.Color("grade:N", title=grade_title, scale=_grade_scale(), sort=GRADE_ORDER, legend=None),
        tooltip=[
            alt.Tooltip("rep:N", title=rep_title),
            alt.Tooltip("composite:Q", title=composite_title, format=".1f"),
            alt.Tooltip("grade:N", title=grade_title),
        ],
    )
    values = (
        base.transform_calculate(label="format(datum.composite, '.1f') + ' ' + datum.grade")
        .mark_text(align="left", dx=3, fontSize=11)
        .encode(text="label:N")
    )
    rules = pd.DataFrame(
        [
            {"grade": grade, "minimum": float(minimum), "label": t("appraisal.chart.band", grade=grade, min=minimum)}
            for grade, minimum in bands.items()
            if float(minimum) > 0
        ]
    )
    layers: list[alt.Chart] = [bars, values]
    if not rules.empty:
        band = alt.Chart(rules)
        layers.append(band.mark_rule(color=BAND_RULE_COLOR, strokeDash=[4, 4]).encode(x="minimum:Q"))
        layers.append(
            band.mark_text(align="center", baseline="bottom", dy=-3, color=BAND_RULE_COLOR).encode(
                x="minimum:Q", y=alt.value(0), text="label:N"
            )
        )
    chart = alt.layer(*layers)
    height = max(MIN_BAR_CHART_PX, BAR_ROW_PX * len(shown) + AXES_PX)
    return style(chart, title_key=title).properties(height=height)


def grade_distribution(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw how many reps got each grade, A to D (every grade shown, zero or not).

    `frame` columns: grade (A–D), reps (count), as returned by crm.appraisal.grade_distribution.
    """
    grade_title, reps_title = t("appraisal.col.grade"), t("appraisal.chart.reps")
    base = alt.Chart(frame).encode(
        x=alt.X("grade:N", title=grade_title, sort=GRADE_ORDER, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("reps:Q", title=reps_title, axis=alt.Axis(tickMinStep=1)),
    )
    bars = base.mark_bar().encode(
        color=alt.Color("grade:N", scale=_grade_scale(), legend=None),
        tooltip=[alt.Tooltip("grade:N", title=grade_title), alt.Tooltip("reps:Q", title=reps_title)],
    )
    labels = base.mark_text(dy=-6, baseline="bottom").encode(text="reps:Q")
    return style(alt.layer(bars, labels), title_key="appraisal.chart.distribution")
