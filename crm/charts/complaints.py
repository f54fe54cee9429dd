"""Complaint charts: by severity (resolved on time / late / open) and the monthly on-time rate (no database access)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import altair as alt
import pandas as pd

from crm.charts import PERCENT_FORMAT, SERIES_COLORS, empty, style
from crm.i18n import enum_label, t
from crm.kpi import Service
from crm.models import Severity

BY_SEVERITY_TITLE = "complaints.chart.by_severity"
TREND_TITLE = "complaints.chart.trend"
SEGMENTS = ("on_time", "late", "open")
# Green for on time, red for late, grey-blue for the ones still open.
SEGMENT_COLORS = {"on_time": "#2e7d32", "late": "#c62828", "open": "#90a4ae"}
TREND_COLOR = SERIES_COLORS[0]
FULL_RATE = 1.0
POINT_SIZE = 60
TREND_COLUMNS = ["month", "on_time_rate", "resolved", "resolved_on_time"]


def by_severity(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Stack each severity's complaints: resolved on time, resolved late, and open.

    `frame` has the columns of `crm.kpi.complaints_by_severity` (one row per severity).
    """
    if frame.empty or int(frame[["resolved", "open"]].to_numpy().sum()) == 0:
        return empty(BY_SEVERITY_TITLE)
    counts = {
        "on_time": frame["resolved_on_time"],
        "late": frame["resolved"] - frame["resolved_on_time"],
        "open": frame["open"],
    }
    segment_labels = {segment: t(f"complaints.segment.{segment}") for segment in SEGMENTS}
    rows = [
        {
            "severity": enum_label("severity", severity),
            "segment": segment_labels[segment],
            "order": index,
            "count": int(counts[segment].iloc[position]),
        }
        for position, severity in enumerate(frame["severity"])
        for index, segment in enumerate(SEGMENTS)
    ]
    shown = pd.DataFrame(rows)
    severity_title, count_title, segment_title = (
        t("complaints.col.severity"),
        t("complaints.col.count"),
        t("complaints.col.segment"),
    )
    chart = (
        alt.Chart(shown)
        .mark_bar()
        .encode(
            x=alt.X(
                "severity:N",
                title=severity_title,
                sort=[enum_label("severity", s.value) for s in Severity],
                axis=alt.Axis(labelAngle=0),
            ),
            y=alt.Y("count:Q", title=count_title, stack="zero", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(
                "segment:N",
                title=segment_title,
                scale=alt.Scale(
                    domain=[segment_labels[s] for s in SEGMENTS], range=[SEGMENT_COLORS[s] for s in SEGMENTS]
                ),
                sort=[segment_labels[s] for s in SEGMENTS],
            ),
            order=alt.Order("order:Q"),
            tooltip=[
                alt.Tooltip("severity:N", title=severity_title),
                alt.Tooltip("segment:N", title=segment_title),
                alt.Tooltip("count:Q", title=count_title),
            ],
        )
    )
    return style(chart, title_key=BY_SEVERITY_TITLE)


def trend_frame(months: Sequence[date], figures: Sequence[Service]) -> pd.DataFrame:
    """Pair each month with its service figures (columns: TREND_COLUMNS; rate None when none resolved)."""
    frame = pd.DataFrame(
        [
            {
                "month": pd.Timestamp(month),
                "on_time_rate": figure.on_time_rate,
                "resolved": figure.resolved,
                "resolved_on_time": figure.resolved_on_time,
            }
            for month, figure in zip(months, figures, strict=True)
        ],
        columns=TREND_COLUMNS,
    )
    frame["on_time_rate"] = frame["on_time_rate"].astype("float64")
    return frame


def on_time_trend(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw the on-time rate of each month with resolved complaints; `frame` comes from `trend_frame`."""
    shown = frame.dropna(subset=["on_time_rate"])
    if shown.empty:
        return empty(TREND_TITLE)
    month_title, rate_title = t("complaints.col.month"), t("complaints.card.on_time_rate")
    chart = (
        alt.Chart(shown)
        .mark_line(point=alt.OverlayMarkDef(size=POINT_SIZE), color=TREND_COLOR)
        .encode(
            x=alt.X("yearmonth(month):T", title=month_title, axis=alt.Axis(format="%Y-%m", tickCount="month")),
            y=alt.Y(
                "on_time_rate:Q", title=rate_title, scale=alt.Scale(domain=[0, FULL_RATE]), axis=alt.Axis(format="%")
            ),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title=month_title, format="%Y-%m"),
                alt.Tooltip("on_time_rate:Q", title=rate_title, format=PERCENT_FORMAT),
                alt.Tooltip("resolved_on_time:Q", title=t("complaints.segment.on_time")),
                alt.Tooltip("resolved:Q", title=t("complaints.col.resolved_count")),
            ],
        )
    )
    return style(chart, title_key=TREND_TITLE)
