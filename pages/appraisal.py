"""Performance appraisal (绩效考核): leaderboard, scorecards, targets, attitude scores, scheme, close / reopen."""

from __future__ import annotations

import calendar
import functools
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import pandas as pd
import streamlit as st

from crm import appraisal, targets, ui
from crm.access import Filters
from crm.charts import appraisal as charts
from crm.charts import translated
from crm.errors import NotFoundError, PermissionDeniedError, ValidationError
from crm.i18n import t
from crm.periods import Period

actor = ui.require_login()

PREFIX = "appraisal"
PRESETS = ("this_month", "last_month", "this_quarter", "last_quarter", "pick_month", "pick_quarter")
DEFAULT_PRESET = "last_month"  # appraisal usually looks back at the month just finished
MIN_YEAR, MAX_YEAR = 2000, 2100
MONTHS = tuple(range(1, 13))
QUARTERS = (1, 2, 3, 4)
WEIGHT_TOTAL = Decimal(100)
SCORE_MIN, SCORE_MAX = 0, 100
COLUMNS_PER_ROW = 4
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"
# Why a metric without data is left out of the composite (SPEC §6).
LEFT_OUT_REASONS = {
    "revenue": "no_target",
    "new_customers": "no_target",
    "visits": "no_target",
    "win_rate": "no_closed_deals",
    "csat": "no_responses",
    "complaint_on_time": "no_complaints",
    "attitude": "no_attitude",
}
# Record columns holding enum values, and the enum kind that translates them.
RECORD_ENUMS = {"tier": "tier", "outcome": "outcome", "stage": "stage", "result": "stage", "severity": "severity"}
PENDING_KEY = f"{PREFIX}:pending"
TARGET_ERRORS_KEY = f"{PREFIX}:target_errors"  # + ":<rep id>:<month>": messages belong to one form
ATTITUDE_ERRORS_KEY = f"{PREFIX}:attitude_errors"
SCHEME_ERRORS_KEY = f"{PREFIX}:scheme_errors"


# A close or reopen waiting for confirmation: (action "close" | "reopen", period, team or None for
# the company). A plain tuple, not a class of this script: the script is re-executed on every run,
# so an instance of a class defined here would not be an instance of the next run's class.
Pending = tuple[str, Period, str | None]


def metric_name(metric: str) -> str:
    return t(f"appraisal.metric.{metric}")


def scope_text(team: str | None) -> str:
    return t("appraisal.scope.company") if team is None else t("appraisal.scope.team", team=team)


def fmt_time(value: datetime | None) -> str:
    return "?" if value is None else value.strftime(TIME_FORMAT)


def flash(area: str, kind: str, text: str) -> None:
    """Keep a message for the next run (the save reruns the page so every figure is fresh)."""
    st.session_state[f"{PREFIX}:flash:{area}"] = (kind, text)


def show_flash(area: str) -> None:
    message = st.session_state.pop(f"{PREFIX}:flash:{area}", None)
    if message:
        kind, text = message
        (st.success if kind == "success" else st.error)(text)


# --- period and scope -----------------------------------------------------------------------


def period_selector() -> Period:
    """Render the appraisal period (a month or a quarter) in the sidebar; return it."""
    as_of = ui.today()
    preset = st.sidebar.selectbox(
        t("appraisal.period.preset"),
        PRESETS,
        index=PRESETS.index(DEFAULT_PRESET),
        format_func=lambda value: t(f"appraisal.period.{value}") if value.startswith("pick_") else t(f"filter.{value}"),
        key=f"{PREFIX}:preset",
    )
    if preset not in ("pick_month", "pick_quarter"):
        return ui.preset_period(preset, as_of=as_of)
    year = st.sidebar.number_input(
        t("appraisal.period.year"),
        min_value=MIN_YEAR,
        max_value=MAX_YEAR,
        value=as_of.year,
        step=1,
        key=f"{PREFIX}:year",
    )
    if preset == "pick_month":
        month = st.sidebar.selectbox(
            t("appraisal.period.month"),
            MONTHS,
            index=as_of.month - 1,
            format_func=lambda m: t("appraisal.period.month_label", name=calendar.month_name[m], month=m),
            key=f"{PREFIX}:month",
        )
        return Period.month(int(year), int(month))
    quarter = st.sidebar.selectbox(
        t("appraisal.period.quarter"),
        QUARTERS,
        index=(as_of.month - 1) // 3,
        format_func=lambda q: t("appraisal.period.quarter_label", quarter=q),
        key=f"{PREFIX}:quarter",
    )
    return Period.quarter(int(year), int(quarter))


