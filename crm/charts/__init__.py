"""Altair charts from aggregated DataFrames (no database access); one module per screen area.

Shared here: the theme (fonts with CJK fallbacks so Chinese labels render), colours, and helpers.
Every chart receives aggregated rows (tens to hundreds), never raw tables.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
from altair.utils import schemapi

from crm.i18n import enum_label, t

# Altair re-validates every object against the Vega-Lite JSON schema as it is built (~100 ms a
# chart); the final spec is still validated when Streamlit serialises it, so building skips it.
schemapi.disable_debug_mode()

FONT = "Inter, 'Noto Sans CJK SC', 'Noto Sans SC', 'Microsoft YaHei', 'PingFang SC', sans-serif"
CHART_HEIGHT = 280
# Bottom legends wrap into this many columns so long labels are never cut off.
LEGEND_COLUMNS = 3
GRADE_COLORS = {"A": "#2e7d32", "B": "#1f6feb", "C": "#f9a825", "D": "#c62828"}
TIER_ORDER = ["strategic", "key", "customer", "prospect", "lead"]
SERIES_COLORS = ["#1f6feb", "#2e7d32", "#f9a825", "#8e24aa", "#c62828", "#00897b"]
PERCENT_FORMAT = ".1%"


def style(chart: alt.TopLevelMixin, *, title_key: str, **title_params: object) -> alt.TopLevelMixin:
    """Apply the shared theme and a translated title."""
    # One configure call: each configure_* copies the whole chart, which costs ~10 ms apiece.
    return chart.properties(title=t(title_key, **title_params), height=CHART_HEIGHT).configure(
        font=FONT,
        title=alt.TitleConfig(fontSize=15, anchor="start", font=FONT),
        axis=alt.AxisConfig(
            labelFont=FONT, titleFont=FONT, labelFontSize=12, titleFontSize=12, grid=True, gridColor="#eef0f4"
        ),
        legend=alt.LegendConfig(labelFont=FONT, titleFont=FONT, orient="bottom", columns=LEGEND_COLUMNS),
        view=alt.ViewConfig(strokeWidth=0),
    )


def empty(title_key: str) -> alt.TopLevelMixin:
    """Return a chart that says there is nothing to show (instead of an empty frame)."""
    frame = pd.DataFrame({"text": [t("common.no_rows")]})
    chart = alt.Chart(frame).mark_text(size=14, color="#6b7280").encode(text="text:N")
    return style(chart, title_key=title_key)


def translated(frame: pd.DataFrame, column: str, kind: str) -> pd.DataFrame:
    """Return a copy with enum values of a column replaced by their translated labels."""
    out = frame.copy()
    out[column] = out[column].map(lambda value: enum_label(kind, value))
    return out
