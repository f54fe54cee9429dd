"""Loyalty charts: retention and churn by month, repeat purchase, the Pareto curve, the customer pyramid.

Every builder takes a frame of crm.kpi.loyalty (months, at most 101 curve points, five tiers)
and draws it; none touches the database.
"""

from __future__ import annotations

from datetime import date

import altair as alt
import pandas as pd

from crm.charts import PERCENT_FORMAT, SERIES_COLORS, TIER_ORDER, empty, style
from crm.i18n import enum_label, t

MONTH_FORMAT = "%Y-%m"
AXIS_PERCENT = "%"
PARETO_TOP_SHARE = 0.2  # "the top 20% of customers"
RETENTION_COLOR, CHURN_COLOR = "#2e7d32", "#c62828"
RULE_COLOR = "#6b7280"
POINT_SIZE = 80
# The pyramid's tiers, top to bottom, from the most valuable to the earliest stage.
PYRAMID_COLORS = ["#0b3d91", "#1f6feb", "#4f8ef7", "#8fb8fa", "#c9dcfd"]
PYRAMID_ROW_PX = 44
LABEL_ROOM = 1.3
AXES_PX = 60

RETENTION_TITLE = "loyalty.chart.retention"
REPEAT_TITLE = "loyalty.chart.repeat"
PARETO_TITLE = "loyalty.chart.pareto"
PYRAMID_TITLE = "loyalty.chart.pyramid"


def month_label(day: date) -> str:
    """Label a month by text, so the axis never shifts a month across time zones."""
    return day.strftime(MONTH_FORMAT)


def percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _rate_scale() -> alt.Scale:
    return alt.Scale(domain=[0, 1], nice=False)