def team_selector(teams: Sequence[str]) -> str | None:
    """Let an admin narrow the appraisal to one team (others see their own scope only)."""
    if not actor.is_admin or not teams:
        return None
    team: str | None = st.sidebar.selectbox(
        t("filter.team"),
        [None, *teams],
        format_func=lambda value: t("common.all") if value is None else value,
        key=f"{PREFIX}:team",
    )
    return team


# --- close / reopen -------------------------------------------------------------------------


def render_status(period: Period, status_team: str | None, cards: Sequence[appraisal.Scorecard]) -> None:
    """Show whether the period is open or frozen, and the close / reopen actions the role may take."""
    with ui.reading() as session:
        status = appraisal.period_status(session, period=period, team=status_team)
        closing = status
        if not status.closed and status.company_closed:
            closing = appraisal.period_status(session, period=period, team=None)
        closer = appraisal.user_display_name(session, user_id=closing.closed_by_id) if status.frozen else None
    label = period.label()
    if status.frozen:
        st.warning(
            t(
                "appraisal.status.closed",
                period=label,
                scope=scope_text(closing.team),
                version=closing.scheme_version,
                who=closer or "?",
                at=fmt_time(closing.closed_at),
            )
        )
    else:
        st.info(t("appraisal.status.open", period=label, scope=scope_text(status_team)))
        frozen_teams = sorted({card.team or "—" for card in cards if card.frozen})
        if frozen_teams:
            st.caption(t("appraisal.status.partly_closed", teams=", ".join(frozen_teams)))
    show_flash("status")

    if actor.is_rep:
        return
    buttons = st.columns(2)
    close_team: str | None = None
    may_close = False
    if actor.is_manager and actor.team and not status.frozen:
        close_team, may_close = actor.team, True
    elif actor.is_admin and not status.company_closed:
        may_close = True  # an admin's close freezes the whole company
    if may_close:
        label_key = "appraisal.close.company" if close_team is None else "appraisal.close.team"
        if buttons[0].button(t(label_key, team=close_team), key=f"{PREFIX}:close"):
            st.session_state[PENDING_KEY] = ("close", period, close_team)
    if actor.is_admin and status.frozen:
        # Reopen the scope that is closed: the selected team's own close, else the company's.
        reopen_team = status_team if status.closed else None
        if buttons[1].button(t("appraisal.reopen", scope=scope_text(reopen_team)), key=f"{PREFIX}:reopen"):
            st.session_state[PENDING_KEY] = ("reopen", period, reopen_team)

    pending = st.session_state.get(PENDING_KEY)
    if pending is not None and pending[1] == period:
        confirm_action(pending)


def confirm_action(pending: Pending) -> None:
    """Ask before freezing or unfreezing a period; run it on 'yes'."""
    action, period, team = pending
    label = period.label()
    st.warning(t(f"appraisal.confirm.{action}", period=label, scope=scope_text(team)))
    yes, no, _ = st.columns([1, 1, 4])
    if no.button(t("common.cancel"), key=f"{PREFIX}:confirm_no"):
        st.session_state.pop(PENDING_KEY, None)
        st.rerun()
    if not yes.button(t("appraisal.confirm.yes"), key=f"{PREFIX}:confirm_yes", type="primary"):
        return
    st.session_state.pop(PENDING_KEY, None)
    try:
        with ui.writing() as session:
            if action == "close":
                appraisal.close_period(session, actor=actor, period=period, at=ui.utcnow())
            else:
                appraisal.reopen_period(session, actor=actor, period=period, team=team, at=ui.utcnow())
    except ValidationError as exc:
        flash("status", "error", " ".join(ui.translate_errors(exc).values()))
    except NotFoundError:
        flash("status", "error", t("common.not_found"))
    except PermissionDeniedError:
        flash("status", "error", t("common.not_allowed"))
    else:
        done = "appraisal.closed_ok" if action == "close" else "appraisal.reopened_ok"
        flash("status", "success", t(done, period=label))
    st.rerun()


