"""Overview charts filled from spec templates draw exactly what the Altair-built charts draw.

The reference is each chart built with Altair with its rows inline (`csat_trend(frame)` and so
on), turned into a spec by crm.charts.to_spec; the fast spec (`csat_trend_spec(frame)`) comes
from a template built once per chart and language. Both are compared with their datasets
resolved into the views that read them, and Altair's per-build view names numbered in order.
"""

from __future__ import annotations

import contextvars
import copy
import json
import re
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import altair as alt
import pandas as pd
import pytest

from crm import i18n
from crm.charts import ROWS, to_spec
from crm.charts import overview as charts
from crm.i18n import LANGUAGES, get_language, set_language

MONTHS = pd.date_range("2026-01-01", periods=9, freq="MS")
MONTH_LABELS = [f"2026-{month:02d}" for month in range(1, 10)]
NAN = float("nan")
Builders = tuple[Callable[[pd.DataFrame], alt.TopLevelMixin], Callable[[pd.DataFrame], dict[str, Any]]]
BUILDERS: dict[str, Builders] = {
    "csat": (charts.csat_trend, charts.csat_trend_spec),
    "nps": (charts.nps_trend, charts.nps_trend_spec),
    "funnel": (charts.funnel, charts.funnel_spec),
    "retention": (charts.retention_trend, charts.retention_trend_spec),
    "reps": (charts.rep_composites, charts.rep_composites_spec),
    "own_rep": (
        lambda frame: charts.rep_composites(frame, own=True),
        lambda frame: charts.rep_composites_spec(frame, own=True),
    ),
}
VIEW_NAME = re.compile(r'"view_[0-9a-f]+(?:_[0-9]+)?"')


# --- frames ---------------------------------------------------------------------------------


def csat_frame(shift: float = 0.0) -> pd.DataFrame:
    """Nine months; February had no responses (no points), June none on price."""
    responses = [4, 0, 3, 5, 2, 6, 1, 3, 2]
    csat = [4.5, NAN, 3.0, 4.0, 2.5, 4.2, 5.0, 3.7, 4.1]
    frame = pd.DataFrame({"month": MONTHS, "responses": responses, "csat": [v + shift for v in csat]})
    for offset, name in enumerate(charts.DIMENSIONS):
        frame[name] = [NAN if pd.isna(v) else min(5.0, v + offset * 0.1) for v in csat]
    frame.loc[5, "price"] = NAN
    return frame


def nps_frame() -> pd.DataFrame:
    """Nine months with positive, zero and negative NPS; March had no recommend scores."""
    return pd.DataFrame(
        {
            "month": MONTHS,
            "recommend_responses": [4, 2, 0, 5, 2, 6, 1, 3, 2],
            "promoters": [3, 1, 0, 1, 0, 4, 1, 1, 1],
            "detractors": [1, 1, 0, 3, 2, 1, 0, 1, 0],
            "nps": [50.0, 0.0, NAN, -40.0, -100.0, 50.0, 100.0, 0.0, 50.0],
        }
    )


def retention_frame() -> pd.DataFrame:
    """Nine months as crm.kpi returns them (dates); nobody was active before January."""
    retained = [0, 3, 4, 4, 6, 5, 7, 7, 8]
    before = [0, 4, 5, 6, 7, 8, 9, 9, 10]
    rates = [NAN, *(r / b for r, b in zip(retained[1:], before[1:], strict=True))]
    return pd.DataFrame(
        {
            "month": [date(2026, month, 1) for month in range(1, 10)],
            "active": [4, 5, 6, 7, 8, 9, 9, 10, 11],
            "previously_active": before,
            "retained": retained,
            "retention_rate": rates,
            "churn_rate": [NAN if pd.isna(r) else 1 - r for r in rates],
        }
    )


def funnel_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stage": ["prospecting", "engaging", "won"],
            "position": [1, 2, 3],
            "kind": ["open", "open", "won"],
            "opportunities": [10, 4, 1],
            "step_conversion": [NAN, 4 / 10, 1 / 4],
            "from_start": [1.0, 0.4, 0.1],
        }
    )


