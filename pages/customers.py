"""Customers (客户档案): search and list, add, the customer page, and the recycle bin for managers."""

# The login guard (ui.require_login) is the first statement after the imports.

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from crm import ui
from crm.access import Actor
from crm.charts import customers as customer_charts
from crm.contacts import ContactInput, create_contact, delete_contact, update_contact
from crm.csvio import dataframe_to_csv
from crm.customers import (
    CustomerInput,
    CustomerPage,
    CustomerProfile,
    DuplicateCandidate,
    create_customer,
    customer_list_rows,
    customer_profile,
    customer_regions,
    delete_customer,
    find_duplicates,
    list_customers,
    reassign_customer,
    restore_customer,
    update_customer,
)
from crm.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from crm.i18n import enum_label, t
from crm.models import Contact, Customer, CustomerKind, CustomerSize, CustomerStatus, Source, Tier

actor = ui.require_login()

PAGE = "customers"
PAGE_SIZE = 25
PARAM = "customer"
LOG_PAGE = "pages/log_interaction.py"
# Sentinels of the owner selectors: every owner (filter), the unassigned pool, keep as it is.
ANY = "any"
POOL = "pool"
KEEP = "keep"
ADD = f"{PAGE}:add"
FIELD_ORDER = (
    "name",
    "kind",
    "tier",
    "status",
    "source",
    "size",
    "industry",
    "phone",
    "email",
    "website",
    "region",
    "province",
    "city",
    "address",
    "notes",
)
CHOICES: dict[str, tuple[str, list[str], bool]] = {
    # field: (enum kind for labels, values, may be empty)
    "kind": ("kind", [kind.value for kind in CustomerKind], False),
    "tier": ("tier", [tier.value for tier in Tier], False),
    "status": ("status", [status.value for status in CustomerStatus], False),
    "source": ("source", [source.value for source in Source], False),
    "size": ("size", [size.value for size in CustomerSize], True),
}
NEW_DEFAULTS: dict[str, Any] = {
    "kind": CustomerKind.COMPANY.value,
    "tier": Tier.LEAD.value,
    "status": CustomerStatus.ACTIVE.value,
    "source": Source.OTHER.value,
    "size": None,
}
CONTACT_FIELDS = ("name", "title", "phone", "email", "is_primary", "birthday")
CSV_NAME = "customers.csv"
CSV_MIME = "text/csv"

state = st.session_state
# Callbacks report back through this dict, kept in the session. A double click's second request
# can stop a running callback at any st.session_state access (Streamlit checks for new requests
# there) and run it again; writing to a plain dict never stops, so a callback that claimed a
# submission and wrote the database always records what it did (see `claim`).
OUTBOX: dict[str, Any] = state.setdefault(f"{PAGE}:outbox", {})
# How long a view a callback opened wins over the address a late request still carries.
NAVIGATION_HOLD_S = 3.0


# --- small helpers ------------------------------------------------------------------------------


def flash(key: str, **params: object) -> None:
    """Keep a success message for the next run; it is translated when shown.

    Callbacks may run on a fresh thread before app.py picked the language, so they store message
    keys (and errors), never translated text.
    """
    OUTBOX["flash"] = (key, params)


def flash_error(error: Exception) -> None:
    OUTBOX["flash"] = error


def show_flash() -> None:
    message = OUTBOX.pop("flash", None)
    if isinstance(message, Exception):
        st.error(user_message(message))
    elif message is not None:
        key, params = message
        st.success(t(key, **params))


def open_customer(customer_id: int | None) -> None:
    """Show one customer (or the list with None) through the URL, so the view can be linked."""
    OUTBOX["open"] = (customer_id, time.monotonic() + NAVIGATION_HOLD_S)


def apply_navigation() -> None:
    """Put the view a callback opened into the URL, also against a late request's old address."""
    target = OUTBOX.get("open")
    if target is None:
        return
    customer_id, until = target
    wanted = None if customer_id is None else str(customer_id)
    if time.monotonic() > until:
        OUTBOX.pop("open", None)
        return
    if wanted is None:
        st.query_params.pop(PARAM, None)
    elif st.query_params.get(PARAM) != wanted:
        st.query_params[PARAM] = wanted


def attempt(form: str) -> int:
    """Return the number of the next submission of a form (handed to its callback at render)."""
    attempts: dict[str, int] = OUTBOX.setdefault("attempts", {})
    return attempts.setdefault(form, 0)


def claim(form: str, number: int) -> bool:
    """Take one submission of a form; False for the second click of a double click.

    A callback reads the form first, then claims, then writes the database and reports through
    OUTBOX without touching st.session_state in between: one write per submission, always reported.
    """
    attempts: dict[str, int] = OUTBOX.setdefault("attempts", {})
    if attempts.get(form, 0) != number:
        return False
    attempts[form] = number + 1
    return True


def requested_customer() -> int | None | str:
    """Return the customer id of the URL, None without one, or the raw text when it is no id."""
    raw = st.query_params.get(PARAM)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return raw