# --- leaderboard ----------------------------------------------------------------------------


def rep_labels(cards: Sequence[appraisal.Scorecard]) -> dict[int, str]:
    """Name each rep by display name; add the username where two reps share a name."""
    counts = Counter(card.display_name for card in cards)
    return {
        card.rep_id: card.display_name if counts[card.display_name] == 1 else f"{card.display_name} ({card.username})"
        for card in cards
    }


def leaderboard_table(cards: Sequence[appraisal.Scorecard], labels: dict[int, str]) -> pd.DataFrame:
    """Return the leaderboard rows with translated headers (sub-scores one decimal, None when left out)."""
    rows = []
    for card in cards:
        scores = card.as_dict()
        row: dict[str, object] = {
            t("appraisal.col.rank"): card.rank,
            t("appraisal.col.rep"): labels[card.rep_id],
            t("appraisal.col.team"): card.team,
            t("appraisal.col.composite"): card.composite,
            t("appraisal.col.grade"): card.grade,
            t("appraisal.col.bonus"): card.bonus_coefficient,
        }
        row.update({metric_name(metric): scores[metric] for metric in appraisal.METRICS})
        row[t("appraisal.col.left_out")] = ", ".join(metric_name(metric) for metric in card.metrics_left_out)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame[t("appraisal.col.rank")] = frame[t("appraisal.col.rank")].astype("Int64")
    # A column of only left-out metrics would otherwise be text; numbers keep the one-decimal format.
    for column in (t("appraisal.col.composite"), t("appraisal.col.bonus"), *map(metric_name, appraisal.METRICS)):
        frame[column] = frame[column].astype("float64")
    return frame


def render_leaderboard(
    cards: Sequence[appraisal.Scorecard], labels: dict[int, str], bands: dict[str, Decimal], period: Period
) -> None:
    if not cards:
        st.info(t("common.no_rows"))
        return
    one_decimal = st.column_config.NumberColumn(format="%.1f")
    config = {name: one_decimal for name in (t("appraisal.col.composite"), *map(metric_name, appraisal.METRICS))}
    config[t("appraisal.col.bonus")] = st.column_config.NumberColumn(format="%.2f")
    # A left-out metric shows as an empty cell, not "None".
    st.dataframe(
        leaderboard_table(cards, labels), hide_index=True, width="stretch", column_config=config, placeholder=""
    )

    chart_rows = pd.DataFrame(
        {
            "rep": [labels[card.rep_id] for card in cards],
            "composite": [card.composite for card in cards],
            "grade": [card.grade for card in cards],
        }
    )
    left, right = st.columns([3, 2])
    left.altair_chart(charts.composite_bars(chart_rows, bands=bands), width="stretch")
    right.altair_chart(charts.grade_distribution(appraisal.grade_distribution(cards)), width="stretch")

    st.caption(t("appraisal.export.title"))
    csv_col, xlsx_col, _ = st.columns([1, 1, 3])
    name = f"appraisal_{period.label()}"
    # Built only when clicked, so a page view does not pay for the Excel workbook.
    csv_col.download_button(
        t("common.download_csv"),
        data=functools.partial(appraisal.export_leaderboard_csv, list(cards)),
        file_name=f"{name}.csv",
        mime="text/csv",
        on_click="ignore",
        key=f"{PREFIX}:csv",
    )
    xlsx_col.download_button(
        t("common.download_xlsx"),
        data=functools.partial(appraisal.export_leaderboard_xlsx, list(cards)),
        file_name=f"{name}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        on_click="ignore",
        key=f"{PREFIX}:xlsx",
    )


