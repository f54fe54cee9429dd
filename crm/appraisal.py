"""Performance appraisal (绩效考核, SPEC §6): scorecards from per-rep figures, targets and a scheme.

Numbers: scheme weights, bands and coefficients are exact Decimals; a Scorecard holds floats for
display (sub-scores unrounded, composite already rounded half up to one decimal) and the money
figures as Decimal. Sub-scores and the composite are computed in Decimal so a composite on a
grade edge (89.95) rounds the way a person rounds it, not the way binary floats do.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import pandas as pd
from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from crm import audit
from crm.access import Actor, Filters, kpi_rep_ids, manages_rep, require_role
from crm.errors import FieldError, NotFoundError, PermissionDeniedError, ValidationError, Validator
from crm.kpi.reps import (
    RepFigures,
    closed_opportunity_criteria,
    figures_for,
    interaction_criteria,
    new_customer_criteria,
    order_criteria,
    resolved_complaint_criteria,
    survey_criteria,
)
from crm.models import (
    AppraisalPeriod,
    AppraisalScheme,
    AppraisalSnapshot,
    AttitudeScore,
    Complaint,
    Customer,
    Interaction,
    InteractionKind,
    Opportunity,
    Order,
    PipelineStage,
    Role,
    SurveyResponse,
    Target,
    User,
)
from crm.periods import Period

METRICS: tuple[str, ...] = ("revenue", "new_customers", "visits", "win_rate", "csat", "complaint_on_time", "attitude")
GRADES: tuple[str, ...] = ("A", "B", "C", "D")  # best first; the last one is "everything below"
WEIGHT_TOTAL = Decimal(100)
MAX_SCORE = Decimal(100)
MIN_BAND = Decimal(0)
MAX_BAND = Decimal(100)
CSAT_MIN = Decimal(1)
CSAT_SPAN = Decimal(4)  # overall scores run 1–5
ATTITUDE_ITEMS = 4  # initiative, cooperation, responsibility, discipline
COMPOSITE_QUANTUM = Decimal("0.1")
DISPLAY_QUANTUM = Decimal("0.1")
DEFAULT_RECORD_LIMIT = 500
# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_ENCODING = "utf-8-sig"  # with BOM, so Excel opens Chinese names correctly
XLSX_SHEET = "Leaderboard"
EXPORT_COLUMNS: tuple[str, ...] = (
    "rank",
    "rep",
    "rep_name",
    "composite",
    "grade",
    "bonus_coefficient",
    *METRICS,
    "metrics_left_out",
)


# --------------------------------------------------------------------------------------------
# Scheme


@dataclass(frozen=True)
class Scheme:
    """One version of the appraisal weights, grade bands and bonus coefficients (exact Decimals)."""

    id: int
    version: int
    weights: Mapping[str, Decimal]  # metric -> weight; the seven weights sum to 100
    bands: Mapping[str, Decimal]  # grade -> minimum composite (inclusive), strictly decreasing A..D
    coefficients: Mapping[str, Decimal]  # grade -> bonus coefficient
    created_at: datetime | None


def _decimal_map(values: Mapping[str, Any]) -> dict[str, Decimal]:
    return {key: Decimal(str(value)) for key, value in values.items()}


def _scheme_from_row(row: AppraisalScheme) -> Scheme:
    return Scheme(
        id=row.id,
        version=row.version,
        weights=_decimal_map(row.weights),
        bands=_decimal_map(row.bands),
        coefficients=_decimal_map(row.coefficients),
        created_at=row.created_at,
    )


def current_scheme(session: Session) -> Scheme:
    """Return the newest scheme version (the migration installs version 1 with SPEC defaults)."""
    row = session.scalar(select(AppraisalScheme).order_by(AppraisalScheme.version.desc()).limit(1))
    if row is None:
        raise NotFoundError("appraisal_scheme", "current")
    return _scheme_from_row(row)


def scheme_at(session: Session, *, version: int) -> Scheme:
    """Return one scheme version (e.g. the one a closed period was scored with)."""
    row = session.scalar(select(AppraisalScheme).where(AppraisalScheme.version == version))
    if row is None:
        raise NotFoundError("appraisal_scheme", version)
    return _scheme_from_row(row)


def _parse_numbers(
    validator: Validator, name: str, values: Mapping[str, object], keys: Sequence[str]
) -> dict[str, Decimal]:
    """Read exactly `keys` from `values` as finite Decimals, reporting every bad entry."""
    unknown = sorted(set(values) - set(keys))
    if unknown:
        validator.add(name, "error.invalid_choice", choices=list(keys))
    out: dict[str, Decimal] = {}
    for key in keys:
        raw = values.get(key)
        if raw is None or raw == "":
            validator.add(f"{name}.{key}", "error.required")
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal | str):
            validator.add(f"{name}.{key}", "error.not_a_number")
            continue
        try:
            number = Decimal(str(raw).strip())
        except InvalidOperation:
            validator.add(f"{name}.{key}", "error.not_a_number")
            continue
        if not number.is_finite():
            validator.add(f"{name}.{key}", "error.not_a_number")
            continue
        out[key] = number
    return out


def validate_scheme(
    *, weights: Mapping[str, object], bands: Mapping[str, object], coefficients: Mapping[str, object]
) -> tuple[dict[str, Decimal], dict[str, Decimal], dict[str, Decimal]]:
    """Return the scheme parts as Decimals, or raise ValidationError naming every bad field."""
    validator = Validator()
    weight_values = _parse_numbers(validator, "weights", weights, METRICS)
    band_values = _parse_numbers(validator, "bands", bands, GRADES)
    coefficient_values = _parse_numbers(validator, "coefficients", coefficients, GRADES)

    for metric, weight in weight_values.items():
        if weight < 0:
            validator.add(f"weights.{metric}", "error.negative")
    if len(weight_values) == len(METRICS) and "weights" not in validator.errors:
        total = sum(weight_values.values(), Decimal(0))
        if total != WEIGHT_TOTAL and all(w >= 0 for w in weight_values.values()):
            validator.add("weights", "error.sum_mismatch", expected=int(WEIGHT_TOTAL), actual=_plain(total))

    for grade, band in band_values.items():
        if not MIN_BAND <= band <= MAX_BAND:
            validator.add(f"bands.{grade}", "error.out_of_range", min=int(MIN_BAND), max=int(MAX_BAND))
    for higher, lower in zip(GRADES, GRADES[1:], strict=False):
        if higher in band_values and lower in band_values and band_values[lower] >= band_values[higher]:
            validator.add(f"bands.{lower}", "error.not_decreasing", above=higher)

    for grade, coefficient in coefficient_values.items():
        if coefficient < 0:
            validator.add(f"coefficients.{grade}", "error.negative")
    validator.raise_if_any()
    return weight_values, band_values, coefficient_values


def _plain(number: Decimal) -> int | float:
    """Return a Decimal as the plainest JSON number: an int when whole."""
    return int(number) if number == number.to_integral_value() else float(number)


def _plain_map(values: Mapping[str, Decimal]) -> dict[str, int | float]:
    return {key: _plain(value) for key, value in values.items()}


def save_scheme(
    session: Session,
    *,
    actor: Actor,
    weights: Mapping[str, object],
    bands: Mapping[str, object],
    coefficients: Mapping[str, object],
    at: datetime,
) -> Scheme:
    """Validate and store a new scheme version (admin only); earlier versions are never edited."""
    require_role(actor, Role.ADMIN)
    weight_values, band_values, coefficient_values = validate_scheme(
        weights=weights, bands=bands, coefficients=coefficients
    )
    previous = session.scalar(select(AppraisalScheme).order_by(AppraisalScheme.version.desc()).limit(1))
    row = AppraisalScheme(
        version=(previous.version if previous else 0) + 1,
        weights=_plain_map(weight_values),
        bands=_plain_map(band_values),
        coefficients=_plain_map(coefficient_values),
        created_at=at,
        created_by_id=actor.id,
    )
    session.add(row)
    session.flush()
    old = audit.snapshot(previous) if previous else {}
    new = audit.snapshot(row)
    changes = audit.diff(
        {key: old.get(key) for key in ("version", "weights", "bands", "coefficients")},
        {key: new[key] for key in ("version", "weights", "bands", "coefficients")},
    )
    audit.record(
        session, actor=actor, action="create", entity="appraisal_scheme", entity_id=row.id, changes=changes, at=at
    )
    return _scheme_from_row(row)


# --------------------------------------------------------------------------------------------
# Scoring (pure)


@dataclass(frozen=True)
class Targets:
    """A rep's targets summed over the months of a period (None when no month set one)."""

    revenue: Decimal | None = None
    new_customers: int | None = None
    visits: int | None = None


