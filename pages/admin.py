"""Admin: users, imports, exports and the audit log (admins only)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from crm import audit_log, importing, ui, users
from crm.access import assignable_reps
from crm.csvio import dataframe_to_csv
from crm.errors import CrmError, ValidationError
from crm.i18n import LANGUAGE_NAMES, LANGUAGES, enum_label, t
from crm.models import Role
from crm.settings import PROJECT_ROOT

actor = ui.require_role(Role.ADMIN)

# The repository is cloned next to shared/, where the Maven dataset lives.
MAVEN_DEFAULT_DIR = PROJECT_ROOT.parent / "shared/datasets/maven_crm"
IMPORT_KINDS = ("customers", "interactions", "maven")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
FLASH_KEY = "admin:flash"
TAB_KEY = "admin:tab"
CONFIRM_KEY = "admin:confirm"
NEW_USER_KEY = "admin:new"
NEW_USER_FIELDS = (
    "username",
    "display_name",
    "email",
    "role",
    "team",
    "region",
    "manager_id",
    "language",
    "password",
    "repeat",
)
EDIT_FIELDS = ("display_name", "email", "role", "team", "region", "manager_id", "language")
RESET_FIELDS = ("new_password", "repeat")
IMPORT_ERRORS_KEY = "admin:import:errors"
IMPORT_RESULT_KEY = "admin:import:result"
AUDIT_PAGE_KEY = "admin:audit:page"
AUDIT_SIGNATURE_KEY = "admin:audit:signature"

USER_COLUMNS = {
    "username": "admin.col.username",
    "display_name": "admin.col.display_name",
    "role": "admin.col.role",
    "team": "admin.col.team",
    "region": "admin.col.region",
    "manager": "admin.col.manager",
    "active": "admin.col.active",
    "locked_until": "admin.col.locked_until",
    "failed_logins": "admin.col.failed_logins",
    "language": "admin.col.language",
}
REPORT_COLUMNS = {
    "line": "admin.import.col.line",
    "entity": "admin.import.col.entity",
    "action": "admin.import.col.action",
    "key": "admin.import.col.key",
    "field": "admin.import.col.field",
    "message": "admin.import.col.message",
}
AUDIT_COLUMNS = {
    "at": "admin.audit.col.at",
    "actor": "admin.audit.col.actor",
    "action": "admin.audit.col.action",
    "entity": "admin.audit.col.entity",
    "entity_id": "admin.audit.col.entity_id",
    "changes": "admin.audit.col.changes",
}


# --- small helpers -------------------------------------------------------------------------------


def labels(columns: dict[str, str]) -> dict[str, str]:
    return {name: t(key) for name, key in columns.items()}


def wide_table(frame: pd.DataFrame, columns: dict[str, str], *, wide: str) -> None:
    """Show a table with translated headers whose `wide` column gets the room (reasons, changes)."""
    headers = labels(columns)
    st.dataframe(
        frame.rename(columns=headers),
        hide_index=True,
        width="stretch",
        column_config={headers[wide]: st.column_config.TextColumn(width="large")},
    )


def text_of(value: Any) -> str:
    """Return a table cell as form text ('' for a missing value)."""
    return "" if value is None or pd.isna(value) else str(value)


def flash(message: str) -> None:
    """Keep a success message for the rerun that shows the refreshed data."""
    st.session_state[FLASH_KEY] = message


def show_flash() -> None:
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.success(message)


def forget(prefix: str, fields: tuple[str, ...]) -> None:
    """Empty a form's widgets after a successful save so the next entry starts blank."""
    for name in fields:
        st.session_state.pop(f"{prefix}:{name}", None)


def show_form_errors(errors: dict[str, str], shown: tuple[str, ...]) -> None:
    """Say that the form was refused, with any message that belongs to no field on it."""
    if not errors:
        return
    st.error(t("common.fix_fields"))
    for name, message in errors.items():
        if name not in shown:
            st.error(f"{name}: {message}", icon="⚠️")


