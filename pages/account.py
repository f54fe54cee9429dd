"""My account: profile and password change (every role)."""

from __future__ import annotations

import streamlit as st

from crm import auth, ui
from crm.errors import ValidationError
from crm.i18n import enum_label, t

actor = ui.require_login()

st.title(t("account.title"))
st.subheader(t("account.profile"))
st.write(
    f"**{actor.display_name}** · `{actor.username}` · {enum_label('role', actor.role.value)}"
    + (f" · {actor.team}" if actor.team else "")
)

st.subheader(t("account.change_password"))
errors: dict[str, str] = st.session_state.get("account:errors", {})
with st.form("change_password", clear_on_submit=False):
    current = st.text_input(t("account.current_password"), type="password", key="account:current")
    ui.field_error(errors, "current_password")
    new = st.text_input(t("account.new_password"), type="password", key="account:new")
    ui.field_error(errors, "new_password")
    repeat = st.text_input(t("account.repeat_password"), type="password", key="account:repeat")
    ui.field_error(errors, "repeat")
    submitted = st.form_submit_button(t("common.save"), type="primary")

if submitted:
    if new != repeat:
        st.session_state["account:errors"] = {"repeat": t("account.passwords_differ")}
        st.rerun()
    try:
        with ui.writing() as session:
            issued_at = auth.change_password(
                session, actor=actor, current_password=current, new_password=new, now=ui.utcnow()
            )
    except ValidationError as exc:
        st.session_state["account:errors"] = ui.translate_errors(exc)
        st.rerun()
    st.session_state["account:errors"] = {}
    ui.renew_login(issued_at)
    st.success(t("account.password_changed"))
