"""Appraisal scheme: validation, versioning, audit, and its effect on scorecards."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.access import Filters
from crm.appraisal import current_scheme, leaderboard, save_scheme, scheme_at
from crm.errors import PermissionDeniedError, ValidationError
from crm.models import AppraisalScheme, AuditEvent, Role
from crm.periods import Period
from tests.factories import actor, make_customer, make_order, make_target, make_user

AT = datetime(2026, 4, 2, 8, 0)
MARCH = Period.month(2026, 3)
WEIGHTS = {
    "revenue": 30,
    "new_customers": 15,
    "visits": 10,
    "win_rate": 10,
    "csat": 15,
    "complaint_on_time": 10,
    "attitude": 10,
}
BANDS = {"A": 90, "B": 80, "C": 60, "D": 0}
COEFFICIENTS = {"A": 1.5, "B": 1.2, "C": 1.0, "D": 0.5}


def test_the_migration_installs_the_spec_defaults(session: Session) -> None:
    scheme = current_scheme(session)
    assert scheme.version == 1
    assert scheme.weights == {metric: Decimal(weight) for metric, weight in WEIGHTS.items()}
    assert scheme.bands == {grade: Decimal(band) for grade, band in BANDS.items()}
    assert scheme.coefficients == {grade: Decimal(str(c)) for grade, c in COEFFICIENTS.items()}


def test_saving_inserts_a_new_version_and_audits_it(session: Session) -> None:
    admin = make_user(session, "admin", role=Role.ADMIN)
    weights = {**WEIGHTS, "revenue": "32.5", "new_customers": "12.5"}  # 32.5 + 12.5 = 45 = 30 + 15
    saved = save_scheme(
        session, actor=actor(admin), weights=weights, bands={**BANDS, "A": 92.5}, coefficients=COEFFICIENTS, at=AT
    )
    assert saved.version == 2
    assert saved.weights["revenue"] == Decimal("32.5")
    assert current_scheme(session) == saved
    old = scheme_at(session, version=1)
    assert old.weights["revenue"] == Decimal(30)  # the old version is never edited
    assert old.bands["A"] == Decimal(90)
    assert session.scalar(select(func.count()).select_from(AppraisalScheme)) == 2
    event = session.scalars(select(AuditEvent).where(AuditEvent.entity == "appraisal_scheme")).one()
    assert (event.action, event.actor_id, event.entity_id, event.at) == ("create", admin.id, str(saved.id), AT)
    assert event.changes is not None
    assert event.changes["version"] == [1, 2]
    assert event.changes["weights"][1]["revenue"] == 32.5
    assert event.changes["bands"] == [BANDS, {**BANDS, "A": 92.5}]
    assert "coefficients" not in event.changes  # unchanged


def test_versions_keep_counting(session: Session) -> None:
    admin = actor(make_user(session, "admin", role=Role.ADMIN))
    for _ in range(2):
        save_scheme(session, actor=admin, weights=WEIGHTS, bands=BANDS, coefficients=COEFFICIENTS, at=AT)
    assert current_scheme(session).version == 3


@pytest.mark.parametrize(
    ("weights", "bands", "coefficients", "errors"),
    [
        ({**WEIGHTS, "revenue": 29}, BANDS, COEFFICIENTS, {"weights": ("error.sum_mismatch", {"actual": 99})}),
        ({**WEIGHTS, "revenue": 31}, BANDS, COEFFICIENTS, {"weights": ("error.sum_mismatch", {"actual": 101})}),
        ({**WEIGHTS, "revenue": 50, "visits": -10}, BANDS, COEFFICIENTS, {"weights.visits": ("error.negative", {})}),
        (
            {k: v for k, v in WEIGHTS.items() if k != "attitude"},
            BANDS,
            COEFFICIENTS,
            {"weights.attitude": ("error.required", {})},
        ),
        ({**WEIGHTS, "mood": 0}, BANDS, COEFFICIENTS, {"weights": ("error.invalid_choice", {})}),
        ({**WEIGHTS, "csat": "lots"}, BANDS, COEFFICIENTS, {"weights.csat": ("error.not_a_number", {})}),
        ({**WEIGHTS, "csat": True}, BANDS, COEFFICIENTS, {"weights.csat": ("error.not_a_number", {})}),
        (WEIGHTS, {**BANDS, "B": 90}, COEFFICIENTS, {"bands.B": ("error.not_decreasing", {"above": "A"})}),
        (WEIGHTS, {**BANDS, "C": 85}, COEFFICIENTS, {"bands.C": ("error.not_decreasing", {"above": "B"})}),
        (WEIGHTS, {**BANDS, "D": 60}, COEFFICIENTS, {"bands.D": ("error.not_decreasing", {"above": "C"})}),
        (WEIGHTS, {**BANDS, "A": 120}, COEFFICIENTS, {"bands.A": ("error.out_of_range", {"min": 0, "max": 100})}),
        (WEIGHTS, BANDS, {**COEFFICIENTS, "D": -0.5}, {"coefficients.D": ("error.negative", {})}),
        (
            {**WEIGHTS, "revenue": 29},
            {**BANDS, "B": 95},
            {**COEFFICIENTS, "A": -1},
            {
                "weights": ("error.sum_mismatch", {}),
                "bands.B": ("error.not_decreasing", {}),
                "coefficients.A": ("error.negative", {}),
            },
        ),
    ],
)
def test_invalid_schemes_name_the_bad_field(
    session: Session,
    weights: dict[str, Any],
    bands: dict[str, Any],
    coefficients: dict[str, Any],
    errors: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    admin = actor(make_user(session, "admin", role=Role.ADMIN))
    with pytest.raises(ValidationError) as err:
        save_scheme(session, actor=admin, weights=weights, bands=bands, coefficients=coefficients, at=AT)
    assert set(err.value.fields) == set(errors)
    for name, (key, params) in errors.items():
        assert err.value.fields[name].key == key
        for param, value in params.items():
            assert err.value.fields[name].params[param] == value
    assert current_scheme(session).version == 1  # nothing saved


@pytest.mark.parametrize("role", [Role.MANAGER, Role.REP])
def test_only_an_admin_saves_a_scheme(session: Session, role: Role) -> None:
    user = actor(make_user(session, "someone", role=role, team="north"))
    with pytest.raises(PermissionDeniedError):
        save_scheme(session, actor=user, weights=WEIGHTS, bands=BANDS, coefficients=COEFFICIENTS, at=AT)
    assert current_scheme(session).version == 1


def test_a_new_scheme_rescores_live_scorecards(session: Session) -> None:
    admin = make_user(session, "admin", role=Role.ADMIN)
    rep = make_user(session, "rep", team="north")
    make_target(session, rep, date(2026, 3, 1), revenue=1000, visits=10)
    make_order(session, make_customer(session, "Acme", owner=None), rep, date(2026, 3, 3), 750)
    # Default scheme: revenue 75, visits 0 (no visits, target 10): (30×75 + 10×0) / 40 = 56.25 → 56.3 → D.
    before = leaderboard(session, actor=actor(admin), period=MARCH, filters=Filters())[0]
    assert (before.composite, before.grade, before.bonus_coefficient, before.scheme_version) == (56.3, "D", 0.5, 1)
    save_scheme(
        session,
        actor=actor(admin),
        weights={**dict.fromkeys(WEIGHTS, 0), "revenue": 100},
        bands={"A": 70, "B": 50, "C": 30, "D": 0},
        coefficients={"A": 2, "B": 1.5, "C": 1, "D": 0},
        at=AT,
    )
    after = leaderboard(session, actor=actor(admin), period=MARCH, filters=Filters())[0]
    # visits still has data, with weight 0: (100×75 + 0×0) / 100 = 75.0 → A under the new bands.
    assert (after.composite, after.grade, after.bonus_coefficient, after.scheme_version) == (75.0, "A", 2.0, 2)
    assert after.weights == {"revenue": 100.0, "visits": 0.0}
