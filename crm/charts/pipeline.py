"""Pipeline charts: the funnel with stage-to-stage conversion, and per-rep rate bars (no database access)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from crm.charts import PERCENT_FORMAT, SERIES_COLORS, empty, style
from crm.i18n import enum_label, t

FUNNEL_TITLE = "pipeline.chart.funnel"
WIN_RATE_TITLE = "pipeline.chart.win_rate"
VISIT_CONVERSION_TITLE = "pipeline.chart.visit_conversion"
FUNNEL_COLOR = SERIES_COLORS[0]
WON_COLOR = SERIES_COLORS[1]
RATE_COLOR = SERIES_COLORS[0]
# Bars per rep need room for their labels; the chart grows with the team.
BAR_ROW_PX = 28
AXES_PX = 90
MIN_BAR_CHART_PX = 160
MIN_FUNNEL_PX = 260  # a few stages still get bars thick enough to read their labels
FULL_RATE = 1.0


def _bar_height(rows: int) -> int:
    return max(MIN_BAR_CHART_PX, BAR_ROW_PX * rows + AXES_PX)


def _percent(value: float | None) -> str:
    return t("common.na") if value is None or pd.isna(value) else f"{value * 100:.1f}%"


def funnel(frame: pd.DataFrame, *, period_label: str) -> alt.TopLevelMixin:
    """Draw the opportunities that reached each stage, with the share of the previous stage.

    `frame` has the columns of `crm.kpi.funnel` (stage, position, kind, opportunities,
    step_conversion, from_start), one row per step in pipeline order.
    """
    if frame.empty or int(frame["opportunities"].sum()) == 0:
        return empty(FUNNEL_TITLE)
    shown = frame[["stage", "kind", "opportunities", "step_conversion", "from_start"]].copy()
    shown["label"] = [enum_label("stage", stage) for stage in shown["stage"]]
    shown["text"] = [
        str(count) if pd.isna(step) else t("pipeline.chart.step_label", count=count, rate=_percent(step))
        for count, step in zip(shown["opportunities"], shown["step_conversion"], strict=True)
    ]
    order = list(shown["label"])
    stage_title, count_title = t("pipeline.col.stage"), t("pipeline.col.opportunities")
    base = alt.Chart(shown).encode(
        y=alt.Y("label:N", title=stage_title, sort=order, axis=alt.Axis(labelOverlap=False)),
        x=alt.X("opportunities:Q", title=count_title, axis=alt.Axis(tickMinStep=1)),
    )
    bars = base.mark_bar().encode(
        color=alt.Color(
            "kind:N", scale=alt.Scale(domain=["open", "won"], range=[FUNNEL_COLOR, WON_COLOR]), legend=None
        ),
        tooltip=[
            alt.Tooltip("label:N", title=stage_title),
            alt.Tooltip("opportunities:Q", title=count_title),
            alt.Tooltip("step_conversion:Q", title=t("pipeline.col.step_conversion"), format=PERCENT_FORMAT),
            alt.Tooltip("from_start:Q", title=t("pipeline.col.from_start"), format=PERCENT_FORMAT),
        ],
    )
    labels = base.mark_text(align="left", dx=4, fontSize=11).encode(text="text:N")
    chart = alt.layer(bars, labels)
    return style(chart, title_key=FUNNEL_TITLE, period=period_label).properties(
        height=max(MIN_FUNNEL_PX, _bar_height(len(shown)))
    )


def _rate_bars(
    frame: pd.DataFrame,
    *,
    title_key: str,
    rate_column: str,
    rate_title_key: str,
    counts: list[tuple[str, str]],
) -> alt.TopLevelMixin:
    """Draw one horizontal bar per rep on a 0–100 % axis, best first, with the counts in the tooltip."""
    shown = frame.dropna(subset=[rate_column])
    if shown.empty:
        return empty(title_key)
    shown = shown[["rep_name", rate_column, *(column for column, _ in counts)]].copy()
    shown["text"] = [_percent(value) for value in shown[rate_column]]
    order = list(shown.sort_values([rate_column, "rep_name"], ascending=[False, True], kind="stable")["rep_name"])
    rep_title, rate_title = t("pipeline.col.rep"), t(rate_title_key)
    base = alt.Chart(shown).encode(
        y=alt.Y("rep_name:N", title=rep_title, sort=order, axis=alt.Axis(labelOverlap=False)),
        x=alt.X(
            f"{rate_column}:Q",
            title=rate_title,
            scale=alt.Scale(domain=[0, FULL_RATE]),
            axis=alt.Axis(format="%"),
        ),
    )
    bars = base.mark_bar(color=RATE_COLOR).encode(
        tooltip=[
            alt.Tooltip("rep_name:N", title=rep_title),
            alt.Tooltip(f"{rate_column}:Q", title=rate_title, format=PERCENT_FORMAT),
            *(alt.Tooltip(f"{column}:Q", title=t(key)) for column, key in counts),
        ]
    )
    labels = base.mark_text(align="left", dx=3, fontSize=11).encode(text="text:N")
    return style(alt.layer(bars, labels), title_key=title_key).properties(height=_bar_height(len(shown)))


def win_rate_by_rep(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw each rep's win rate; `frame` has the columns of `crm.kpi.win_rate_by_rep`."""
    return _rate_bars(
        frame,
        title_key=WIN_RATE_TITLE,
        rate_column="win_rate",
        rate_title_key="pipeline.col.win_rate",
        counts=[("won", "pipeline.col.won"), ("lost", "pipeline.col.lost")],
    )


def visit_conversion_by_rep(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw each rep's visit conversion; `frame` has the columns of `crm.kpi.visit_conversion_by_rep`."""
    return _rate_bars(
        frame,
        title_key=VISIT_CONVERSION_TITLE,
        rate_column="rate",
        rate_title_key="pipeline.col.visit_conversion",
        counts=[("visits", "pipeline.col.visits"), ("converted", "pipeline.col.converted")],
    )
