"""Loyalty (忠诚度): retention and churn, repeat purchase, lifetime value, the customer pyramid, the at-risk list."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from crm import kpi, ui
from crm.access import Actor, Filters
from crm.charts import loyalty as charts
from crm.csvio import dataframe_to_csv
from crm.i18n import enum_label, t
from crm.kpi.loyalty import AT_RISK_DAYS
from crm.periods import Period

actor = ui.require_login()

PAGE = "loyalty"
PARAM = "customer"
LOG_PAGE = "pages/log_interaction.py"
AT_RISK_LIMIT = 200
ORDERS_LIMIT = 100
CSV_MIME = "text/csv"


def count_delta(value: int, previous: int) -> str:
    return f"{value - previous:+d}"


def cards(compared: kpi.Compared[kpi.Loyalty], value: kpi.CustomerValue, value_before: kpi.CustomerValue) -> None:
    now, before = compared.current, compared.previous
    first_row, second_row = st.columns(3), st.columns(3)
    with first_row[0]:
        ui.metric_card(
            t("loyalty.card.active"),
            ui.fmt_number(now.active_customers),
            count_delta(now.active_customers, before.active_customers),
            help_text=t("loyalty.card.active_help"),
        )
    with first_row[1]:
        ui.metric_card(
            t("loyalty.card.repeat"),
            ui.fmt_rate(now.repeat_purchase_rate),
            ui.fmt_delta(now.repeat_purchase_rate, before.repeat_purchase_rate, is_rate=True),
            help_text=t("loyalty.card.repeat_help"),
        )
    with first_row[2]:
        ui.metric_card(
            t("loyalty.card.retention"),
            ui.fmt_rate(now.retention_rate),
            ui.fmt_delta(now.retention_rate, before.retention_rate, is_rate=True),
            help_text=t("loyalty.card.retention_help"),
        )
    with second_row[0]:
        ui.metric_card(
            t("loyalty.card.churn"),
            ui.fmt_rate(now.churn_rate),
            ui.fmt_delta(now.churn_rate, before.churn_rate, is_rate=True),
            help_text=t("loyalty.card.churn_help"),
            inverse=True,  # more churn is worse
        )
    with second_row[1]:
        ui.metric_card(
            t("loyalty.card.clv"),
            ui.fmt_money(value.clv),
            ui.fmt_delta(value.clv, value_before.clv, is_rate=False),
            help_text=t("loyalty.card.clv_help"),
        )
    with second_row[2]:
        ui.metric_card(
            t("loyalty.card.top_share"),
            ui.fmt_rate(value.top_share),
            ui.fmt_delta(value.top_share, value_before.top_share, is_rate=True),
            help_text=t("loyalty.card.top_share_help"),
        )


def started(frame: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Keep the months that have begun: a month still to come would chart as 100% churn."""
    return frame[frame["month"] <= as_of].reset_index(drop=True)