def label(field: str) -> str:
    return t(f"customers.field.{field}")


def missing(value: Any) -> bool:
    """Tell whether a cell is empty (None, NaN or NaT)."""
    return value is None or bool(pd.isna(value))


def blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


@dataclass(frozen=True)
class Labels:
    """Translated labels taken at script time (a deferred download runs outside the script)."""

    columns: dict[str, str]
    enums: dict[str, dict[str, str]]
    pool: str

    @classmethod
    def current(cls) -> Labels:
        columns = {
            "code": t("customers.col.code"),
            "name": label("name"),
            "kind": label("kind"),
            "tier": label("tier"),
            "status": label("status"),
            "industry": label("industry"),
            "region": label("region"),
            "city": label("city"),
            "phone": label("phone"),
            "email": label("email"),
            "owner_name": t("customers.col.owner"),
            "created_at": t("customers.col.created_at"),
            "updated_at": t("customers.col.updated_at"),
            "deleted_at": t("customers.col.deleted_at"),
        }
        enums = {kind: {value: enum_label(kind, value) for value in values} for kind, values, _ in CHOICES.values()}
        return cls(columns=columns, enums=enums, pool=t("customers.pool"))


def list_frame(rows: pd.DataFrame, labels: Labels, columns: tuple[str, ...]) -> pd.DataFrame:
    """Return the list rows to show or export: chosen columns, enum labels, the pool named."""
    out = rows[list(columns)].copy()
    for column in ("kind", "tier", "status"):
        if column in out:
            out[column] = out[column].map(lambda value, kind=column: labels.enums[kind].get(value, value))
    if "owner_name" in out:
        out["owner_name"] = out["owner_name"].map(lambda name: labels.pool if missing(name) else name)
    return out.rename(columns=labels.columns)


def history_frame(frame: pd.DataFrame, columns: dict[str, str], enums: dict[str, str] | None = None) -> pd.DataFrame:
    """Return a history table with translated headers and enum values (column -> enum kind)."""
    out = frame[list(columns)].copy()
    for column, kind in (enums or {}).items():
        out[column] = out[column].map(lambda value, kind=kind: enum_label(kind, value))
    return out.rename(columns={name: t(key) for name, key in columns.items()})


# --- the customer form (add and edit share it) --------------------------------------------------


def seed_customer_fields(prefix: str, values: dict[str, Any]) -> None:
    """Put the values into the widgets of a form before they are drawn."""
    for field in FIELD_ORDER:
        value = values.get(field)
        state[f"{prefix}:{field}"] = value if field in CHOICES else (value or "")


def customer_values(customer: Customer) -> dict[str, Any]:
    return {field: getattr(customer, field) for field in FIELD_ORDER}


def customer_input(prefix: str, **extra: Any) -> CustomerInput:
    """Return the form's values as the crm input (empty texts are None)."""
    values = {field: blank_to_none(state.get(f"{prefix}:{field}")) for field in FIELD_ORDER}
    return CustomerInput(**values, **extra)


def choice_widget(prefix: str, field: str, errors: dict[str, str]) -> None:
    kind, values, optional = CHOICES[field]
    options: list[str | None] = [None, *values] if optional else list(values)
    st.selectbox(
        label(field),
        options,
        key=f"{prefix}:{field}",
        format_func=lambda value: t("common.none") if value is None else enum_label(kind, value),
        placeholder=t("common.none"),
    )
    ui.field_error(errors, field)


def text_widget(prefix: str, field: str, errors: dict[str, str], *, placeholder: str | None = None) -> None:
    st.text_input(label(field), key=f"{prefix}:{field}", placeholder=placeholder)
    ui.field_error(errors, field)


def customer_fields(prefix: str, errors: dict[str, str]) -> None:
    """Draw every customer field with its message right under it."""
    first, second, third = st.columns(3)
    with first:
        text_widget(prefix, "name", errors)
        choice_widget(prefix, "kind", errors)
        choice_widget(prefix, "tier", errors)
        choice_widget(prefix, "status", errors)
    with second:
        text_widget(prefix, "phone", errors, placeholder="138 0000 0000")
        text_widget(prefix, "email", errors, placeholder="name@example.com")
        text_widget(prefix, "website", errors)
        choice_widget(prefix, "source", errors)
    with third:
        text_widget(prefix, "industry", errors)
        choice_widget(prefix, "size", errors)
        text_widget(prefix, "region", errors)
        region_cols = st.columns(2)
        with region_cols[0]:
            text_widget(prefix, "province", errors)
        with region_cols[1]:
            text_widget(prefix, "city", errors)
    text_widget(prefix, "address", errors)
    st.text_area(label("notes"), key=f"{prefix}:notes", height=90)
    ui.field_error(errors, "notes")


# --- list ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListFilters:
    """What the list is narrowed to (the arguments of list_customers)."""

    query: str = ""
    tier: str | None = None
    status: str | None = None
    owner_id: int | None = None
    unassigned: bool = False
    region: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "tier": self.tier,
            "status": self.status,
            "owner_id": self.owner_id,
            "unassigned": self.unassigned,
            "region": self.region,
        }