def save(errors_key: str, work: Callable[[Session], str], *, clear: Callable[[], None] | None = None) -> None:
    """Run one write; on success flash its message and rerun, on a refusal keep the typed input."""
    try:
        with ui.writing() as session:
            message = work(session)
    except ValidationError as exc:
        st.session_state[errors_key] = ui.translate_errors(exc)
        st.rerun()
    except CrmError as exc:
        st.session_state[errors_key] = {}
        ui.report_error(exc)
        return
    st.session_state[errors_key] = {}
    st.session_state.pop(CONFIRM_KEY, None)
    if clear is not None:
        clear()
    flash(message)
    st.rerun()


def manager_options(table: pd.DataFrame, *, exclude: int | None, keep: int | None) -> list[int | None]:
    """Offer the active managers (and the current one, so an edit never drops it silently)."""
    is_manager = (table["role"] == Role.MANAGER.value) & table["active"].astype(bool)
    ids = [int(i) for i in table.loc[is_manager, "id"] if int(i) != exclude]
    if keep is not None and keep not in ids:
        ids.append(keep)
    return [None, *ids]


def role_label(value: str) -> str:
    return enum_label("role", value)


def language_label(value: str) -> str:
    return LANGUAGE_NAMES.get(value, value)


# --- users ---------------------------------------------------------------------------------------


def users_table(table: pd.DataFrame) -> None:
    locked_until = pd.to_datetime(table["locked_until"])
    shown = pd.DataFrame(
        {
            "username": table["username"],
            "display_name": table["display_name"],
            "role": [role_label(value) for value in table["role"]],
            "team": table["team"],
            "region": table["region"],
            "manager": table["manager_name"],
            "active": table["active"].astype(bool),
            # A lock that has run out no longer stops anyone: show only current ones.
            "locked_until": locked_until.where(locked_until > pd.Timestamp(ui.utcnow())),
            "failed_logins": table["failed_logins"],
            "language": [language_label(value) for value in table["language"]],
        }
    )
    ui.dataframe(shown, columns=labels(USER_COLUMNS))


def create_user_form(table: pd.DataFrame) -> None:
    st.subheader(t("admin.users.new"))
    errors: dict[str, str] = st.session_state.get(f"{NEW_USER_KEY}:errors", {})
    names = dict(zip(table["id"].astype(int), table["display_name"], strict=True))
    show_form_errors(errors, NEW_USER_FIELDS)
    with st.form(NEW_USER_KEY, clear_on_submit=False):
        left, right = st.columns(2)
        with left:
            username = st.text_input(t("admin.field.username"), key=f"{NEW_USER_KEY}:username")
            ui.field_error(errors, "username")
            email = st.text_input(t("admin.field.email"), key=f"{NEW_USER_KEY}:email")
            ui.field_error(errors, "email")
            team = st.text_input(t("admin.field.team"), key=f"{NEW_USER_KEY}:team")
            ui.field_error(errors, "team")
            manager_id = st.selectbox(
                t("admin.field.manager"),
                manager_options(table, exclude=None, keep=None),
                format_func=lambda v: t("admin.no_manager") if v is None else names[v],
                key=f"{NEW_USER_KEY}:manager_id",
            )
            ui.field_error(errors, "manager_id")
            password = st.text_input(t("admin.field.password"), type="password", key=f"{NEW_USER_KEY}:password")
            ui.field_error(errors, "password")
        with right:
            display_name = st.text_input(t("admin.field.display_name"), key=f"{NEW_USER_KEY}:display_name")
            ui.field_error(errors, "display_name")
            role = st.selectbox(
                t("admin.field.role"),
                [role.value for role in (Role.REP, Role.MANAGER, Role.ADMIN)],
                format_func=role_label,
                key=f"{NEW_USER_KEY}:role",
            )
            ui.field_error(errors, "role")
            region = st.text_input(t("admin.field.region"), key=f"{NEW_USER_KEY}:region")
            ui.field_error(errors, "region")
            language = st.selectbox(
                t("admin.field.language"), LANGUAGES, format_func=language_label, key=f"{NEW_USER_KEY}:language"
            )
            ui.field_error(errors, "language")
            repeat = st.text_input(t("admin.field.repeat_password"), type="password", key=f"{NEW_USER_KEY}:repeat")
            ui.field_error(errors, "repeat")
        submitted = st.form_submit_button(t("admin.users.create"), type="primary", key=f"{NEW_USER_KEY}:submit")
    if not submitted:
        return
    if password != repeat:
        st.session_state[f"{NEW_USER_KEY}:errors"] = {"repeat": t("admin.passwords_differ")}
        st.rerun()
    data = users.UserInput(
        username=username,
        display_name=display_name,
        email=email,
        role=role,
        team=team,
        region=region,
        manager_id=manager_id,
        language=language,
        password=password,
    )

    def create(session: Session) -> str:
        created = users.create_user(session, actor=actor, data=data, now=ui.utcnow())
        return t("admin.users.created", username=created.username)

    save(f"{NEW_USER_KEY}:errors", create, clear=lambda: forget(NEW_USER_KEY, NEW_USER_FIELDS))


