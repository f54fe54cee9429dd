"""Streamlit glue: the cached engine, page guards, cached KPI calls, filter widgets, messages.

The only crm module that imports streamlit. Pages call these and crm/ functions; no SQL here.
"""

from __future__ import annotations

import contextvars
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

import pandas as pd
import streamlit as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from crm import db, i18n
from crm.access import Actor, Filters, assignable_reps
from crm.audit import data_version
from crm.clock import today, utcnow
from crm.errors import AuthenticationError, ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from crm.i18n import enum_label, t
from crm.models import Role, Tier, User
from crm.periods import Period, add_months, month_start, quarter_start
from crm.settings import cookie_key_is_weak, load_settings

P = ParamSpec("P")
R = TypeVar("R")

ACTOR_KEY = "crm_actor"
LANGUAGE_KEY = "language"
# Cached figures live at most this long even if no write bumps the data version.
CACHE_TTL_S = 300
CACHE_MAX_ENTRIES = 512
PARALLEL_MIN_CALLS = 2
PERIOD_PRESETS = ("this_month", "last_month", "this_quarter", "last_quarter", "this_year", "last_year", "custom")


def _session_language() -> str | None:
    language = st.session_state.get(LANGUAGE_KEY)
    return language if isinstance(language, str) else None


i18n.set_fallback(_session_language)


@st.cache_resource(show_spinner=False)
def _migrated_engine(url: str) -> Engine:
    eng = db.get_engine(url)
    db.migrate(eng)
    return eng


def database_url() -> str:
    """Return the configured database URL (read per call so tests can point elsewhere)."""
    return load_settings().database_url


def engine() -> Engine:
    """Return the process-wide engine of the configured database, migrated once per process."""
    return _migrated_engine(database_url())


@contextmanager
def reading() -> Iterator[Session]:
    """Open a read session on the app's engine."""
    with db.read_session(engine()) as session:
        yield session


@contextmanager
def writing() -> Iterator[Session]:
    """Open a write session on the app's engine (commits on success)."""
    with db.write_session(engine()) as session:
        yield session


def current_actor() -> Actor | None:
    """Return the logged-in actor of this browser session, if any."""
    actor = st.session_state.get(ACTOR_KEY)
    return actor if isinstance(actor, Actor) else None


def require_login() -> Actor:
    """Stop the page unless someone is logged in; first line of every page."""
    actor = current_actor()
    if actor is None:
        st.warning(t("app.login_required"))
        # A page can be served directly on the first request after a server start, before
        # app.py ran: it shows the login form itself (and nothing else) in that case.
        login_form()
        st.stop()
    assert actor is not None  # st.stop() raised; this helps type checkers
    return actor


def require_role(*roles: Role) -> Actor:
    """Stop the page unless the logged-in actor has one of the roles."""
    actor = require_login()
    if actor.role not in roles:
        st.error(t("app.not_allowed"))
        st.stop()
    return actor


def current_data_version() -> int:
    """Read the data version every write bumps (one indexed row)."""
    with reading() as session:
        return data_version(session)


def _scope_key(actor: Actor) -> tuple[str, int, str | None]:
    return (actor.role.value, actor.id, actor.team)


def cached(fn: Callable[..., R]) -> Callable[..., R]:
    """Wrap a crm read `fn(session, *, actor, **kw)` in a cache keyed by scope, args and data version.

    The actor's scope is part of the key so users never share figures they may not see; the data
    version is part of the key so a save anywhere (any process) makes the next rerun recompute.
    """

    @st.cache_data(ttl=CACHE_TTL_S, max_entries=CACHE_MAX_ENTRIES, show_spinner=False)
    def _run(name: str, url: str, scope: tuple[str, int, str | None], version: int, _actor: Actor, **kwargs: Any) -> R:
        with db.read_session(_migrated_engine(url)) as session:
            return fn(session, actor=_actor, **kwargs)

    def call(*, actor: Actor, **kwargs: Any) -> R:
        name = f"{fn.__module__}.{fn.__qualname__}"
        return _run(name, database_url(), _scope_key(actor), current_data_version(), actor, **kwargs)

    return call


def parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent reads at once and return their results in order; re-raise the first error.

    While one read waits on the database (SQLite and psycopg release the GIL) another computes,
    so a page's two big reads cost about the longer one. The extra threads carry this script
    run's context (caches and session state resolve as in the script) and the caller's context
    variables (the language), and each read opens its own database session (ui.cached does).
    """
    if len(calls) < PARALLEL_MIN_CALLS:
        return [call() for call in calls]
    script_context = get_script_run_ctx()
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException | None] = [None] * len(calls)

    def run(index: int, context: contextvars.Context) -> None:
        try:
            results[index] = context.run(calls[index])
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            errors[index] = exc

    threads = []
    for index in range(1, len(calls)):
        thread = threading.Thread(target=run, args=(index, contextvars.copy_context()), daemon=True)
        add_script_run_ctx(thread, script_context)
        thread.start()
        threads.append(thread)
    run(0, contextvars.copy_context())
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return results


def new_form_token(form: str) -> str:
    """Return the idempotency token of a form, creating it on first render."""
    key = f"token:{form}"
    if key not in st.session_state:
        st.session_state[key] = uuid.uuid4().hex
    return str(st.session_state[key])


def rotate_form_token(form: str) -> None:
    """Start a new token after a successful save so the next entry is a new record."""
    st.session_state[f"token:{form}"] = uuid.uuid4().hex


# --- formatting -----------------------------------------------------------------------------


def fmt_rate(value: float | None) -> str:
    """Format a 0–1 rate as a percentage with one decimal, or n/a."""
    return t("common.na") if value is None else f"{value * 100:.1f}%"


def fmt_number(value: float | int | Decimal | None, decimals: int = 0) -> str:
    if value is None:
        return t("common.na")
    return f"{float(value):,.{decimals}f}"


def fmt_money(value: float | Decimal | None) -> str:
    return t("common.na") if value is None else f"{float(value):,.0f}"


def fmt_delta(value: float | None, previous: float | None, *, is_rate: bool, decimals: int = 1) -> str | None:
    """Describe the change against the previous period (points for rates), or None if n/a."""
    if value is None or previous is None:
        return None
    if is_rate:
        return t("common.points", value=f"{(value - previous) * 100:+.1f}")
    if previous == 0:
        return None
    return f"{(value - previous) / abs(previous) * 100:+.{decimals}f}%"


# --- filters --------------------------------------------------------------------------------


def preset_period(preset: str, *, as_of: date) -> Period:
    """Return the period of a preset relative to a day."""
    this_month = month_start(as_of)
    this_quarter = quarter_start(as_of)
    this_year = date(as_of.year, 1, 1)
    periods = {
        "this_month": Period(this_month, add_months(this_month, 1)),
        "last_month": Period(add_months(this_month, -1), this_month),
        "this_quarter": Period(this_quarter, add_months(this_quarter, 3)),
        "last_quarter": Period(add_months(this_quarter, -3), this_quarter),
        "this_year": Period(this_year, date(as_of.year + 1, 1, 1)),
        "last_year": Period(date(as_of.year - 1, 1, 1), this_year),
    }
    return periods[preset]


@dataclass(frozen=True)
class FilterOptions:
    teams: list[str]
    regions: list[str]
    reps: list[tuple[int, str]]


def filter_options(session: Session, *, actor: Actor) -> FilterOptions:
    """Return the teams, regions and reps the actor may filter by."""
    reps = [user for user in assignable_reps(session, actor=actor) if user.role == Role.REP.value]
    if actor.is_admin:
        rows = session.execute(select(User.team, User.region).where(User.role == Role.REP.value).distinct()).all()
        teams = sorted({team for team, _ in rows if team})
        regions = sorted({region for _, region in rows if region})
    else:
        teams = [actor.team] if actor.team else []
        regions = sorted({user.region for user in reps if user.region})
    return FilterOptions(teams=teams, regions=regions, reps=[(user.id, user.display_name) for user in reps])


def period_picker(*, key: str = "period", default: str = "this_quarter") -> Period:
    """Render the period presets (and dates for custom) in the sidebar; return the period."""
    as_of = today()
    preset = st.sidebar.selectbox(
        t("filter.period"),
        PERIOD_PRESETS,
        index=PERIOD_PRESETS.index(default),
        format_func=lambda value: t(f"filter.{value}"),
        key=f"{key}:preset",
    )
    if preset != "custom":
        return preset_period(preset, as_of=as_of)
    start = st.sidebar.date_input(t("filter.start"), value=month_start(as_of), key=f"{key}:start")
    end = st.sidebar.date_input(t("filter.end"), value=as_of, key=f"{key}:end")
    if not isinstance(start, date) or not isinstance(end, date) or end < start:
        st.sidebar.error(t("error.date_order"))
        st.stop()
    return Period(start, end + timedelta(days=1))


def period_and_filters(actor: Actor, *, key: str = "filters", with_tier: bool = True) -> tuple[Period, Filters]:
    """Render period and scope filters in the sidebar (only what the actor may choose)."""
    period = period_picker(key=f"{key}:period")
    with reading() as session:
        options = filter_options(session, actor=actor)
    team = region = tier = None
    rep_id: int | None = None
    if actor.is_admin and options.teams:
        team = st.sidebar.selectbox(
            t("filter.team"),
            [None, *options.teams],
            key=f"{key}:team",
            format_func=lambda v: t("common.all") if v is None else v,
        )
    if not actor.is_rep and options.regions:
        region = st.sidebar.selectbox(
            t("filter.region"),
            [None, *options.regions],
            key=f"{key}:region",
            format_func=lambda v: t("common.all") if v is None else v,
        )
    if not actor.is_rep and options.reps:
        names = dict(options.reps)
        rep_id = st.sidebar.selectbox(
            t("filter.rep"),
            [None, *names],
            key=f"{key}:rep",
            format_func=lambda v: t("common.all") if v is None else names[v],
        )
    if with_tier:
        tier = st.sidebar.selectbox(
            t("filter.tier"),
            [None, *[tier.value for tier in Tier]],
            key=f"{key}:tier",
            format_func=lambda v: t("common.all") if v is None else enum_label("tier", v),
        )
    return period, Filters(team=team, region=region, rep_id=rep_id, tier=tier)


# --- messages and widgets -------------------------------------------------------------------


def rep_choices(who: Actor, *, me: str | None = None) -> dict[int, str]:
    """Return the users a record may be given to, by id: with `me`, the user first under that label."""
    with reading() as session:
        reps = {user.id: user.display_name for user in assignable_reps(session, actor=who)}
    if me is None:
        return reps
    return {who.id: me, **{rep_id: name for rep_id, name in reps.items() if rep_id != who.id}}


CUSTOMER_PICKER_LIMIT = 30


def customer_picker(
    who: Actor, errors: dict[str, str], *, texts: str, search_key: str, customer_key: str, known_key: str
) -> None:
    """Search box and customer selectbox of a form; its labels come from `{texts}.search`, `.customer`, ….

    `known_key` holds the labels of every customer the search has shown, so a chosen customer
    keeps its label when a new search no longer lists it; one match for what was typed is taken
    at once, so a typed code or phone is enough.
    """
    from crm.interactions import customer_choices

    search = st.text_input(t(f"{texts}.search"), key=search_key, placeholder=t(f"{texts}.search_hint"))
    choices = cached(customer_choices)(actor=who, query=search or "", limit=CUSTOMER_PICKER_LIMIT)
    found = {choice.id: f"{choice.code or ''} · {choice.name}" for choice in choices}
    known = st.session_state[known_key] = {**st.session_state.get(known_key, {}), **found}
    options = list(found)
    chosen = st.session_state.get(customer_key)
    if search and chosen is None and len(found) == 1:
        chosen = st.session_state[customer_key] = options[0]
    if chosen is not None and chosen not in found:
        # Keep the customer already chosen at the top even when the search no longer lists it.
        options.insert(0, chosen)
    st.selectbox(
        t(f"{texts}.customer"),
        options,
        index=None,
        key=customer_key,
        placeholder=t(f"{texts}.customer_placeholder") if options else t(f"{texts}.no_match"),
        format_func=lambda value: known.get(value, str(value)),
    )
    field_error(errors, "customer_id")


def field_error(errors: dict[str, str], name: str) -> None:
    """Show the message for one field right under it, if the last save refused it."""
    if name in errors:
        st.error(errors[name], icon="⚠️")


def translate_errors(error: ValidationError) -> dict[str, str]:
    """Turn a ValidationError into field -> message in the current language."""
    return {name: t(err.key, **err.params) for name, err in error.fields.items()}


def report_error(error: Exception) -> dict[str, str]:
    """Show a user-caused error as a clear message; return per-field messages for the form."""
    if isinstance(error, ValidationError):
        st.error(t("common.fix_fields"))
        return translate_errors(error)
    if isinstance(error, ConflictError):
        at = error.changed_at.strftime("%Y-%m-%d %H:%M") if error.changed_at else "?"
        st.warning(t("common.stale", who=error.changed_by or "?", at=at))
        return {}
    if isinstance(error, NotFoundError):
        st.error(t("common.not_found"))
        return {}
    if isinstance(error, PermissionDeniedError):
        st.error(t("common.not_allowed"))
        return {}
    raise error


def metric_card(
    label: str, value: str, delta: str | None, *, help_text: str | None = None, inverse: bool = False
) -> None:
    """Render one KPI card with its change against the previous period."""
    st.metric(label, value, delta=delta, delta_color="inverse" if inverse else "normal", help=help_text, border=True)


def dataframe(
    df: pd.DataFrame,
    *,
    columns: dict[str, str] | None = None,
    height: int | None = None,
    key: str | None = None,
    selectable: bool = False,
) -> Any:
    """Show a DataFrame with translated column labels; return the selection event if selectable."""
    shown = df.rename(columns=columns) if columns else df
    kwargs: dict[str, Any] = {"hide_index": True, "width": "stretch"}
    if height:
        kwargs["height"] = height
    if selectable:
        return st.dataframe(shown, key=key, on_select="rerun", selection_mode="single-row", **kwargs)
    st.dataframe(shown, **kwargs)
    return None


def options_label(values: Sequence[str], kind: str) -> Callable[[str], str]:
    """Return a format_func that shows translated enum labels for a selectbox."""
    del values
    return lambda value: enum_label(kind, value)


def set_language_for_run(actor: Actor | None) -> None:
    """Apply the session's language to t() for this script run."""
    language = st.session_state.get("language")
    if language is None and actor is not None:
        with reading() as session:
            user = session.get(User, actor.id)
            language = user.language if user else i18n.EN
        st.session_state["language"] = language
    i18n.set_language(language or i18n.EN)