def first_page() -> None:
    state[f"{PAGE}:page"] = 1


def list_filters(owners: dict[int, str]) -> ListFilters:
    """Draw the search box and filters; return what they select."""
    query = st.text_input(
        t("common.search"),
        key=f"{PAGE}:q",
        placeholder=t("customers.search_hint"),
        on_change=first_page,
    )
    columns = st.columns(4 if not actor.is_rep else 3)
    with columns[0]:
        tier = st.selectbox(
            label("tier"),
            [None, *CHOICES["tier"][1]],
            key=f"{PAGE}:f:tier",
            format_func=lambda value: t("common.all") if value is None else enum_label("tier", value),
            on_change=first_page,
        )
    with columns[1]:
        status = st.selectbox(
            label("status"),
            [None, *CHOICES["status"][1]],
            key=f"{PAGE}:f:status",
            format_func=lambda value: t("common.all") if value is None else enum_label("status", value),
            on_change=first_page,
        )
    with columns[2]:
        regions = ui.cached(customer_regions)(actor=actor)
        region = st.selectbox(
            label("region"),
            [None, *regions],
            key=f"{PAGE}:f:region",
            format_func=lambda value: t("common.all") if value is None else value,
            on_change=first_page,
        )
    owner: Any = ANY
    if not actor.is_rep:
        with columns[3]:
            owner = st.selectbox(
                t("customers.col.owner"),
                [ANY, POOL, *owners],
                key=f"{PAGE}:f:owner",
                format_func=lambda value: owner_label(value, owners, any_label=t("common.all")),
                on_change=first_page,
            )
    return ListFilters(
        query=query or "",
        tier=tier,
        status=status,
        owner_id=owner if isinstance(owner, int) else None,
        unassigned=owner == POOL,
        region=region,
    )


def owner_label(value: Any, owners: dict[int, str], *, any_label: str = "") -> str:
    if value == ANY:
        return any_label
    if value == POOL or value is None:
        return t("customers.pool")
    if value == KEEP:
        return t("customers.keep_owner")
    return owners.get(value, str(value))


def load_page(filters: ListFilters, *, only_deleted: bool = False, page_key: str) -> CustomerPage:
    """Fetch the requested page, moving back to the last page when the list got shorter."""
    requested = int(state.get(page_key) or 1)
    result = ui.cached(list_customers)(
        actor=actor, **filters.kwargs(), only_deleted=only_deleted, page=requested, page_size=PAGE_SIZE
    )
    if requested > result.pages:
        state[page_key] = result.pages
        result = ui.cached(list_customers)(
            actor=actor, **filters.kwargs(), only_deleted=only_deleted, page=result.pages, page_size=PAGE_SIZE
        )
    return result


def pager(result: CustomerPage, *, page_key: str) -> None:
    """Draw 'x of y rows' and the page number input."""
    first = (result.page - 1) * result.page_size + 1 if result.total else 0
    last = min(result.total, result.page * result.page_size)
    shown = f"{first}–{last}" if result.total else "0"
    info, number = st.columns([3, 1])
    info.caption(t("common.rows_total", shown=shown, total=result.total))
    if result.pages > 1:
        number.number_input(
            t("common.page"),
            min_value=1,
            max_value=result.pages,
            step=1,
            key=page_key,
        )


def choose_from_table(event: Any, rows: pd.DataFrame) -> None:
    """Open the customer of the clicked table row."""
    selected = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    if selected and 0 <= selected[0] < len(rows):
        state[f"{PAGE}:table_gen"] = state.get(f"{PAGE}:table_gen", 0) + 1
        open_customer(int(rows.iloc[selected[0]]["id"]))
        st.rerun()


def open_selected() -> None:
    chosen = state.get(f"{PAGE}:open")
    if chosen is not None:
        open_customer(int(chosen))


def export_button(filters: ListFilters) -> None:
    """Offer the whole filtered list (every page) as CSV; built only when clicked."""
    labels = Labels.current()
    who = actor

    def build() -> bytes:
        with ui.reading() as session:
            rows = customer_list_rows(session, actor=who, **filters.kwargs())
        columns = (
            "code",
            "name",
            "kind",
            "tier",
            "status",
            "industry",
            "region",
            "city",
            "phone",
            "email",
            "owner_name",
            "created_at",
            "updated_at",
        )
        return dataframe_to_csv(list_frame(rows, labels, columns))

    st.download_button(
        t("common.download_csv"),
        data=build,
        file_name=CSV_NAME,
        mime=CSV_MIME,
        key=f"{PAGE}:export",
        on_click="ignore",
        icon="⬇️",
    )


