"""Complaints (投诉台账): the ledger with SLA status, on-time rate, open / assign / resolve forms."""

# The login guard (ui.require_login) is the first statement after the imports.

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from crm import kpi, ui
from crm.access import Actor, Filters
from crm.charts import complaints as charts
from crm.complaints import (
    LIST_LIMIT,
    SLA_HOURS,
    ComplaintInput,
    ResolutionInput,
    SlaStatus,
    assign_complaint,
    due_at,
    list_complaints,
    open_complaint,
    resolve_complaint,
)
from crm.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from crm.i18n import enum_label, t
from crm.kpi.common import month_slots
from crm.kpi.drilldown import ComplaintSet
from crm.kpi.service import service_by_period
from crm.models import Severity
from crm.periods import Period

actor = ui.require_login()

PAGE = "complaints"
OPEN_FORM = f"{PAGE}:open"  # also the name of the form's idempotency token
OPEN_ENTRY = f"{PAGE}:open:entry"
ASSIGN = f"{PAGE}:assign"
RESOLVE = f"{PAGE}:resolve"
CATEGORIES = ("quality", "delivery", "service", "billing", "after_sales", "other")
SEVERITIES = [severity.value for severity in Severity]
DEFAULT_SEVERITY = Severity.MEDIUM.value
STATUS_BADGES = {
    SlaStatus.ON_TIME.value: "🟢",
    SlaStatus.DUE_SOON.value: "🟠",
    SlaStatus.OVERDUE.value: "🔴",
    SlaStatus.RESOLVED_ON_TIME.value: "✅",
    SlaStatus.RESOLVED_LATE.value: "⚠️",
}
OVERDUE_ROW_STYLE = "background-color: #fdecea"
DRILL_LIMIT = 100
TIME_FORMAT = "%Y-%m-%d %H:%M"
DATE_FORMAT = "YYYY-MM-DD"
HOURS_DECIMALS = 1
HOURS_FORMAT = "{:.1f}"
MINUTE = timedelta(minutes=1)

state = st.session_state


# --- small helpers ------------------------------------------------------------------------------


def flash(area: str, kind: str, text: str) -> None:
    """Keep a message for the next run, shown next to the form that caused it."""
    state[f"{PAGE}:flash:{area}"] = (kind, text)


def show_flash(area: str) -> None:
    message = state.pop(f"{PAGE}:flash:{area}", None)
    if message:
        kind, text = message
        (st.success if kind == "success" else st.error)(text)


def missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def fmt_time(value: Any) -> str:
    return t("common.none") if missing(value) else pd.Timestamp(value).strftime(TIME_FORMAT)


def category_label(value: Any) -> str:
    """Translate a known category key; show anything else (imported data) as it was typed."""
    if missing(value):
        return t("common.none")
    key = f"complaints.category.{value}"
    text = t(key)
    return str(value) if text == key else text


def status_badge(value: str) -> str:
    return f"{STATUS_BADGES.get(value, '')} {enum_label('sla', value)}".strip()


def yes_no(value: Any) -> str:
    if missing(value):
        return t("common.none")
    return t("complaints.yes") if bool(value) else t("complaints.no")