def at_risk_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the at-risk rows as shown (and exported): translated tier, pool owner, 'never'."""
    shown = frame[
        ["customer_code", "customer_name", "tier", "owner_name", "last_activity", "days_since_activity"]
    ].copy()
    shown["tier"] = shown["tier"].map(lambda value: enum_label("tier", value))
    shown["owner_name"] = shown["owner_name"].map(lambda name: t("loyalty.pool") if pd.isna(name) else name)
    shown["last_activity"] = shown["last_activity"].map(lambda day: t("loyalty.never") if pd.isna(day) else str(day))
    shown["days_since_activity"] = shown["days_since_activity"].astype("Int64")
    return shown.rename(
        columns={
            "customer_code": t("loyalty.col.code"),
            "customer_name": t("loyalty.col.customer"),
            "tier": t("loyalty.col.tier"),
            "owner_name": t("loyalty.col.owner"),
            "last_activity": t("loyalty.col.last_activity"),
            "days_since_activity": t("loyalty.col.days_silent"),
        }
    )


def log_visit_picker(frame: pd.DataFrame) -> None:
    """Offer the at-risk customers and open the visit form on the chosen one."""
    names = dict(zip(frame["customer_id"], frame["customer_name"], strict=True))
    pick, go = st.columns([3, 1], vertical_alignment="bottom")
    with pick:
        chosen = st.selectbox(
            t("loyalty.at_risk.pick"), list(names), key=f"{PAGE}:at_risk:pick", format_func=names.__getitem__
        )
    with go:
        if st.button(t("loyalty.at_risk.log_visit"), key=f"{PAGE}:at_risk:log", icon="📝") and chosen is not None:
            st.switch_page(LOG_PAGE, query_params={PARAM: str(chosen)})


def at_risk(who: Actor, filters: Filters, as_of: date) -> None:
    st.subheader(t("loyalty.at_risk.title"))
    st.caption(t("loyalty.at_risk.caption", days=AT_RISK_DAYS, date=f"{as_of:%Y-%m-%d}"))
    frame = ui.cached(kpi.at_risk_customers)(actor=who, as_of=as_of, filters=filters, limit=AT_RISK_LIMIT)
    if frame.empty:
        st.info(t("loyalty.at_risk.none"))
        return
    shown = at_risk_table(frame)
    ui.dataframe(shown)
    log_visit_picker(frame)
    st.download_button(
        t("common.download_csv"),
        data=dataframe_to_csv(shown),
        file_name=t("loyalty.at_risk.file", date=f"{as_of:%Y%m%d}"),
        mime=CSV_MIME,
        key=f"{PAGE}:at_risk:csv",
        icon="⬇️",
    )


def orders_behind(who: Actor, period: Period, filters: Filters) -> None:
    with st.expander(t("loyalty.orders.title")):
        frame = ui.cached(kpi.orders_in_period)(actor=who, period=period, filters=filters, limit=ORDERS_LIMIT)
        if frame.empty:
            st.caption(t("common.no_rows"))
            return
        ui.dataframe(
            frame[["ordered_on", "customer_code", "customer_name", "rep_name", "amount"]],
            columns={
                "ordered_on": t("loyalty.col.ordered_on"),
                "customer_code": t("loyalty.col.code"),
                "customer_name": t("loyalty.col.customer"),
                "rep_name": t("loyalty.col.rep"),
                "amount": t("loyalty.col.amount"),
            },
        )


# --- page ---------------------------------------------------------------------------------------

st.title(t("loyalty.title"))
period, filters = ui.period_and_filters(actor, key=f"{PAGE}:filters")
compared = ui.cached(kpi.loyalty_compared)(actor=actor, period=period, filters=filters)
value = ui.cached(kpi.customer_value)(actor=actor, period=period, filters=filters)
value_before = ui.cached(kpi.customer_value)(actor=actor, period=period.previous(), filters=filters)
retention = ui.cached(kpi.retention_trend)(actor=actor, period=period, filters=filters)
tiers = ui.cached(kpi.pyramid)(actor=actor, filters=filters)
today = ui.today()
last_day = period.end - timedelta(days=1)
st.caption(f"{period.start:%Y-%m-%d} – {last_day:%Y-%m-%d} · {t('loyalty.caption')}")

cards(compared, value, value_before)
left, right = st.columns(2)
left.altair_chart(charts.retention_lines(started(retention, today)), width="stretch")
repeat = ui.cached(kpi.repeat_trend)(actor=actor, period=period, filters=filters)
right.altair_chart(charts.repeat_trend(started(repeat, today)), width="stretch")
left, right = st.columns(2)
left.altair_chart(
    charts.pareto_curve(
        value.curve, customers=value.customers, top_customers=value.top_customers, top_share=value.top_share
    ),
    width="stretch",
)
right.altair_chart(charts.pyramid(tiers), width="stretch")
at_risk(actor, filters, today)
orders_behind(actor, period, filters)