def edit_user_form(table: pd.DataFrame, row: pd.Series) -> None:
    uid = int(row["id"])
    prefix = f"admin:edit:{uid}"
    errors: dict[str, str] = st.session_state.get(f"{prefix}:errors", {})
    names = dict(zip(table["id"].astype(int), table["display_name"], strict=True))
    current_manager = None if pd.isna(row["manager_id"]) else int(row["manager_id"])
    managers = manager_options(table, exclude=uid, keep=current_manager)
    roles = [role.value for role in (Role.REP, Role.MANAGER, Role.ADMIN)]
    st.markdown(f"**{t('admin.users.edit')}**")
    show_form_errors(errors, EDIT_FIELDS)
    with st.form(prefix, clear_on_submit=False):
        left, right = st.columns(2)
        with left:
            display_name = st.text_input(
                t("admin.field.display_name"), value=text_of(row["display_name"]), key=f"{prefix}:display_name"
            )
            ui.field_error(errors, "display_name")
            role = st.selectbox(
                t("admin.field.role"),
                roles,
                index=roles.index(row["role"]) if row["role"] in roles else 0,
                format_func=role_label,
                key=f"{prefix}:role",
            )
            ui.field_error(errors, "role")
            region = st.text_input(t("admin.field.region"), value=text_of(row["region"]), key=f"{prefix}:region")
            ui.field_error(errors, "region")
            language = st.selectbox(
                t("admin.field.language"),
                LANGUAGES,
                index=LANGUAGES.index(row["language"]) if row["language"] in LANGUAGES else 0,
                format_func=language_label,
                key=f"{prefix}:language",
            )
            ui.field_error(errors, "language")
        with right:
            email = st.text_input(t("admin.field.email"), value=text_of(row["email"]), key=f"{prefix}:email")
            ui.field_error(errors, "email")
            team = st.text_input(t("admin.field.team"), value=text_of(row["team"]), key=f"{prefix}:team")
            ui.field_error(errors, "team")
            manager_id = st.selectbox(
                t("admin.field.manager"),
                managers,
                index=managers.index(current_manager),
                format_func=lambda v: t("admin.no_manager") if v is None else names.get(v, str(v)),
                key=f"{prefix}:manager_id",
            )
            ui.field_error(errors, "manager_id")
        submitted = st.form_submit_button(t("common.save"), type="primary", key=f"{prefix}:submit")
    if not submitted:
        return
    data = users.UserUpdate(
        display_name=display_name,
        role=role,
        email=email,
        team=team,
        region=region,
        manager_id=manager_id,
        language=language,
    )

    def update(session: Session) -> str:
        updated = users.update_user(session, actor=actor, user_id=uid, data=data, now=ui.utcnow())
        return t("admin.users.updated", username=updated.username)

    save(f"{prefix}:errors", update)


