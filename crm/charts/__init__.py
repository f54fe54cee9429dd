"""Altair charts from aggregated DataFrames (no database access); one module per screen area.

Shared here: the theme (fonts with CJK fallbacks so Chinese labels render), colours, and helpers,
among them spec templates: a chart built with Altair once per language with its data-dependent
values left as placeholders, filled per request in well under a millisecond.
Every chart receives aggregated rows (tens to hundreds), never raw tables.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import altair as alt
import pandas as pd
from altair.utils import schemapi

from crm.i18n import enum_label, get_language, t

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
DEFAULT_THEME_VIEW_KEYS = ("continuousWidth", "continuousHeight")
# The named dataset a template's marks read: each request puts its rows under spec["datasets"][ROWS].
ROWS = "rows"
# Templates depend on code and language only: a few dozen titles and kinds per language at most.
TEMPLATE_CACHE_ENTRIES = 128


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


def to_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """Return the chart as a Vega-Lite spec (its inline rows under "datasets"), ready to draw."""
    spec: dict[str, Any] = chart.to_dict(validate=False)
    # Altair's default theme fixes views at 300 × 300 px; st.altair_chart switches it off too.
    view = spec.get("config", {}).get("view", {})
    for key in DEFAULT_THEME_VIEW_KEYS:
        view.pop(key, None)
    return spec


def template_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """Return a chart whose rows are the named dataset ROWS as a spec template.

    Constant data of the chart (a zero rule, the text of an empty chart) moves inline into the
    views that read it: Streamlit converts every entry of "datasets" to Arrow on each draw.
    """
    spec = to_spec(chart)
    constants = {name: rows for name, rows in spec.pop("datasets", {}).items() if name != ROWS}
    return _inlined(spec, constants)


def _inlined(node: Any, constants: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inlined(item, constants) for item in node]
    if not isinstance(node, dict):
        return node
    data = node.get("data")
    if isinstance(data, dict) and data.get("name") in constants:
        node = {**node, "data": {"values": constants[data["name"]]}}
    return {key: value if key == "data" else _inlined(value, constants) for key, value in node.items()}


def slot(name: str) -> str:
    """Return the placeholder a template holds where a per-request value `name` goes."""
    # No title, label or field of a chart looks like this, so filling cannot replace real text.
    return f"{{{{slot:{name}}}}}"


def filled(template: Any, slots: Mapping[str, Any]) -> Any:
    """Return a fresh copy of a template with every placeholder string replaced by its value.

    Nothing of the template is shared with the copy (values are copied too), so a caller may
    change the spec it gets without touching the cached template or the next request's spec.
    """
    if isinstance(template, dict):
        return {key: filled(value, slots) for key, value in template.items()}
    if isinstance(template, list):
        return [filled(item, slots) for item in template]
    if isinstance(template, str) and template in slots:
        return filled(slots[template], {})
    return template


def with_rows(template: Mapping[str, Any], rows: pd.DataFrame, slots: Mapping[str, Any]) -> dict[str, Any]:
    """Return a spec from a template: placeholders filled, `rows` as its dataset ROWS.

    Streamlit ships each dataset as Arrow; a DataFrame goes there without a detour through
    records. Arrow would ship an index other than a RangeIndex as an extra column.
    """
    spec: dict[str, Any] = filled(template, slots)
    if not isinstance(rows.index, pd.RangeIndex):
        rows = rows.reset_index(drop=True)
    spec["datasets"] = {ROWS: rows}
    return spec


def empty_spec(title_key: str) -> dict[str, Any]:
    """Return the spec of `empty(title_key)`, copied from a template built once per title and language."""
    spec: dict[str, Any] = filled(_empty_template(title_key, get_language()), {})
    return spec


@functools.lru_cache(maxsize=TEMPLATE_CACHE_ENTRIES)
def _empty_template(title_key: str, language: str) -> dict[str, Any]:
    del language  # a cache key only: callers pass the language t() reads while the chart is built
    return template_spec(empty(title_key))
