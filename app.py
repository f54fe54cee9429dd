"""Entry point: login, language, and the role's pages. `streamlit run app.py`."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from crm import i18n, ui
from crm.i18n import t
from crm.models import Role

st.set_page_config(page_title="Sales CRM", page_icon=":material/monitoring:", layout="wide")

login = ui.login_gate()
actor = ui.current_actor()

ALL = (Role.ADMIN, Role.MANAGER, Role.REP)
PAGES: list[tuple[str, str, str, str, tuple[Role, ...]]] = [
    # (section, file, title key, icon, roles)
    ("nav.section.work", "pages/my_day.py", "nav.my_day", ":material/today:", (Role.REP,)),
    ("nav.section.work", "pages/overview.py", "nav.overview", ":material/dashboard:", ALL),
    ("nav.section.work", "pages/customers.py", "nav.customers", ":material/apartment:", ALL),
    ("nav.section.work", "pages/log_interaction.py", "nav.log_interaction", ":material/edit_note:", ALL),
    ("nav.section.work", "pages/pipeline.py", "nav.pipeline", ":material/filter_alt:", ALL),
    ("nav.section.analysis", "pages/satisfaction.py", "nav.satisfaction", ":material/sentiment_satisfied:", ALL),
    ("nav.section.analysis", "pages/loyalty.py", "nav.loyalty", ":material/autorenew:", ALL),
    ("nav.section.analysis", "pages/complaints.py", "nav.complaints", ":material/support_agent:", ALL),
    ("nav.section.analysis", "pages/appraisal.py", "nav.appraisal", ":material/military_tech:", ALL),
    ("nav.section.admin", "pages/admin.py", "nav.admin", ":material/admin_panel_settings:", (Role.ADMIN,)),
    ("nav.section.admin", "pages/account.py", "nav.account", ":material/person:", ALL),
]

if actor is None:
    # Until someone logs in, the login form is the only page; every page's URL shows it, so a
    # bookmarked link lands on the login and then on that page.
    aliases = [
        st.Page(login, title=t("app.title"), url_path=Path(path).stem, icon=":material/lock:")
        for _, path, _, _, _ in PAGES
    ]
    st.navigation(
        [st.Page(login, title=t("app.title"), icon=":material/lock:", default=True), *aliases], position="hidden"
    ).run()
    st.stop()
assert actor is not None

with st.sidebar:
    st.caption(t("app.signed_in_as", name=actor.display_name, role=i18n.enum_label("role", actor.role.value)))
    ui.language_switch(actor)
    ui.logout_button()

sections: dict[str, list[st.Page]] = {}
for section, path, title, icon, roles in PAGES:
    if actor.role in roles:
        sections.setdefault(t(section), []).append(st.Page(path, title=t(title), icon=icon))
st.navigation(sections).run()