def account_actions(row: pd.Series) -> None:
    """Deactivate / reactivate (confirmed), unlock, and reset the password of the chosen user."""
    uid = int(row["id"])
    name = str(row["display_name"])
    active = bool(row["active"])
    locked_until = pd.to_datetime(row["locked_until"])
    locked = not pd.isna(locked_until) and locked_until > pd.Timestamp(ui.utcnow())
    failed = int(row["failed_logins"])
    status = t("admin.users.status_active") if active else t("admin.users.status_inactive")
    if locked:
        status += " · " + t("admin.users.status_locked", until=locked_until.strftime("%Y-%m-%d %H:%M"))
    st.markdown(f"**{t('admin.users.account')}** · {status} · {t('admin.users.failed_logins', n=failed)}")

    own = uid == actor.id
    left, middle = st.columns(2)
    with left:
        if own:
            st.caption(t("admin.users.not_yourself"))
        elif active and st.button(t("admin.users.deactivate"), key="admin:deactivate"):
            st.session_state[CONFIRM_KEY] = ("deactivate", uid)
            st.rerun()
        elif not active and st.button(t("admin.users.reactivate"), key="admin:reactivate"):
            st.session_state[CONFIRM_KEY] = ("reactivate", uid)
            st.rerun()
    with middle:
        if st.button(t("admin.users.unlock"), key="admin:unlock", disabled=not (locked or failed > 0)):
            save(
                "admin:unlock:errors",
                lambda session: t(
                    "admin.users.unlocked",
                    username=users.unlock_user(session, actor=actor, user_id=uid, now=ui.utcnow()).username,
                ),
            )

    pending = st.session_state.get(CONFIRM_KEY)
    if pending in (("deactivate", uid), ("reactivate", uid)) and not own:
        what = pending[0]
        st.warning(t(f"admin.users.confirm_{what}", name=name))
        yes, no = st.columns(2)
        if yes.button(t(f"admin.users.confirm_{what}_button"), key="admin:confirm_yes", type="primary"):
            change = users.deactivate_user if what == "deactivate" else users.reactivate_user
            save(
                "admin:confirm:errors",
                lambda session: t(
                    f"admin.users.{what}d",
                    username=change(session, actor=actor, user_id=uid, now=ui.utcnow()).username,
                ),
            )
        if no.button(t("common.cancel"), key="admin:confirm_no"):
            st.session_state.pop(CONFIRM_KEY, None)
            st.rerun()

    if own:
        st.info(t("admin.users.own_password"))
        return
    prefix = f"admin:reset:{uid}"
    errors: dict[str, str] = st.session_state.get(f"{prefix}:errors", {})
    st.markdown(f"**{t('admin.users.reset_password')}**")
    show_form_errors(errors, RESET_FIELDS)
    with st.form(prefix, clear_on_submit=False):
        new = st.text_input(t("admin.field.new_password"), type="password", key=f"{prefix}:new_password")
        ui.field_error(errors, "new_password")
        repeat = st.text_input(t("admin.field.repeat_password"), type="password", key=f"{prefix}:repeat")
        ui.field_error(errors, "repeat")
        st.caption(t("admin.users.reset_note"))
        submitted = st.form_submit_button(t("admin.users.reset_button"), key=f"{prefix}:submit")
    if not submitted:
        return
    if new != repeat:
        st.session_state[f"{prefix}:errors"] = {"repeat": t("admin.passwords_differ")}
        st.rerun()

    def reset(session: Session) -> str:
        users.reset_password(session, actor=actor, user_id=uid, new_password=new, now=ui.utcnow())
        return t("admin.users.password_reset", name=name)

    save(f"{prefix}:errors", reset, clear=lambda: forget(prefix, RESET_FIELDS))


def users_tab() -> None:
    with ui.reading() as session:
        table = users.list_users(session, actor=actor)
    users_table(table)

    st.subheader(t("admin.users.manage"))
    ids = [int(i) for i in table["id"]]
    names = dict(zip(ids, table["display_name"], strict=True))
    usernames = dict(zip(ids, table["username"], strict=True))
    chosen = st.selectbox(
        t("admin.users.pick"),
        [None, *ids],
        format_func=lambda v: t("admin.users.pick_none") if v is None else f"{names[v]} ({usernames[v]})",
        key="admin:pick",
    )
    if chosen is not None and chosen in names:
        row = table.loc[table["id"] == chosen].iloc[0]
        edit_user_form(table, row)
        account_actions(row)
    st.divider()
    create_user_form(table)