@dataclass(frozen=True)
class Attitude:
    """A rep's attitude score: mean of the four items per score, mean over scorers."""

    mean: Decimal | None = None
    scorers: int = 0


NO_TARGETS = Targets()
NO_ATTITUDE = Attitude()


def _ratio_score(actual: Decimal | int, target: Decimal | int | None) -> Decimal | None:
    if not target:  # a missing or zero target means the metric has no data
        return None
    return min(MAX_SCORE, MAX_SCORE * Decimal(actual) / Decimal(target))


def sub_scores(figures: RepFigures, *, targets: Targets, attitude: Attitude) -> dict[str, Decimal | None]:
    """Return each metric's sub-score 0–100 per SPEC §6, None for a metric without data."""
    closed = figures.won + figures.lost
    return {
        "revenue": _ratio_score(figures.revenue, targets.revenue),
        "new_customers": _ratio_score(figures.new_customers, targets.new_customers),
        "visits": _ratio_score(figures.visits, targets.visits),
        "win_rate": MAX_SCORE * figures.won / closed if closed else None,
        "csat": (
            MAX_SCORE * (Decimal(figures.csat_sum) / figures.csat_count - CSAT_MIN) / CSAT_SPAN
            if figures.csat_count
            else None
        ),
        "complaint_on_time": (
            MAX_SCORE * figures.complaints_on_time / figures.complaints_resolved
            if figures.complaints_resolved
            else None
        ),
        "attitude": attitude.mean if attitude.scorers else None,
    }