# --- scorecard ------------------------------------------------------------------------------


def _count(value: int | None) -> str:
    return t("common.none") if value is None else str(value)


def metric_rows(card: appraisal.Scorecard) -> pd.DataFrame:
    """Return one row per metric: actual, target, sub-score and the weight it carried after rescaling."""
    closed = card.won + card.lost
    actual = {
        "revenue": ui.fmt_money(card.revenue_actual),
        "new_customers": str(card.new_customers),
        "visits": str(card.visits),
        "win_rate": t("appraisal.actual.win_rate", rate=ui.fmt_rate(card.win_rate), won=card.won, closed=closed)
        if closed
        else t("common.na"),
        "csat": t("appraisal.actual.csat", mean=f"{card.csat_mean:.2f}", count=card.csat_count)
        if card.csat_mean is not None
        else t("common.na"),
        "complaint_on_time": t(
            "appraisal.actual.complaints",
            rate=ui.fmt_rate(card.complaint_on_time_rate),
            on_time=card.complaints_on_time,
            resolved=card.complaints_resolved,
        )
        if card.complaints_resolved
        else t("common.na"),
        "attitude": t("appraisal.actual.attitude", mean=f"{card.attitude_mean:.1f}", count=card.attitude_count)
        if card.attitude_mean is not None
        else t("common.na"),
    }
    target = {
        "revenue": t("common.none") if card.revenue_target is None else ui.fmt_money(card.revenue_target),
        "new_customers": _count(card.new_customer_target),
        "visits": _count(card.visit_target),
    }
    scores = card.as_dict()
    frame = pd.DataFrame(
        [
            {
                t("appraisal.scorecard.col.metric"): metric_name(metric),
                t("appraisal.scorecard.col.actual"): actual[metric],
                t("appraisal.scorecard.col.target"): target.get(metric, t("common.none")),
                t("appraisal.scorecard.col.score"): scores[metric],
                t("appraisal.scorecard.col.weight"): card.weights.get(metric),
            }
            for metric in appraisal.METRICS
        ]
    )
    for column in (t("appraisal.scorecard.col.score"), t("appraisal.scorecard.col.weight")):
        frame[column] = frame[column].astype("float64")
    return frame


def records_table(records: pd.DataFrame) -> pd.DataFrame:
    """Translate the enum values and headers of a scorecard_records frame."""
    shown = records
    for column, kind in RECORD_ENUMS.items():
        if column in shown.columns:
            shown = translated(shown, column, kind)
    if "on_time" in shown.columns:
        shown = shown.assign(on_time=shown["on_time"].map(lambda v: t("appraisal.yes") if v else t("appraisal.no")))
    return shown.rename(columns={column: record_header(column) for column in shown.columns})


def record_header(column: str) -> str:
    """Translate a record column; the four attitude items keep their own names."""
    return t(f"appraisal.item.{column}") if column in targets.ATTITUDE_ITEMS else t(f"appraisal.rec.{column}")


def requested_rep(ids: list[int]) -> tuple[int, bool]:
    """Return the index of the rep named by ?rep=<id> (0 without one) and whether that id may be shown."""
    raw = st.query_params.get("rep")
    if raw is None:
        return 0, True
    try:
        rep_id = int(raw)
    except ValueError:
        return 0, False
    return (ids.index(rep_id), True) if rep_id in ids else (0, False)