# --- import --------------------------------------------------------------------------------------


def import_source(kind: str) -> tuple[bytes | None, str | None, str | None, dict[str, str]]:
    """Render the input of an import kind; return (file bytes, directory, default owner, errors)."""
    errors: dict[str, str] = st.session_state.get(IMPORT_ERRORS_KEY, {})
    if kind == "maven":
        default = str(MAVEN_DEFAULT_DIR) if MAVEN_DEFAULT_DIR.is_dir() else ""
        directory = st.text_input(t("admin.import.directory"), value=default, key="admin:import:directory")
        st.caption(t("admin.import.directory_help"))
        for message in errors.values():
            st.error(message, icon="⚠️")
        return None, directory.strip() or None, None, errors

    stored_key = f"admin:import:file:{kind}"
    uploaded = st.file_uploader(t("admin.import.file"), type=["csv"], key=f"admin:import:upload:{kind}")
    if uploaded is not None:
        # Kept in the session so the real run uses the very file the dry run checked.
        st.session_state[stored_key] = (uploaded.name, uploaded.getvalue())
    stored: tuple[str, bytes] | None = st.session_state.get(stored_key)
    if stored is not None:
        st.caption(t("admin.import.using_file", name=stored[0], size=f"{len(stored[1]):,}"))
        if uploaded is None and st.button(t("admin.import.forget_file"), key="admin:import:forget"):
            st.session_state.pop(stored_key, None)
            st.session_state.pop(IMPORT_RESULT_KEY, None)
            st.rerun()
    for message in errors.values():
        st.error(message, icon="⚠️")
    owner: str | None = None
    if kind == "customers":
        with ui.reading() as session:
            owners = [(user.username, user.display_name) for user in assignable_reps(session, actor=actor)]
        owner_names = dict(owners)
        owner = st.selectbox(
            t("admin.import.default_owner"),
            [None, *owner_names],
            format_func=lambda v: t("admin.import.pool") if v is None else f"{owner_names[v]} ({v})",
            key="admin:import:owner",
        )
    return (stored[1] if stored else None), None, owner, errors


def source_id(kind: str, data: bytes | None, directory: str | None, owner: str | None) -> str:
    """Identify what a report was made from, so a report never shows beside a different file."""
    digest = hashlib.sha256(data or b"").hexdigest()
    return f"{kind}|{digest}|{directory}|{owner}"


def run_import(kind: str, *, data: bytes | None, directory: str | None, owner: str | None, dry_run: bool) -> None:
    at = ui.utcnow()
    bar = st.progress(0.0, text=t("admin.import.working")) if kind == "maven" else None

    def progress(done: int, total: int) -> None:
        if bar is not None:
            share = min(1.0, done / total) if total else 1.0
            bar.progress(share, text=t("admin.import.progress", done=f"{done:,}", total=f"{total:,}"))

    def work(session: Session) -> importing.ImportReport:
        if kind == "maven":
            return importing.import_maven(
                session, actor=actor, directory=Path(directory or ""), dry_run=dry_run, at=at, progress=progress
            )
        if kind == "customers":
            return importing.import_customers(
                session, actor=actor, data=data or b"", dry_run=dry_run, at=at, owner_username=owner
            )
        return importing.import_interactions(session, actor=actor, data=data or b"", dry_run=dry_run, at=at)

    try:
        with st.spinner(t("admin.import.working")):
            if dry_run:
                with ui.reading() as session:
                    report = work(session)
            else:
                # All-or-nothing: the import writes in one transaction that commits only at the end.
                with ui.writing() as session:
                    report = work(session)
    except ValidationError as exc:
        st.session_state[IMPORT_ERRORS_KEY] = ui.translate_errors(exc)
        st.session_state.pop(IMPORT_RESULT_KEY, None)
        st.rerun()
    except CrmError as exc:
        st.session_state[IMPORT_ERRORS_KEY] = {}
        st.session_state.pop(IMPORT_RESULT_KEY, None)
        ui.report_error(exc)
        return
    st.session_state[IMPORT_ERRORS_KEY] = {}
    st.session_state[IMPORT_RESULT_KEY] = (source_id(kind, data, directory, owner), report)