def composite_score(scores: Mapping[str, Decimal | None], weights: Mapping[str, Decimal]) -> Decimal | None:
    """Return Σ weight × sub-score / Σ weights used, rounded half up to one decimal (None if no weight is used)."""
    used = {metric: score for metric, score in scores.items() if score is not None}
    total = sum((weights[metric] for metric in used), Decimal(0))
    if total == 0:
        return None
    weighted = sum((weights[metric] * score for metric, score in used.items()), Decimal(0))
    return (weighted / total).quantize(COMPOSITE_QUANTUM, rounding=ROUND_HALF_UP)


def grade_for(composite: Decimal | float, bands: Mapping[str, Decimal]) -> str:
    """Return the best grade whose band minimum the composite reaches (edges inclusive)."""
    value = Decimal(str(composite))
    for grade in GRADES[:-1]:
        if value >= bands[grade]:
            return grade
    return GRADES[-1]


@dataclass(frozen=True)
class Scorecard:
    """One rep's appraisal for a period.

    `scores` maps every metric to its sub-score 0–100 (None when left out); `weights` maps each
    metric used to its weight after rescaling (they sum to 100). Money is Decimal, the rest float.
    `rank` is the position among the scorecards listed together ("1224" on ties).
    """

    rep_id: int
    username: str
    display_name: str
    team: str | None
    scores: Mapping[str, float | None]
    weights: Mapping[str, float]
    metrics_left_out: tuple[str, ...]
    revenue_actual: Decimal
    revenue_target: Decimal | None
    new_customers: int
    new_customer_target: int | None
    visits: int
    visit_target: int | None
    won: int
    lost: int
    csat_mean: float | None
    csat_count: int
    complaints_resolved: int
    complaints_on_time: int
    attitude_mean: float | None
    attitude_count: int
    composite: float | None
    grade: str | None
    bonus_coefficient: float | None
    scheme_version: int
    rank: int | None = None
    frozen: bool = False

    @property
    def win_rate(self) -> float | None:
        closed = self.won + self.lost
        return self.won / closed if closed else None

    @property
    def complaint_on_time_rate(self) -> float | None:
        return self.complaints_on_time / self.complaints_resolved if self.complaints_resolved else None

    def as_dict(self) -> dict[str, Any]:
        """Return the leaderboard row for JSON / CSV: sub-scores rounded to one decimal."""
        row: dict[str, Any] = {"rep": self.username, "rep_name": self.display_name}
        for metric in METRICS:
            row[metric] = _display(self.scores.get(metric))
        row.update(
            composite=self.composite,
            grade=self.grade,
            rank=self.rank,
            bonus_coefficient=self.bonus_coefficient,
            metrics_left_out=list(self.metrics_left_out),
        )
        return row

    def to_json(self) -> dict[str, Any]:
        """Return every field as JSON-ready values (the frozen snapshot)."""
        data: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            data[item.name] = value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, frozen: bool) -> Scorecard:
        """Rebuild a scorecard from `to_json` output."""
        values = dict(data)
        values["revenue_actual"] = Decimal(values["revenue_actual"])
        if values["revenue_target"] is not None:
            values["revenue_target"] = Decimal(values["revenue_target"])
        values["metrics_left_out"] = tuple(values["metrics_left_out"])
        values["frozen"] = frozen
        names = {item.name for item in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})


