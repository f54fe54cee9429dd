"""Import the Maven dataset and customer / interaction CSV files with a row-by-row report; export CSV.

Policies the pages and the CLI rely on (SPEC §7):

- Every import runs in two phases. The plan reads the source and the database and decides, row by
  row, what would be created, updated, left unchanged, cleaned or rejected, and why; the plan is
  the report. A dry run is the plan alone, so it never writes. The write phase runs inside a
  savepoint: any exception undoes all of it. Nothing here commits; the caller's write session does
  (`ImportReport.committed` means "written into the caller's transaction").
- Cleanings are reported for rows that are written (created or updated); a row that is already in
  the database unchanged reports only 'unchanged'.
- CSV imports (customers, interactions) are all-or-nothing: if one row is rejected nothing is
  written, and the report says so (`refused`). A blank cell never clears a field; it means "no
  value given". A cell that `export_customers_csv` neutralised (a leading apostrophe before = + - @)
  is read back without the apostrophe, so an export re-imports unchanged.
- Customers are matched by code, else by exact name + phone (blank phone matches a customer without
  one); interactions by (customer, rep, occurred_at, kind, subject). Matched rows are updates of the
  fields given; in-file duplicates are rejected.
- The Maven import (admins only) brings in every row it can map and reports, as 'rejected', each
  row it cannot (an unknown agent or product, a bad date, a won deal without an account, which
  cannot become an order) instead of refusing the whole dataset; an exception still rolls back all
  of it. Records already present (users by username, customers by exact name, products by name,
  opportunities by external id, orders by opportunity) are left as the CRM has them: 'unchanged'.
- Maven mapping: each manager becomes a manager user whose team is the manager's display name
  (e.g. "Dustin Brinkmann"); agents become reps of that team; region = regional office. Usernames
  are lower-case slugs of the display name ("anna.snelling"); passwords are unusable until an admin
  resets them. A customer's owner is the agent with most deals on the account (ties: alphabetical
  first), its tier `customer` if it has a won deal else `prospect`, and its created_at the earliest
  engage date of its deals (so lead-conversion KPIs over 2016-17 mean something), else the import
  time. An opportunity with no engage date is created on the earliest engage date in the file.
- Audit: CSV imports write one create / update event per record (bulk-inserted) and one 'import'
  summary; the Maven import writes only the 'import' summary (counts per entity and action, and the
  source directory), since ~13,000 per-row events of an initial load add nothing the external ids
  and the report do not say. Each import bumps the data version once.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar, cast

import pandas as pd
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, aliased

from crm import summaries
from crm.access import Actor, can_act_as_rep, customer_visible, require_role
from crm.audit import jsonable, record
from crm.csvio import (
    CsvRow,
    CsvTable,
    ParsedRow,
    dataframe_to_csv,
    parse_cells,
    parse_date,
    parse_datetime,
    parse_iso_date,
    read_table,
)
from crm.errors import FieldError, NotFoundError, ValidationError, Validator
from crm.models import (
    AuditEvent,
    Customer,
    CustomerKind,
    CustomerSize,
    CustomerStatus,
    Interaction,
    InteractionKind,
    Opportunity,
    Order,
    Outcome,
    PipelineStage,
    Product,
    Role,
    Source,
    StageKind,
    Tier,
    User,
)
from crm.validation import MAX_UTC_OFFSET, clean_email, clean_phone

__all__ = [
    "ImportReport",
    "ReportRow",
    "dataframe_to_csv",
    "export_customers_csv",
    "import_customers",
    "import_interactions",
    "import_maven",
    "username_slug",
]

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
CLEANED = "cleaned"
REJECTED = "rejected"
ACTIONS = (CREATED, UPDATED, UNCHANGED, CLEANED, REJECTED)
HEADER_LINE = 1
REPORT_COLUMNS = ["line", "entity", "action", "key", "field", "message"]

CUSTOMER_CODE_FORMAT = "C{:06d}"
# Rows per IN (...) list and per INSERT batch: well under every engine's bound-parameter limit.
LOOKUP_CHUNK = 500
WRITE_CHUNK = 1000
# The Maven import calls progress(done, total) at least this often (in source rows).
PROGRESS_EVERY = 500

MAVEN_PRODUCTS = "products.csv"
MAVEN_TEAMS = "sales_teams.csv"
MAVEN_ACCOUNTS = "accounts.csv"
MAVEN_PIPELINE = "sales_pipeline.csv"
MAVEN_COLUMNS: dict[str, tuple[str, ...]] = {
    MAVEN_PRODUCTS: ("product", "series", "sales_price"),
    MAVEN_TEAMS: ("sales_agent", "manager", "regional_office"),
    MAVEN_ACCOUNTS: (
        "account",
        "sector",
        "year_established",
        "revenue",
        "employees",
        "office_location",
        "subsidiary_of",
    ),
    MAVEN_PIPELINE: (
        "opportunity_id",
        "sales_agent",
        "product",
        "account",
        "deal_stage",
        "engage_date",
        "close_date",
        "close_value",
    ),
}
# Known dirt in the real export (datasets/maven_crm/SOURCE.md).
MAVEN_PRODUCT_FIXES = {"GTXPro": "GTX Pro"}
MAVEN_SECTOR_FIXES = {"technolgy": "technology"}
LARGE_COMPANY_EMPLOYEES = 1000
MEDIUM_COMPANY_EMPLOYEES = 100
# bcrypt hashes start with '$', so no password ever checks against this until an admin resets it.
UNUSABLE_PASSWORD_PREFIX = "!"
UNUSABLE_PASSWORD_RANDOM_BYTES = 16
MAVEN_LANGUAGE = "en"

# Times in a file are wall-clock times as typed while `at` is UTC: allow the widest UTC offset.
FUTURE_TOLERANCE = MAX_UTC_OFFSET

ERROR_TEXT = {
    "error.required": "is required",
    "error.too_long": "is longer than {max} characters",
    "error.invalid_choice": "must be one of {choices}",
    "error.invalid_email": "is not a valid e-mail address",
    "error.invalid_phone": "is not a valid phone number",
    "error.invalid_date": "is not a valid date",
    "error.invalid_number": "is not a number",
    "error.negative": "is negative",
    "error.in_future": "is in the future",
    "error.date_order": "is before {other}",
    "error.not_found": "{what} not found or not yours",
    "error.not_allowed": "not allowed: {why}",
    "error.duplicate": "duplicate {what}",
    "error.missing_columns": "missing column(s): {columns}",
}

CUSTOMER_HEADERS: dict[str, tuple[str, ...]] = {
    "code": ("code", "编号", "客户编号"),
    "name": ("name", "名称", "客户名称"),
    "kind": ("kind", "类型"),
    "industry": ("industry", "行业"),
    "region": ("region", "区域"),
    "province": ("province", "省份"),
    "city": ("city", "城市"),
    "address": ("address", "地址"),
    "size": ("size", "规模"),
    "tier": ("tier", "等级"),
    "status": ("status", "状态"),
    "source": ("source", "来源"),
    "owner": ("owner", "负责人"),
    "phone": ("phone", "电话", "手机"),
    "email": ("email", "邮箱", "电子邮箱"),
    "website": ("website", "网站"),
    "notes": ("notes", "备注"),
}
INTERACTION_HEADERS: dict[str, tuple[str, ...]] = {
    "customer": ("customer", "客户", "客户名称"),
    "kind": ("kind", "方式"),
    "occurred_at": ("occurred_at", "时间"),
    "rep": ("rep", "负责人"),
    "subject": ("subject", "主题"),
    "notes": ("notes", "备注"),
    "outcome": ("outcome", "结果"),
    "next_follow_up": ("next_follow_up", "下次跟进"),
    "location": ("location", "地点"),
}
# Column order of the customer export: every column re-imports through CUSTOMER_HEADERS.
CUSTOMER_EXPORT_COLUMNS = tuple(CUSTOMER_HEADERS)
CUSTOMER_MAX_LENGTH = {
    "code": 16,
    "name": 200,
    "industry": 64,
    "region": 64,
    "province": 64,
    "city": 64,
    "address": 300,
    "owner": 64,
    "phone": 32,
    "email": 254,
    "website": 254,
}
INTERACTION_MAX_LENGTH = {"customer": 200, "rep": 64, "subject": 200, "location": 200}
CHINESE_CHOICES: dict[str, dict[str, str]] = {
    "kind": {"公司": "company", "企业": "company", "个人": "person"},
    "size": {"大": "large", "大型": "large", "中": "medium", "中型": "medium", "小": "small", "小型": "small"},
    "tier": {
        "线索": "lead",
        "潜在": "prospect",
        "潜在客户": "prospect",
        "交易": "customer",
        "交易客户": "customer",
        "重要": "key",
        "重要客户": "key",
        "战略": "strategic",
        "战略客户": "strategic",
    },
    "status": {"活跃": "active", "正常": "active", "流失": "lost", "已流失": "lost"},
    "source": {
        "展会": "exhibition",
        "推荐": "referral",
        "转介绍": "referral",
        "网站": "website",
        "官网": "website",
        "陌生拜访": "cold_call",
        "陌拜": "cold_call",
        "电话营销": "cold_call",
        "活动": "event",
        "其他": "other",
        "其它": "other",
    },
    "interaction_kind": {
        "拜访": "visit",
        "上门拜访": "visit",
        "电话": "call",
        "邮件": "email",
        "电子邮件": "email",
        "会议": "meeting",
        "会面": "meeting",
        "消息": "message",
        "微信": "message",
        "短信": "message",
        "其他": "other",
        "其它": "other",
    },
    "outcome": {
        "积极": "positive",
        "正面": "positive",
        "中性": "neutral",
        "一般": "neutral",
        "消极": "negative",
        "负面": "negative",
    },
}
CUSTOMER_CHOICES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "kind": (tuple(CustomerKind), CHINESE_CHOICES["kind"]),
    "size": (tuple(CustomerSize), CHINESE_CHOICES["size"]),
    "tier": (tuple(Tier), CHINESE_CHOICES["tier"]),
    "status": (tuple(CustomerStatus), CHINESE_CHOICES["status"]),
    "source": (tuple(Source), CHINESE_CHOICES["source"]),
}
INTERACTION_CHOICES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "kind": (tuple(InteractionKind), CHINESE_CHOICES["interaction_kind"]),
    "outcome": (tuple(Outcome), CHINESE_CHOICES["outcome"]),
}
CUSTOMER_DEFAULTS = {
    "kind": CustomerKind.COMPANY.value,
    "tier": Tier.LEAD.value,
    "status": CustomerStatus.ACTIVE.value,
    "source": Source.OTHER.value,
}
# Fields of an existing interaction a re-import may fill in or change (the rest are its identity).
INTERACTION_UPDATABLE = ("notes", "outcome", "next_follow_up", "location")

T = TypeVar("T")


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """What the import did (or would do) with one source row, and why.

    `line` is the physical line in the source file (the header is line 1); `error` carries the
    i18n key and parameters of a rejection so pages can translate `message`.
    """

    line: int
    entity: str
    action: str
    key: str
    message: str
    field: str | None = None
    error: FieldError | None = None


@dataclass(frozen=True)
class ImportReport:
    """The row-by-row outcome of an import or a dry run."""

    rows: list[ReportRow]
    encoding: str | None
    dry_run: bool
    committed: bool

    @property
    def ok(self) -> bool:
        """Tell whether no row was rejected."""
        return not any(row.action == REJECTED for row in self.rows)

    @property
    def refused(self) -> bool:
        """Tell whether a real run wrote nothing because rows were rejected."""
        return not self.dry_run and not self.committed

    @cached_property
    def counts(self) -> dict[str, dict[str, int]]:
        """Return entity -> action -> number of source rows; a row with several messages counts once."""
        distinct = {(row.entity, row.action, row.line, row.key) for row in self.rows}
        counts: dict[str, dict[str, int]] = {}
        for (entity, action), n in sorted(Counter((e, a) for e, a, _, _ in distinct).items()):
            counts.setdefault(entity, {})[action] = n
        return counts

    def count(self, entity: str, action: str) -> int:
        """Return how many rows of this entity got this action."""
        return self.counts.get(entity, {}).get(action, 0)

    def to_dataframe(self) -> pd.DataFrame:
        """Return the rows with columns line, entity, action, key, field, message."""
        return pd.DataFrame(
            [(r.line, r.entity, r.action, r.key, r.field, r.message) for r in self.rows], columns=REPORT_COLUMNS
        )


def _rejected(line: int, entity: str, key: str, name: str, error: FieldError, value: object = None) -> ReportRow:
    text = ERROR_TEXT.get(error.key, error.key).format(**error.params)
    shown = f"{name} '{value}' {text}" if value not in (None, "") else f"{name} {text}"
    return ReportRow(line, entity, REJECTED, key, shown, name, error)


def _rejections(
    line: int, entity: str, key: str, errors: Mapping[str, FieldError], values: Mapping[str, Any]
) -> list[ReportRow]:
    return [_rejected(line, entity, key, name, error, values.get(name)) for name, error in errors.items()]


# --- shared helpers ----------------------------------------------------------------------------


def username_slug(display_name: str) -> str:
    """Return the lower-case username for a display name ("Anna Snelling" -> "anna.snelling")."""
    ascii_name = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9-]+", ".", ascii_name.lower()).strip(".")


def unusable_password_hash() -> str:
    """Return a password hash no password matches (the admin sets a real one later)."""
    return UNUSABLE_PASSWORD_PREFIX + secrets.token_hex(UNUSABLE_PASSWORD_RANDOM_BYTES)


def _chunks(values: Sequence[T], size: int = LOOKUP_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _in_savepoint(session: Session, work: Callable[[], None]) -> None:
    """Run the writes in a savepoint so an exception undoes every one of them."""
    savepoint = session.begin_nested()
    try:
        work()
        session.flush()
    except BaseException:
        savepoint.rollback()
        raise
    savepoint.commit()


def _insert_ids(session: Session, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Bulk-insert rows and return their new ids in the rows' order.

    render_nulls keeps None in the statement: otherwise the ORM drops None keys and splits the
    batch wherever the pattern of missing values changes (thousands of statements instead of ten).
    """
    ids: list[int] = []
    for chunk in _chunks(rows, WRITE_CHUNK):
        statement = insert(model).returning(model.id, sort_by_parameter_order=True)
        ids.extend(session.scalars(statement.execution_options(render_nulls=True), list(chunk)))
    return ids