def render_scorecard(cards: Sequence[appraisal.Scorecard], labels: dict[int, str], period: Period) -> None:
    if not cards:
        st.info(t("common.no_rows"))
        return
    ids = [card.rep_id for card in cards]
    index, allowed = requested_rep(ids)
    if not allowed:
        st.error(t("common.not_found"))
        return
    rep_id = st.selectbox(
        t("appraisal.scorecard.rep"), ids, index=index, format_func=labels.__getitem__, key=f"{PREFIX}:rep"
    )
    card = next(card for card in cards if card.rep_id == rep_id)
    na = t("common.na")
    cols = st.columns(4)
    with cols[0]:
        ui.metric_card(t("appraisal.col.composite"), na if card.composite is None else f"{card.composite:.1f}", None)
    with cols[1]:
        ui.metric_card(t("appraisal.col.grade"), card.grade or na, None)
    with cols[2]:
        ui.metric_card(
            t("appraisal.col.bonus"), na if card.bonus_coefficient is None else f"{card.bonus_coefficient:g}", None
        )
    with cols[3]:
        rank = na if card.rank is None else t("appraisal.scorecard.rank_value", rank=card.rank, total=len(cards))
        ui.metric_card(t("appraisal.scorecard.rank"), rank, None)
    if card.frozen:
        st.caption(t("appraisal.scorecard.frozen", version=card.scheme_version))

    one_decimal = st.column_config.NumberColumn(format="%.1f")
    st.dataframe(
        metric_rows(card),
        hide_index=True,
        width="stretch",
        column_config={
            t("appraisal.scorecard.col.score"): one_decimal,
            t("appraisal.scorecard.col.weight"): one_decimal,
        },
        placeholder="",
    )
    if card.composite is None:
        st.warning(t("appraisal.scorecard.no_composite"))
    elif card.metrics_left_out:
        items = "; ".join(
            f"{metric_name(metric)} ({t('appraisal.reason.' + LEFT_OUT_REASONS[metric])})"
            for metric in card.metrics_left_out
        )
        st.info(t("appraisal.scorecard.left_out", items=items))
    else:
        st.caption(t("appraisal.scorecard.all_counted"))

    st.subheader(t("appraisal.records.title"))
    metric = st.selectbox(
        t("appraisal.records.metric"), appraisal.METRICS, format_func=metric_name, key=f"{PREFIX}:records_metric"
    )
    try:
        records = ui.cached(appraisal.scorecard_records)(actor=actor, rep_id=rep_id, period=period, metric=metric)
    except NotFoundError:
        st.error(t("common.not_found"))
        return
    if records.empty:
        st.caption(t("common.no_rows"))
        return
    st.dataframe(records_table(records), hide_index=True, width="stretch")
    if len(records) >= appraisal.DEFAULT_RECORD_LIMIT:
        st.caption(t("appraisal.records.limited", limit=appraisal.DEFAULT_RECORD_LIMIT))


# --- targets and attitude (managers, admins) ------------------------------------------------


def _cell(frame: pd.DataFrame, column: str) -> object | None:
    """Return the first row's value of a column, None when there is no row or the value is missing."""
    if frame.empty:
        return None
    value = frame.iloc[0][column]
    return None if pd.isna(value) else value


def _int(value: object | None) -> int | None:
    return None if value is None else int(float(str(value)))