def _display(score: float | None) -> float | None:
    if score is None:
        return None
    return float(Decimal(str(score)).quantize(DISPLAY_QUANTUM, rounding=ROUND_HALF_UP))


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def build_scorecard(figures: RepFigures, *, targets: Targets, attitude: Attitude, scheme: Scheme) -> Scorecard:
    """Score one rep's figures against their targets with the scheme (rank left empty)."""
    scores = sub_scores(figures, targets=targets, attitude=attitude)
    composite = composite_score(scores, scheme.weights)
    used = [metric for metric in METRICS if scores[metric] is not None]
    used_total = sum((scheme.weights[metric] for metric in used), Decimal(0))
    weights = (
        {metric: float(scheme.weights[metric] * WEIGHT_TOTAL / used_total) for metric in used} if used_total else {}
    )
    grade = None if composite is None else grade_for(composite, scheme.bands)
    return Scorecard(
        rep_id=figures.rep_id,
        username=figures.username,
        display_name=figures.display_name,
        team=figures.team,
        scores={metric: _float(scores[metric]) for metric in METRICS},
        weights=weights,
        metrics_left_out=tuple(metric for metric in METRICS if scores[metric] is None),
        revenue_actual=figures.revenue,
        revenue_target=targets.revenue,
        new_customers=figures.new_customers,
        new_customer_target=targets.new_customers,
        visits=figures.visits,
        visit_target=targets.visits,
        won=figures.won,
        lost=figures.lost,
        csat_mean=figures.csat_mean,
        csat_count=figures.csat_count,
        complaints_resolved=figures.complaints_resolved,
        complaints_on_time=figures.complaints_on_time,
        attitude_mean=_float(attitude.mean),
        attitude_count=attitude.scorers,
        composite=_float(composite),
        grade=grade,
        bonus_coefficient=None if grade is None else float(scheme.coefficients[grade]),
        scheme_version=scheme.version,
    )


def rank_scorecards(cards: Iterable[Scorecard]) -> list[Scorecard]:
    """Sort by composite descending and number them; ties share a rank ("1224"), no composite goes last."""
    ordered = sorted(
        cards, key=lambda c: (c.composite is None, -(c.composite or 0.0), c.display_name.lower(), c.rep_id)
    )
    out: list[Scorecard] = []
    for position, card in enumerate(ordered, start=1):
        if card.composite is None:
            rank = None
        elif out and out[-1].composite == card.composite:
            rank = out[-1].rank
        else:
            rank = position
        out.append(dataclasses.replace(card, rank=rank))
    return out


# --------------------------------------------------------------------------------------------
# Reading targets and attitude scores (written by crm.targets / the attitude form)


def _targets_by_rep(session: Session, *, rep_ids: Sequence[int], period: Period) -> dict[int, Targets]:
    """Sum each rep's monthly targets over the months that start inside the period."""
    if not rep_ids:
        return {}
    rows = session.execute(
        select(
            Target.rep_id,
            func.sum(Target.revenue_target),
            func.sum(Target.new_customer_target),
            func.sum(Target.visit_target),
        )
        .where(Target.rep_id.in_(rep_ids), Target.month >= period.start, Target.month < period.end)
        .group_by(Target.rep_id)
    )
    return {
        rep_id: Targets(
            revenue=None if revenue is None else Decimal(str(revenue)),
            new_customers=None if new_customers is None else int(new_customers),
            visits=None if visits is None else int(visits),
        )
        for rep_id, revenue, new_customers, visits in rows
    }