def retention_lines(trend: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw month-over-month retention and churn as two lines on a percentage axis.

    `trend` is a retention_trend frame (month, active, previously_active, retained,
    retention_rate, churn_rate); a month whose previous month had nobody active has no point.
    """
    rated = trend.dropna(subset=["retention_rate"])
    if rated.empty:
        return empty(RETENTION_TITLE)
    months = [month_label(day) for day in trend["month"]]
    series = {"retention_rate": t("loyalty.series.retention"), "churn_rate": t("loyalty.series.churn")}
    long = (
        rated.assign(label=[month_label(day) for day in rated["month"]])[
            ["label", "previously_active", "retained", *series]
        ]
        .melt(id_vars=["label", "previously_active", "retained"], var_name="measure", value_name="rate")
        .assign(measure=lambda frame: frame["measure"].map(series))
    )
    month_title, rate_title, measure_title = t("loyalty.axis.month"), t("loyalty.axis.rate"), t("loyalty.axis.measure")
    labels = list(series.values())
    chart = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "label:O", title=month_title, sort=months, scale=alt.Scale(domain=months), axis=alt.Axis(labelAngle=0)
            ),
            y=alt.Y("rate:Q", title=rate_title, scale=_rate_scale(), axis=alt.Axis(format=AXIS_PERCENT)),
            color=alt.Color(
                "measure:N", title=measure_title, scale=alt.Scale(domain=labels, range=[RETENTION_COLOR, CHURN_COLOR])
            ),
            tooltip=[
                alt.Tooltip("label:O", title=month_title),
                alt.Tooltip("measure:N", title=measure_title),
                alt.Tooltip("rate:Q", title=rate_title, format=PERCENT_FORMAT),
                alt.Tooltip("retained:Q", title=t("loyalty.series.retention")),
                alt.Tooltip("previously_active:Q", title=t("loyalty.axis.active")),
            ],
        )
    )
    return style(chart, title_key=RETENTION_TITLE)


def repeat_trend(trend: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw the repeat purchase rate per month on a percentage axis.

    `trend` columns: month (first day), active (customers with an order), repeat_purchase_rate
    (fraction, NaN when nobody ordered that month).
    """
    rated = trend.dropna(subset=["repeat_purchase_rate"])
    if rated.empty:
        return empty(REPEAT_TITLE)
    months = [month_label(day) for day in trend["month"]]
    frame = rated.assign(label=[month_label(day) for day in rated["month"]])[
        ["label", "active", "repeat_purchase_rate"]
    ]
    month_title, rate_title = t("loyalty.axis.month"), t("loyalty.card.repeat")
    chart = (
        alt.Chart(frame)
        .mark_line(point=True, color=SERIES_COLORS[0])
        .encode(
            x=alt.X(
                "label:O", title=month_title, sort=months, scale=alt.Scale(domain=months), axis=alt.Axis(labelAngle=0)
            ),
            y=alt.Y(
                "repeat_purchase_rate:Q", title=rate_title, scale=_rate_scale(), axis=alt.Axis(format=AXIS_PERCENT)
            ),
            tooltip=[
                alt.Tooltip("label:O", title=month_title),
                alt.Tooltip("repeat_purchase_rate:Q", title=rate_title, format=PERCENT_FORMAT),
                alt.Tooltip("active:Q", title=t("loyalty.axis.active")),
            ],
        )
    )
    return style(chart, title_key=REPEAT_TITLE)


def pareto_curve(
    curve: pd.DataFrame, *, customers: int, top_customers: int, top_share: float | None
) -> alt.TopLevelMixin:
    """Draw the cumulative share of lifetime revenue against the share of customers, largest first.

    `curve` is CustomerValue.curve (customer_share, revenue_share; at most 101 rows). A rule marks
    20% of customers; the point of the top ceil(20%) customers is labelled with their revenue share.
    """
    if customers == 0 or curve.empty:
        return empty(PARETO_TITLE)
    x_title, y_title = t("loyalty.axis.customer_share"), t("loyalty.axis.revenue_share")
    x_scale, y_scale = _rate_scale(), _rate_scale()
    line = (
        alt.Chart(curve)
        .mark_line(color=SERIES_COLORS[0], interpolate="linear")
        .encode(
            x=alt.X("customer_share:Q", title=x_title, scale=x_scale, axis=alt.Axis(format=AXIS_PERCENT)),
            y=alt.Y("revenue_share:Q", title=y_title, scale=y_scale, axis=alt.Axis(format=AXIS_PERCENT)),
            tooltip=[
                alt.Tooltip("customer_share:Q", title=x_title, format=PERCENT_FORMAT),
                alt.Tooltip("revenue_share:Q", title=y_title, format=PERCENT_FORMAT),
            ],
        )
    )
    rule_frame = pd.DataFrame({"share": [PARETO_TOP_SHARE], "label": [t("loyalty.pareto.rule")]})
    rule = alt.Chart(rule_frame).mark_rule(color=RULE_COLOR, strokeDash=[4, 4]).encode(x="share:Q")
    rule_label = (
        alt.Chart(rule_frame)
        .mark_text(align="left", baseline="bottom", dx=4, dy=-4, color=RULE_COLOR)
        .encode(x="share:Q", y=alt.value(0), text="label:N")
    )
    layers: list[alt.Chart] = [line, rule, rule_label]
    if top_share is not None:
        # The top customers are ceil(20%) of them: on small books that is a little more than 20%.
        point_frame = pd.DataFrame(
            {
                "customer_share": [top_customers / customers],
                "revenue_share": [top_share],
                "label": [
                    t("loyalty.pareto.point", customers=top_customers, total=customers, share=percent(top_share))
                ],
            }
        )
        point = alt.Chart(point_frame).encode(x="customer_share:Q", y="revenue_share:Q")
        layers += [
            point.mark_point(size=POINT_SIZE, filled=True, color=RULE_COLOR),
            point.mark_text(align="left", baseline="top", dx=8, dy=4, fontWeight="bold").encode(text="label:N"),
        ]
    return style(alt.layer(*layers), title_key=PARETO_TITLE)


def pyramid(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Draw customers per tier as a centred pyramid: strategic on top, lead at the bottom.

    `frame` is a pyramid frame (tier, customers; one row per tier).
    """
    if frame.empty or int(frame["customers"].sum()) == 0:
        return empty(PYRAMID_TITLE)
    rows = frame.assign(
        label=frame["tier"].map(lambda value: enum_label("tier", value)),
        left=-frame["customers"] / 2,
        right=frame["customers"] / 2,
    )
    order = [enum_label("tier", tier) for tier in TIER_ORDER]
    tier_title, customers_title = t("loyalty.axis.tier"), t("loyalty.axis.customers")
    # Symmetric room beyond the widest tier keeps the pyramid centred and leaves space for its count.
    reach = float(rows["customers"].max()) / 2 * LABEL_ROOM
    base = alt.Chart(rows).encode(
        y=alt.Y("label:N", title=tier_title, sort=order, scale=alt.Scale(domain=order), axis=alt.Axis(ticks=False)),
    )
    bars = base.mark_bar(cornerRadius=3).encode(
        # Centred on zero, so each tier is as wide as it has customers; the x axis itself means nothing.
        x=alt.X("left:Q", axis=None, scale=alt.Scale(domain=[-reach, reach])),
        x2="right:Q",
        color=alt.Color("label:N", scale=alt.Scale(domain=order, range=PYRAMID_COLORS), legend=None),
        tooltip=[alt.Tooltip("label:N", title=tier_title), alt.Tooltip("customers:Q", title=customers_title)],
    )
    counts = base.mark_text(align="left", dx=6).encode(x="right:Q", text="customers:Q")
    chart = alt.layer(bars, counts)
    return style(chart, title_key=PYRAMID_TITLE).properties(height=PYRAMID_ROW_PX * len(order) + AXES_PX)