def render_targets(reps: list[tuple[int, str]], period: Period) -> None:
    names = dict(reps)
    st.subheader(t("appraisal.target.form"))
    show_flash("targets")
    if not reps:
        st.info(t("appraisal.target.no_reps"))
        return
    st.caption(t("appraisal.target.help"))
    rep_column, month_column = st.columns(2)
    rep_id = rep_column.selectbox(
        t("appraisal.target.rep"), list(names), format_func=names.__getitem__, key=f"{PREFIX}:target:rep"
    )
    month = month_column.date_input(t("appraisal.target.month"), value=period.start, key=f"{PREFIX}:target:month")
    if not isinstance(month, date):
        month_column.error(t("error.required"))
        return
    month_period = Period.month(month.year, month.month)
    # The form starts from the targets already set, so a save changes what the user sees
    # instead of silently replacing it with blanks.
    current = ui.cached(targets.list_targets)(actor=actor, period=month_period)
    existing = current[current["rep_id"] == rep_id]
    revenue_now = _cell(existing, "revenue_target")
    suffix = f"{rep_id}:{month_period.label()}"
    errors_key = f"{TARGET_ERRORS_KEY}:{suffix}"
    errors: dict[str, str] = st.session_state.get(errors_key, {})
    if errors:
        st.error(t("common.fix_fields"))
        ui.field_error(errors, "rep_id")
        ui.field_error(errors, "month")
    with st.form(f"{PREFIX}_target", clear_on_submit=False):
        revenue_col, customers_col, visits_col = st.columns(3)
        with revenue_col:
            revenue = st.number_input(
                t("appraisal.target.revenue"),
                value=None if revenue_now is None else float(str(revenue_now)),
                step=1000.0,
                format="%.2f",
                key=f"{PREFIX}:target:revenue:{suffix}",
            )
            ui.field_error(errors, "revenue_target")
        with customers_col:
            new_customers = st.number_input(
                t("appraisal.target.new_customers"),
                value=_int(_cell(existing, "new_customer_target")),
                step=1,
                key=f"{PREFIX}:target:new_customers:{suffix}",
            )
            ui.field_error(errors, "new_customer_target")
        with visits_col:
            visits = st.number_input(
                t("appraisal.target.visits"),
                value=_int(_cell(existing, "visit_target")),
                step=1,
                key=f"{PREFIX}:target:visits:{suffix}",
            )
            ui.field_error(errors, "visit_target")
        submitted = st.form_submit_button(t("common.save"), type="primary", key=f"{PREFIX}:target:save")
    if submitted:
        data = targets.TargetInput(
            rep_id=rep_id,
            month=month,
            revenue_target=revenue,
            new_customer_target=new_customers,
            visit_target=visits,
        )
        try:
            with ui.writing() as session:
                targets.set_target(session, actor=actor, data=data, now=ui.utcnow())
        except ValidationError as exc:
            st.session_state[errors_key] = ui.translate_errors(exc)
            st.rerun()
        except (NotFoundError, PermissionDeniedError) as exc:
            ui.report_error(exc)
        else:
            st.session_state.pop(errors_key, None)
            flash("targets", "success", t("appraisal.target.saved", rep=names[rep_id], month=month_period.label()))
            st.rerun()

    st.subheader(t("appraisal.target.list", period=period.label()))
    rows = ui.cached(targets.list_targets)(actor=actor, period=period)
    if rows.empty:
        st.caption(t("common.no_rows"))
        return
    shown = rows.drop(columns=["id", "rep_id"]).assign(month=rows["month"].map(lambda d: d.strftime("%Y-%m")))
    st.dataframe(
        shown.rename(
            columns={
                "rep_name": t("appraisal.rec.rep_name"),
                "month": t("appraisal.rec.month"),
                "revenue_target": t("appraisal.target.revenue"),
                "new_customer_target": t("appraisal.target.new_customers"),
                "visit_target": t("appraisal.target.visits"),
            }
        ),
        hide_index=True,
        width="stretch",
        placeholder=t("common.none"),
    )