def _attitude_by_rep(session: Session, *, rep_ids: Sequence[int], period: Period) -> dict[int, Attitude]:
    """Mean of the four items per score, averaged per scorer, then over scorers."""
    if not rep_ids:
        return {}
    items = (
        AttitudeScore.initiative + AttitudeScore.cooperation + AttitudeScore.responsibility + AttitudeScore.discipline
    )
    rows = session.execute(
        select(AttitudeScore.rep_id, func.sum(items), func.count())
        .where(
            AttitudeScore.rep_id.in_(rep_ids),
            AttitudeScore.period_start >= period.start,
            AttitudeScore.period_end <= period.end,
        )
        .group_by(AttitudeScore.rep_id, AttitudeScore.scorer_id)
    )
    # One row per (rep, scorer): few rows, so the last averaging step is exact Decimal in Python.
    per_scorer: dict[int, list[Decimal]] = {}
    for rep_id, item_sum, scores in rows:
        per_scorer.setdefault(rep_id, []).append(Decimal(int(item_sum)) / (ATTITUDE_ITEMS * int(scores)))
    return {
        rep_id: Attitude(mean=sum(means, Decimal(0)) / len(means), scorers=len(means))
        for rep_id, means in per_scorer.items()
    }


def _live_scorecards(
    session: Session, *, rep_ids: Select[int], period: Period, tier: str | None, scheme: Scheme
) -> list[Scorecard]:
    figures = figures_for(session, rep_ids=rep_ids, period=period, tier=tier)
    ids = [row.rep_id for row in figures]
    targets = _targets_by_rep(session, rep_ids=ids, period=period)
    attitude = _attitude_by_rep(session, rep_ids=ids, period=period)
    return [
        build_scorecard(
            row,
            targets=targets.get(row.rep_id, NO_TARGETS),
            attitude=attitude.get(row.rep_id, NO_ATTITUDE),
            scheme=scheme,
        )
        for row in figures
    ]


# --------------------------------------------------------------------------------------------
# Closed periods


@dataclass(frozen=True)
class FrozenScope:
    """Which reps of a scope a closed period freezes, and their frozen scorecards."""

    rep_ids: frozenset[int] = frozenset()
    cards: Mapping[int, Scorecard] = field(default_factory=dict)


def _closed_periods(session: Session, period: Period) -> list[AppraisalPeriod]:
    return list(
        session.scalars(
            select(AppraisalPeriod)
            .where(
                AppraisalPeriod.period_start == period.start,
                AppraisalPeriod.period_end == period.end,
                AppraisalPeriod.closed.is_(True),
            )
            .order_by(AppraisalPeriod.closed_at, AppraisalPeriod.id)
        )
    )


def _frozen_scope(session: Session, *, rep_ids: Select[int], period: Period) -> FrozenScope:
    """Return the reps among `rep_ids` whose team (or the whole company) closed this period."""
    closed = _closed_periods(session, period)
    if not closed:
        return FrozenScope()
    teams = {row.team for row in closed}
    query = select(User.id).where(User.id.in_(rep_ids), User.role == Role.REP.value)
    if None not in teams:
        query = query.where(User.team.in_([team for team in teams if team is not None]))
    frozen_ids = frozenset(session.scalars(query))
    if not frozen_ids:
        return FrozenScope()
    order = {row.id: index for index, row in enumerate(closed)}
    cards: dict[int, Scorecard] = {}
    snapshots = session.execute(
        select(AppraisalSnapshot.period_id, AppraisalSnapshot.rep_id, AppraisalSnapshot.scorecard).where(
            AppraisalSnapshot.period_id.in_(list(order)), AppraisalSnapshot.rep_id.in_(list(frozen_ids))
        )
    ).all()
    # The first close wins; later closes of a wider scope copied its cards anyway.
    for _period_id, rep_id, data in sorted(snapshots, key=lambda snap: order[snap[0]]):
        if rep_id not in cards:
            cards[rep_id] = Scorecard.from_json(data, frozen=True)
    return FrozenScope(rep_ids=frozen_ids, cards=cards)


def _scorecards(session: Session, *, rep_ids: Select[int], period: Period, tier: str | None) -> list[Scorecard]:
    frozen = _frozen_scope(session, rep_ids=rep_ids, period=period)
    live_ids = rep_ids.where(User.id.not_in(list(frozen.rep_ids))) if frozen.rep_ids else rep_ids
    live = _live_scorecards(session, rep_ids=live_ids, period=period, tier=tier, scheme=current_scheme(session))
    return rank_scorecards([*frozen.cards.values(), *live])


def leaderboard(session: Session, *, actor: Actor, period: Period, filters: Filters) -> list[Scorecard]:
    """Return the scorecards of the reps in the actor's scope, best first.

    Reps of a closed period (their team's or the whole company's) show the frozen snapshot; a
    frozen scorecard ignores the tier filter, since it was scored once for the whole scope.
    """
    return _scorecards(session, rep_ids=kpi_rep_ids(actor, filters), period=period, tier=filters.tier)