def list_view(owners: dict[int, str]) -> None:
    filters = list_filters(owners)
    result = load_page(filters, page_key=f"{PAGE}:page")
    rows = result.rows
    if rows.empty:
        st.info(t("common.no_rows"))
    else:
        labels = Labels.current()
        shown = list_frame(
            rows, labels, ("code", "name", "tier", "status", "region", "city", "phone", "owner_name", "updated_at")
        )
        event = ui.dataframe(shown, key=f"{PAGE}:table:{state.get(f'{PAGE}:table_gen', 0)}", selectable=True)
        choose_from_table(event, rows)
    pager(result, page_key=f"{PAGE}:page")
    if not rows.empty:
        names = {int(row["id"]): f"{row['code'] or ''} · {row['name']}" for row in rows.to_dict("records")}
        pick, go = st.columns([3, 1], vertical_alignment="bottom")
        pick.selectbox(t("customers.open_label"), list(names), key=f"{PAGE}:open", format_func=names.__getitem__)
        go.button(t("customers.open"), key=f"{PAGE}:open_go", on_click=open_selected, width="stretch")
    export_button(filters)


# --- add ----------------------------------------------------------------------------------------


def reset_add_form() -> None:
    """Empty the add form; runs before its widgets are drawn."""
    for key in [key for key in state if isinstance(key, str) and key.startswith(f"{ADD}:")]:
        del state[key]
    for name in ("add:errors", "add:duplicates"):
        OUTBOX.pop(name, None)


def save_new_customer(who: Actor, number: int) -> None:
    """Save the add form, first warning about look-alike customers unless the user said to save anyway."""
    owner = state.get(f"{ADD}:owner", POOL)
    data = customer_input(ADD, owner_id=owner if isinstance(owner, int) else None)
    if not state.get(f"{ADD}:anyway"):
        with ui.reading() as session:
            duplicates = find_duplicates(session, actor=who, name=data.name, phone=data.phone)
        if duplicates:
            OUTBOX.update({"add:duplicates": duplicates, "add:errors": None})
            return
    # The form is read; from here on only OUTBOX is written (see `claim`).
    if not claim("add", number):
        return
    try:
        with ui.writing() as session:
            customer = create_customer(session, actor=who, data=data, now=ui.utcnow())
            created = (customer.id, customer.code, customer.name)
    except (ValidationError, PermissionDeniedError) as error:
        OUTBOX["add:errors"] = error
        return
    OUTBOX["add:reset"] = True
    open_customer(created[0])
    flash("customers.created", code=created[1] or "", name=created[2])


def form_errors(error: Exception | None) -> dict[str, str]:
    """Return the per-field messages of a refused save, in the current language."""
    if isinstance(error, ValidationError):
        return ui.translate_errors(error)
    if isinstance(error, PermissionDeniedError):
        return {"owner_id": t("common.not_allowed")}
    return {}


def duplicate_warning(duplicates: list[DuplicateCandidate]) -> None:
    st.warning(t("customers.duplicates_found"))
    lines = []
    for candidate in duplicates:
        reasons = [t("customers.same_name")] if candidate.same_name else []
        reasons += [t("customers.same_phone")] if candidate.same_phone else []
        owner = candidate.owner_name or t("customers.pool")
        lines.append(
            f"- **{candidate.code or ''} {candidate.name}** · {candidate.phone or t('common.none')} · "
            f"{owner} ({', '.join(reasons)})"
        )
    st.markdown("\n".join(lines))


def add_view(owners: dict[int, str]) -> None:
    if f"{ADD}:name" not in state:
        seed_customer_fields(ADD, NEW_DEFAULTS)
    errors = form_errors(OUTBOX.get("add:errors"))
    duplicates: list[DuplicateCandidate] = OUTBOX.get("add:duplicates") or []
    if errors:
        st.error(t("common.fix_fields"))
    with st.form(f"{PAGE}:add_form", clear_on_submit=False):
        customer_fields(ADD, errors)
        if not actor.is_rep:
            st.selectbox(
                t("customers.col.owner"),
                [POOL, *owners],
                key=f"{ADD}:owner",
                format_func=lambda value: owner_label(value, owners),
            )
            ui.field_error(errors, "owner_id")
        else:
            st.caption(t("customers.owned_by_you"))
        if duplicates:
            duplicate_warning(duplicates)
            st.checkbox(t("customers.save_anyway"), key=f"{ADD}:anyway")
        st.form_submit_button(
            t("customers.add_submit"),
            type="primary",
            key=f"{ADD}:submit",
            on_click=save_new_customer,
            args=(actor, attempt("add")),
        )


# --- recycle bin --------------------------------------------------------------------------------


def restore(who: Actor, customer_id: int, name: str) -> None:
    """Bring a customer back, giving it to another owner in the same step when one was chosen."""
    owner = state.get(f"{PAGE}:bin:owner:{customer_id}", KEEP)
    try:
        with ui.writing() as session:
            restore_customer(session, actor=who, customer_id=customer_id, now=ui.utcnow())
            if owner != KEEP:
                reassign_customer(
                    session,
                    actor=who,
                    customer_id=customer_id,
                    owner_id=owner if isinstance(owner, int) else None,
                    now=ui.utcnow(),
                )
    except (NotFoundError, PermissionDeniedError, ConflictError, ValidationError) as error:
        flash_error(error)
        return
    flash("customers.restored", name=name)