def render_attitude(reps: list[tuple[int, str]], period: Period) -> None:
    names = dict(reps)
    st.subheader(t("appraisal.attitude.form", period=period.label()))
    show_flash("attitude")
    if not reps:
        st.info(t("appraisal.target.no_reps"))
        return
    st.caption(t("appraisal.attitude.help"))
    rep_id = st.selectbox(
        t("appraisal.target.rep"), list(names), format_func=names.__getitem__, key=f"{PREFIX}:attitude:rep"
    )
    scores = ui.cached(targets.list_attitude_scores)(actor=actor, period=period)
    # Start from the actor's own score of this rep and period: saving again replaces it.
    mine = scores[
        (scores["rep_id"] == rep_id)
        & (scores["scorer_id"] == actor.id)
        & (scores["period_start"] == period.start)
        & (scores["period_end"] == period.end)
    ]
    suffix = f"{rep_id}:{period.label()}"
    errors_key = f"{ATTITUDE_ERRORS_KEY}:{suffix}"
    errors: dict[str, str] = st.session_state.get(errors_key, {})
    if errors:
        st.error(t("common.fix_fields"))
        for name in ("rep_id", "period_start", "period_end"):
            ui.field_error(errors, name)
    items: dict[str, int | None] = {}
    with st.form(f"{PREFIX}_attitude", clear_on_submit=False):
        for item, column in zip(targets.ATTITUDE_ITEMS, st.columns(len(targets.ATTITUDE_ITEMS)), strict=True):
            with column:
                items[item] = st.number_input(
                    t(f"appraisal.item.{item}"),
                    min_value=SCORE_MIN,
                    max_value=SCORE_MAX,
                    value=_int(_cell(mine, item)),
                    step=1,
                    key=f"{PREFIX}:attitude:{item}:{suffix}",
                )
                ui.field_error(errors, item)
        comment = st.text_area(
            t("appraisal.attitude.comment"),
            value=str(_cell(mine, "comment") or ""),
            key=f"{PREFIX}:attitude:comment:{suffix}",
        )
        ui.field_error(errors, "comment")
        submitted = st.form_submit_button(t("common.save"), type="primary", key=f"{PREFIX}:attitude:save")
    if submitted:
        data = targets.AttitudeInput(
            rep_id=rep_id,
            period_start=period.start,
            period_end=period.end,
            initiative=items["initiative"],
            cooperation=items["cooperation"],
            responsibility=items["responsibility"],
            discipline=items["discipline"],
            comment=comment,
        )
        try:
            with ui.writing() as session:
                targets.set_attitude_score(session, actor=actor, data=data, now=ui.utcnow())
        except ValidationError as exc:
            st.session_state[errors_key] = ui.translate_errors(exc)
            st.rerun()
        except (NotFoundError, PermissionDeniedError) as exc:
            ui.report_error(exc)
        else:
            st.session_state.pop(errors_key, None)
            flash("attitude", "success", t("appraisal.attitude.saved", rep=names[rep_id]))
            st.rerun()

    st.subheader(t("appraisal.attitude.list", period=period.label()))
    if scores.empty:
        st.caption(t("common.no_rows"))
        return
    shown = scores.drop(columns=["id", "rep_id", "scorer_id"])
    headers = {column: record_header(column) for column in shown.columns}
    st.dataframe(
        shown.rename(columns=headers),
        hide_index=True,
        width="stretch",
        column_config={t("appraisal.rec.mean"): st.column_config.NumberColumn(format="%.1f")},
        placeholder=t("common.none"),
    )


# --- scheme (admins) ------------------------------------------------------------------------


def _decimal(value: float | int | None) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def number_grid(
    names: Sequence[str],
    *,
    label: Callable[[str], str],
    values: dict[str, Decimal],
    key: str,
    errors: dict[str, str],
    field: str,
) -> dict[str, float | None]:
    """Render one number input per name, four to a row, each with its message under it."""
    out: dict[str, float | None] = {}
    columns = st.columns(COLUMNS_PER_ROW)
    for position, name in enumerate(names):
        with columns[position % COLUMNS_PER_ROW]:
            out[name] = st.number_input(
                label(name), value=float(values[name]), step=1.0, format="%.2f", key=f"{key}:{name}"
            )
            ui.field_error(errors, f"{field}.{name}")
    return out