def scorecard(session: Session, *, actor: Actor, rep_id: int, period: Period) -> Scorecard:
    """Return one rep's scorecard, ranked among the actor's leaderboard; NotFoundError if not theirs."""
    if not manages_rep(session, actor=actor, rep_id=rep_id):
        raise NotFoundError("scorecard", rep_id)
    for card in leaderboard(session, actor=actor, period=period, filters=Filters()):
        if card.rep_id == rep_id:
            return card
    raise NotFoundError("scorecard", rep_id)


def grade_distribution(scorecards: Iterable[Scorecard]) -> pd.DataFrame:
    """Return columns grade (A–D, best first) and reps (how many scorecards got it)."""
    counts = dict.fromkeys(GRADES, 0)
    for card in scorecards:
        if card.grade in counts:
            counts[card.grade] += 1
    return pd.DataFrame({"grade": list(counts), "reps": list(counts.values())})


@dataclass(frozen=True)
class PeriodStatus:
    """Whether a period is closed for a team (team None = the whole company)."""

    period: Period
    team: str | None
    closed: bool  # this scope's own close
    company_closed: bool  # the company-wide close, which freezes every team
    scheme_version: int | None = None
    closed_at: datetime | None = None
    closed_by_id: int | None = None
    reopened_at: datetime | None = None
    reopened_by_id: int | None = None

    @property
    def frozen(self) -> bool:
        """Tell whether this scope's scorecards are frozen snapshots."""
        return self.closed or self.company_closed


def _period_row(session: Session, *, period: Period, team: str | None) -> AppraisalPeriod | None:
    team_clause = AppraisalPeriod.team.is_(None) if team is None else AppraisalPeriod.team == team
    return session.scalar(
        select(AppraisalPeriod).where(
            AppraisalPeriod.period_start == period.start, AppraisalPeriod.period_end == period.end, team_clause
        )
    )


def period_status(session: Session, *, period: Period, team: str | None) -> PeriodStatus:
    """Return whether the period is closed for the team (None = the whole company)."""
    row = _period_row(session, period=period, team=team)
    company = row if team is None else _period_row(session, period=period, team=None)
    company_closed = bool(company is not None and company.closed)
    if row is None:
        return PeriodStatus(period=period, team=team, closed=False, company_closed=company_closed)
    version = session.scalar(select(AppraisalScheme.version).where(AppraisalScheme.id == row.scheme_id))
    return PeriodStatus(
        period=period,
        team=team,
        closed=bool(row.closed),
        company_closed=company_closed,
        scheme_version=version,
        closed_at=row.closed_at,
        closed_by_id=row.closed_by_id,
        reopened_at=row.reopened_at,
        reopened_by_id=row.reopened_by_id,
    )


def close_period(session: Session, *, actor: Actor, period: Period, at: datetime) -> PeriodStatus:
    """Freeze the period's scorecards: a manager's team, or the whole company for an admin."""
    require_role(actor, Role.MANAGER, Role.ADMIN)
    team = None if actor.is_admin else actor.team
    if actor.is_manager and team is None:
        raise PermissionDeniedError("close a period without a team")
    row = _period_row(session, period=period, team=team)
    if row is not None and row.closed:
        raise ValidationError({"period": FieldError("error.already_closed", {"period": period.label()})})
    scheme = current_scheme(session)
    cards = leaderboard(session, actor=actor, period=period, filters=Filters())
    if row is None:
        row = AppraisalPeriod(period_start=period.start, period_end=period.end, team=team)
        session.add(row)
    row.scheme_id = scheme.id
    row.closed = True
    row.closed_at = at
    row.closed_by_id = actor.id
    session.flush()
    session.add_all(
        AppraisalSnapshot(
            period_id=row.id, rep_id=card.rep_id, scorecard=dataclasses.replace(card, frozen=True).to_json()
        )
        for card in cards
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="close",
        entity="appraisal_period",
        entity_id=row.id,
        changes={
            "period": [None, period.label()],
            "team": [None, team],
            "closed": [False, True],
            "scheme_version": [None, scheme.version],
            "scorecards": [None, len(cards)],
        },
        at=at,
    )
    return period_status(session, period=period, team=team)