def user_message(error: Exception) -> str:
    """Return one line for an error a user caused outside a form."""
    if isinstance(error, ConflictError):
        at = error.changed_at.strftime("%Y-%m-%d %H:%M") if error.changed_at else "?"
        return t("common.stale", who=error.changed_by or "?", at=at)
    if isinstance(error, NotFoundError):
        return t("common.not_found")
    if isinstance(error, ValidationError):
        return " ".join(ui.translate_errors(error).values())
    return t("common.not_allowed")


def bin_view(owners: dict[int, str]) -> None:
    st.caption(t("customers.bin_help"))
    query = st.text_input(
        t("common.search"),
        key=f"{PAGE}:bin:q",
        placeholder=t("customers.search_hint"),
        on_change=lambda: state.update({f"{PAGE}:bin:page": 1}),
    )
    result = load_page(ListFilters(query=query or ""), only_deleted=True, page_key=f"{PAGE}:bin:page")
    if result.rows.empty:
        st.info(t("customers.bin_empty"))
        return
    header = st.columns([3, 2, 2, 2, 1])
    for column, key in zip(
        header,
        ("customers.field.name", "customers.col.owner", "customers.col.deleted_at", "customers.restore_to", ""),
        strict=True,
    ):
        column.markdown(f"**{t(key)}**" if key else "")
    for row in result.rows.to_dict("records"):
        customer_id = int(row["id"])
        cells = st.columns([3, 2, 2, 2, 1], vertical_alignment="center")
        cells[0].write(f"{row['code'] or ''} · {row['name']}")
        cells[1].write(t("customers.pool") if missing(row["owner_name"]) else row["owner_name"])
        cells[2].write(fmt_time(row["deleted_at"]))
        cells[3].selectbox(
            t("customers.restore_to"),
            [KEEP, POOL, *owners],
            key=f"{PAGE}:bin:owner:{customer_id}",
            format_func=lambda value: owner_label(value, owners),
            label_visibility="collapsed",
        )
        cells[4].button(
            t("customers.restore"),
            key=f"{PAGE}:bin:restore:{customer_id}",
            on_click=restore,
            args=(actor, customer_id, str(row["name"])),
        )
    pager(result, page_key=f"{PAGE}:bin:page")


def fmt_time(value: Any) -> str:
    if missing(value):
        return t("common.none")
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


# --- the customer page --------------------------------------------------------------------------


def edit_prefix(customer_id: int) -> str:
    return f"{PAGE}:edit:{customer_id}"


def load_into_editor(customer: Customer) -> None:
    """Fill the profile form with the saved customer and its version; runs before the form is drawn."""
    prefix = edit_prefix(customer.id)
    seed_customer_fields(prefix, customer_values(customer))
    state[f"{prefix}:version"] = customer.version
    for name in ("result", "reload", "version"):
        OUTBOX.pop(f"edit:{customer.id}:{name}", None)


def reload_editor(customer_id: int) -> None:
    """Ask for the saved customer in the form, dropping the typed changes (after a conflict)."""
    OUTBOX[f"edit:{customer_id}:reload"] = True


def save_edit(who: Actor, customer_id: int, number: int) -> None:
    """Save the profile form under optimistic locking with the version it was loaded at."""
    prefix = edit_prefix(customer_id)
    data = customer_input(prefix, version=state.get(f"{prefix}:version"))
    if not claim(f"edit:{customer_id}", number):
        return
    try:
        with ui.writing() as session:
            update_customer(session, actor=who, customer_id=customer_id, data=data, now=ui.utcnow())
    except (ValidationError, ConflictError) as error:
        # A conflict keeps what was typed; the page names who saved in between and offers Reload.
        OUTBOX[f"edit:{customer_id}:result"] = error
        return
    except (NotFoundError, PermissionDeniedError) as error:
        flash_error(error)
        return
    OUTBOX[f"edit:{customer_id}:reload"] = True
    flash("common.saved")


def profile_tab(who: Actor, customer: Customer) -> None:
    prefix = edit_prefix(customer.id)
    if OUTBOX.get(f"edit:{customer.id}:reload") or f"{prefix}:name" not in state or f"{prefix}:version" not in state:
        load_into_editor(customer)
    elif f"edit:{customer.id}:version" in OUTBOX:
        # Only the owner changed (reassigned): the typed fields stay, the version moves on.
        state[f"{prefix}:version"] = OUTBOX.pop(f"edit:{customer.id}:version")
    result = OUTBOX.get(f"edit:{customer.id}:result")
    errors = ui.translate_errors(result) if isinstance(result, ValidationError) else {}
    conflict = result if isinstance(result, ConflictError) else None
    if conflict is not None:
        ui.report_error(conflict)
        st.button(t("common.reload"), key=f"{prefix}:reload", on_click=reload_editor, args=(customer.id,), icon="🔄")
    if errors:
        st.error(t("common.fix_fields"))
    with st.form(f"{prefix}:form", clear_on_submit=False):
        customer_fields(prefix, errors)
        st.caption(
            t(
                "customers.record_info",
                created=fmt_time(customer.created_at),
                updated=fmt_time(customer.updated_at),
                version=state.get(f"{prefix}:version"),
            )
        )
        st.form_submit_button(
            t("common.save"),
            type="primary",
            key=f"{prefix}:submit",
            on_click=save_edit,
            args=(who, customer.id, attempt(f"edit:{customer.id}")),
        )