def _insert_keyed(session: Session, model: Any, key: str, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Bulk-insert rows whose `key` column is unique and return key -> new id."""
    return dict(zip((str(row[key]) for row in rows), _insert_ids(session, model, rows), strict=True))


def _assign_customer_codes(session: Session, ids: Sequence[int]) -> None:
    """Give new customers their code C%06d of the id (Core executemany: no ORM version bump)."""
    if not ids:
        return
    table = cast(Table, Customer.__table__)
    statement = update(table).where(table.c.id == bindparam("row_id")).values(code=bindparam("row_code"))
    session.execute(statement, [{"row_id": i, "row_code": CUSTOMER_CODE_FORMAT.format(i)} for i in ids])


def _bulk_audit(
    session: Session,
    *,
    actor: Actor,
    at: datetime,
    action: str,
    entity: str,
    events: list[tuple[int, dict[str, list[Any]]]],
) -> None:
    """Insert one audit event per record in bulk (the caller records the summary that bumps the version)."""
    rows = [
        {"at": at, "actor_id": actor.id, "action": action, "entity": entity, "entity_id": str(i), "changes": changes}
        for i, changes in events
    ]
    for chunk in _chunks(rows, WRITE_CHUNK):
        session.execute(insert(AuditEvent).execution_options(render_nulls=True), list(chunk))


def _require_importer(actor: Actor) -> None:
    """Reps may not import (SPEC §4); managers import for their team, admins for all."""
    require_role(actor, Role.MANAGER, Role.ADMIN)


class _Progress:
    """Call the progress callback every PROGRESS_EVERY rows."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int) -> None:
        self.callback = callback
        self.total = total
        self.done = 0
        self.reported = 0

    def step(self, rows: int = 1) -> None:
        self.done = min(self.total, self.done + rows)
        if self.callback and self.done - self.reported >= PROGRESS_EVERY:
            self.reported = self.done
            self.callback(self.done, self.total)

    def finish(self) -> None:
        self.done = self.total
        if self.callback:
            self.callback(self.total, self.total)


def _table_header_rows(table: CsvTable, entity: str, required: Sequence[str]) -> list[ReportRow]:
    """Report unknown columns (ignored) and missing required ones (rejected)."""
    rows = [
        ReportRow(HEADER_LINE, entity, CLEANED, header, f"unknown column '{header}' ignored", header)
        for header in table.unknown_headers
    ]
    missing = [name for name in required if name not in table.fields]
    if missing:
        error = FieldError("error.missing_columns", {"columns": ", ".join(missing)})
        rows.append(_rejected(HEADER_LINE, entity, "header", "header", error))
    return rows


def _users_by_username(session: Session, usernames: set[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    for chunk in _chunks(sorted(usernames)):
        found.update({user.username: user for user in session.scalars(select(User).where(User.username.in_(chunk)))})
    return found


def _describe_changes(changes: Mapping[str, tuple[Any, Any]]) -> str:
    return "; ".join(f"{name}: {_shown(old)} → {_shown(new)}" for name, (old, new) in changes.items())


def _shown(value: Any) -> str:
    return "(empty)" if value is None else f"'{jsonable(value)}'"


# --- Maven dataset -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _MavenSource:
    """The four Maven files, parsed."""

    products: list[CsvRow]
    teams: list[CsvRow]
    accounts: list[CsvRow]
    pipeline: list[CsvRow]
    encoding: str

    @property
    def size(self) -> int:
        return len(self.products) + len(self.teams) + len(self.accounts) + len(self.pipeline)

    @classmethod
    def read(cls, directory: Path) -> _MavenSource:
        tables: dict[str, CsvTable] = {}
        for name, columns in MAVEN_COLUMNS.items():
            path = directory / name
            if not path.is_file():
                raise ValidationError({"directory": FieldError("error.not_found", {"what": str(path)})})
            table = read_table(path.read_bytes(), aliases={column: column for column in columns})
            missing = [column for column in columns if column not in table.fields]
            if missing:
                raise ValidationError({name: FieldError("error.missing_columns", {"columns": ", ".join(missing)})})
            tables[name] = table
        return cls(
            products=tables[MAVEN_PRODUCTS].rows,
            teams=tables[MAVEN_TEAMS].rows,
            accounts=tables[MAVEN_ACCOUNTS].rows,
            pipeline=tables[MAVEN_PIPELINE].rows,
            encoding=tables[MAVEN_PIPELINE].encoding,
        )


@dataclass(frozen=True)
class _Pending:
    """A row to insert whose foreign keys are still natural keys (resolved once the parents exist)."""

    values: dict[str, Any]
    refs: dict[str, str | None] = field(default_factory=dict)


def _resolve(pending: list[_Pending], ids: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """Return insert rows with each natural-key reference replaced by its id."""
    return [
        {**p.values, **{column: None if key is None else ids[column][key] for column, key in p.refs.items()}}
        for p in pending
    ]


@dataclass
class _MavenPlan:
    """What the Maven import would write, and the report that says so."""

    products: list[_Pending] = field(default_factory=list)
    managers: list[_Pending] = field(default_factory=list)
    agents: list[_Pending] = field(default_factory=list)
    customers: list[_Pending] = field(default_factory=list)
    opportunities: list[_Pending] = field(default_factory=list)
    orders: list[_Pending] = field(default_factory=list)
    product_ids: dict[str, int] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)
    customer_ids: dict[str, int] = field(default_factory=dict)
    opportunity_ids: dict[str, int] = field(default_factory=dict)
    report: dict[str, list[ReportRow]] = field(default_factory=lambda: defaultdict(list))

    def rows(self) -> list[ReportRow]:
        return [
            row for entity in ("product", "user", "customer", "opportunity", "order") for row in self.report[entity]
        ]


@dataclass
class _AccountStats:
    """What the pipeline says about one account: deals per agent, a won deal, the first engage date."""

    deals: Counter[str] = field(default_factory=Counter)
    won: bool = False
    first_engaged: date | None = None


def import_maven(
    session: Session,
    *,
    actor: Actor,
    directory: Path,
    dry_run: bool,
    at: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import the Maven CRM dataset (admins only); the module docstring gives the mapping."""
    require_role(actor, Role.ADMIN)
    source = _MavenSource.read(directory)
    tracker = _Progress(progress, source.size if dry_run else 2 * source.size)
    plan = _MavenPlan()
    _plan_maven_products(session, plan=plan, rows=source.products, tracker=tracker)
    agents = _plan_maven_users(session, plan=plan, rows=source.teams, at=at, tracker=tracker)
    accounts = _valid_maven_accounts(session, plan=plan, rows=source.accounts)
    stats = _plan_maven_pipeline(
        session, plan=plan, source=source, agents=agents, accounts=accounts, at=at, tracker=tracker
    )
    _plan_maven_customers(plan=plan, accounts=accounts, stats=stats, agents=agents, actor=actor, at=at, tracker=tracker)
    report_rows = plan.rows()
    if not dry_run:
        summary = ImportReport(rows=report_rows, encoding=source.encoding, dry_run=False, committed=True)
        _in_savepoint(
            session,
            lambda: _write_maven(
                session, plan=plan, actor=actor, at=at, directory=directory, summary=summary, tracker=tracker
            ),
        )
    tracker.finish()
    return ImportReport(rows=report_rows, encoding=source.encoding, dry_run=dry_run, committed=not dry_run)


def _cell(row: CsvRow, name: str) -> str:
    return row.cells.get(name, "").strip()


def _plan_maven_products(session: Session, *, plan: _MavenPlan, rows: list[CsvRow], tracker: _Progress) -> None:
    names = sorted({_cell(row, "product") for row in rows} - {""})
    plan.product_ids.update(
        {name: i for i, name in session.execute(select(Product.id, Product.name).where(Product.name.in_(names)))}
    )
    planned: set[str] = set()
    report = plan.report["product"]
    for row in rows:
        tracker.step()
        name, series, price_text = _cell(row, "product"), _cell(row, "series"), _cell(row, "sales_price")
        errors = Validator()
        price = _parse_money(price_text or "0", "sales_price", errors)
        if not name:
            errors.add("product", "error.required")
        elif name in planned:
            errors.add("product", "error.duplicate", what=f"product '{name}'")
        if errors.errors:
            report.extend(_rejections(row.line, "product", name, errors.errors, {"sales_price": price_text}))
            continue
        planned.add(name)
        if name in plan.product_ids:
            report.append(ReportRow(row.line, "product", UNCHANGED, name, "already imported"))
            continue
        plan.products.append(_Pending({"name": name, "series": series or None, "list_price": price}))
        report.append(ReportRow(row.line, "product", CREATED, name, f"product '{name}' ({series}, list price {price})"))


def _parse_money(text: str, name: str, errors: Validator) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        errors.add(name, "error.invalid_number")
        return None
    if not value.is_finite():
        errors.add(name, "error.invalid_number")
        return None
    if value < 0:
        errors.add(name, "error.negative")
    return value


def _plan_maven_users(
    session: Session, *, plan: _MavenPlan, rows: list[CsvRow], at: datetime, tracker: _Progress
) -> dict[str, str]:
    """Plan manager and rep users; return agent display name -> username for every agent in the file."""
    names = {_cell(row, column) for row in rows for column in ("sales_agent", "manager")} - {""}
    existing = _users_by_username(session, {username_slug(name) for name in names})
    plan.user_ids.update({username: user.id for username, user in existing.items()})
    report = plan.report["user"]
    managers: set[str] = set()
    agents: dict[str, str] = {}
    for row in rows:
        tracker.step()
        agent, manager, office = _cell(row, "sales_agent"), _cell(row, "manager"), _cell(row, "regional_office")
        errors = Validator()
        for column, value in (("sales_agent", agent), ("manager", manager)):
            if not value:
                errors.add(column, "error.required")
            elif not username_slug(value):
                errors.add(column, "error.invalid_choice", choices="Latin letters or digits")
        if agent and agent in agents:
            errors.add("sales_agent", "error.duplicate", what=f"agent '{agent}'")
        if errors.errors:
            report.extend(
                _rejections(row.line, "user", agent, errors.errors, {"sales_agent": agent, "manager": manager})
            )
            continue
        manager_username = username_slug(manager)
        if manager_username not in managers:
            managers.add(manager_username)
            if manager_username in existing:
                report.append(ReportRow(row.line, "user", UNCHANGED, manager_username, "already imported"))
            else:
                plan.managers.append(_Pending(_maven_user(manager, Role.MANAGER, team=manager, region=office, at=at)))
                report.append(
                    ReportRow(
                        row.line,
                        "user",
                        CREATED,
                        manager_username,
                        f"manager '{manager}', team '{manager}', region '{office}'",
                    )
                )
        agent_username = username_slug(agent)
        agents[agent] = agent_username
        if agent_username in existing:
            report.append(ReportRow(row.line, "user", UNCHANGED, agent_username, "already imported"))
            continue
        values = _maven_user(agent, Role.REP, team=manager, region=office, at=at)
        plan.agents.append(_Pending(values, {"manager_id": manager_username}))
        report.append(
            ReportRow(row.line, "user", CREATED, agent_username, f"rep '{agent}' under '{manager}', region '{office}'")
        )
    return agents


def _maven_user(name: str, role: Role, *, team: str, region: str, at: datetime) -> dict[str, Any]:
    return {
        "username": username_slug(name),
        "display_name": name,
        "email": None,
        "role": role.value,
        "team": team,
        "region": region or None,
        "active": True,
        "password_hash": unusable_password_hash(),
        "language": MAVEN_LANGUAGE,
        "failed_logins": 0,
        "created_at": at,
    }


def _valid_maven_accounts(session: Session, *, plan: _MavenPlan, rows: list[CsvRow]) -> dict[str, CsvRow]:
    """Return account name -> row for the usable accounts; reject blank and duplicate names."""
    accounts: dict[str, CsvRow] = {}
    for row in rows:
        name = _cell(row, "account")
        if not name or name in accounts:
            error = (
                FieldError("error.required")
                if not name
                else FieldError("error.duplicate", {"what": f"account '{name}'"})
            )
            plan.report["customer"].append(_rejected(row.line, "customer", name, "account", error))
            continue
        accounts[name] = row
    query = select(Customer.id, Customer.name).order_by(Customer.id.desc())
    for chunk in _chunks(sorted(accounts)):
        # Descending ids: when several customers share the name, the oldest one wins.
        plan.customer_ids.update({name: i for i, name in session.execute(query.where(Customer.name.in_(chunk)))})
    return accounts


def _plan_maven_pipeline(
    session: Session,
    *,
    plan: _MavenPlan,
    source: _MavenSource,
    agents: Mapping[str, str],
    accounts: Mapping[str, CsvRow],
    at: datetime,
    tracker: _Progress,
) -> dict[str, _AccountStats]:
    """Plan opportunities and their orders; return the pipeline's figures per account."""
    rows = source.pipeline
    stages = {key: kind for key, kind in session.execute(select(PipelineStage.key, PipelineStage.kind))}
    unknown_agents = {_cell(row, "sales_agent") for row in rows} - set(agents) - {""}
    for username, user in _users_by_username(session, {username_slug(a) for a in unknown_agents}).items():
        plan.user_ids[username] = user.id
    products = set(plan.product_ids) | {str(p.values["name"]) for p in plan.products}
    customers = set(accounts) | set(plan.customer_ids)
    # One scan of the imported ids: right after a bulk load the planner's statistics are stale and
    # turns each IN (...) list into a sequential scan, so 18 chunked lookups would cost 18 scans.
    in_file = {_cell(row, "opportunity_id") for row in rows}
    imported = session.execute(
        select(Opportunity.external_id, Opportunity.id).where(Opportunity.external_id.is_not(None))
    )
    plan.opportunity_ids.update({str(ext): i for ext, i in imported if ext in in_file})
    ordered = session.scalars(select(Order.opportunity_id).where(Order.opportunity_id.is_not(None)))
    existing_orders = {i for i in ordered if i is not None}
    engaged = [d for d in (parse_iso_date(_cell(row, "engage_date")) for row in rows) if d]
    fallback_created = min(engaged) if engaged else at.date()
    stats: dict[str, _AccountStats] = defaultdict(_AccountStats)
    seen: set[str] = set()
    for row in rows:
        tracker.step()
        ext = _cell(row, "opportunity_id")
        errors = Validator()
        agent, product_raw, account = _cell(row, "sales_agent"), _cell(row, "product"), _cell(row, "account")
        stage_raw = _cell(row, "deal_stage")
        product = MAVEN_PRODUCT_FIXES.get(product_raw, product_raw)
        stage = stage_raw.lower()
        username = agents.get(agent) or username_slug(agent)
        if not ext:
            errors.add("opportunity_id", "error.required")
        elif ext in seen:
            errors.add("opportunity_id", "error.duplicate", what=f"opportunity '{ext}'")
        if username not in plan.user_ids and agent not in agents:
            errors.add("sales_agent", "error.not_found", what="agent")
        if product not in products:
            errors.add("product", "error.not_found", what="product")
        if account and account not in customers:
            errors.add("account", "error.not_found", what="account")
        if stage not in stages:
            errors.add("deal_stage", "error.invalid_choice", choices=", ".join(stages))
        dates = {}
        for column in ("engage_date", "close_date"):
            text = _cell(row, column)
            dates[column] = parse_iso_date(text) if text else None
            if text and dates[column] is None:
                errors.add(column, "error.invalid_date")
        value_text = _cell(row, "close_value")
        amount = _parse_money(value_text, "close_value", errors) if value_text else None
        if errors.errors:
            values = {c: _cell(row, c) for c in MAVEN_COLUMNS[MAVEN_PIPELINE]}
            plan.report["opportunity"].extend(_rejections(row.line, "opportunity", ext, errors.errors, values))
            continue
        seen.add(ext)
        engaged_on, closed_on = dates["engage_date"], dates["close_date"]
        won = stages[stage] == StageKind.WON.value
        if account:
            account_stats = stats[account]
            account_stats.deals[agent] += 1
            account_stats.won = account_stats.won or won
            if engaged_on and (account_stats.first_engaged is None or engaged_on < account_stats.first_engaged):
                account_stats.first_engaged = engaged_on
        report = plan.report["opportunity"]
        if ext in plan.opportunity_ids:
            report.append(ReportRow(row.line, "opportunity", UNCHANGED, ext, "already imported"))
        else:
            if product != product_raw:
                report.append(
                    ReportRow(
                        row.line,
                        "opportunity",
                        CLEANED,
                        ext,
                        f"product '{product_raw}' cleaned to '{product}'",
                        "product",
                    )
                )
            if engaged_on is None:
                message = (
                    f"no engage_date: created_on set to {fallback_created.isoformat()}, the file's first engage date"
                )
                report.append(ReportRow(row.line, "opportunity", CLEANED, ext, message, "created_on"))
            columns: dict[str, Any] = {
                "external_id": ext,
                "title": f"{account} – {product}" if account else product,
                "amount": amount,
                "stage": stage,
                "created_on": engaged_on or fallback_created,
                "engaged_on": engaged_on,
                "closed_on": closed_on,
                "version": 1,
            }
            refs = {"owner_id": username, "customer_id": account or None, "product_id": product}
            plan.opportunities.append(_Pending(columns, refs))
            report.append(
                ReportRow(row.line, "opportunity", CREATED, ext, f"{stage} deal of '{agent}' on '{account or '-'}'")
            )
        if won:
            refs = {"rep_id": username, "customer_id": account or None, "product_id": product}
            _plan_maven_order(
                plan, row=row, ext=ext, refs=refs, amount=amount, closed_on=closed_on, existing_orders=existing_orders
            )
    return stats


def _plan_maven_order(
    plan: _MavenPlan,
    *,
    row: CsvRow,
    ext: str,
    refs: dict[str, str | None],
    amount: Decimal | None,
    closed_on: date | None,
    existing_orders: set[int],
) -> None:
    report = plan.report["order"]
    missing = [
        name
        for name, value in (("account", refs["customer_id"]), ("close_date", closed_on), ("close_value", amount))
        if value is None
    ]
    if missing:
        error = FieldError("error.required")
        message = f"won deal without {' / '.join(missing)} cannot become an order"
        report.append(ReportRow(row.line, "order", REJECTED, ext, message, missing[0], error))
        return
    opportunity_id = plan.opportunity_ids.get(ext)
    if opportunity_id is not None and opportunity_id in existing_orders:
        report.append(ReportRow(row.line, "order", UNCHANGED, ext, "already imported"))
        return
    assert closed_on is not None  # checked in `missing` above
    values = {
        "ordered_on": closed_on,
        "amount": amount,
        "quantity": 1,
        "created_at": datetime.combine(closed_on, datetime.min.time()),
    }
    plan.orders.append(_Pending(values, {**refs, "opportunity_id": ext}))
    report.append(ReportRow(row.line, "order", CREATED, ext, f"order of {amount} on {closed_on.isoformat()}"))


def _plan_maven_customers(
    *,
    plan: _MavenPlan,
    accounts: Mapping[str, CsvRow],
    stats: Mapping[str, _AccountStats],
    agents: Mapping[str, str],
    actor: Actor,
    at: datetime,
    tracker: _Progress,
) -> None:
    report = plan.report["customer"]
    for name, row in accounts.items():
        tracker.step()
        if name in plan.customer_ids:
            report.append(ReportRow(row.line, "customer", UNCHANGED, name, "already imported"))
            continue
        sector_raw = _cell(row, "sector")
        sector = MAVEN_SECTOR_FIXES.get(sector_raw, sector_raw)
        if sector != sector_raw:
            report.append(
                ReportRow(
                    row.line, "customer", CLEANED, name, f"industry '{sector_raw}' cleaned to '{sector}'", "industry"
                )
            )
        size = _company_size(_cell(row, "employees"))
        if size is None and _cell(row, "employees"):
            message = f"employees '{_cell(row, 'employees')}' is not a number: size left empty"
            report.append(ReportRow(row.line, "customer", CLEANED, name, message, "size"))
        account = stats.get(name, _AccountStats())
        owner = min(account.deals.items(), key=lambda item: (-item[1], item[0]))[0] if account.deals else None
        tier = Tier.CUSTOMER.value if account.won else Tier.PROSPECT.value
        created_at = datetime.combine(account.first_engaged, datetime.min.time()) if account.first_engaged else at
        values = {
            "name": name,
            "name_key": name.lower(),
            "kind": CustomerKind.COMPANY.value,
            "industry": sector or None,
            "region": _cell(row, "office_location") or None,
            "size": size,
            "tier": tier,
            "status": CustomerStatus.ACTIVE.value,
            "source": Source.OTHER.value,
            "notes": _maven_account_notes(row),
            "created_at": created_at,
            "updated_at": at,
            "updated_by_id": actor.id,
            "version": 1,
        }
        owner_username = (agents.get(owner) or username_slug(owner)) if owner else None
        plan.customers.append(_Pending(values, {"owner_id": owner_username}))
        report.append(
            ReportRow(row.line, "customer", CREATED, name, f"tier {tier}, size {size}, owner {owner or '(pool)'}")
        )


def _company_size(employees: str) -> str | None:
    try:
        count = int(employees)
    except ValueError:
        return None
    if count >= LARGE_COMPANY_EMPLOYEES:
        return CustomerSize.LARGE.value
    if count >= MEDIUM_COMPANY_EMPLOYEES:
        return CustomerSize.MEDIUM.value
    return CustomerSize.SMALL.value


def _maven_account_notes(row: CsvRow) -> str | None:
    parts = []
    if year := _cell(row, "year_established"):
        parts.append(f"Established {year}")
    if revenue := _cell(row, "revenue"):
        parts.append(f"revenue {revenue} M USD")
    if parent := _cell(row, "subsidiary_of"):
        parts.append(f"subsidiary of {parent}")
    return "; ".join(parts) or None


def _write_maven(
    session: Session,
    *,
    plan: _MavenPlan,
    actor: Actor,
    at: datetime,
    directory: Path,
    summary: ImportReport,
    tracker: _Progress,
) -> None:
    plan.product_ids.update(_insert_keyed(session, Product, "name", _resolve(plan.products, {})))
    plan.user_ids.update(_insert_keyed(session, User, "username", _resolve(plan.managers, {})))
    plan.user_ids.update(_insert_keyed(session, User, "username", _resolve(plan.agents, {"manager_id": plan.user_ids})))
    new_customers = _insert_keyed(session, Customer, "name", _resolve(plan.customers, {"owner_id": plan.user_ids}))
    _assign_customer_codes(session, sorted(new_customers.values()))
    plan.customer_ids.update(new_customers)
    ids = {
        "owner_id": plan.user_ids,
        "rep_id": plan.user_ids,
        "customer_id": plan.customer_ids,
        "product_id": plan.product_ids,
    }
    for chunk in _chunks(plan.opportunities, WRITE_CHUNK):
        plan.opportunity_ids.update(_insert_keyed(session, Opportunity, "external_id", _resolve(list(chunk), ids)))
        tracker.step(len(chunk))
    orders = _resolve(plan.orders, {**ids, "opportunity_id": plan.opportunity_ids})
    for order_chunk in _chunks(orders, WRITE_CHUNK):
        session.execute(insert(Order).execution_options(render_nulls=True), list(order_chunk))
    # Bulk inserts bypass the ORM flush hooks; a whole dataset is cheapest summarised set-based.
    summaries.rebuild(session)
    changes: dict[str, list[Any]] = {"source": [None, str(directory)]}
    changes.update({entity: [None, actions] for entity, actions in summary.counts.items()})
    record(session, actor=actor, action="import", entity="maven", entity_id=directory.name, changes=changes, at=at)


# --- customers CSV -----------------------------------------------------------------------------


def _aliases(headers: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    return {alias.casefold(): name for name, aliases in headers.items() for alias in aliases}


@dataclass
class _CustomerWrite:
    """A planned customer write: a new row (match None) or the changes to a matched one."""

    line: int
    values: dict[str, str]
    owner_id: int | None
    match: Customer | None = None
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def import_customers(
    session: Session,
    *,
    actor: Actor,
    data: bytes,
    dry_run: bool,
    at: datetime,
    owner_username: str | None = None,
) -> ImportReport:
    """Import customers from CSV bytes, all-or-nothing (managers for their team, admins for all).

    New customers without an owner cell go to `owner_username` (the CLI's --as user), else to
    the unassigned pool.
    """
    _require_importer(actor)
    table = read_table(data, aliases=_aliases(CUSTOMER_HEADERS))
    report = _table_header_rows(table, "customer", ["name"])
    if any(row.action == REJECTED for row in report):
        return ImportReport(rows=report, encoding=table.encoding, dry_run=dry_run, committed=False)
    default_owner: User | None = None
    if owner_username:
        default_owner = session.scalar(select(User).where(User.username == owner_username.strip().lower()))
        if default_owner is None:
            raise NotFoundError("user", owner_username)
    writes = _plan_customers(session, actor=actor, table=table, default_owner=default_owner, report=report)
    if dry_run or any(row.action == REJECTED for row in report):
        return ImportReport(rows=report, encoding=table.encoding, dry_run=dry_run, committed=False)
    _in_savepoint(
        session, lambda: _write_customers(session, actor=actor, at=at, writes=writes, encoding=table.encoding)
    )
    return ImportReport(rows=report, encoding=table.encoding, dry_run=False, committed=True)


def _load_customer_candidates(
    session: Session, *, actor: Actor, codes: set[str], names: set[str]
) -> tuple[dict[str, Customer], dict[tuple[str, str | None], list[Customer]], set[int]]:
    """Return customers by code (any), live customers by (name, phone), and which of them the actor sees."""
    by_code: dict[str, Customer] = {}
    for chunk in _chunks(sorted(codes)):
        by_code.update({str(c.code): c for c in session.scalars(select(Customer).where(Customer.code.in_(chunk)))})
    by_name_phone: dict[tuple[str, str | None], list[Customer]] = defaultdict(list)
    for chunk in _chunks(sorted(names)):
        query = select(Customer).where(Customer.name.in_(chunk), Customer.deleted_at.is_(None)).order_by(Customer.id)
        for customer in session.scalars(query):
            by_name_phone[(customer.name, customer.phone)].append(customer)
    candidate_ids = {c.id for c in by_code.values()} | {c.id for group in by_name_phone.values() for c in group}
    visible: set[int] = set()
    for id_chunk in _chunks(sorted(candidate_ids)):
        visible.update(session.scalars(select(Customer.id).where(Customer.id.in_(id_chunk), customer_visible(actor))))
    return by_code, by_name_phone, visible


def _plan_customers(
    session: Session, *, actor: Actor, table: CsvTable, default_owner: User | None, report: list[ReportRow]
) -> list[_CustomerWrite]:
    parsed_rows = [parse_cells(row, max_length=CUSTOMER_MAX_LENGTH, choices=CUSTOMER_CHOICES) for row in table.rows]
    for parsed in parsed_rows:
        _check_customer_cells(parsed)
    users = _users_by_username(session, {p.values["owner"] for p in parsed_rows if "owner" in p.values})
    by_code, by_name_phone, visible = _load_customer_candidates(
        session,
        actor=actor,
        codes={p.values["code"] for p in parsed_rows if "code" in p.values},
        names={p.values["name"] for p in parsed_rows if "name" in p.values},
    )
    assignable: dict[int, bool] = {}

    def may_own(user_id: int | None) -> bool:
        # The unassigned pool is open to managers and admins, the only roles that import.
        if user_id is None:
            return True
        if user_id not in assignable:
            assignable[user_id] = can_act_as_rep(session, actor=actor, rep_id=user_id)
        return assignable[user_id]

    writes: list[_CustomerWrite] = []
    first_line: dict[tuple[Any, ...], int] = {}
    for parsed in parsed_rows:
        values, errors = parsed.values, parsed.errors
        key = values.get("code") or values.get("name") or f"line {parsed.line}"
        code, name, phone = values.get("code"), values.get("name", ""), values.get("phone")
        cleanings = list(parsed.cleanings)
        match = by_code.get(code) if code else None
        if code and match is None:
            cleanings.append(("code", f"code '{code}' not found: a new code is generated"))
        if match is not None:
            if match.deleted_at is not None:
                errors.add("code", "error.not_allowed", why="the customer is in the recycle bin")
            elif match.id not in visible:
                errors.add("code", "error.not_found", what="customer")
        elif name:
            group = by_name_phone.get((name, phone), [])
            if len(group) > 1:
                errors.add("name", "error.duplicate", what="customers with this name and phone; give the code")
            elif group and group[0].id not in visible:
                errors.add("name", "error.duplicate", what="customer of another team")
            elif group:
                match = group[0]
        owner_id = match.owner_id if match is not None else (default_owner.id if default_owner else None)
        if "owner" in values:
            owner = users.get(values["owner"])
            if owner is None:
                errors.add("owner", "error.not_found", what="user")
            else:
                owner_id = owner.id
        if owner_id != (match.owner_id if match is not None else None) and not may_own(owner_id):
            errors.add("owner", "error.not_allowed", why="owner outside your team")
        identity: tuple[Any, ...] = ("id", match.id) if match is not None else ("new", name, phone)
        if identity in first_line and not errors.errors:
            errors.add("name", "error.duplicate", what=f"row (same customer as line {first_line[identity]})")
        if errors.errors:
            report.extend(_rejections(parsed.line, "customer", key, errors.errors, values))
            continue
        first_line[identity] = parsed.line
        write = _CustomerWrite(line=parsed.line, values=values, owner_id=owner_id, match=match)
        if match is None:
            action, message = (
                CREATED,
                "new customer: " + ", ".join(f"{k}={v}" for k, v in values.items() if k != "code"),
            )
        else:
            write.changes = _customer_changes(match, values, owner_id, users)
            if not write.changes:
                report.append(ReportRow(parsed.line, "customer", UNCHANGED, str(match.code or key), "no change"))
                continue
            action, message, key = UPDATED, _describe_changes(write.changes), str(match.code or key)
        report.extend(ReportRow(parsed.line, "customer", CLEANED, key, text, name_) for name_, text in cleanings)
        report.append(ReportRow(parsed.line, "customer", action, key, message))
        writes.append(write)
    return writes


def _check_customer_cells(parsed: ParsedRow) -> None:
    """Check the customer-specific rules: a name, a valid e-mail and phone, a lower-case owner."""
    values = parsed.values
    if "name" not in values:
        parsed.errors.add("name", "error.required")
    # The form validators, so an imported customer is one the edit form accepts unchanged.
    for name, clean in (("email", clean_email), ("phone", clean_phone)):
        if name not in values:
            continue
        cleaned = clean(parsed.errors, name, values[name])
        if cleaned is not None and cleaned != values[name]:
            parsed.cleanings.append((name, f"{name}: '{values[name]}' normalised to '{cleaned}'"))
            values[name] = cleaned
    if "owner" in values and values["owner"] != values["owner"].lower():
        parsed.cleanings.append(("owner", f"owner: '{values['owner']}' case-folded to '{values['owner'].lower()}'"))
        values["owner"] = values["owner"].lower()


def _customer_changes(
    match: Customer, values: Mapping[str, str], owner_id: int | None, users: Mapping[str, User]
) -> dict[str, tuple[Any, Any]]:
    """Return field -> (old, new) for the given fields that differ from the stored customer."""
    changes: dict[str, tuple[Any, Any]] = {
        name: (getattr(match, name), value)
        for name, value in values.items()
        if name not in ("code", "owner") and getattr(match, name) != value
    }
    if owner_id != match.owner_id:
        old = match.owner.username if match.owner is not None else None
        new = next((u.username for u in users.values() if u.id == owner_id), None)
        changes["owner"] = (old, new)
    return changes


def _write_customers(
    session: Session, *, actor: Actor, at: datetime, writes: list[_CustomerWrite], encoding: str
) -> None:
    new_rows: list[dict[str, Any]] = []
    for write in writes:
        if write.match is not None:
            continue
        values = {**CUSTOMER_DEFAULTS, **{k: v for k, v in write.values.items() if k not in ("code", "owner")}}
        new_rows.append(
            {
                **values,
                "name_key": values["name"].lower(),
                "owner_id": write.owner_id,
                "created_at": at,
                "updated_at": at,
                "updated_by_id": actor.id,
                "version": 1,
            }
        )
    ids = _insert_ids(session, Customer, new_rows)
    _assign_customer_codes(session, ids)
    created = [
        (
            i,
            {"code": [None, CUSTOMER_CODE_FORMAT.format(i)]}
            | {k: [None, jsonable(v)] for k, v in row.items() if v is not None},
        )
        for i, row in zip(ids, new_rows, strict=True)
    ]
    _bulk_audit(session, actor=actor, at=at, action="create", entity="customer", events=created)
    updated: list[tuple[int, dict[str, list[Any]]]] = []
    for write in writes:
        if write.match is None:
            continue
        customer = write.match
        audit: dict[str, list[Any]] = {}
        for name, (old, new) in write.changes.items():
            if name == "owner":
                audit["owner_id"] = [customer.owner_id, write.owner_id]
                customer.owner_id = write.owner_id
                continue
            audit[name] = [jsonable(old), jsonable(new)]
            setattr(customer, name, new)
            if name == "name":
                customer.name_key = new.lower()
        customer.updated_at = at
        customer.updated_by_id = actor.id
        updated.append((customer.id, audit))
    session.flush()
    _bulk_audit(session, actor=actor, at=at, action="update", entity="customer", events=updated)
    changes: dict[str, list[Any]] = {
        "created": [None, len(created)],
        "updated": [None, len(updated)],
        "encoding": [None, encoding],
    }
    record(session, actor=actor, action="import", entity="customer", entity_id=None, changes=changes, at=at)


# --- interactions CSV --------------------------------------------------------------------------


@dataclass
class _InteractionWrite:
    """A planned interaction write: a new row (match None) or the changes to a matched one."""

    line: int
    values: dict[str, Any]
    match: Interaction | None = None
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def import_interactions(session: Session, *, actor: Actor, data: bytes, dry_run: bool, at: datetime) -> ImportReport:
    """Import visits, calls, … from CSV bytes, all-or-nothing (managers for their team, admins for all).

    A row is the same interaction as a stored one when customer, rep, occurred_at, kind and
    subject are equal; then its notes, outcome, next follow-up and location are updated.
    """
    _require_importer(actor)
    table = read_table(data, aliases=_aliases(INTERACTION_HEADERS))
    report = _table_header_rows(table, "interaction", ["customer", "kind", "occurred_at"])
    if any(row.action == REJECTED for row in report):
        return ImportReport(rows=report, encoding=table.encoding, dry_run=dry_run, committed=False)
    writes = _plan_interactions(session, actor=actor, table=table, at=at, report=report)
    if dry_run or any(row.action == REJECTED for row in report):
        return ImportReport(rows=report, encoding=table.encoding, dry_run=dry_run, committed=False)
    _in_savepoint(
        session, lambda: _write_interactions(session, actor=actor, at=at, writes=writes, encoding=table.encoding)
    )
    return ImportReport(rows=report, encoding=table.encoding, dry_run=False, committed=True)


def _visible_customers_by_reference(
    session: Session, *, actor: Actor, references: set[str]
) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Return the live customers the actor sees whose code or exact name is referenced: by code, by name."""
    by_code: dict[str, int] = {}
    by_name: dict[str, list[int]] = defaultdict(list)
    scope = select(Customer.id, Customer.code, Customer.name).where(
        customer_visible(actor), Customer.deleted_at.is_(None)
    )
    for chunk in _chunks(sorted(references)):
        for customer_id, code, _name in session.execute(scope.where(Customer.code.in_(chunk)).order_by(Customer.id)):
            by_code[str(code)] = customer_id
        for customer_id, _code, name in session.execute(scope.where(Customer.name.in_(chunk)).order_by(Customer.id)):
            by_name[name].append(customer_id)
    return by_code, by_name


def _plan_interactions(
    session: Session, *, actor: Actor, table: CsvTable, at: datetime, report: list[ReportRow]
) -> list[_InteractionWrite]:
    parsed_rows = [
        parse_cells(row, max_length=INTERACTION_MAX_LENGTH, choices=INTERACTION_CHOICES) for row in table.rows
    ]
    typed: list[dict[str, Any]] = [_interaction_values(parsed, at=at) for parsed in parsed_rows]
    by_code, by_name = _visible_customers_by_reference(
        session, actor=actor, references={p.values["customer"] for p in parsed_rows if "customer" in p.values}
    )
    users = _users_by_username(session, {p.values.get("rep", actor.username) for p in parsed_rows})
    assignable: dict[int, bool] = {}
    for parsed, values in zip(parsed_rows, typed, strict=True):
        reference = parsed.values.get("customer")
        if reference is None:
            continue
        if reference in by_code:
            values["customer_id"] = by_code[reference]
        elif len(by_name.get(reference, [])) == 1:
            values["customer_id"] = by_name[reference][0]
        elif reference in by_name:
            parsed.errors.add("customer", "error.duplicate", what="customers with this name; give the code")
        else:
            parsed.errors.add("customer", "error.not_found", what="customer")
        rep = users.get(parsed.values.get("rep", actor.username))
        if rep is None:
            parsed.errors.add("rep", "error.not_found", what="user")
            continue
        if rep.id not in assignable:
            assignable[rep.id] = can_act_as_rep(session, actor=actor, rep_id=rep.id)
        if not assignable[rep.id]:
            parsed.errors.add("rep", "error.not_allowed", why="rep outside your team")
        values["rep_id"] = rep.id
    existing = _existing_interactions(session, typed)
    writes: list[_InteractionWrite] = []
    first_line: dict[tuple[Any, ...], int] = {}
    for parsed, values in zip(parsed_rows, typed, strict=True):
        errors = parsed.errors
        key = f"{parsed.values.get('customer', '')} @ {parsed.values.get('occurred_at', '')}"
        identity = _interaction_identity(values) if not errors.errors else None
        if identity is not None and identity in first_line:
            errors.add("occurred_at", "error.duplicate", what=f"row (same interaction as line {first_line[identity]})")
        if errors.errors or identity is None:
            report.extend(_rejections(parsed.line, "interaction", key, errors.errors, parsed.values))
            continue
        first_line[identity] = parsed.line
        match = existing.get(identity)
        write = _InteractionWrite(line=parsed.line, values=values, match=match)
        if match is None:
            action, message = CREATED, f"new {values['kind']} on {values['occurred_at'].isoformat(' ')}"
        else:
            write.changes = {
                name: (getattr(match, name), values[name])
                for name in INTERACTION_UPDATABLE
                if values.get(name) is not None and getattr(match, name) != values[name]
            }
            if not write.changes:
                report.append(ReportRow(parsed.line, "interaction", UNCHANGED, key, "no change"))
                continue
            action, message = UPDATED, _describe_changes(write.changes)
        report.extend(
            ReportRow(parsed.line, "interaction", CLEANED, key, text, name) for name, text in parsed.cleanings
        )
        report.append(ReportRow(parsed.line, "interaction", action, key, message))
        writes.append(write)
    return writes


def _interaction_values(parsed: ParsedRow, *, at: datetime) -> dict[str, Any]:
    """Check required cells and parse the dates; return the typed column values of the row."""
    cells, errors = parsed.values, parsed.errors
    for name in ("customer", "kind", "occurred_at"):
        if name not in cells:
            errors.add(name, "error.required")
    if "rep" in cells and cells["rep"] != cells["rep"].lower():
        parsed.cleanings.append(("rep", f"rep: '{cells['rep']}' case-folded to '{cells['rep'].lower()}'"))
        cells["rep"] = cells["rep"].lower()
    occurred_at = parse_datetime(cells["occurred_at"]) if "occurred_at" in cells else None
    if "occurred_at" in cells and occurred_at is None:
        errors.add("occurred_at", "error.invalid_date")
    elif occurred_at is not None and occurred_at > at + FUTURE_TOLERANCE:
        errors.add("occurred_at", "error.in_future")
    follow_up = parse_date(cells["next_follow_up"]) if "next_follow_up" in cells else None
    if "next_follow_up" in cells and follow_up is None:
        errors.add("next_follow_up", "error.invalid_date")
    elif follow_up is not None and occurred_at is not None and follow_up < occurred_at.date():
        errors.add("next_follow_up", "error.date_order", other="occurred_at")
    return {
        "kind": cells.get("kind"),
        "occurred_at": occurred_at,
        "subject": cells.get("subject"),
        "notes": cells.get("notes"),
        "outcome": cells.get("outcome"),
        "next_follow_up": follow_up,
        "location": cells.get("location"),
    }


def _interaction_identity(values: Mapping[str, Any]) -> tuple[Any, ...]:
    return (values["customer_id"], values["rep_id"], values["occurred_at"], values["kind"], values["subject"] or None)


def _existing_interactions(session: Session, typed: list[dict[str, Any]]) -> dict[tuple[Any, ...], Interaction]:
    """Load the live interactions that could be the same as a row of the file, by identity."""
    rows = [v for v in typed if "customer_id" in v and v["occurred_at"] is not None]
    if not rows:
        return {}
    start = min(v["occurred_at"] for v in rows)
    end = max(v["occurred_at"] for v in rows)
    found: dict[tuple[Any, ...], Interaction] = {}
    for chunk in _chunks(sorted({v["customer_id"] for v in rows})):
        query = select(Interaction).where(
            Interaction.customer_id.in_(chunk),
            Interaction.occurred_at >= start,
            Interaction.occurred_at <= end,
            Interaction.deleted_at.is_(None),
        )
        for row in session.scalars(query.order_by(Interaction.id)):
            identity = (row.customer_id, row.rep_id, row.occurred_at, row.kind, row.subject or None)
            found.setdefault(identity, row)
    return found


def _write_interactions(
    session: Session, *, actor: Actor, at: datetime, writes: list[_InteractionWrite], encoding: str
) -> None:
    new_rows = [{**w.values, "created_at": at} for w in writes if w.match is None]
    ids = _insert_ids(session, Interaction, new_rows)
    # Bulk inserts bypass the ORM flush hooks: bring the rep day summaries of the new rows up to date.
    summaries.refresh_records(session, Interaction, ids)
    created = [
        (i, {k: [None, jsonable(v)] for k, v in row.items() if v is not None})
        for i, row in zip(ids, new_rows, strict=True)
    ]
    _bulk_audit(session, actor=actor, at=at, action="create", entity="interaction", events=created)
    updated: list[tuple[int, dict[str, list[Any]]]] = []
    for write in writes:
        if write.match is None:
            continue
        for name, (_old, new) in write.changes.items():
            setattr(write.match, name, new)
        updated.append((write.match.id, {k: [jsonable(o), jsonable(n)] for k, (o, n) in write.changes.items()}))
    session.flush()
    _bulk_audit(session, actor=actor, at=at, action="update", entity="interaction", events=updated)
    changes: dict[str, list[Any]] = {
        "created": [None, len(created)],
        "updated": [None, len(updated)],
        "encoding": [None, encoding],
    }
    record(session, actor=actor, action="import", entity="interaction", entity_id=None, changes=changes, at=at)


# --- export ------------------------------------------------------------------------------------


def export_customers_csv(session: Session, *, actor: Actor) -> bytes:
    """Return every live customer the actor sees as UTF-8-with-BOM CSV that re-imports unchanged."""
    owner = aliased(User)
    query = (
        select(
            Customer.code,
            Customer.name,
            Customer.kind,
            Customer.industry,
            Customer.region,
            Customer.province,
            Customer.city,
            Customer.address,
            Customer.size,
            Customer.tier,
            Customer.status,
            Customer.source,
            owner.username,
            Customer.phone,
            Customer.email,
            Customer.website,
            Customer.notes,
        )
        .outerjoin(owner, Customer.owner_id == owner.id)
        .where(customer_visible(actor), Customer.deleted_at.is_(None))
        .order_by(Customer.id)
    )
    frame = pd.DataFrame([tuple(row) for row in session.execute(query)], columns=list(CUSTOMER_EXPORT_COLUMNS))
    return dataframe_to_csv(frame)