def reopen_period(session: Session, *, actor: Actor, period: Period, team: str | None, at: datetime) -> PeriodStatus:
    """Unfreeze a closed period (admin only): its snapshots go and scorecards are live again."""
    require_role(actor, Role.ADMIN)
    row = _period_row(session, period=period, team=team)
    if row is None or not row.closed:
        raise NotFoundError("appraisal_period", f"{period.label()} {team or 'company'}")
    row.closed = False
    row.reopened_at = at
    row.reopened_by_id = actor.id
    session.execute(delete(AppraisalSnapshot).where(AppraisalSnapshot.period_id == row.id))
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="reopen",
        entity="appraisal_period",
        entity_id=row.id,
        changes={"period": [period.label(), period.label()], "team": [team, team], "closed": [True, False]},
        at=at,
    )
    return period_status(session, period=period, team=team)


# --------------------------------------------------------------------------------------------
# Records behind each number

RECORD_COLUMNS: dict[str, tuple[str, ...]] = {
    "revenue": ("id", "ordered_on", "customer_code", "customer", "amount"),
    "new_customers": ("customer_id", "customer_code", "customer", "tier", "first_order_on"),
    "visits": ("id", "occurred_at", "customer_code", "customer", "subject", "outcome", "location"),
    "win_rate": ("id", "closed_on", "customer_code", "customer", "title", "amount", "stage", "result"),
    "csat": ("id", "responded_on", "customer_code", "customer", "overall", "comment"),
    "complaint_on_time": (
        "id",
        "customer_code",
        "customer",
        "severity",
        "opened_at",
        "due_at",
        "resolved_at",
        "on_time",
    ),
    "attitude": (
        "id",
        "scorer",
        "period_start",
        "period_end",
        "initiative",
        "cooperation",
        "responsibility",
        "discipline",
        "mean",
        "comment",
    ),
}


def _records_query(metric: str, *, rep_id: int, period: Period) -> Select:
    if metric == "revenue":
        return (
            select(Order.id, Order.ordered_on, Customer.code, Customer.name, Order.amount)
            .join(Customer, Customer.id == Order.customer_id)
            .where(Order.rep_id == rep_id, *order_criteria(period, None))
            .order_by(Order.ordered_on, Order.id)
        )
    if metric == "new_customers":
        return (
            select(Customer.id, Customer.code, Customer.name, Customer.tier, Customer.first_order_on)
            .where(Customer.owner_id == rep_id, *new_customer_criteria(period, None))
            .order_by(Customer.first_order_on, Customer.id)
        )
    if metric == "visits":
        return (
            select(
                Interaction.id,
                Interaction.occurred_at,
                Customer.code,
                Customer.name,
                Interaction.subject,
                Interaction.outcome,
                Interaction.location,
            )
            .join(Customer, Customer.id == Interaction.customer_id)
            .where(
                Interaction.rep_id == rep_id,
                Interaction.kind == InteractionKind.VISIT.value,
                *interaction_criteria(period, None),
            )
            .order_by(Interaction.occurred_at, Interaction.id)
        )
    if metric == "win_rate":
        return (
            select(
                Opportunity.id,
                Opportunity.closed_on,
                Customer.code,
                Customer.name,
                Opportunity.title,
                Opportunity.amount,
                Opportunity.stage,
                PipelineStage.kind,
            )
            .join(PipelineStage, PipelineStage.key == Opportunity.stage)
            .outerjoin(Customer, Customer.id == Opportunity.customer_id)
            .where(Opportunity.owner_id == rep_id, *closed_opportunity_criteria(period, None))
            .order_by(Opportunity.closed_on, Opportunity.id)
        )
    if metric == "csat":
        return (
            select(
                SurveyResponse.id,
                SurveyResponse.responded_on,
                Customer.code,
                Customer.name,
                SurveyResponse.overall,
                SurveyResponse.comment,
            )
            .join(Customer, Customer.id == SurveyResponse.customer_id)
            .where(SurveyResponse.rep_id == rep_id, *survey_criteria(period, None))
            .order_by(SurveyResponse.responded_on, SurveyResponse.id)
        )
    if metric == "complaint_on_time":
        return (
            select(
                Complaint.id,
                Customer.code,
                Customer.name,
                Complaint.severity,
                Complaint.opened_at,
                Complaint.due_at,
                Complaint.resolved_at,
            )
            .join(Customer, Customer.id == Complaint.customer_id)
            .where(Complaint.assignee_id == rep_id, *resolved_complaint_criteria(period, None))
            .order_by(Complaint.resolved_at, Complaint.id)
        )
    return (
        select(
            AttitudeScore.id,
            User.display_name,
            AttitudeScore.period_start,
            AttitudeScore.period_end,
            AttitudeScore.initiative,
            AttitudeScore.cooperation,
            AttitudeScore.responsibility,
            AttitudeScore.discipline,
            AttitudeScore.comment,
        )
        .join(User, User.id == AttitudeScore.scorer_id)
        .where(
            AttitudeScore.rep_id == rep_id,
            AttitudeScore.period_start >= period.start,
            AttitudeScore.period_end <= period.end,
        )
        .order_by(AttitudeScore.period_start, User.display_name, AttitudeScore.id)
    )


