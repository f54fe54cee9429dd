"""Charts of the customer page: the contact timeline (no database access)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from crm.charts import empty, style, translated
from crm.i18n import enum_label, t
from crm.models import InteractionKind, Outcome

TIMELINE_TITLE = "customers.chart.timeline"
POINT_SIZE = 90
# Outcome colours read as good / so-so / bad; a contact without an outcome is grey.
OUTCOME_COLORS = {
    Outcome.POSITIVE.value: "#2e7d32",
    Outcome.NEUTRAL.value: "#f9a825",
    Outcome.NEGATIVE.value: "#c62828",
}
NO_OUTCOME_COLOR = "#9aa0a6"


def timeline(interactions: pd.DataFrame) -> alt.TopLevelMixin:
    """Plot a customer's contacts over time, one row per kind, coloured by outcome.

    `interactions` has the columns of `CustomerProfile.interactions` (at most a few dozen rows).
    """
    if interactions.empty:
        return empty(TIMELINE_TITLE)
    frame = interactions[["occurred_at", "kind", "outcome", "rep_name", "subject"]].copy()
    frame = translated(frame, "kind", "interaction")
    frame = translated(frame, "outcome", "outcome")
    kinds = [enum_label("interaction", kind.value) for kind in InteractionKind]
    outcomes = [enum_label("outcome", outcome.value) for outcome in Outcome] + [enum_label("outcome", None)]
    colors = [OUTCOME_COLORS[outcome.value] for outcome in Outcome] + [NO_OUTCOME_COLOR]
    chart = (
        alt.Chart(frame)
        .mark_circle(size=POINT_SIZE, opacity=0.85)
        .encode(
            x=alt.X("occurred_at:T", title=t("customers.col.occurred_at")),
            y=alt.Y("kind:N", title=t("customers.col.kind"), sort=kinds),
            color=alt.Color(
                "outcome:N",
                title=t("customers.col.outcome"),
                scale=alt.Scale(domain=outcomes, range=colors),
            ),
            tooltip=[
                alt.Tooltip("occurred_at:T", title=t("customers.col.occurred_at"), format="%Y-%m-%d %H:%M"),
                alt.Tooltip("kind:N", title=t("customers.col.kind")),
                alt.Tooltip("outcome:N", title=t("customers.col.outcome")),
                alt.Tooltip("rep_name:N", title=t("customers.col.rep")),
                alt.Tooltip("subject:N", title=t("customers.col.subject")),
            ],
        )
    )
    return style(chart, title_key=TIMELINE_TITLE)