def render_scheme(scheme: appraisal.Scheme) -> None:
    show_flash("scheme")
    st.caption(t("appraisal.scheme.current", version=scheme.version, at=fmt_time(scheme.created_at)))
    st.caption(t("appraisal.scheme.help"))
    errors: dict[str, str] = st.session_state.get(SCHEME_ERRORS_KEY, {})
    if errors:
        st.error(t("common.fix_fields"))
    # Keys carry the version: after a save the inputs start again from the new version's values.
    key = f"{PREFIX}:scheme:v{scheme.version}"

    st.markdown(f"**{t('appraisal.scheme.weights')}**")
    weights = number_grid(
        appraisal.METRICS,
        label=metric_name,
        values=dict(scheme.weights),
        key=f"{key}:weight",
        errors=errors,
        field="weights",
    )
    total = sum((_decimal(weight) for weight in weights.values()), Decimal(0)).normalize()
    total_text = f"{total:f}"
    if total == WEIGHT_TOTAL:
        st.success(t("appraisal.scheme.total_ok", total=total_text))
    else:
        st.warning(t("appraisal.scheme.total_bad", total=total_text))
    ui.field_error(errors, "weights")

    *banded, rest = appraisal.GRADES
    st.markdown(f"**{t('appraisal.scheme.bands')}**")
    typed_bands = number_grid(
        banded,
        label=lambda grade: t("appraisal.scheme.band", grade=grade),
        values=dict(scheme.bands),
        key=f"{key}:band",
        errors=errors,
        field="bands",
    )
    st.caption(t("appraisal.scheme.band_rest", grade=rest, above=banded[-1]))
    # The lowest grade is "everything below": it keeps its stored minimum (0 by default).
    bands: dict[str, object] = {**typed_bands, rest: scheme.bands[rest]}
    ui.field_error(errors, f"bands.{rest}")

    st.markdown(f"**{t('appraisal.scheme.coefficients')}**")
    coefficients = number_grid(
        appraisal.GRADES,
        label=lambda grade: t("appraisal.scheme.coefficient", grade=grade),
        values=dict(scheme.coefficients),
        key=f"{key}:coefficient",
        errors=errors,
        field="coefficients",
    )

    if st.button(t("appraisal.scheme.save"), type="primary", key=f"{PREFIX}:scheme:save"):
        try:
            with ui.writing() as session:
                saved = appraisal.save_scheme(
                    session, actor=actor, weights=weights, bands=bands, coefficients=coefficients, at=ui.utcnow()
                )
        except ValidationError as exc:
            st.session_state[SCHEME_ERRORS_KEY] = ui.translate_errors(exc)
            st.rerun()
        except PermissionDeniedError as exc:
            ui.report_error(exc)
        else:
            st.session_state[SCHEME_ERRORS_KEY] = {}
            flash("scheme", "success", t("appraisal.scheme.saved", version=saved.version))
            st.rerun()

    st.subheader(t("appraisal.scheme.history"))
    with ui.reading() as session:
        history = appraisal.scheme_history(session)
    history = history.assign(created_at=history["created_at"].map(fmt_time))
    st.dataframe(
        history.rename(columns={column: t(f"appraisal.scheme.{column}") for column in history.columns}),
        hide_index=True,
        width="stretch",
        placeholder=t("common.none"),
    )


# --- page -----------------------------------------------------------------------------------


def chart_bands(cards: Sequence[appraisal.Scorecard], current: appraisal.Scheme) -> dict[str, Decimal]:
    """Return the bands the shown scorecards were graded with (a closed period keeps its own)."""
    versions = {card.scheme_version for card in cards}
    if len(versions) == 1 and current.version not in versions:
        with ui.reading() as session:
            return dict(appraisal.scheme_at(session, version=versions.pop()).bands)
    return dict(current.bands)


st.title(t("appraisal.title"))
period = period_selector()
with ui.reading() as session:
    options = ui.filter_options(session, actor=actor)
    current_scheme = appraisal.current_scheme(session)
team = team_selector(options.teams)
st.caption(t("appraisal.period.selected", period=period.label()))

cards = ui.cached(appraisal.leaderboard)(actor=actor, period=period, filters=Filters(team=team))
labels = rep_labels(cards)
render_status(period, team if actor.is_admin else actor.team, cards)

tab_names = ["leaderboard", "scorecard"]
if not actor.is_rep:
    tab_names += ["targets", "attitude"]
if actor.is_admin:
    tab_names.append("scheme")
tabs = dict(zip(tab_names, st.tabs([t(f"appraisal.tab.{name}") for name in tab_names]), strict=True))

with tabs["leaderboard"]:
    render_leaderboard(cards, labels, chart_bands(cards, current_scheme), period)
with tabs["scorecard"]:
    render_scorecard(cards, labels, period)
if "targets" in tabs:
    with tabs["targets"]:
        render_targets(options.reps, period)
    with tabs["attitude"]:
        render_attitude(options.reps, period)
if "scheme" in tabs:
    with tabs["scheme"]:
        render_scheme(current_scheme)