def _record_row(metric: str, row: Sequence[Any]) -> tuple[Any, ...]:
    values = list(row)
    if metric == "revenue":
        values[4] = float(values[4])
    elif metric == "win_rate":
        values[5] = None if values[5] is None else float(values[5])
    elif metric == "complaint_on_time":
        values.append(values[6] <= values[5])
    elif metric == "attitude":
        items = values[4:8]
        values.insert(8, sum(items) / ATTITUDE_ITEMS)
    return tuple(values)


def scorecard_records(
    session: Session,
    *,
    actor: Actor,
    rep_id: int,
    period: Period,
    metric: str,
    limit: int = DEFAULT_RECORD_LIMIT,
) -> pd.DataFrame:
    """Return the live records behind one metric of a rep's scorecard (columns: RECORD_COLUMNS[metric]).

    revenue → orders; new_customers → customers whose first order fell in the period; visits →
    visits; win_rate → deals closed won/lost (result is the stage kind); csat → survey responses;
    complaint_on_time → complaints resolved (on_time: resolved_at ≤ due_at); attitude → scores.
    """
    if metric not in RECORD_COLUMNS:
        raise ValidationError({"metric": FieldError("error.invalid_choice", {"choices": list(METRICS)})})
    if not manages_rep(session, actor=actor, rep_id=rep_id):
        raise NotFoundError("scorecard", rep_id)
    rows = session.execute(_records_query(metric, rep_id=rep_id, period=period).limit(limit)).all()
    return pd.DataFrame([_record_row(metric, row) for row in rows], columns=list(RECORD_COLUMNS[metric]))


# --------------------------------------------------------------------------------------------
# Export


def _neutralise(value: Any) -> Any:
    """Keep a spreadsheet from running a cell as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def leaderboard_frame(scorecards: Iterable[Scorecard]) -> pd.DataFrame:
    """Return the leaderboard as a DataFrame with EXPORT_COLUMNS, safe to write to a spreadsheet."""
    rows = []
    for card in scorecards:
        row = card.as_dict()
        row["metrics_left_out"] = ", ".join(row["metrics_left_out"])
        rows.append({column: _neutralise(row[column]) for column in EXPORT_COLUMNS})
    return pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))


def export_leaderboard_csv(scorecards: Iterable[Scorecard]) -> bytes:
    """Return the leaderboard as CSV in UTF-8 with a BOM."""
    return leaderboard_frame(scorecards).to_csv(index=False).encode(CSV_ENCODING)


def export_leaderboard_xlsx(scorecards: Iterable[Scorecard]) -> bytes:
    """Return the leaderboard as an Excel workbook."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        leaderboard_frame(scorecards).to_excel(writer, index=False, sheet_name=XLSX_SHEET)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# Scheme history and who closed a period (for the appraisal page)

SCHEME_HISTORY_COLUMNS: tuple[str, ...] = ("version", "created_at", "created_by")


def scheme_history(session: Session) -> pd.DataFrame:
    """Return every scheme version, newest first.

    Columns: SCHEME_HISTORY_COLUMNS; created_by is the creator's display name (None for the seeded version 1).
    """
    rows = session.execute(
        select(AppraisalScheme.version, AppraisalScheme.created_at, User.display_name)
        .outerjoin(User, User.id == AppraisalScheme.created_by_id)
        .order_by(AppraisalScheme.version.desc())
    ).all()
    return pd.DataFrame([tuple(row) for row in rows], columns=list(SCHEME_HISTORY_COLUMNS))


def user_display_name(session: Session, *, user_id: int | None) -> str | None:
    """Return the display name of the user who closed or reopened a period, None when unknown."""
    if user_id is None:
        return None
    return session.scalar(select(User.display_name).where(User.id == user_id))