def contact_entry(customer_id: int) -> int:
    """Return the number of the contact forms on screen; every save starts new ones (new keys).

    Values a browser sends late for a saved form (the second click of a double click) then
    never land in the next one, and every form reloads from the database (a primary flag moves).
    """
    entries: dict[int, int] = OUTBOX.setdefault("contact_entry", {})
    return entries.setdefault(customer_id, 0)


def contact_prefix(customer_id: int, contact_id: int | None, entry: int) -> str:
    return f"{PAGE}:contact:{customer_id}:{entry}:{contact_id or 'new'}"


def contact_input(prefix: str) -> ContactInput:
    return ContactInput(
        name=blank_to_none(state.get(f"{prefix}:name")),
        title=blank_to_none(state.get(f"{prefix}:title")),
        phone=blank_to_none(state.get(f"{prefix}:phone")),
        email=blank_to_none(state.get(f"{prefix}:email")),
        is_primary=bool(state.get(f"{prefix}:is_primary")),
        birthday=state.get(f"{prefix}:birthday"),
    )


def save_contact(who: Actor, customer_id: int, contact_id: int | None, entry: int, number: int) -> None:
    prefix = contact_prefix(customer_id, contact_id, entry)
    data = contact_input(prefix)
    if not claim(f"contact:{customer_id}", number):
        return
    try:
        with ui.writing() as session:
            if contact_id is None:
                create_contact(session, actor=who, customer_id=customer_id, data=data, now=ui.utcnow())
            else:
                update_contact(session, actor=who, contact_id=contact_id, data=data, now=ui.utcnow())
    except ValidationError as error:
        OUTBOX[f"{prefix}:errors"] = error
        return
    except (NotFoundError, PermissionDeniedError) as error:
        flash_error(error)
        return
    OUTBOX["contact_entry"][customer_id] = entry + 1
    flash("customers.contact_saved", name=data.name or "")


def remove_contact(who: Actor, customer_id: int, contact_id: int, entry: int) -> None:
    try:
        with ui.writing() as session:
            delete_contact(session, actor=who, contact_id=contact_id, now=ui.utcnow())
    except (NotFoundError, PermissionDeniedError) as error:
        flash_error(error)
        return
    OUTBOX["contact_entry"][customer_id] = entry + 1
    OUTBOX[f"contact:{customer_id}:choose_new"] = True
    flash("customers.contact_deleted")


def contacts_tab(who: Actor, customer: Customer, contacts: list[Contact]) -> None:
    if contacts:
        frame = pd.DataFrame(
            [(c.name, c.title, c.phone, c.email, "★" if c.is_primary else "", c.birthday) for c in contacts],
            columns=["name", "title", "phone", "email", "primary", "birthday"],
        )
        ui.dataframe(frame, columns={name: t(f"customers.contact.{name}") for name in frame.columns})
    else:
        st.caption(t("customers.no_contacts"))
    by_id = {contact.id: contact for contact in contacts}
    choice_key = f"{PAGE}:contact:{customer.id}:choice"
    if OUTBOX.get(f"contact:{customer.id}:choose_new") or state.get(choice_key) not in (None, *by_id):
        state[choice_key] = None
        OUTBOX.pop(f"contact:{customer.id}:choose_new", None)
    contact_id = st.selectbox(
        t("customers.contact.edit"),
        [None, *by_id],
        key=choice_key,
        format_func=lambda value: t("customers.contact.new") if value is None else by_id[value].name,
    )
    entry = contact_entry(customer.id)
    prefix = contact_prefix(customer.id, contact_id, entry)
    if f"{prefix}:name" not in state:
        contact = by_id.get(contact_id) if contact_id is not None else None
        state[f"{prefix}:name"] = contact.name if contact else ""
        state[f"{prefix}:title"] = (contact.title if contact else None) or ""
        state[f"{prefix}:phone"] = (contact.phone if contact else None) or ""
        state[f"{prefix}:email"] = (contact.email if contact else None) or ""
        state[f"{prefix}:is_primary"] = bool(contact.is_primary) if contact else not contacts
        state[f"{prefix}:birthday"] = contact.birthday if contact else None
    refused = OUTBOX.get(f"{prefix}:errors")
    errors = ui.translate_errors(refused) if isinstance(refused, ValidationError) else {}
    with st.form(f"{prefix}:form", clear_on_submit=False):
        left, right = st.columns(2)
        with left:
            st.text_input(t("customers.contact.name"), key=f"{prefix}:name")
            ui.field_error(errors, "name")
            st.text_input(t("customers.contact.title"), key=f"{prefix}:title")
            ui.field_error(errors, "title")
            st.checkbox(t("customers.contact.is_primary"), key=f"{prefix}:is_primary")
        with right:
            st.text_input(t("customers.contact.phone"), key=f"{prefix}:phone")
            ui.field_error(errors, "phone")
            st.text_input(t("customers.contact.email"), key=f"{prefix}:email")
            ui.field_error(errors, "email")
            st.date_input(
                t("customers.contact.birthday"),
                key=f"{prefix}:birthday",
                min_value=date(1900, 1, 1),
                max_value=ui.today(),
                format="YYYY-MM-DD",
            )
            ui.field_error(errors, "birthday")
        st.form_submit_button(
            t("common.save"),
            type="primary",
            key=f"{prefix}:submit",
            on_click=save_contact,
            args=(who, customer.id, contact_id, entry, attempt(f"contact:{customer.id}")),
        )
    if contact_id is not None:
        confirm_button(
            key=f"{prefix}:delete",
            label=t("customers.contact.delete"),
            question=t("customers.contact.confirm_delete", name=by_id[contact_id].name),
            on_confirm=remove_contact,
            args=(who, customer.id, contact_id, entry),
        )