def as_of_minute(moment: datetime) -> datetime:
    """Round up to the minute: counts include what was saved this minute and reruns share the cache."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + MINUTE


def complaint_label(row: pd.Series) -> str:
    return (
        f"#{int(row['id'])} · {row['customer_name']} · {enum_label('severity', row['severity'])} · "
        f"{status_badge(row['sla_status'])}"
    )


# --- figures ------------------------------------------------------------------------------------


def cards(figures: kpi.Compared[kpi.Service]) -> None:
    now, before = figures.current, figures.previous
    cells = st.columns(4)
    with cells[0]:
        ui.metric_card(
            t("complaints.card.on_time_rate"),
            ui.fmt_rate(now.on_time_rate),
            ui.fmt_delta(now.on_time_rate, before.on_time_rate, is_rate=True),
            help_text=t("complaints.card.on_time_help", on_time=now.resolved_on_time, resolved=now.resolved),
        )
    with cells[1]:
        ui.metric_card(
            t("complaints.card.overdue"),
            str(now.overdue_open),
            ui.fmt_delta(now.overdue_open, before.overdue_open, is_rate=False),
            inverse=True,
        )
    with cells[2]:
        ui.metric_card(
            t("complaints.card.open"), str(now.open), ui.fmt_delta(now.open, before.open, is_rate=False), inverse=True
        )
    with cells[3]:
        ui.metric_card(
            t("complaints.card.mean_hours"),
            ui.fmt_number(now.mean_resolution_hours, HOURS_DECIMALS),
            ui.fmt_delta(now.mean_resolution_hours, before.mean_resolution_hours, is_rate=False),
            inverse=True,
        )


def chart_section(who: Actor, period: Period, filters: Filters, as_of: datetime) -> None:
    by_severity = ui.cached(kpi.complaints_by_severity)(actor=who, period=period, as_of=as_of, filters=filters)
    slots = month_slots([period])
    by_month, _ = ui.cached(service_by_period)(
        actor=who, periods=[slot.window for slot in slots], as_of=as_of, filters=filters
    )
    left, right = st.columns(2)
    left.altair_chart(charts.by_severity(by_severity), width="stretch")
    trend = charts.trend_frame([slot.month for slot in slots], by_month)
    right.altair_chart(charts.on_time_trend(trend), width="stretch")


def drill_down(who: Actor, period: Period, filters: Filters, as_of: datetime) -> None:
    """List the complaints behind the on-time rate and the overdue count."""
    for which, title in (
        (ComplaintSet.RESOLVED, "complaints.drill.resolved"),
        (ComplaintSet.OVERDUE, "complaints.drill.overdue"),
    ):
        with st.expander(t(title)):
            frame = ui.cached(kpi.complaints)(
                actor=who, period=period, as_of=as_of, which=which, filters=filters, limit=DRILL_LIMIT
            )
            if frame.empty:
                st.caption(t("common.no_rows"))
                continue
            shown = frame[
                ["complaint_id", "customer_name", "rep_name", "severity", "category", "opened_at", "due_at"]
                + ["resolved_at", "on_time", "resolution_hours"]
            ].copy()
            shown["severity"] = shown["severity"].map(lambda v: enum_label("severity", v))
            shown["category"] = shown["category"].map(category_label)
            shown["on_time"] = shown["on_time"].map(yes_no)
            shown["resolution_hours"] = shown["resolution_hours"].map(
                lambda v: None if missing(v) else round(float(v), HOURS_DECIMALS)
            )
            for column in ("opened_at", "due_at", "resolved_at"):
                shown[column] = shown[column].map(fmt_time)
            ui.dataframe(
                shown,
                columns={
                    "complaint_id": t("complaints.col.id"),
                    "customer_name": t("complaints.col.customer"),
                    "rep_name": t("complaints.col.assignee"),
                    "severity": t("complaints.col.severity"),
                    "category": t("complaints.col.category"),
                    "opened_at": t("complaints.col.opened_at"),
                    "due_at": t("complaints.col.due_at"),
                    "resolved_at": t("complaints.col.resolved_at"),
                    "on_time": t("complaints.col.on_time"),
                    "resolution_hours": t("complaints.col.resolution_hours"),
                },
            )


# --- ledger -------------------------------------------------------------------------------------


LEDGER_COLUMNS = {
    "id": "complaints.col.id",
    "sla_status": "complaints.col.status",
    "opened_at": "complaints.col.opened_at",
    "customer_name": "complaints.col.customer",
    "category": "complaints.col.category",
    "severity": "complaints.col.severity",
    "assignee_name": "complaints.col.assignee",
    "due_at": "complaints.col.due_at",
    "hours_left": "complaints.col.hours_left",
    "resolved_at": "complaints.col.resolved_at",
    "satisfied": "complaints.col.satisfied",
    "description": "complaints.col.description",
    "resolution": "complaints.col.resolution",
}


def ledger(who: Actor, filters: Filters, as_of: datetime) -> None:
    st.subheader(t("complaints.ledger"))
    st.caption(t("complaints.ledger_caption", limit=LIST_LIMIT))
    status_col, severity_col, open_col = st.columns([2, 2, 1])
    status = status_col.selectbox(
        t("complaints.filter.status"),
        [None, *(s.value for s in SlaStatus)],
        key=f"{PAGE}:ledger:status",
        format_func=lambda v: t("common.all") if v is None else status_badge(v),
    )
    severity = severity_col.selectbox(
        t("complaints.filter.severity"),
        [None, *SEVERITIES],
        key=f"{PAGE}:ledger:severity",
        format_func=lambda v: t("common.all") if v is None else enum_label("severity", v),
    )
    open_col.checkbox(t("complaints.filter.open_only"), key=f"{PAGE}:ledger:open_only")
    frame = ui.cached(list_complaints)(
        actor=who,
        as_of=as_of,
        status=None if status is None else SlaStatus(status),
        open_only=bool(state.get(f"{PAGE}:ledger:open_only")),
        severity=severity,
        filters=filters,
    )
    if frame.empty:
        st.info(t("common.no_rows"))
        return
    overdue = (frame["sla_status"] == SlaStatus.OVERDUE.value).to_list()
    shown = frame[list(LEDGER_COLUMNS)].copy()
    shown["sla_status"] = shown["sla_status"].map(status_badge)
    shown["category"] = shown["category"].map(category_label)
    shown["severity"] = shown["severity"].map(lambda v: enum_label("severity", v))
    shown["satisfied"] = shown["satisfied"].map(yes_no)
    shown["hours_left"] = shown["hours_left"].map(lambda v: None if missing(v) else round(float(v), HOURS_DECIMALS))
    for column in ("opened_at", "due_at", "resolved_at"):
        shown[column] = shown[column].map(fmt_time)
    shown = shown.rename(columns={name: t(key) for name, key in LEDGER_COLUMNS.items()}).reset_index(drop=True)
    # Overdue rows stand out in the ledger, not only by their badge.
    styled = shown.style.apply(
        lambda row: [OVERDUE_ROW_STYLE if overdue[row.name] else "" for _ in row], axis=1
    ).format({t("complaints.col.hours_left"): HOURS_FORMAT}, na_rep=t("common.none"))
    st.dataframe(styled, hide_index=True, width="stretch")


# --- open a complaint ---------------------------------------------------------------------------


def okey(name: str, entry: int | None = None) -> str:
    """Return the state key of an open-form field; every saved entry gets new, empty widgets."""
    return f"{OPEN_FORM}:{state.get(OPEN_ENTRY, 0) if entry is None else entry}:{name}"


def seed_open_defaults() -> str:
    now = ui.utcnow().replace(second=0, microsecond=0)
    state.setdefault(OPEN_ENTRY, 0)
    state.setdefault(okey("severity"), DEFAULT_SEVERITY)
    state.setdefault(okey("date"), now.date())
    state.setdefault(okey("time"), now.time())
    state.setdefault(f"{OPEN_FORM}:known", {})
    # Both clicks of a double click carry this token, whatever the first click changed.
    return ui.new_form_token(OPEN_FORM)


def opened_at(entry: int | None = None) -> datetime | None:
    day, clock = state.get(okey("date", entry)), state.get(okey("time", entry))
    return datetime.combine(day, clock or time.min) if isinstance(day, date) else None


def save_open(who: Actor, entry: int, token: str) -> None:
    """Log the complaint once per token; keep the input and show per-field messages on refusal."""

    def value(name: str) -> Any:
        return state.get(okey(name, entry))

    data = ComplaintInput(
        customer_id=value("customer"),
        category=value("category"),
        severity=value("severity"),
        description=value("description"),
        opened_at=opened_at(entry),
        assignee_id=None if who.is_rep else value("assignee"),
    )
    try:
        with ui.writing() as session:
            row = open_complaint(session, actor=who, data=data, now=ui.utcnow(), idempotency_key=token)
            saved_id, due = row.id, row.due_at
    except ValidationError as error:
        state[f"{OPEN_FORM}:errors"] = ui.translate_errors(error)
        return
    except NotFoundError:
        state[f"{OPEN_FORM}:errors"] = {"customer_id": t("common.not_found")}
        return
    except PermissionDeniedError:
        state[f"{OPEN_FORM}:errors"] = {"assignee_id": t("common.not_allowed")}
        return
    if ui.new_form_token(OPEN_FORM) == token:
        ui.rotate_form_token(OPEN_FORM)
    state[OPEN_ENTRY] = max(state.get(OPEN_ENTRY, 0), entry + 1)
    state.pop(f"{OPEN_FORM}:errors", None)
    flash("open", "success", t("complaints.open.saved", id=saved_id, due=fmt_time(due)))


def open_form(who: Actor) -> None:
    token = seed_open_defaults()
    show_flash("open")
    errors: dict[str, str] = state.get(f"{OPEN_FORM}:errors", {})
    if errors:
        st.error(t("common.fix_fields"))
    ui.customer_picker(
        who,
        errors,
        texts="complaints.field",
        search_key=okey("search"),
        customer_key=okey("customer"),
        known_key=f"{OPEN_FORM}:known",
    )
    severity_col, day_col, time_col = st.columns([2, 1, 1])
    with severity_col:
        severity = st.radio(
            t("complaints.field.severity"),
            SEVERITIES,
            key=okey("severity"),
            horizontal=True,
            format_func=lambda v: enum_label("severity", v),
        )
        ui.field_error(errors, "severity")
    with day_col:
        st.date_input(t("complaints.field.opened_date"), key=okey("date"), format=DATE_FORMAT)
        ui.field_error(errors, "opened_at")
    with time_col:
        st.time_input(t("complaints.field.opened_time"), key=okey("time"), step=60)
    opened = opened_at()
    if opened is not None and severity is not None:
        st.caption(
            t(
                "complaints.field.due_preview",
                due=fmt_time(due_at(opened_at=opened, severity=severity)),
                hours=SLA_HOURS[Severity(severity)],
                severity=enum_label("severity", severity),
            )
        )
    reps = {} if who.is_rep else ui.rep_choices(who)
    entry = state[OPEN_ENTRY]
    with st.form(okey("form"), clear_on_submit=False):
        st.selectbox(
            t("complaints.field.category"), CATEGORIES, index=None, key=okey("category"), format_func=category_label
        )
        ui.field_error(errors, "category")
        st.text_area(t("complaints.field.description"), key=okey("description"), height=100)
        ui.field_error(errors, "description")
        if reps:
            st.selectbox(
                t("complaints.field.assignee"),
                [None, *reps],
                key=okey("assignee"),
                format_func=lambda v: t("complaints.field.assignee_default") if v is None else reps[v],
            )
            ui.field_error(errors, "assignee_id")
        st.form_submit_button(
            t("complaints.open.submit"),
            type="primary",
            icon="🛎️",
            key=okey("submit"),
            on_click=save_open,
            args=(who, entry, token),
        )


# --- assign and resolve -------------------------------------------------------------------------


def pick_open(area: str, open_rows: dict[int, pd.Series]) -> int | None:
    key = f"{area}:pick"
    if state.get(key) not in open_rows:
        state.pop(key, None)
    picked: int | None = st.selectbox(
        t("complaints.field.complaint"),
        list(open_rows),
        index=None,
        key=key,
        placeholder=t("complaints.field.complaint_placeholder"),
        format_func=lambda value: complaint_label(open_rows[value]),
    )
    return picked


def save_assign(who: Actor, complaint_id: int) -> None:
    assignee = state.get(f"{ASSIGN}:{complaint_id}:assignee")
    if assignee is None:
        state[f"{ASSIGN}:errors"] = {"assignee_id": t("error.required")}
        return
    try:
        with ui.writing() as session:
            assign_complaint(session, actor=who, complaint_id=complaint_id, assignee_id=assignee, now=ui.utcnow())
    except (NotFoundError, PermissionDeniedError, ConflictError) as error:
        state.pop(f"{ASSIGN}:errors", None)
        messages = {ConflictError: "error.stale", NotFoundError: "common.not_found"}
        flash("assign", "error", t(messages.get(type(error), "common.not_allowed")))
        return
    state.pop(f"{ASSIGN}:errors", None)
    names = ui.rep_choices(who)
    flash("assign", "success", t("complaints.assign.saved", id=complaint_id, name=names.get(assignee, "?")))


def assign_form(who: Actor, open_rows: dict[int, pd.Series]) -> None:
    show_flash("assign")
    if not open_rows:
        st.caption(t("complaints.none_open"))
        return
    picked = pick_open(ASSIGN, open_rows)
    if picked is None:
        return
    errors: dict[str, str] = state.get(f"{ASSIGN}:errors", {})
    reps = ui.rep_choices(who)
    key = f"{ASSIGN}:{picked}:assignee"
    if state.get(key) not in reps:
        current = int(open_rows[picked]["assignee_id"])
        state[key] = current if current in reps else None
    with st.form(f"{ASSIGN}:{picked}:form", clear_on_submit=False):
        st.selectbox(
            t("complaints.field.assignee"),
            list(reps),
            key=key,
            index=None,
            format_func=reps.__getitem__,
        )
        ui.field_error(errors, "assignee_id")
        st.form_submit_button(
            t("complaints.assign.submit"),
            type="primary",
            key=f"{ASSIGN}:{picked}:submit",
            on_click=save_assign,
            args=(who, picked),
        )


def rkey(complaint_id: int, name: str) -> str:
    return f"{RESOLVE}:{complaint_id}:{name}"


def forget_resolve() -> None:
    state.pop(f"{RESOLVE}:errors", None)
    state.pop(f"{RESOLVE}:conflict", None)


def save_resolve(who: Actor, complaint_id: int) -> None:
    """Resolve the complaint; keep the input on refusal; say who resolved it first on a conflict."""
    day, clock = state.get(rkey(complaint_id, "date")), state.get(rkey(complaint_id, "time"))
    data = ResolutionInput(
        resolution=state.get(rkey(complaint_id, "resolution")),
        resolved_at=datetime.combine(day, clock or time.min) if isinstance(day, date) else None,
        satisfied=state.get(rkey(complaint_id, "satisfied")),
    )
    try:
        with ui.writing() as session:
            row = resolve_complaint(session, actor=who, complaint_id=complaint_id, data=data, now=ui.utcnow())
            on_time = row.resolved_at is not None and row.resolved_at <= row.due_at
    except ValidationError as error:
        state[f"{RESOLVE}:errors"] = ui.translate_errors(error)
        return
    except ConflictError as error:
        state[f"{RESOLVE}:conflict"] = error
        state.pop(f"{RESOLVE}:errors", None)
        return
    except (NotFoundError, PermissionDeniedError):
        forget_resolve()
        flash("resolve", "error", t("common.not_found"))
        return
    forget_resolve()
    status = SlaStatus.RESOLVED_ON_TIME if on_time else SlaStatus.RESOLVED_LATE
    flash("resolve", "success", t("complaints.resolve.saved", id=complaint_id, status=enum_label("sla", status.value)))


def resolve_form(who: Actor, open_rows: dict[int, pd.Series]) -> None:
    show_flash("resolve")
    conflict: ConflictError | None = state.get(f"{RESOLVE}:conflict")
    if conflict is not None:
        ui.report_error(conflict)
        st.button(t("common.reload"), key=f"{RESOLVE}:reload", on_click=forget_resolve, icon="🔄")
    if not open_rows:
        st.caption(t("complaints.none_open"))
        return
    picked = pick_open(RESOLVE, open_rows)
    if picked is None:
        return
    errors: dict[str, str] = state.get(f"{RESOLVE}:errors", {})
    if errors:
        st.error(t("common.fix_fields"))
    now = ui.utcnow().replace(second=0, microsecond=0)
    state.setdefault(rkey(picked, "date"), now.date())
    state.setdefault(rkey(picked, "time"), now.time())
    row = open_rows[picked]
    st.caption(f"{category_label(row['category'])} · {row['description']}")
    with st.form(rkey(picked, "form"), clear_on_submit=False):
        st.text_area(t("complaints.field.resolution"), key=rkey(picked, "resolution"), height=100)
        ui.field_error(errors, "resolution")
        day_col, time_col = st.columns(2)
        with day_col:
            st.date_input(t("complaints.field.resolved_date"), key=rkey(picked, "date"), format=DATE_FORMAT)
            ui.field_error(errors, "resolved_at")
        with time_col:
            st.time_input(t("complaints.field.resolved_time"), key=rkey(picked, "time"), step=60)
        st.radio(
            t("complaints.field.satisfied"),
            [True, False],
            index=None,
            key=rkey(picked, "satisfied"),
            horizontal=True,
            format_func=yes_no,
        )
        ui.field_error(errors, "satisfied")
        st.form_submit_button(
            t("complaints.resolve.submit"),
            type="primary",
            key=rkey(picked, "submit"),
            on_click=save_resolve,
            args=(who, picked),
        )


def forms(who: Actor, as_of: datetime) -> None:
    open_list = ui.cached(list_complaints)(actor=who, as_of=as_of, open_only=True)
    open_rows = {int(row["id"]): row for _, row in open_list.iterrows()}
    names = ["open", "assign", "resolve"] if not who.is_rep else ["open", "resolve"]
    tabs = dict(zip(names, st.tabs([t(f"complaints.tab.{name}") for name in names]), strict=True))
    with tabs["open"]:
        open_form(who)
    if "assign" in tabs:
        with tabs["assign"]:
            assign_form(who, open_rows)
    with tabs["resolve"]:
        resolve_form(who, open_rows)


# --- page ---------------------------------------------------------------------------------------

st.title(t("nav.complaints"))
period, filters = ui.period_and_filters(actor, key=PAGE)
as_of = as_of_minute(ui.utcnow())
service = ui.cached(kpi.service_compared)(actor=actor, period=period, as_of=as_of, filters=filters)
st.caption(t("complaints.caption", period=period.label(), as_of=fmt_time(service.current.as_of)))
cards(service)
chart_section(actor, period, filters, as_of)
drill_down(actor, period, filters, as_of)
ledger(actor, filters, as_of)
forms(actor, as_of)
