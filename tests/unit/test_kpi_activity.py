"""Activity KPIs: visits and calls (per week), customers not contacted, the rep's "my day"."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy.orm import Session

from crm import kpi
from crm.access import Filters
from crm.models import Customer, User
from crm.periods import Period
from tests.factories import Org, actor, make_customer, make_interaction, make_org, soft_delete

JAN = Period.month(2026, 1)


def build_log(session: Session) -> Org:
    """Interactions (rep, kind, when, ISO week's Monday):

    A visit Thu Jan 01 10:00 (Dec 29) | A visit Sun Jan 04 23:00 (Dec 29) | A call Mon Jan 05 08:00 (Jan 5)
    A email Tue Jan 06 (not a visit or call) | B visit Mon Jan 12 (Jan 12) | B call Sat Jan 31 23:59 (Jan 26)
    December: A visit Dec 31 2025.
    Not counted: a visit on a deleted customer; a deleted visit.
    """
    org = make_org(session)
    a, b = org.rep_a, org.rep_b
    ca = make_customer(session, "Alpha", owner=a)
    cb = make_customer(session, "Beta", owner=b)
    gone = make_customer(session, "Gone", owner=a)
    make_interaction(session, ca, a, datetime(2026, 1, 1, 10))
    make_interaction(session, ca, a, datetime(2026, 1, 4, 23))
    make_interaction(session, ca, a, datetime(2026, 1, 5, 8), kind="call")
    make_interaction(session, ca, a, datetime(2026, 1, 6, 8), kind="email")
    make_interaction(session, cb, b, datetime(2026, 1, 12, 9))
    make_interaction(session, cb, b, datetime(2026, 1, 31, 23, 59), kind="call")
    make_interaction(session, ca, a, datetime(2025, 12, 31, 18))
    make_interaction(session, gone, a, datetime(2026, 1, 7, 9))
    soft_delete(session, gone)
    soft_delete(session, make_interaction(session, ca, a, datetime(2026, 1, 8, 9)))
    return org


@pytest.mark.parametrize(
    ("user", "filters", "visits", "calls", "interactions"),
    [
        ("admin", {}, 3, 2, 6),
        ("north_manager", {}, 3, 2, 6),
        ("rep_a", {}, 2, 1, 4),
        ("north_manager", {"region": "west"}, 1, 1, 2),
        ("south_manager", {}, 0, 0, 0),
    ],
)
def test_activity_summary(
    session: Session, user: str, filters: dict[str, str], visits: int, calls: int, interactions: int
) -> None:
    org = build_log(session)
    figures = kpi.activity_summary(session, actor=actor(getattr(org, user)), period=JAN, filters=Filters(**filters))
    assert (figures.visits, figures.calls, figures.interactions) == (visits, calls, interactions)


def test_activity_previous_period(session: Session) -> None:
    org = build_log(session)
    compared = kpi.activity_compared(session, actor=actor(org.rep_a), period=JAN)
    assert compared.current.visits == 2
    assert (compared.previous.visits, compared.previous.calls, compared.previous.interactions) == (1, 0, 1)


def test_visits_and_calls_per_rep_per_week(session: Session) -> None:
    org = build_log(session)
    frame = kpi.visits_calls_by_week(session, actor=actor(org.admin), period=JAN)
    a, b = org.rep_a.id, org.rep_b.id
    rows = list(frame[["week", "rep_id", "visits", "calls"]].itertuples(index=False, name=None))
    assert rows == [
        (date(2025, 12, 29), a, 2, 0),  # Thu Jan 1 and Sun Jan 4 are in the week of Mon Dec 29
        (date(2026, 1, 5), a, 0, 1),
        (date(2026, 1, 12), b, 1, 0),
        (date(2026, 1, 26), b, 0, 1),  # Sat Jan 31 23:59
    ]
    assert set(frame["rep_name"]) == {org.rep_a.display_name, org.rep_b.display_name}
    mine = kpi.visits_calls_by_week(session, actor=actor(org.rep_b), period=JAN)
    assert list(mine["rep_id"]) == [b, b]


def test_not_contacted(session: Session) -> None:
    """As of Apr 30 2026 (customer, owner, last contact → days):

    n1 A Apr 20 → 10 | n2 A Mar 31 → 30 | n2b A Apr 01 → 29 | n3 A Mar 01 → 60
    n4 B never, created Jan 01 → 119 | n5 B never, created Apr 25 → 5
    n6 A Jan 15 (and May 5, after as_of) → 105 | n8 unowned, never, created Jan 01 → 119
    Not counted: a deleted customer, a customer created after as_of.
    """
    org = make_org(session)
    a, b = org.rep_a, org.rep_b
    jan1 = datetime(2026, 1, 1)

    def customer(name: str, owner: User | None, *contacts: datetime, created: datetime = jan1) -> None:
        row = make_customer(session, name, owner=owner, created_at=created)
        for when in contacts:
            make_interaction(session, row, a, when)

    customer("n1", a, datetime(2026, 4, 20, 9))
    customer("n2", a, datetime(2026, 3, 31, 10))
    customer("n2b", a, datetime(2026, 4, 1, 10))
    customer("n3", a, datetime(2026, 2, 1), datetime(2026, 3, 1, 8))
    customer("n4", b)
    customer("n5", b, created=datetime(2026, 4, 25))
    customer("n6", a, datetime(2026, 1, 15), datetime(2026, 5, 5))
    customer("n8", None)
    gone = make_customer(session, "gone", owner=a, created_at=jan1)
    soft_delete(session, gone)
    customer("future", a, created=datetime(2026, 5, 2))
    as_of = date(2026, 4, 30)

    everyone = kpi.not_contacted(session, actor=actor(org.admin), as_of=as_of)
    assert everyone.customers == 8
    # ≥30: n2 n3 n4 n6 n8 | ≥60: n3 n4 n6 n8 | ≥90: n4 n6 n8
    assert (everyone.over_30, everyone.over_60, everyone.over_90) == (5, 4, 3)
    assert everyone.as_of == as_of
    mine = kpi.not_contacted(session, actor=actor(a), as_of=as_of)
    # n1 n2 n2b n3 n6
    assert (mine.customers, mine.over_30, mine.over_60, mine.over_90) == (5, 3, 2, 1)
    team_b = kpi.not_contacted(session, actor=actor(org.north_manager), as_of=as_of, filters=Filters(rep_id=b.id))
    assert (team_b.customers, team_b.over_30, team_b.over_60, team_b.over_90) == (2, 1, 1, 1)  # n4 n5
    south = kpi.not_contacted(session, actor=actor(org.south_manager), as_of=as_of)
    assert (south.customers, south.over_90) == (1, 1)  # only the unassigned pool: n8


def test_my_day(session: Session) -> None:
    """Rep A's follow-ups as of Mar 10 2026 (the rep's newest interaction per customer decides):

    m1 Alpha   Mar 01 → follow up Mar 10                              today
    m2 Beta    Feb 20 → Mar 05, then Mar 03 → Mar 07                  overdue 3 days (Mar 07)
    m3 Gamma   Feb 01 → Feb 10, then Feb 12 without a follow-up       done: not listed
    m4 Delta   Mar 02 → Mar 20                                        not due yet
    m5 Eps     B's follow-up                                          not A's
    m6 Zeta    A Mar 01 → Mar 01, then B visits Mar 05                still A's: overdue 9 days
    m7 Gone    deleted customer                                       not listed
    m8 Eta     Mar 01 → Mar 08, then Mar 11 (after as_of) no date     overdue 2 days as of Mar 10
    """
    org = make_org(session)
    a, b = org.rep_a, org.rep_b

    def new(name: str, owner: User = a) -> Customer:
        return make_customer(session, name, owner=owner)

    alpha, beta, gamma, delta, eps, zeta, gone, eta = (
        new(n) for n in ("Alpha", "Beta", "Gamma", "Delta", "Eps", "Zeta", "Gone", "Eta")
    )

    def log(customer: Customer, rep: User, when: datetime, follow_up: date | None) -> None:
        make_interaction(session, customer, rep, when, next_follow_up=follow_up)

    log(alpha, a, datetime(2026, 3, 1, 9), date(2026, 3, 10))
    log(beta, a, datetime(2026, 2, 20, 9), date(2026, 3, 5))
    log(beta, a, datetime(2026, 3, 3, 9), date(2026, 3, 7))
    log(gamma, a, datetime(2026, 2, 1, 9), date(2026, 2, 10))
    log(gamma, a, datetime(2026, 2, 12, 9), None)
    log(delta, a, datetime(2026, 3, 2, 9), date(2026, 3, 20))
    log(eps, b, datetime(2026, 3, 1, 9), date(2026, 3, 1))
    log(zeta, a, datetime(2026, 3, 1, 9), date(2026, 3, 1))
    log(zeta, b, datetime(2026, 3, 5, 9), None)
    log(gone, a, datetime(2026, 3, 1, 9), date(2026, 3, 1))
    soft_delete(session, gone)
    log(eta, a, datetime(2026, 3, 1, 9), date(2026, 3, 8))
    log(eta, a, datetime(2026, 3, 11, 9), None)
    as_of = date(2026, 3, 10)

    frame = kpi.my_day(session, actor=actor(a), as_of=as_of)
    assert list(frame["customer_name"]) == ["Zeta", "Beta", "Eta", "Alpha"]
    assert list(frame["follow_up_on"]) == [date(2026, 3, 1), date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 10)]
    assert list(frame["status"]) == ["overdue", "overdue", "overdue", "today"]
    assert list(frame["days_overdue"]) == [9, 3, 2, 0]
    assert list(frame["customer_code"])[0] == zeta.code
    assert list(frame["last_contact_at"])[1] == datetime(2026, 3, 3, 9)

    # a manager looks at a rep of the team; a manager of another team and another rep see nothing
    assert len(kpi.my_day(session, actor=actor(org.north_manager), as_of=as_of, rep_id=a.id)) == 4
    assert kpi.my_day(session, actor=actor(org.south_manager), as_of=as_of, rep_id=a.id).empty
    assert kpi.my_day(session, actor=actor(b), as_of=as_of, rep_id=a.id).empty
    assert list(kpi.my_day(session, actor=actor(b), as_of=as_of)["customer_name"]) == ["Eps"]
    assert len(kpi.my_day(session, actor=actor(a), as_of=as_of, limit=2)) == 2