def ranking(count: int) -> pd.DataFrame:
    """`count` reps, composites 95, 88, … and grades A–D; listed out of composite order."""
    rows = [
        {
            "rep_id": n,
            "rep": f"#{n} Rep {n}",
            "rank": n,
            "composite": 95.0 - 7 * (n - 1),
            "grade": "ABCD"[min(3, (n - 1) // 3)],
            "group": "top" if n <= charts.TOP_AND_BOTTOM else "bottom",
        }
        for n in range(1, count + 1)
    ]
    return pd.DataFrame(rows[::-1], columns=charts.RANKING_COLUMNS)


FRAMES: dict[str, Callable[[], pd.DataFrame]] = {
    "csat": csat_frame,
    "nps": nps_frame,
    "funnel": funnel_frame,
    "retention": retention_frame,
    "reps": lambda: ranking(10),
    "own_rep": lambda: ranking(1),
}
EMPTY_FRAMES: dict[str, Callable[[], pd.DataFrame]] = {
    "csat": lambda: csat_frame().iloc[:0],
    "nps": lambda: nps_frame().assign(recommend_responses=0, nps=NAN),  # months, but no scores
    "funnel": lambda: funnel_frame().iloc[:0],
    "retention": lambda: retention_frame().assign(retention_rate=NAN, churn_rate=NAN),
    "reps": lambda: ranking(0),
    "own_rep": lambda: ranking(0),
}


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture(params=i18n.LANGUAGES)
def language(request: pytest.FixtureRequest) -> Iterator[str]:
    i18n.set_language(request.param)
    yield request.param
    i18n.set_language(i18n.EN)


def records(rows: Any) -> list[dict[str, Any]]:
    """Return a dataset's rows the way Altair inlines a DataFrame (NaN as None, plain numbers)."""
    if isinstance(rows, pd.DataFrame):
        values: list[dict[str, Any]] = alt.to_values(rows)["values"]
        return values
    return list(rows)


def resolved(spec: dict[str, Any]) -> dict[str, Any]:
    """Return a spec with every named dataset put inline and Altair's view names numbered."""
    spec = dict(spec)
    datasets = {name: records(rows) for name, rows in spec.pop("datasets", {}).items()}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: walk(value) for key, value in node.items()}
        data = out.get("data")
        if isinstance(data, dict) and "name" in data:
            out["data"] = {"values": datasets[data["name"]]}
        return out

    text = json.dumps(walk(spec), sort_keys=True, ensure_ascii=False)
    for number, name in enumerate(dict.fromkeys(VIEW_NAME.findall(text)), start=1):
        text = text.replace(name, f'"view_{number}"')
    result: dict[str, Any] = json.loads(text)
    return result


def altair_spec(kind: str, frame: pd.DataFrame) -> dict[str, Any]:
    return to_spec(BUILDERS[kind][0](frame))


def fast_spec(kind: str, frame: pd.DataFrame) -> dict[str, Any]:
    return BUILDERS[kind][1](frame)


def x_months(spec: dict[str, Any]) -> set[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Return the distinct (sort, scale domain) pairs of the month axis across the layers."""
    return {
        (tuple(layer["encoding"]["x"]["sort"]), tuple(layer["encoding"]["x"]["scale"]["domain"]))
        for layer in spec["layer"]
        if "x" in layer.get("encoding", {})
    }


def whole(months: list[str]) -> set[tuple[tuple[str, ...], tuple[str, ...]]]:
    return {(tuple(months), tuple(months))}


# --- the fast spec is the Altair spec -------------------------------------------------------


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_fast_spec_equals_the_altair_spec(kind: str, language: str) -> None:
    frame = FRAMES[kind]()
    fast, reference = fast_spec(kind, frame), altair_spec(kind, frame)
    assert resolved(fast) == resolved(reference)
    # The rows travel as the one dataset the marks read; nothing is left unfilled.
    assert set(fast["datasets"]) == {ROWS}
    assert "{{slot:" not in json.dumps(resolved(fast))


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_fast_spec_of_an_empty_frame_equals_the_altair_spec(kind: str, language: str) -> None:
    frame = EMPTY_FRAMES[kind]()
    fast = fast_spec(kind, frame)
    assert resolved(fast) == resolved(altair_spec(kind, frame))
    no_rows = {i18n.EN: "Nothing to show for this selection.", i18n.ZH: "当前筛选条件下没有数据。"}[language]
    assert fast["data"] == {"values": [{"text": no_rows}]}
    assert not charts.has_selection(fast)


@pytest.mark.parametrize(
    ("kind", "title"),
    [
        ("csat", "客户满意度月度趋势"),
        ("nps", "净推荐值（NPS）月度趋势"),
        ("funnel", "销售漏斗：本期新建商机"),
        ("retention", "客户保留率与流失率月度趋势"),
        ("reps", "绩效综合得分：前五名与后五名"),
        ("own_rep", "我的绩效综合得分"),
    ],
)
def test_templates_are_kept_apart_by_language(kind: str, title: str) -> None:
    frame = FRAMES[kind]()
    english = fast_spec(kind, frame)["title"]
    i18n.set_language(i18n.ZH)
    try:
        assert fast_spec(kind, frame)["title"] == title
    finally:
        i18n.set_language(i18n.EN)
    assert fast_spec(kind, frame)["title"] == english != title


# --- what the charts show, by hand ----------------------------------------------------------


def test_csat_spec_keeps_every_month_and_plots_only_scored_ones() -> None:
    spec = charts.csat_trend_spec(csat_frame())
    # February has no responses: still on the axis (sort and domain of every layer), no points.
    assert x_months(spec) == whole(MONTH_LABELS)
    rows = spec["datasets"][ROWS]
    assert "2026-02" not in set(rows["month"])
    # 8 months with five measures, less June's price.
    assert len(rows) == 8 * 5 - 1
    overall = rows[rows["overall"]]
    assert overall["measure"].unique().tolist() == ["CSAT (overall)"]
    assert overall["score"].tolist() == pytest.approx([4.5, 3.0, 4.0, 2.5, 4.2, 5.0, 3.7, 4.1])
    assert spec["height"] == charts.GRID_CHART_PX
    assert [param["name"] for param in spec["params"]] == [charts.MONTH_SELECTION]
    assert spec["params"][0]["select"]["fields"] == [charts.MONTH_FIELD]


def test_nps_spec_colours_bars_by_sign_and_labels_them_beyond_their_end() -> None:
    spec = charts.nps_trend_spec(nps_frame())
    rows = spec["datasets"][ROWS]
    # March has no recommend scores: on the axis, without a bar.
    assert x_months(spec) == whole(MONTH_LABELS)
    assert rows["month"].tolist() == [label for label in MONTH_LABELS if label != "2026-03"]
    assert rows["sign"].tolist() == ["positive", "zero", "negative", "negative"] + ["positive"] * 2 + ["zero"] + [
        "positive"
    ]
    bars, above, below, zero = spec["layer"]
    assert above["transform"] == [{"filter": "datum.nps >= 0"}] and above["mark"]["baseline"] == "bottom"
    assert below["transform"] == [{"filter": "datum.nps < 0"}] and below["mark"]["baseline"] == "top"
    assert zero["data"] == {"values": [{"zero": 0}]}
    assert bars["encoding"]["opacity"]["condition"]["param"] == charts.MONTH_SELECTION


def test_funnel_spec_keeps_the_stage_order_and_labels_conversions() -> None:
    spec = charts.funnel_spec(funnel_frame())
    assert spec["layer"][0]["encoding"]["y"]["sort"] == ["Prospecting", "Engaging", "Won"]
    rows = spec["datasets"][ROWS]
    assert rows["label"].tolist() == ["10", "4 · 40.0% of previous", "1 · 25.0% of previous"]
    assert rows["won"].tolist() == [False, False, True]
    assert not charts.has_selection(spec)


def test_retention_spec_plots_two_series_from_the_second_month() -> None:
    spec = charts.retention_trend_spec(retention_frame())
    assert x_months(spec) == whole(MONTH_LABELS)
    rows = spec["datasets"][ROWS]
    assert rows["series"].tolist() == ["Retention"] * 8 + ["Churn"] * 8
    assert rows["rate"].iloc[0] == pytest.approx(3 / 4)
    assert rows["rate"].iloc[8] == pytest.approx(1 - 3 / 4)


@pytest.mark.parametrize(
    ("count", "height"),
    [
        (1, charts.MIN_BAR_CHART_PX),  # 28 + 90 < 160
        (4, 4 * charts.BAR_ROW_PX + charts.AXES_PX),  # 202
        (10, 10 * charts.BAR_ROW_PX + charts.AXES_PX),  # 370
        (12, charts.MAX_BAR_CHART_PX),  # 426 > 420
    ],
)
def test_rep_spec_grows_with_the_reps_and_sorts_them_by_composite(count: int, height: int) -> None:
    spec = charts.rep_composites_spec(ranking(count))
    assert spec["height"] == height
    assert spec["layer"][0]["encoding"]["y"]["sort"] == [f"#{n} Rep {n}" for n in range(1, count + 1)]
    assert charts.has_selection(spec)
    assert spec["params"][0]["name"] == charts.REP_SELECTION
    assert spec["params"][0]["select"]["fields"] == [charts.REP_FIELD]
    assert resolved(spec) == resolved(altair_spec("reps", ranking(count)))


# --- no state leaks between requests --------------------------------------------------------


def test_two_frames_give_their_own_rows_and_domains() -> None:
    first = charts.csat_trend_spec(csat_frame())
    later = charts.csat_trend_spec(csat_frame(shift=-1.0).iloc[3:6].reset_index(drop=True))
    assert x_months(later) == whole(MONTH_LABELS[3:6])
    assert later["datasets"][ROWS]["month"].unique().tolist() == MONTH_LABELS[3:6]
    # The first spec is untouched by the second, and a third from the first frame equals it.
    assert x_months(first) == whole(MONTH_LABELS)
    assert resolved(charts.csat_trend_spec(csat_frame())) == resolved(first)
    few, many = charts.rep_composites_spec(ranking(2)), charts.rep_composites_spec(ranking(9))
    assert (few["height"], len(few["datasets"][ROWS])) == (charts.MIN_BAR_CHART_PX, 2)
    assert (many["height"], len(many["datasets"][ROWS])) == (9 * charts.BAR_ROW_PX + charts.AXES_PX, 9)
    assert few["layer"][1]["encoding"]["y"]["sort"] == ["#1 Rep 1", "#2 Rep 2"]


@pytest.mark.parametrize("kind", charts.TEMPLATE_KINDS)
def test_changing_a_spec_changes_neither_its_template_nor_the_next_spec(kind: str) -> None:
    frame = FRAMES[kind]()
    template = charts.template(kind)
    pristine = copy.deepcopy(dict(template))
    spec = fast_spec(kind, frame)
    # Whatever a caller (or Streamlit) does to the spec it got, down to the filled-in lists.
    spec["title"] = "changed"
    spec["height"] = 1
    for layer in spec["layer"]:
        for channel in layer["encoding"].values():
            if isinstance(channel, dict) and isinstance(channel.get("sort"), list):
                channel["sort"].append("changed")
        layer["encoding"].clear()
    spec["config"]["font"] = "changed"
    assert template == pristine
    assert "{{slot:" in json.dumps(template)  # placeholders stay in the template
    assert resolved(fast_spec(kind, frame)) == resolved(altair_spec(kind, frame))


def test_empty_specs_are_fresh_copies() -> None:
    spec = charts.csat_trend_spec(EMPTY_FRAMES["csat"]())
    spec["data"]["values"].clear()
    spec["title"] = "changed"
    again = charts.csat_trend_spec(EMPTY_FRAMES["csat"]())
    assert again["title"] == "Customer satisfaction by month"
    assert again["data"]["values"] == [{"text": "Nothing to show for this selection."}]


# --- clicks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "clickable"),
    [("csat", True), ("nps", True), ("funnel", False), ("retention", True), ("reps", True), ("own_rep", True)],
)
def test_has_selection_tells_which_charts_listen_to_clicks(kind: str, clickable: bool) -> None:
    assert charts.has_selection(fast_spec(kind, FRAMES[kind]())) is clickable
    assert charts.has_selection(altair_spec(kind, FRAMES[kind]())) is clickable
    assert charts.has_selection(fast_spec(kind, EMPTY_FRAMES[kind]())) is False


def test_warming_builds_every_template_in_every_language_without_touching_the_callers_language() -> None:
    charts._template.cache_clear()
    set_language("en")
    contextvars.Context().run(charts.warm_templates)
    assert get_language() == "en"
    assert charts._template.cache_info().currsize == len(charts.TEMPLATE_KINDS) * len(LANGUAGES)
    # A later request is a cache hit, and each language got its own titles.
    hits = charts._template.cache_info().hits
    english = charts.template("csat")
    set_language("zh-CN")
    try:
        chinese = charts.template("csat")
    finally:
        set_language("en")
    assert charts._template.cache_info().hits == hits + 2
    assert english["title"] != chinese["title"]
