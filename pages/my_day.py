"""My day (a rep's landing page): follow-ups due today and overdue, customers at risk, own KPIs vs targets.

Managers and admins may open it too: it then shows their own follow-ups and customers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from crm import kpi, targets, ui
from crm.access import Filters
from crm.i18n import enum_label, t
from crm.kpi.loyalty import AT_RISK_DAYS
from crm.kpi.reps import RepFigures, rep_figures
from crm.periods import Period

actor = ui.require_login()

PREFIX = "my_day"
CUSTOMER_PAGE = "pages/customers.py"
LOG_PAGE = "pages/log_interaction.py"
CUSTOMER_PARAM = "customer"
FOLLOW_UP_LIMIT = 50
AT_RISK_LIMIT = 20
ROW_LAYOUT = [5, 1.4, 1.4]
STATUS_TODAY = "today"


def go(page: str, customer_id: int | None = None) -> None:
    """Open another page, with the customer preselected when one is given."""
    if customer_id is None:
        st.switch_page(page)
    else:
        st.switch_page(page, query_params={CUSTOMER_PARAM: str(customer_id)})


def fmt_day(value: Any) -> str:
    if value is None or (not isinstance(value, date) and pd.isna(value)):
        return t("common.none")
    return f"{pd.Timestamp(value):%Y-%m-%d}"


def customer_buttons(section: str, customer_id: int, columns: list[Any]) -> None:
    """Render the row's 'open customer' and 'log visit' taps."""
    if columns[1].button(t("my_day.open"), key=f"{PREFIX}:open:{section}:{customer_id}", width="stretch"):
        go(CUSTOMER_PAGE, customer_id)
    if columns[2].button(t("my_day.log"), key=f"{PREFIX}:log:{section}:{customer_id}", width="stretch"):
        go(LOG_PAGE, customer_id)


def status_text(row: Any) -> str:
    if row.status == STATUS_TODAY:
        return t("my_day.status.today")
    days = int(row.days_overdue)
    return t("my_day.status.overdue_one") if days == 1 else t("my_day.status.overdue", days=days)


def follow_up_row(row: Any) -> None:
    """Render one follow-up: who, what was agreed, when it was due, and the two taps."""
    with st.container(border=True):
        columns = st.columns(ROW_LAYOUT, vertical_alignment="center")
        marker = "🟠" if row.status == STATUS_TODAY else "🔴"
        columns[0].markdown(f"{marker} **{row.customer_code or ''} · {row.customer_name}** — {status_text(row)}")
        columns[0].caption(
            " · ".join(
                [
                    t("my_day.agreed", subject=row.subject or t("my_day.no_subject")),
                    t("my_day.due_on", day=fmt_day(row.follow_up_on)),
                    t(
                        "my_day.last_contact",
                        kind=enum_label("interaction", row.last_kind),
                        day=fmt_day(row.last_contact_at),
                    ),
                ]
            )
        )
        customer_buttons("follow_up", int(row.customer_id), columns)


def follow_up_rows(follow_ups: pd.DataFrame) -> None:
    st.subheader(t("my_day.follow_ups"))
    if follow_ups.empty:
        st.success(t("my_day.no_follow_ups"))
        return
    for row in follow_ups.itertuples(index=False):
        follow_up_row(row)
    if len(follow_ups) >= FOLLOW_UP_LIMIT:
        st.caption(t("my_day.first_only", limit=FOLLOW_UP_LIMIT))


def at_risk_row(row: Any) -> None:
    """Render one customer at risk: who, how long silent, and the two taps."""
    with st.container(border=True):
        columns = st.columns(ROW_LAYOUT, vertical_alignment="center")
        silence = (
            t("my_day.never")
            if row.days_since_activity is None or pd.isna(row.days_since_activity)
            else t("my_day.silent", days=int(row.days_since_activity))
        )
        columns[0].markdown(f"**{row.customer_code or ''} · {row.customer_name}**")
        columns[0].caption(f"{enum_label('tier', row.tier)} · {silence}")
        customer_buttons("at_risk", int(row.customer_id), columns)