def report_frame(report: importing.ImportReport) -> pd.DataFrame:
    """Return the report rows with rejection reasons in the current language."""
    frame = report.to_dataframe()
    frame["message"] = [t(row.error.key, **row.error.params) if row.error else row.message for row in report.rows]
    return frame


def show_report(report: importing.ImportReport) -> None:
    rejected = sum(actions.get(importing.REJECTED, 0) for actions in report.counts.values())
    if report.dry_run:
        st.info(t("admin.import.dry_run_done"))
    elif report.refused:
        st.error(t("admin.import.refused", n=rejected))
    else:
        st.success(t("admin.import.done"))
    if report.encoding:
        st.caption(t("admin.import.encoding", encoding=report.encoding))
    for entity, actions in report.counts.items():
        st.markdown(f"**{enum_label('audit_entity', entity)}**")
        columns = st.columns(len(importing.ACTIONS))
        for column, action in zip(columns, importing.ACTIONS, strict=True):
            with column:
                ui.metric_card(enum_label("import_action", action), f"{actions.get(action, 0):,}", None)
    frame = report_frame(report)
    if report.refused:
        chosen: str | None = importing.REJECTED
        st.markdown(f"**{t('admin.import.rejected_rows')}**")
    else:
        chosen = st.selectbox(
            t("admin.import.filter"),
            [None, *importing.ACTIONS],
            format_func=lambda v: t("common.all") if v is None else enum_label("import_action", v),
            key="admin:import:filter",
        )
    if chosen is not None:
        frame = frame[frame["action"] == chosen]
    frame = frame.assign(
        entity=[enum_label("audit_entity", value) for value in frame["entity"]],
        action=[enum_label("import_action", value) for value in frame["action"]],
    )
    if frame.empty:
        st.info(t("common.no_rows"))
    else:
        wide_table(frame, REPORT_COLUMNS, wide="message")


def import_tab() -> None:
    kind = st.radio(
        t("admin.import.what"),
        IMPORT_KINDS,
        format_func=lambda v: t(f"admin.import.kind.{v}"),
        key="admin:import:kind",
        horizontal=True,
    )
    st.caption(t(f"admin.import.help.{kind}"))
    data, directory, owner, _errors = import_source(kind)
    ready = (directory if kind == "maven" else data) is not None
    left, right = st.columns(2)
    dry = left.button(t("admin.import.dry_run"), key="admin:import:dry", disabled=not ready)
    real = right.button(t("admin.import.run"), key="admin:import:run", type="primary", disabled=not ready)
    if dry or real:
        run_import(kind, data=data, directory=directory, owner=owner, dry_run=dry)
    result = st.session_state.get(IMPORT_RESULT_KEY)
    if result is not None and result[0] == source_id(kind, data, directory, owner):
        show_report(result[1])


# --- export --------------------------------------------------------------------------------------


def export_tab() -> None:
    def customers_csv() -> bytes:
        # Built only when clicked: the whole customer list can be large.
        with ui.reading() as session:
            return importing.export_customers_csv(session, actor=actor)

    stamp = ui.today().strftime("%Y%m%d")
    st.download_button(
        t("admin.export.customers"),
        data=customers_csv,
        file_name=f"customers-{stamp}.csv",
        mime="text/csv",
        key="admin:export:customers",
        on_click="ignore",
    )
    with ui.reading() as session:
        users_csv = dataframe_to_csv(users.list_users(session, actor=actor))
    st.download_button(
        t("admin.export.users"),
        data=users_csv,
        file_name=f"users-{stamp}.csv",
        mime="text/csv",
        key="admin:export:users",
        on_click="ignore",
    )
    st.caption(t("admin.export.note"))


