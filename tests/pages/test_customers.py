"""Customers page: scope per role, search and filters, add with validation and duplicates, edit under
optimistic locking, soft delete and the recycle bin, reassignment, contacts, export."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from crm.customers import CustomerInput, update_customer
from crm.db import make_engine
from crm.i18n import t
from crm.models import Contact, Customer
from tests.factories import BASE_TIME
from tests.pages.conftest import World, page_text, run_page

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "customers.py")
NAMES = ("Alpha Trading", "Atlas Foods", "Beta Machines", "Pool Prospect")
ADD = "customers:add"


@contextmanager
def database(world: World) -> Iterator[Session]:
    """Open a session on the world's database (to check or change rows behind the page's back)."""
    engine = make_engine(world.url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        engine.dispose()


def customer_row(world: World, name: str) -> Customer | None:
    with database(world) as session:
        return session.scalar(select(Customer).where(Customer.name == name))


def count_named(world: World, name: str) -> int:
    with database(world) as session:
        return int(session.scalar(select(func.count()).select_from(Customer).where(Customer.name == name)) or 0)


def listed_names(at: AppTest) -> list[str]:
    """Return the Name column of the customer list on the page."""
    return list(at.dataframe[0].value[t("customers.field.name")])


def element_after(at: AppTest, key: str) -> Any:
    """Return the element drawn right after the widget with this key (where its message goes)."""
    nodes = [node for node in at.main if not hasattr(node, "children")]
    index = next(i for i, node in enumerate(nodes) if getattr(node, "key", None) == key)
    return nodes[index + 1]


def submit_add(at: AppTest) -> AppTest:
    return at.button(key=f"{ADD}:submit").click().run()


# --- guard and scope ----------------------------------------------------------------------------


def test_guard_without_login_shows_warning_and_no_data(world: World) -> None:
    at = run_page(PAGE, None)
    assert not at.exception
    assert [w.value for w in at.warning] == [t("app.login_required")]
    assert len(at.dataframe) == 0
    assert not any(name in page_text(at) for name in NAMES)


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        ("rep_a1", ["Alpha Trading"]),
        ("rep_a2", ["Atlas Foods"]),
        ("rep_b1", ["Beta Machines"]),
        ("manager_a", ["Alpha Trading", "Atlas Foods", "Pool Prospect"]),  # team North + the pool
        ("manager_b", ["Beta Machines", "Pool Prospect"]),
        ("admin", list(NAMES)),
    ],
)
def test_list_shows_only_the_scope(world: World, who: str, visible: list[str]) -> None:
    at = run_page(PAGE, getattr(world, who))
    assert not at.exception
    assert listed_names(at) == visible
    assert t("common.rows_total", shown=f"1–{len(visible)}", total=len(visible)) in [c.value for c in at.caption]
    # The open-a-row picker offers exactly the listed customers.
    assert [label.split(" · ")[1] for label in at.selectbox(key="customers:open").options] == visible
    hidden = set(NAMES) - set(visible)
    assert not any(name in page_text(at) for name in hidden)


@pytest.mark.parametrize(
    ("who", "has_bin", "has_owner_filter"),
    [("rep_a1", False, False), ("manager_a", True, True), ("admin", True, True)],
)
def test_recycle_bin_and_owner_filter_only_for_managers_and_admins(
    world: World, who: str, has_bin: bool, has_owner_filter: bool
) -> None:
    at = run_page(PAGE, getattr(world, who))
    labels = [tab.label for tab in at.tabs]
    assert (t("customers.tab.bin") in labels) is has_bin
    assert t("customers.tab.add") in labels
    assert any(box.key == "customers:f:owner" for box in at.selectbox) is has_owner_filter


@pytest.mark.parametrize(
    ("who", "customer", "shown"),
    [
        ("rep_a1", "customer_a1", True),
        ("rep_a1", "customer_b1", False),  # another team's rep
        ("rep_a1", "customer_a2", False),  # a teammate's customer is not the rep's either
        ("rep_a1", "pool_customer", False),
        ("manager_a", "pool_customer", True),
        ("manager_a", "customer_b1", False),
        ("admin", "customer_b1", True),
    ],
)
def test_opening_a_customer_by_id_is_scoped(world: World, who: str, customer: str, shown: bool) -> None:
    customer_id = getattr(world, customer)
    with database(world) as session:
        name = session.get(Customer, customer_id).name
    at = run_page(PAGE, getattr(world, who), customer=str(customer_id))
    assert not at.exception
    text = page_text(at)
    if shown:
        assert name in at.title[0].value
        assert not at.error
    else:
        assert [e.value for e in at.error] == [t("common.not_found")]
        assert name not in text and name.split()[0] not in text
        assert len(at.dataframe) == 0 and len(at.metric) == 0


def test_garbage_customer_id_is_not_found(world: World) -> None:
    at = run_page(PAGE, world.admin, customer="12abc")
    assert not at.exception
    assert [e.value for e in at.error] == [t("common.not_found")]


# --- list: search, filters, open, export ----------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "query", "filters", "names"),
    [
        ("admin", "a", {}, ["Alpha Trading", "Atlas Foods"]),  # name prefix, any case
        ("admin", "ATL", {}, ["Atlas Foods"]),
        ("admin", "1390", {}, ["Beta Machines"]),  # phone prefix
        ("admin", "C00000", {"customers:f:tier": "lead"}, ["Pool Prospect"]),  # code prefix + tier
        ("admin", "", {"customers:f:status": "lost"}, []),
        ("manager_a", "", {"customers:f:owner": "pool"}, ["Pool Prospect"]),
        ("manager_a", "", {"customers:f:owner": "rep_a2"}, ["Atlas Foods"]),
        ("manager_a", "beta", {}, []),  # another team's customer is never found
        ("rep_a1", "atlas", {}, []),
    ],
)
def test_search_and_filters(world: World, who: str, query: str, filters: dict[str, str], names: list[str]) -> None:
    at = run_page(PAGE, getattr(world, who))
    at.text_input(key="customers:q").input(query)
    for key, value in filters.items():
        at.selectbox(key=key).select(getattr(world, value).id if value.startswith("rep_") else value)
    at.run()
    assert not at.exception
    if names:
        assert listed_names(at) == names
    else:
        assert len(at.dataframe) == 0
        assert t("common.no_rows") in [i.value for i in at.info]
    assert t("common.rows_total", shown=f"1–{len(names)}" if names else "0", total=len(names)) in [
        c.value for c in at.caption
    ]


def test_open_a_row_shows_the_customer_page(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    at.selectbox(key="customers:open").select(world.customer_a1)
    at.button(key="customers:open_go").click().run()
    assert not at.exception
    assert at.query_params["customer"] == str(world.customer_a1)  # the view can be linked
    assert "Alpha Trading" in at.title[0].value
    metrics = {m.label: m.value for m in at.metric}
    # Alpha has one order of 1,200 in the world.
    assert metrics[t("customers.lifetime_value")] == "1,200"
    assert metrics[t("customers.order_count")] == "1"
    assert any(b.key == "customers:log" for b in at.button)
    at.button(key="customers:back").click().run()
    assert listed_names(at) == ["Alpha Trading"]


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], bytes]]:
    """Capture the deferred download callables the page registers, by file name."""
    captured: dict[str, Callable[[], bytes]] = {}
    original = MediaFileManager.add_deferred

    def add_deferred(
        self: MediaFileManager, data_callable: Any, mimetype: Any, coordinates: str, file_name: Any = None, **kw: Any
    ) -> str:
        captured[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return captured


@pytest.mark.parametrize(
    ("who", "query", "rows"),
    [
        ("rep_a1", "", ["Alpha Trading"]),
        ("manager_a", "", ["Alpha Trading", "Atlas Foods", "Pool Prospect"]),
        ("manager_a", "at", ["Atlas Foods"]),  # the export follows the search
        ("admin", "", list(NAMES)),
    ],
)
def test_export_is_the_visible_filtered_list(
    world: World, downloads: dict[str, Callable[[], bytes]], who: str, query: str, rows: list[str]
) -> None:
    at = run_page(PAGE, getattr(world, who))
    if query:
        at.text_input(key="customers:q").input(query).run()
    assert not at.exception
    data = downloads["customers.csv"]()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM so Excel reads Chinese names
    lines = data.decode("utf-8-sig").strip().split("\r\n")
    assert lines[0].split(",")[:2] == [t("customers.col.code"), t("customers.field.name")]
    assert [line.split(",")[1] for line in lines[1:]] == rows


# --- add ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "owner", "expected_owner"),
    [
        ("rep_a1", None, "rep_a1"),  # a rep owns what they create
        ("manager_a", None, None),  # a manager's default is the pool
        ("manager_a", "rep_a2", "rep_a2"),
        ("admin", "rep_b1", "rep_b1"),
    ],
)
def test_add_customer_valid(world: World, who: str, owner: str | None, expected_owner: str | None) -> None:
    at = run_page(PAGE, getattr(world, who))
    at.text_input(key=f"{ADD}:name").input("Gamma Tools")
    at.text_input(key=f"{ADD}:phone").input("137 0000 0009")
    at.text_input(key=f"{ADD}:email").input("buy@gamma.cn")
    at.selectbox(key=f"{ADD}:tier").select("prospect")
    if owner:
        at.selectbox(key=f"{ADD}:owner").select(getattr(world, owner).id)
    submit_add(at)
    assert not at.exception
    row = customer_row(world, "Gamma Tools")
    assert row is not None
    assert (row.phone, row.email, row.tier) == ("137 0000 0009", "buy@gamma.cn", "prospect")
    assert row.owner_id == (getattr(world, expected_owner).id if expected_owner else None)
    # Success opens the new customer.
    assert f"{row.code} · Gamma Tools" == at.title[0].value
    assert t("customers.created", code=row.code, name="Gamma Tools") in [s.value for s in at.success]


def test_add_customer_invalid_keeps_input_and_shows_message_under_field(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    at.text_input(key=f"{ADD}:name").input("Gamma Tools")
    at.text_input(key=f"{ADD}:email").input("not-an-email")
    at.text_input(key=f"{ADD}:phone").input("12ab")
    submit_add(at)
    assert not at.exception
    assert customer_row(world, "Gamma Tools") is None
    assert t("common.fix_fields") in [e.value for e in at.error]
    assert element_after(at, f"{ADD}:email").value == t("error.invalid_email")
    assert element_after(at, f"{ADD}:phone").value == t("error.invalid_phone")
    assert at.text_input(key=f"{ADD}:name").value == "Gamma Tools"
    assert at.text_input(key=f"{ADD}:email").value == "not-an-email"
    # Fixing the fields saves the same form.
    at.text_input(key=f"{ADD}:email").input("a@b.cn")
    at.text_input(key=f"{ADD}:phone").input("")
    submit_add(at)
    assert customer_row(world, "Gamma Tools") is not None


def test_add_requires_a_name(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    submit_add(at)
    assert element_after(at, f"{ADD}:name").value == t("error.required")


@pytest.mark.parametrize(
    ("who", "name", "phone", "matches"),
    [
        ("rep_a1", "alpha trading", "", ["Alpha Trading"]),  # same name, any case
        ("rep_a1", "Omega", "138-0000-0001", ["Alpha Trading"]),  # same phone digits
        ("manager_a", "Pool Prospect", "", ["Pool Prospect"]),
        ("admin", "Beta Machines", "", ["Beta Machines"]),
    ],
)
def test_duplicate_warning_before_saving_then_save_anyway(
    world: World, who: str, name: str, phone: str, matches: list[str]
) -> None:
    before = count_named(world, name)
    at = run_page(PAGE, getattr(world, who))
    at.text_input(key=f"{ADD}:name").input(name)
    at.text_input(key=f"{ADD}:phone").input(phone)
    submit_add(at)
    assert not at.exception
    assert t("customers.duplicates_found") in [w.value for w in at.warning]
    shown = "\n".join(m.value for m in at.markdown)
    assert all(match in shown for match in matches)
    assert count_named(world, name) == before  # nothing saved yet
    assert at.text_input(key=f"{ADD}:name").value == name
    at.checkbox(key=f"{ADD}:anyway").check()
    submit_add(at)
    assert not at.exception
    assert count_named(world, name) == before + 1


@pytest.mark.parametrize("who", ["manager_a", "rep_b1"])
def test_no_duplicate_warning_for_customers_out_of_scope(world: World, who: str) -> None:
    # Alpha Trading belongs to team North: manager_a sees it, rep_b1 does not.
    at = run_page(PAGE, getattr(world, who))
    at.text_input(key=f"{ADD}:name").input("Alpha Trading")
    submit_add(at)
    warned = t("customers.duplicates_found") in [w.value for w in at.warning]
    assert warned is (who == "manager_a")
    assert count_named(world, "Alpha Trading") == (1 if warned else 2)


# --- edit ---------------------------------------------------------------------------------------


def edit_key(world: World, field: str) -> str:
    return f"customers:edit:{world.customer_a1}:{field}"


def test_edit_saves_and_bumps_the_version(world: World) -> None:
    at = run_page(PAGE, world.rep_a1, customer=str(world.customer_a1))
    version = customer_row(world, "Alpha Trading").version
    assert at.text_input(key=edit_key(world, "name")).value == "Alpha Trading"
    at.text_input(key=edit_key(world, "city")).input("Hangzhou")
    at.selectbox(key=edit_key(world, "tier")).select("key")
    at.button(key=f"customers:edit:{world.customer_a1}:submit").click().run()
    assert not at.exception
    row = customer_row(world, "Alpha Trading")
    assert (row.city, row.tier, row.version) == ("Hangzhou", "key", version + 1)
    assert t("common.saved") in [s.value for s in at.success]
    # A second save from the reloaded form is not stale.
    at.text_input(key=edit_key(world, "city")).input("Ningbo")
    at.button(key=f"customers:edit:{world.customer_a1}:submit").click().run()
    assert customer_row(world, "Alpha Trading").city == "Ningbo"


def test_edit_invalid_keeps_input(world: World) -> None:
    at = run_page(PAGE, world.rep_a1, customer=str(world.customer_a1))
    at.text_input(key=edit_key(world, "name")).input("")
    at.text_input(key=edit_key(world, "website")).input("w" * 300)
    at.button(key=f"customers:edit:{world.customer_a1}:submit").click().run()
    assert element_after(at, edit_key(world, "name")).value == t("error.required")
    assert element_after(at, edit_key(world, "website")).value == t("error.too_long", max=254)
    assert at.text_input(key=edit_key(world, "website")).value == "w" * 300
    assert customer_row(world, "Alpha Trading") is not None


def test_stale_edit_names_who_changed_it_and_reload(world: World) -> None:
    at = run_page(PAGE, world.rep_a1, customer=str(world.customer_a1))
    # The manager saves the customer after the rep opened it.
    with database(world) as session:
        loaded = session.get(Customer, world.customer_a1)
        update_customer(
            session,
            actor=world.manager_a,
            customer_id=world.customer_a1,
            data=CustomerInput(name="Alpha Trading", phone="13811112222", tier="key", version=loaded.version),
            now=loaded.updated_at.replace(year=2026, month=3, day=1, hour=8, minute=30),
        )
        session.commit()
    at.text_input(key=edit_key(world, "city")).input("Suzhou")
    at.button(key=f"customers:edit:{world.customer_a1}:submit").click().run()
    assert not at.exception
    expected = t("common.stale", who=world.manager_a.display_name, at="2026-03-01 08:30")
    assert expected in [w.value for w in at.warning]
    assert world.manager_a.display_name in expected
    row = customer_row(world, "Alpha Trading")
    assert (row.city, row.phone) == (None, "13811112222")  # the rep's save was refused
    assert at.text_input(key=edit_key(world, "city")).value == "Suzhou"  # typed input kept
    at.button(key=f"customers:edit:{world.customer_a1}:reload").click().run()
    assert at.text_input(key=edit_key(world, "phone")).value == "13811112222"
    assert at.text_input(key=edit_key(world, "city")).value == ""
    assert not any(w.value == expected for w in at.warning)
    at.text_input(key=edit_key(world, "city")).input("Suzhou")
    at.button(key=f"customers:edit:{world.customer_a1}:submit").click().run()
    assert customer_row(world, "Alpha Trading").city == "Suzhou"


# --- delete, recycle bin, reassign ----------------------------------------------------------------


def delete_alpha(world: World) -> AppTest:
    at = run_page(PAGE, world.rep_a1, customer=str(world.customer_a1))
    key = f"customers:delete:{world.customer_a1}"
    at.button(key=key).click().run()
    assert t("customers.confirm_delete", name="Alpha Trading") in [w.value for w in at.warning]
    assert customer_row(world, "Alpha Trading").deleted_at is None  # nothing happens before the confirm
    at.button(key=f"{key}:yes").click().run()
    assert not at.exception
    return at


@pytest.mark.parametrize(
    ("restore_to", "expected_owner"),
    [("keep", "rep_a1"), ("pool", None), ("rep_a2", "rep_a2")],
)
def test_soft_delete_then_manager_restores_from_the_bin(
    world: World, restore_to: str, expected_owner: str | None
) -> None:
    at = delete_alpha(world)
    assert customer_row(world, "Alpha Trading").deleted_at is not None
    assert t("customers.deleted", name="Alpha Trading") in [s.value for s in at.success]
    assert t("common.no_rows") in [i.value for i in at.info]  # the rep's list is empty now

    manager = run_page(PAGE, world.manager_a)
    assert "Alpha Trading" not in listed_names(manager)
    assert f"{customer_row(world, 'Alpha Trading').code} · Alpha Trading" in page_text(manager)
    owner_key = f"customers:bin:owner:{world.customer_a1}"
    if restore_to != "keep":
        manager.selectbox(key=owner_key).select(getattr(world, restore_to).id if restore_to != "pool" else "pool")
    manager.button(key=f"customers:bin:restore:{world.customer_a1}").click().run()
    assert not manager.exception
    row = customer_row(world, "Alpha Trading")
    assert row.deleted_at is None
    assert row.owner_id == (getattr(world, expected_owner).id if expected_owner else None)
    assert t("customers.restored", name="Alpha Trading") in [s.value for s in manager.success]
    assert t("customers.bin_empty") in [i.value for i in manager.info]


def test_other_teams_manager_sees_an_empty_bin(world: World) -> None:
    delete_alpha(world)
    at = run_page(PAGE, world.manager_b)
    assert t("customers.bin_empty") in [i.value for i in at.info]
    assert "Alpha" not in page_text(at)


def test_manager_reassigns_owner(world: World) -> None:
    at = run_page(PAGE, world.manager_a, customer=str(world.customer_a1))
    key = f"customers:reassign:{world.customer_a1}"
    assert at.selectbox(key=key).value == world.rep_a1.id
    at.selectbox(key=key).select(world.rep_a2.id)
    at.button(key=f"{key}:go").click().run()
    assert not at.exception
    assert customer_row(world, "Alpha Trading").owner_id == world.rep_a2.id
    assert world.rep_a2.display_name in at.caption[0].value
    # rep_a1 lost the customer with it.
    assert [e.value for e in run_page(PAGE, world.rep_a1, customer=str(world.customer_a1)).error] == [
        t("common.not_found")
    ]


def test_rep_cannot_reassign(world: World) -> None:
    at = run_page(PAGE, world.rep_a1, customer=str(world.customer_a1))
    assert not any(box.key == f"customers:reassign:{world.customer_a1}" for box in at.selectbox)


# --- contacts -----------------------------------------------------------------------------------


def contact_prefix(at: AppTest, customer_id: int, contact: str = "new") -> str:
    """Return the key prefix of the contact form on screen (each save starts new forms)."""
    entry = at.session_state["customers:outbox"]["contact_entry"][customer_id]
    return f"customers:contact:{customer_id}:{entry}:{contact}"


def test_add_contact_validates_and_saves(world: World) -> None:
    at = run_page(PAGE, world.rep_a1, customer=str(world.customer_a1))
    prefix = contact_prefix(at, world.customer_a1)
    assert at.checkbox(key=f"{prefix}:is_primary").value is True  # the first contact defaults to primary
    at.text_input(key=f"{prefix}:name").input("Li Lei")
    at.text_input(key=f"{prefix}:email").input("li@")
    at.button(key=f"{prefix}:submit").click().run()
    assert element_after(at, f"{prefix}:email").value == t("error.invalid_email")
    assert at.text_input(key=f"{prefix}:name").value == "Li Lei"
    at.text_input(key=f"{prefix}:email").input("li@alpha.cn")
    at.button(key=f"{prefix}:submit").click().run()
    assert not at.exception
    with database(world) as session:
        contacts = session.scalars(select(Contact).where(Contact.customer_id == world.customer_a1)).all()
    assert [(c.name, c.email, c.is_primary) for c in contacts] == [("Li Lei", "li@alpha.cn", True)]
    assert "Li Lei" in page_text(at)
    prefix = contact_prefix(at, world.customer_a1)
    assert at.text_input(key=f"{prefix}:name").value == ""  # ready for the next contact
    assert at.checkbox(key=f"{prefix}:is_primary").value is False  # there is a primary one now


def test_edit_and_delete_a_contact(world: World) -> None:
    with database(world) as session:
        session.add_all(
            [
                Contact(customer_id=world.customer_a1, name="Li Lei", is_primary=True, created_at=BASE_TIME),
                Contact(customer_id=world.customer_a1, name="Han Mei", is_primary=False, created_at=BASE_TIME),
            ]
        )
        session.commit()
        han = session.scalar(select(Contact).where(Contact.name == "Han Mei"))
    at = run_page(PAGE, world.rep_a1, customer=str(world.customer_a1))
    at.selectbox(key=f"customers:contact:{world.customer_a1}:choice").select(han.id).run()
    prefix = contact_prefix(at, world.customer_a1, str(han.id))
    assert at.text_input(key=f"{prefix}:name").value == "Han Mei"
    at.text_input(key=f"{prefix}:title").input("Buyer")
    at.checkbox(key=f"{prefix}:is_primary").check()
    at.button(key=f"{prefix}:submit").click().run()
    assert not at.exception
    with database(world) as session:
        rows = {c.name: (c.title, c.is_primary) for c in session.scalars(select(Contact))}
    assert rows == {"Li Lei": (None, False), "Han Mei": ("Buyer", True)}  # one primary per customer
    prefix = contact_prefix(at, world.customer_a1, str(han.id))
    at.button(key=f"{prefix}:delete").click().run()
    assert t("customers.contact.confirm_delete", name="Han Mei") in [w.value for w in at.warning]
    at.button(key=f"{prefix}:delete:yes").click().run()
    assert not at.exception
    with database(world) as session:
        assert [c.name for c in session.scalars(select(Contact))] == ["Li Lei"]
    assert t("customers.contact_deleted") in [s.value for s in at.success]