def at_risk_rows(at_risk: pd.DataFrame) -> None:
    st.subheader(t("my_day.at_risk"))
    st.caption(t("my_day.at_risk_help", days=AT_RISK_DAYS))
    if at_risk.empty:
        st.success(t("my_day.no_at_risk"))
        return
    for row in at_risk.itertuples(index=False):
        at_risk_row(row)
    if len(at_risk) >= AT_RISK_LIMIT:
        st.caption(t("my_day.first_only", limit=AT_RISK_LIMIT))


def target_value(row: pd.Series | None, column: str) -> float | None:
    if row is None or pd.isna(row[column]):
        return None
    return float(row[column])


def progress(label: str, actual: float, target: float | None, fmt: Callable[[float], str]) -> None:
    """Show progress towards a target as a bar with 'x of y', or the figure alone without a target."""
    if target is None or target <= 0:
        st.markdown(t("my_day.no_target", label=label, actual=fmt(actual)))
        return
    st.progress(
        min(1.0, max(0.0, actual / target)),
        text=t("my_day.progress", label=label, actual=fmt(actual), target=fmt(target)),
    )


def own_kpis(mine: RepFigures | None, goals: pd.Series | None, month: Period) -> None:
    st.subheader(t("my_day.kpis", month=month.label()))
    if mine is None:
        st.info(t("my_day.no_figures"))
        return
    progress(t("my_day.kpi.revenue"), float(mine.revenue), target_value(goals, "revenue_target"), ui.fmt_money)
    progress(
        t("my_day.kpi.new_customers"),
        mine.new_customers,
        target_value(goals, "new_customer_target"),
        ui.fmt_number,
    )
    progress(t("my_day.kpi.visits"), mine.visits, target_value(goals, "visit_target"), ui.fmt_number)
    left, right = st.columns(2)
    with left:
        ui.metric_card(t("my_day.kpi.win_rate"), ui.fmt_rate(mine.win_rate), None)
    with right:
        ui.metric_card(t("my_day.kpi.csat"), ui.fmt_number(mine.csat_mean, 2), None)


today = ui.today()
month = Period.month(today.year, today.month)
own = Filters(rep_id=actor.id)
follow_ups = ui.cached(kpi.my_day)(actor=actor, as_of=today, limit=FOLLOW_UP_LIMIT)
at_risk = ui.cached(kpi.at_risk_customers)(actor=actor, as_of=today, filters=own, limit=AT_RISK_LIMIT)
figures = ui.cached(rep_figures)(actor=actor, period=month, filters=own)
mine = next((row for row in figures if row.rep_id == actor.id), None)
target_rows = ui.cached(targets.list_targets)(actor=actor, period=month)
own_targets = target_rows[target_rows["rep_id"] == actor.id]
goals = None if own_targets.empty else own_targets.iloc[0]

st.title(t("my_day.title", day=fmt_day(today)))
st.caption(t("my_day.greeting", name=actor.display_name))
if st.button(t("my_day.log_visit"), key=f"{PREFIX}:log_visit", type="primary", width="stretch"):
    go(LOG_PAGE)

due_today = int((follow_ups["status"] == STATUS_TODAY).sum())
cards = st.columns(3)
with cards[0]:
    ui.metric_card(t("my_day.count.today"), str(due_today), None)
with cards[1]:
    ui.metric_card(t("my_day.count.overdue"), str(len(follow_ups) - due_today), None)
with cards[2]:
    ui.metric_card(t("my_day.count.at_risk"), str(len(at_risk)), None)

work, numbers = st.columns([3, 2], gap="large")
with work:
    follow_up_rows(follow_ups)
    at_risk_rows(at_risk)
with numbers:
    own_kpis(mine, goals, month)