# --- audit log -----------------------------------------------------------------------------------


def day_start(day: date | None, *, next_day: bool = False) -> datetime | None:
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1) if next_day else day, time())


def audit_tab() -> None:
    options = ui.cached(audit_log.audit_filter_options)(actor=actor)
    first, second, third = st.columns(3)
    entity = first.selectbox(
        t("admin.audit.entity"),
        [None, *options.entities],
        format_func=lambda v: t("common.all") if v is None else enum_label("audit_entity", v),
        key="admin:audit:entity",
    )
    action = second.selectbox(
        t("admin.audit.action"),
        [None, *options.actions],
        format_func=lambda v: t("common.all") if v is None else enum_label("audit_action", v),
        key="admin:audit:action",
    )
    actor_names = dict(options.actors)
    who = third.selectbox(
        t("admin.audit.user"),
        [None, *actor_names],
        format_func=lambda v: t("common.all") if v is None else f"{actor_names[v]} ({v})",
        key="admin:audit:user",
    )
    fourth, fifth, sixth = st.columns(3)
    start = fourth.date_input(t("filter.start"), value=None, key="admin:audit:start")
    end = fifth.date_input(t("filter.end"), value=None, key="admin:audit:end")
    text = sixth.text_input(t("admin.audit.text"), key="admin:audit:text")

    # A new filter starts again at page 1.
    signature = (entity, action, who, start, end, text)
    if st.session_state.get(AUDIT_SIGNATURE_KEY) != signature:
        st.session_state[AUDIT_SIGNATURE_KEY] = signature
        st.session_state[AUDIT_PAGE_KEY] = 1
    try:
        with ui.reading() as session:
            result = audit_log.list_events(
                session,
                actor=actor,
                entity=entity,
                action=action,
                actor_username=who,
                since=day_start(start if isinstance(start, date) else None),
                until=day_start(end if isinstance(end, date) else None, next_day=True),
                text=text,
                page=int(st.session_state.get(AUDIT_PAGE_KEY, 1)),
            )
    except ValidationError as exc:
        with fifth:
            ui.field_error(ui.translate_errors(exc), "until")
        return

    rows = result.rows
    if rows.empty:
        st.info(t("common.no_rows"))
        return
    shown = pd.DataFrame(
        {
            "at": [pd.Timestamp(value).strftime(TIMESTAMP_FORMAT) for value in rows["at"]],
            "actor": [
                t("common.none") if pd.isna(username) else f"{name} ({username})"
                for username, name in zip(rows["actor_username"], rows["actor_name"], strict=True)
            ],
            "action": [enum_label("audit_action", value) for value in rows["action"]],
            "entity": [enum_label("audit_entity", value) for value in rows["entity"]],
            "entity_id": [text_of(value) for value in rows["entity_id"]],
            "changes": rows["changes"],
        }
    )
    wide_table(shown, AUDIT_COLUMNS, wide="changes")
    st.caption(t("common.rows_total", shown=len(rows), total=f"{result.total:,}") + " · " + t("admin.audit.utc"))
    if result.pages > 1:
        st.session_state[AUDIT_PAGE_KEY] = result.page
        st.number_input(t("common.page"), min_value=1, max_value=result.pages, step=1, key=AUDIT_PAGE_KEY)
        st.caption(t("admin.audit.page_of", page=result.page, pages=result.pages))


# --- the page ------------------------------------------------------------------------------------

st.title(t("admin.title"))
show_flash()
tabs = st.tabs(
    [t("admin.tab.users"), t("admin.tab.import"), t("admin.tab.export"), t("admin.tab.audit")],
    key=TAB_KEY,
    on_change="rerun",
)
for tab, render in zip(tabs, (users_tab, import_tab, export_tab, audit_tab), strict=True):
    # Only the open tab runs: imports and exports stay idle until their tab is chosen.
    if tab.open:
        with tab:
            render()