def confirm_button(
    *, key: str, label: str, question: str, on_confirm: Callable[..., None], args: tuple[Any, ...]
) -> None:
    """Draw a button that asks once more before doing something that is hard to undo."""
    asking: set[str] = OUTBOX.setdefault("asking", set())
    if key not in asking:
        st.button(label, key=key, on_click=asking.add, args=(key,))
        return
    st.warning(question)
    yes, no = st.columns(2)

    def confirmed() -> None:
        # Only the first click of a double click finds the question still open.
        if key in asking:
            asking.discard(key)
            on_confirm(*args)

    yes.button(t("customers.confirm_yes"), key=f"{key}:yes", type="primary", on_click=confirmed)
    no.button(t("common.cancel"), key=f"{key}:no", on_click=asking.discard, args=(key,))


def show_history(frame: pd.DataFrame, columns: dict[str, str], enums: dict[str, str] | None = None) -> None:
    if frame.empty:
        st.caption(t("common.no_rows"))
        return
    ui.dataframe(history_frame(frame, columns, enums))


def soft_delete(who: Actor, customer_id: int, name: str) -> None:
    try:
        with ui.writing() as session:
            delete_customer(session, actor=who, customer_id=customer_id, now=ui.utcnow())
    except (NotFoundError, PermissionDeniedError, ConflictError) as error:
        flash_error(error)
        return
    open_customer(None)
    flash("customers.deleted", name=name)


def reassign(who: Actor, customer_id: int) -> None:
    choice = state.get(f"{PAGE}:reassign:{customer_id}")
    owner_id = choice if isinstance(choice, int) else None
    try:
        with ui.writing() as session:
            customer = reassign_customer(
                session, actor=who, customer_id=customer_id, owner_id=owner_id, now=ui.utcnow()
            )
            version = customer.version
    except (NotFoundError, PermissionDeniedError, ConflictError, ValidationError) as error:
        flash_error(error)
        return
    # The profile form keeps what was typed; only its version follows the new owner's.
    OUTBOX[f"edit:{customer_id}:version"] = version
    flash("customers.reassigned")


def header(profile: CustomerProfile) -> None:
    customer = profile.customer
    st.title(f"{customer.code or ''} · {customer.name}")
    st.caption(
        " · ".join(
            [
                f"{label('tier')}: {enum_label('tier', customer.tier)}",
                f"{label('status')}: {enum_label('status', customer.status)}",
                f"{t('customers.col.owner')}: {profile.owner_name or t('customers.pool')}",
            ]
        )
    )
    first, second, third = st.columns(3)
    with first:
        ui.metric_card(t("customers.lifetime_value"), ui.fmt_money(profile.lifetime_value), None)
    with second:
        ui.metric_card(t("customers.order_count"), ui.fmt_number(profile.order_count), None)
    with third:
        last = profile.interactions["occurred_at"].iloc[0] if not profile.interactions.empty else None
        ui.metric_card(t("customers.last_contact"), fmt_time(last), None)


def actions(who: Actor, profile: CustomerProfile, owners: dict[int, str]) -> None:
    customer = profile.customer
    back, log, delete = st.columns(3)
    back.button(t("customers.back"), key=f"{PAGE}:back", on_click=open_customer, args=(None,), icon="⬅️")
    if log.button(t("customers.log_visit"), key=f"{PAGE}:log", icon="📝", type="primary"):
        st.switch_page(LOG_PAGE, query_params={PARAM: str(customer.id)})
    with delete:
        confirm_button(
            key=f"{PAGE}:delete:{customer.id}",
            label=t("customers.delete"),
            question=t("customers.confirm_delete", name=customer.name),
            on_confirm=soft_delete,
            args=(who, customer.id, customer.name),
        )
    if who.is_rep:
        return
    with st.expander(t("customers.reassign_title")):
        key = f"{PAGE}:reassign:{customer.id}"
        options: list[Any] = [POOL, *owners]
        if customer.owner_id is not None and customer.owner_id not in owners:
            # Owned by someone the actor may not assign to (e.g. an inactive rep): show, do not offer.
            options.insert(0, customer.owner_id)
        if state.get(key) not in options:
            state[key] = customer.owner_id if customer.owner_id is not None else POOL
        names = dict(owners)
        if customer.owner_id is not None:
            names.setdefault(customer.owner_id, profile.owner_name or str(customer.owner_id))
        pick, go = st.columns([3, 1], vertical_alignment="bottom")
        pick.selectbox(
            t("customers.new_owner"),
            options,
            key=key,
            format_func=lambda value: owner_label(value, names),
        )
        go.button(t("customers.reassign"), key=f"{key}:go", on_click=reassign, args=(who, customer.id))


