"""Command line for admins, cron jobs and our own checks: `python -m crm --help`."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from crm import db
from crm.access import Actor, Filters, kpi_rep_ids, load_actor
from crm.clock import today, utcnow
from crm.errors import CrmError, NotFoundError, ValidationError
from crm.models import Customer, Role, User
from crm.periods import Period
from crm.settings import DATA_DIR, MIN_COOKIE_KEY_LENGTH, SECRETS_PATH, cookie_key_is_weak, load_settings

CREDENTIALS_FILE = DATA_DIR / "demo_credentials.txt"
PASSWORD_ENV = "CRM_DEMO_PASSWORD"
# Seconds between two progress lines when the output is not a terminal (logs, CI).
PROGRESS_LOG_INTERVAL_S = 5.0
# Read-only commands without --as see what an admin sees; this actor never writes.
SYSTEM_ADMIN = Actor(id=0, username="system", display_name="System", role=Role.ADMIN, team=None, region=None)


class CliError(Exception):
    """An error the person at the terminal can act on; printed without a traceback."""


class Progress:
    """Print `label: done/total (rate/s)` in place on a terminal, every few seconds otherwise."""

    def __init__(self, stream: Any = sys.stderr) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self.last_print = 0.0
        self.label = ""

    def __call__(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if label != self.label:
            self.label, self.started = label, now
        finished = done >= total
        if not self.tty and not finished and now - self.last_print < PROGRESS_LOG_INTERVAL_S:
            return
        self.last_print = now
        rate = done / max(now - self.started, 1e-6)
        line = f"{label}: {done:,}/{total:,} ({rate:,.0f}/s)"
        if self.tty:
            self.stream.write("\r\033[K" + line + ("\n" if finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def two_arg(self, label: str) -> Callable[[int, int], None]:
        return lambda done, total: self(label, done, total)


def parse_date(value: str) -> date:
    """Parse YYYY-MM-DD for argparse, with a message a person can act on."""
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{value}' is not a date in the form YYYY-MM-DD") from exc


def engine() -> Engine:
    """Return the configured engine with every migration applied."""
    eng = db.get_engine()
    db.migrate(eng)
    return eng


def resolve_actor(eng: Engine, username: str | None, *, for_write: bool) -> Actor:
    """Return the --as user, else an admin: the first admin user for writes, a system view for reads."""
    with db.read_session(eng) as session:
        if username:
            try:
                return load_actor(session, username=username)
            except NotFoundError as exc:
                raise CliError(f"unknown or inactive user '{username}'") from exc
        admin = session.scalar(
            select(User).where(User.role == Role.ADMIN.value, User.active.is_(True)).order_by(User.id).limit(1)
        )
    if admin is not None:
        return Actor.from_user(admin)
    if for_write:
        raise CliError("no admin user exists yet: run `python -m crm create-admin --username admin` first")
    return SYSTEM_ADMIN


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc


def period_of(args: argparse.Namespace) -> Period:
    if args.end <= args.start:
        raise CliError(f"--end {args.end} must be after --start {args.start}")
    return Period(args.start, args.end)


def cmd_migrate(_args: argparse.Namespace) -> int:
    eng = engine()
    print(f"database migrated: {eng.url.render_as_string(hide_password=True)}")
    return 0


def demo_password(explicit: str | None) -> tuple[str, bool]:
    """Return the demo password and whether it was generated here."""
    from crm.seed import generate_password

    if explicit:
        return explicit, False
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV], False
    return generate_password(), True


def cmd_seed(args: argparse.Namespace) -> int:
    from crm.seed import seed, write_credentials

    eng = engine()
    password, generated = demo_password(args.password)
    result = seed(
        eng, scale=args.scale, locale=args.locale, seed=args.seed, password=password, as_of=today(), progress=Progress()
    )
    print(
        f"seeded {args.scale} data in {result.elapsed_seconds:.1f} s: "
        + ", ".join(f"{table} {count:,}" for table, count in result.counts.items())
    )
    if generated:
        write_credentials(CREDENTIALS_FILE, result.usernames, password)
        print(f"demo password for {', '.join(result.usernames[:4])}, …: {password}")
        print(f"(written once to {CREDENTIALS_FILE}, readable only by you)")
    return 0


def ensure_cookie_key() -> None:
    """Write a long random cookie key to secrets.toml on first start (never a sample value)."""
    settings = load_settings()
    if not cookie_key_is_weak(settings.cookie_key):
        return
    if SECRETS_PATH.exists():
        raise CliError(f"{SECRETS_PATH} has no usable cookie_key (≥ {MIN_COOKIE_KEY_LENGTH} random characters)")
    SECRETS_PATH.parent.mkdir(parents=True, exist_ok=True)
    SECRETS_PATH.write_text(f'cookie_key = "{secrets.token_urlsafe(48)}"\n', encoding="utf-8")
    SECRETS_PATH.chmod(0o600)
    print(f"wrote a random login cookie key to {SECRETS_PATH}")


def cmd_prepare(_args: argparse.Namespace) -> int:
    """Migrate, write a cookie key if none, and seed the demo data when the database is empty."""
    from crm.seed import seed, write_credentials

    ensure_cookie_key()
    eng = engine()
    with db.read_session(eng) as session:
        has_data = (session.scalar(select(func.count()).select_from(Customer)) or 0) > 0
    if has_data:
        print("database ready (existing data kept)")
        if CREDENTIALS_FILE.exists():
            print(f"demo logins: see {CREDENTIALS_FILE}")
        return 0
    password, generated = demo_password(None)
    result = seed(
        eng,
        scale="demo",
        locale=os.environ.get("CRM_DEMO_LOCALE", "en_US"),
        seed=42,
        password=password,
        as_of=today(),
        progress=Progress(),
    )
    print(f"seeded demo data in {result.elapsed_seconds:.1f} s")
    if generated:
        write_credentials(CREDENTIALS_FILE, result.usernames, password)
    print("demo logins: admin, manager1, manager2, rep1 … rep12")
    print(f"password: {password}" + (f"  (also in {CREDENTIALS_FILE})" if generated else ""))
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    from crm.auth import hash_password

    password = args.password or os.environ.get(PASSWORD_ENV)
    if not password:
        raise CliError(f"give --password or set {PASSWORD_ENV}")
    eng = engine()
    with db.write_session(eng) as session:
        username = args.username.strip().lower()
        if session.scalar(select(User).where(User.username == username)) is not None:
            raise CliError(f"user '{username}' already exists")
        session.add(
            User(
                username=username,
                display_name=args.display_name or username,
                role=Role.ADMIN.value,
                active=True,
                password_hash=hash_password(password),
                language="en",
                failed_logins=0,
                created_at=utcnow(),
            )
        )
    print(f"admin '{username}' created")
    return 0


def print_report(report: Any, *, dry_run: bool) -> None:
    """Print an import report: one line per row worth reading, then the counts."""
    for row in report.rows:
        if row.action in {"created", "unchanged"} and not dry_run:
            continue
        field = f" [{row.field}]" if getattr(row, "field", None) else ""
        print(f"line {row.line}: {row.entity} {row.action}{field}: {row.message}")
    print("counts: " + json.dumps(report.counts, ensure_ascii=False, default=str))
    state = "dry run: nothing written" if dry_run else ("committed" if report.committed else "NOT committed")
    print(state)


def cmd_import(args: argparse.Namespace) -> int:
    from crm import importing

    eng = engine()
    actor = resolve_actor(eng, args.as_user, for_write=True)
    now = utcnow()
    progress = Progress()
    with db.write_session(eng) as session:
        if args.what == "maven":
            directory = Path(args.path)
            if not directory.is_dir():
                raise CliError(f"{directory} is not a directory with the Maven CSV files")
            report = importing.import_maven(
                session,
                actor=actor,
                directory=directory,
                dry_run=args.dry_run,
                at=now,
                progress=progress.two_arg("maven"),
            )
        elif args.what == "customers":
            report = importing.import_customers(
                session,
                actor=actor,
                data=read_file(Path(args.path)),
                dry_run=args.dry_run,
                at=now,
                owner_username=args.as_user,
            )
        else:
            report = importing.import_interactions(
                session, actor=actor, data=read_file(Path(args.path)), dry_run=args.dry_run, at=now
            )
    print_report(report, dry_run=args.dry_run)
    return 0 if report.ok else 3


def cmd_export(args: argparse.Namespace) -> int:
    from crm import importing

    eng = engine()
    actor = resolve_actor(eng, args.as_user, for_write=False)
    with db.read_session(eng) as session:
        data = importing.export_customers_csv(session, actor=actor)
    try:
        Path(args.path).write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {args.path}: {exc.strerror or exc}") from exc
    print(f"exported to {args.path} ({len(data):,} bytes)")
    return 0


def cmd_kpi(args: argparse.Namespace) -> int:
    from crm import kpi

    eng = engine()
    actor = resolve_actor(eng, args.as_user, for_write=False)
    period = period_of(args)
    as_of = min(period.end, today())
    with db.read_session(eng) as session:
        if args.by == "rep":
            reps = session.execute(
                select(User.id, User.username, User.display_name)
                .where(User.id.in_(kpi_rep_ids(actor)), User.role == Role.REP.value)
                .order_by(User.username)
            ).all()
            out: Any = []
            for rep_id, username, display_name in reps:
                summary = kpi.kpi_summary(
                    session, actor=actor, period=period, filters=Filters(rep_id=rep_id), as_of=as_of
                )
                out.append({"rep": username, "rep_name": display_name, **summary.as_dict()})
        else:
            out = kpi.kpi_summary(session, actor=actor, period=period, filters=Filters(), as_of=as_of).as_dict()
    print(json.dumps(out, ensure_ascii=False, indent=None if args.json else 2, default=str))
    return 0


def cmd_appraisal(args: argparse.Namespace) -> int:
    from crm import appraisal

    eng = engine()
    actor = resolve_actor(eng, args.as_user, for_write=False)
    period = period_of(args)
    with db.read_session(eng) as session:
        rows = [
            card.as_dict() for card in appraisal.leaderboard(session, actor=actor, period=period, filters=Filters())
        ]
    print(json.dumps(rows, ensure_ascii=False, indent=None if args.json else 2, default=str))
    return 0


def cmd_summaries(args: argparse.Namespace) -> int:
    """Rebuild the summary tables from the raw records, or check them against a recomputation."""
    from crm import summaries

    eng = engine()
    if args.action == "rebuild":
        with db.write_session(eng) as session:
            result = summaries.rebuild(session)
        print(
            f"summaries rebuilt in {result.seconds:.1f} s: rep_day_stats {result.rep_days:,} rows, "
            f"customers with a first order {result.customers_with_orders:,}, "
            f"with a first won deal {result.customers_with_wins:,}"
        )
        return 0
    with db.read_session(eng) as session:
        problems = summaries.verify(session)
    for problem in problems:
        print(problem)
    if problems:
        print("summaries differ from the records: run `python -m crm summaries rebuild`")
        return 1
    print("summaries exact")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from crm.bench import main as run_bench

    return run_bench(scale=args.scale, json_path=Path(args.json) if args.json else None, with_growth=args.growth)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m crm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("prepare", help="migrate and seed demo data if the database is empty").set_defaults(func=cmd_prepare)

    seed = sub.add_parser("seed", help="generate deterministic demo data into an empty database")
    seed.add_argument("--scale", choices=["demo", "large", "tiny"], default="demo")
    seed.add_argument("--locale", choices=["en_US", "zh_CN"], default="en_US")
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument("--password", help=f"password of every demo user (else ${PASSWORD_ENV}, else generated)")
    seed.set_defaults(func=cmd_seed)

    admin = sub.add_parser("create-admin", help="create an admin user (for a database without demo data)")
    admin.add_argument("--username", required=True)
    admin.add_argument("--display-name")
    admin.add_argument("--password", help=f"else ${PASSWORD_ENV}")
    admin.set_defaults(func=cmd_create_admin)

    imp = sub.add_parser("import", help="import the Maven dataset or a CSV file")
    imp.add_argument("what", choices=["maven", "customers", "interactions"])
    imp.add_argument("path", help="the Maven directory, or the CSV file")
    imp.add_argument("--dry-run", action="store_true", help="report row by row what would happen; write nothing")
    imp.add_argument("--as", dest="as_user", help="import as this user (default: the first admin)")
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser("export", help="export customers to CSV (UTF-8 with BOM)")
    exp.add_argument("what", choices=["customers"])
    exp.add_argument("path")
    exp.add_argument("--as", dest="as_user", help="export what this user may see (default: admin view)")
    exp.set_defaults(func=cmd_export)

    for name, handler, text in (
        ("kpi", cmd_kpi, "print KPIs of a period as JSON"),
        ("appraisal", cmd_appraisal, "print the appraisal leaderboard of a period as JSON"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--start", type=parse_date, required=True, help="first day, YYYY-MM-DD")
        cmd.add_argument("--end", type=parse_date, required=True, help="day after the last, YYYY-MM-DD")
        cmd.add_argument("--as", dest="as_user", help="what this user may see (default: admin view)")
        cmd.add_argument("--json", action="store_true", help="one line of JSON")
        if name == "kpi":
            cmd.add_argument("--by", choices=["rep"], help="one object per rep")
        cmd.set_defaults(func=handler)

    summaries = sub.add_parser("summaries", help="rebuild or verify the KPI summary tables")
    summaries.add_argument("action", choices=["rebuild", "verify"])
    summaries.set_defaults(func=cmd_summaries)

    bench = sub.add_parser("bench", help="measure SPEC §8 targets")
    bench.add_argument("--scale", choices=["demo", "large"], default="large")
    bench.add_argument("--json", help="write the figures to this JSON file")
    bench.add_argument("--growth", action="store_true", help="also measure the overview at 10k/100k/1M interactions")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors a person can fix print one line to stderr and exit non-zero."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        details = ", ".join(f"{name}: {err.key} {err.params or ''}".strip() for name, err in exc.fields.items())
        print(f"error: invalid input: {details}", file=sys.stderr)
        return 2
    except CrmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