# --- login, session revocation, logout, language ----------------------------------------------

AUTH_KEY = "crm_authenticator"
ISSUED_AT_KEY = "crm_issued_at"
PENDING_COOKIE_KEY = "crm_pending_cookie"
DROP_COOKIE_KEY = "crm_drop_cookie"
LOGGED_OUT_KEY = "crm_logged_out"


@st.cache_resource
def _ephemeral_cookie_key() -> str:
    """Return a random per-process cookie key for demo mode when none is configured."""
    import secrets

    return secrets.token_urlsafe(48)


def _cookie_settings() -> tuple[str, str, float]:
    """Return (cookie name, key, expiry days); stop the app on a missing or sample key."""
    settings = load_settings()
    key = settings.cookie_key
    if cookie_key_is_weak(key):
        if not settings.demo_mode:
            st.error(
                t(
                    "app.config_error",
                    detail="set a long random cookie_key in .streamlit/secrets.toml or CRM_COOKIE_KEY "
                    "(make run writes one)",
                )
            )
            st.stop()
        key = _ephemeral_cookie_key()
    assert key is not None
    return settings.cookie_name, key, settings.cookie_expiry_days


def _authenticator() -> Any:
    """Return this browser session's authenticator (it only writes and deletes the cookie).

    The password check, lockout and revocation are decided in crm.auth against the database;
    the library's own login() is never called (it cannot count failures per user in the database
    and its token carries no issue time to order against a revocation).
    """
    import streamlit_authenticator as stauth

    if AUTH_KEY not in st.session_state:
        name, key, days = _cookie_settings()
        st.session_state[AUTH_KEY] = stauth.Authenticate(
            {"usernames": {}},
            cookie_name=name,
            cookie_key=key,
            cookie_expiry_days=days,
            auto_hash=False,
            login_sleep_time=0,
        )
    return st.session_state[AUTH_KEY]