def customer_view(customer_id: int | str, owners: dict[int, str]) -> None:
    profile: CustomerProfile | None = None
    if isinstance(customer_id, int):
        try:
            with ui.reading() as session:
                profile = customer_profile(session, actor=actor, customer_id=customer_id)
                # Keep the loaded rows readable after the read session ends (it rolls back).
                session.expunge_all()
        except NotFoundError:
            profile = None
    if profile is None:
        st.title(t("nav.customers"))
        st.error(t("common.not_found"))
        st.button(t("customers.back"), key=f"{PAGE}:back", on_click=open_customer, args=(None,), icon="⬅️")
        return
    customer = profile.customer
    header(profile)
    actions(actor, profile, owners)
    tabs = st.tabs(
        [
            t("customers.tab.profile"),
            t("customers.tab.contacts"),
            t("customers.tab.timeline"),
            t("customers.tab.orders"),
            t("customers.tab.opportunities"),
            t("customers.tab.surveys"),
            t("customers.tab.complaints"),
        ],
        # A stable key keeps the open tab when a message above it moves it down.
        key=f"{PAGE}:tabs:{customer.id}",
    )
    with tabs[0]:
        profile_tab(actor, customer)
    with tabs[1]:
        contacts_tab(actor, customer, profile.contacts)
    with tabs[2]:
        if not profile.interactions.empty:
            st.altair_chart(customer_charts.timeline(profile.interactions), width="stretch")
        show_history(
            profile.interactions,
            {
                "occurred_at": "customers.col.occurred_at",
                "kind": "customers.col.kind",
                "rep_name": "customers.col.rep",
                "subject": "customers.col.subject",
                "outcome": "customers.col.outcome",
                "duration_minutes": "customers.col.duration",
                "next_follow_up": "customers.col.next_follow_up",
                "location": "customers.col.location",
            },
            {"kind": "interaction", "outcome": "outcome"},
        )
    with tabs[3]:
        show_history(
            profile.orders,
            {
                "ordered_on": "customers.col.ordered_on",
                "product_name": "customers.col.product",
                "quantity": "customers.col.quantity",
                "amount": "customers.col.amount",
                "rep_name": "customers.col.rep",
            },
        )
    with tabs[4]:
        show_history(
            profile.opportunities,
            {
                "title": "customers.col.title",
                "stage": "customers.col.stage",
                "amount": "customers.col.amount",
                "owner_name": "customers.col.owner",
                "created_on": "customers.col.created_on",
                "closed_on": "customers.col.closed_on",
                "lost_reason": "customers.col.lost_reason",
            },
            {"stage": "stage"},
        )
    with tabs[5]:
        show_history(
            profile.surveys,
            {
                "responded_on": "customers.col.responded_on",
                "overall": "customers.col.overall",
                "quality": "customers.col.quality",
                "service": "customers.col.service",
                "price": "customers.col.price",
                "after_sales": "customers.col.after_sales",
                "recommend": "customers.col.recommend",
                "rep_name": "customers.col.rep",
                "comment": "customers.col.comment",
            },
        )
    with tabs[6]:
        show_history(
            profile.complaints,
            {
                "opened_at": "customers.col.opened_at",
                "category": "customers.col.category",
                "severity": "customers.col.severity",
                "assignee_name": "customers.col.assignee",
                "due_at": "customers.col.due_at",
                "resolved_at": "customers.col.resolved_at",
                "satisfied": "customers.col.satisfied",
            },
            {"severity": "severity"},
        )


# --- page ---------------------------------------------------------------------------------------

apply_navigation()
if OUTBOX.get("add:reset"):
    reset_add_form()
    OUTBOX.pop("add:reset", None)
owners = ui.rep_choices(actor) if not actor.is_rep else {}
show_flash()
requested = requested_customer()
if requested is not None:
    customer_view(requested, owners)
else:
    st.title(t("nav.customers"))
    names = [t("customers.tab.list"), t("customers.tab.add")]
    if not actor.is_rep:
        names.append(t("customers.tab.bin"))
    views = st.tabs(names, key=f"{PAGE}:views")
    with views[0]:
        list_view(owners)
    with views[1]:
        add_view(owners)
    if not actor.is_rep:
        with views[2]:
            bin_view(owners)
