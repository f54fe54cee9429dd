"""Entry point: login, language, and the role's pages. `streamlit run app.py`."""

from __future__ import annotations

import streamlit as st

from crm import i18n, ui
from crm.i18n import t
from crm.models import Role

st.set_page_config(page_title="Sales CRM", page_icon="📈", layout="wide")

login = ui.login_gate()
actor = ui.current_actor()
if actor is None:
    # Until someone logs in, the login form is the only page that exists.
    st.navigation([st.Page(login, title=t("app.title"), icon="🔐")], position="hidden").run()
    st.stop()
assert actor is not None

with st.sidebar:
    st.caption(t("app.signed_in_as", name=actor.display_name, role=i18n.enum_label("role", actor.role.value)))
    ui.language_switch(actor)
    ui.logout_button()

ALL = (Role.ADMIN, Role.MANAGER, Role.REP)
PAGES: list[tuple[str, str, str, str, tuple[Role, ...]]] = [
    # (section, file, title key, icon, roles)
    ("nav.section.work", "pages/my_day.py", "nav.my_day", "☀️", (Role.REP,)),
    ("nav.section.work", "pages/overview.py", "nav.overview", "📊", ALL),
    ("nav.section.work", "pages/customers.py", "nav.customers", "🏢", ALL),
    ("nav.section.work", "pages/log_interaction.py", "nav.log_interaction", "📝", ALL),
    ("nav.section.work", "pages/pipeline.py", "nav.pipeline", "🧭", ALL),
    ("nav.section.analysis", "pages/satisfaction.py", "nav.satisfaction", "😊", ALL),
    ("nav.section.analysis", "pages/loyalty.py", "nav.loyalty", "🔁", ALL),
    ("nav.section.analysis", "pages/complaints.py", "nav.complaints", "🛎️", ALL),
    ("nav.section.analysis", "pages/appraisal.py", "nav.appraisal", "🏅", ALL),
    ("nav.section.admin", "pages/admin.py", "nav.admin", "🛠️", (Role.ADMIN,)),
    ("nav.section.admin", "pages/account.py", "nav.account", "👤", ALL),
]

sections: dict[str, list[st.Page]] = {}
for section, path, title, icon, roles in PAGES:
    if actor.role in roles:
        sections.setdefault(t(section), []).append(st.Page(path, title=t(title), icon=icon))
st.navigation(sections).run()