def _forget_login() -> None:
    for key in (ACTOR_KEY, ISSUED_AT_KEY):
        st.session_state.pop(key, None)


def login_gate() -> Callable[[], None]:
    """Restore or re-verify this session's login; return the login page to show if there is none.

    Runs on every script run: a login revoked by a logout elsewhere, a password change or a
    deactivation ends here on the next rerun, on every server process.
    """
    from crm import auth, session_cookie

    cookie_name, key, days = _cookie_settings()
    authenticator = _authenticator()
    now = utcnow()
    username: str | None = None
    issued_at: datetime | None = None
    actor = current_actor()
    if actor is not None:
        username, issued_at = actor.username, st.session_state.get(ISSUED_AT_KEY)
    elif not st.session_state.get(LOGGED_OUT_KEY):
        token = session_cookie.verify_token(st.context.cookies.get(cookie_name) or "", key=key, now=now)
        if token is not None:
            username, issued_at = token.username, token.issued_at
    restored = None
    if username and issued_at:
        with reading() as session:
            restored = auth.session_valid(session, username=username, issued_at=issued_at, now=now)
    if restored is None:
        _forget_login()
    else:
        st.session_state[ACTOR_KEY] = restored
        st.session_state[ISSUED_AT_KEY] = issued_at
    pending = st.session_state.pop(PENDING_COOKIE_KEY, None)
    if pending and restored is not None and days > 0:
        # Set in a run that is not cut short by st.rerun(), so the hidden component writes it.
        authenticator.cookie_controller.cookie_model.cookie_manager.set(
            cookie_name, pending, expires_at=datetime.now(UTC) + timedelta(days=days)
        )
    if st.session_state.pop(DROP_COOKIE_KEY, False):
        authenticator.cookie_controller.delete_cookie()
    set_language_for_run(current_actor())

    def login_page() -> None:
        _warm_chart_templates()
        _, middle, _ = st.columns([1, 2, 1])
        with middle:
            language = st.selectbox(
                t("app.language"),
                i18n.LANGUAGES,
                index=i18n.LANGUAGES.index(i18n.get_language()),
                format_func=lambda code: i18n.LANGUAGE_NAMES[code],
                key="login_language",
            )
            if language != i18n.get_language():
                st.session_state["language"] = language
                st.rerun()
            st.title(t("app.title"))
            login_form()

    return login_page


_templates_warmed = threading.Event()


def _warm_chart_templates() -> None:
    """Build the overview's chart templates in the background, once per process, while someone logs in."""
    from crm.charts import overview

    if not _templates_warmed.is_set():
        _templates_warmed.set()
        # A fresh context: the thread's language switches must not touch this script run's.
        threading.Thread(target=contextvars.Context().run, args=(overview.warm_templates,), daemon=True).start()


def login_form() -> None:
    """Render the username/password form; a good login reruns the app logged in."""
    with st.form("login"):
        st.subheader(t("auth.form_title"))
        typed_username = st.text_input(t("auth.username"), key="login_username")
        typed_password = st.text_input(t("auth.password"), type="password", key="login_password")
        submitted = st.form_submit_button(t("auth.login"), type="primary")
    if submitted:
        _, key, days = _cookie_settings()
        _attempt_login(typed_username, typed_password, key=key, days=days)


def _attempt_login(typed_username: str, typed_password: str, *, key: str, days: float) -> None:
    """Check the typed credentials in the database; on success remember the login and rerun."""
    from crm import auth, session_cookie

    login_at = utcnow()
    try:
        with writing() as session:
            actor = auth.authenticate(session, username=typed_username, password=typed_password, now=login_at)
    except AuthenticationError:
        st.error(t("auth.invalid_credentials"))
        return
    st.session_state.update(
        {
            ACTOR_KEY: actor,
            ISSUED_AT_KEY: login_at,
            LOGGED_OUT_KEY: False,
            PENDING_COOKIE_KEY: session_cookie.issue_token(
                key=key, username=actor.username, issued_at=login_at, expiry_days=days
            ),
        }
    )
    st.session_state.pop("language", None)
    st.rerun()


def _logout(actor: Actor) -> None:
    from crm import auth

    with writing() as session:
        auth.logout(session, actor=actor, now=utcnow())
    _forget_login()
    st.session_state.pop("language", None)
    st.session_state[LOGGED_OUT_KEY] = True
    st.session_state[DROP_COOKIE_KEY] = True


def logout_button() -> None:
    """Render the sidebar logout button; logging out revokes every login cookie of the user."""
    actor = current_actor()
    if actor is not None:
        st.sidebar.button(t("app.logout"), key="crm:logout", on_click=_logout, args=(actor,), width="stretch")


def language_switch(actor: Actor) -> None:
    """Render the language switch; the choice is remembered for the user in the database."""
    from crm import users

    current = i18n.get_language()
    choice = st.sidebar.selectbox(
        t("app.language"),
        i18n.LANGUAGES,
        index=i18n.LANGUAGES.index(current),
        format_func=lambda code: i18n.LANGUAGE_NAMES[code],
        key="language_switch",
    )
    if choice != current:
        with writing() as session:
            users.set_language(session, actor=actor, language=choice)
        st.session_state["language"] = choice
        st.rerun()


def renew_login(issued_at: datetime) -> None:
    """Re-issue this browser's login cookie after a revocation it caused (password change)."""
    from crm import session_cookie

    cookie_name, key, days = _cookie_settings()
    del cookie_name
    actor = current_actor()
    if actor is None:
        return
    st.session_state[ISSUED_AT_KEY] = issued_at
    st.session_state[PENDING_COOKIE_KEY] = session_cookie.issue_token(
        key=key, username=actor.username, issued_at=issued_at, expiry_days=days
    )
