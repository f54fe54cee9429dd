"""KPI engine (SPEC §5): pure functions (session, actor, period, filters) → dataclasses / DataFrames.

Figures are aggregated in SQL and scoped by the rep on each record (see crm.kpi.common). Rates
are fractions 0–1 and None when their denominator is 0; money is float rounded to cents.
"""

from crm.kpi.activity import (
    NOT_CONTACTED_DAYS,
    Activity,
    NotContacted,
    activity_compared,
    activity_summary,
    my_day,
    not_contacted,
    visits_calls_by_week,
)
from crm.kpi.common import Compared, Metric
from crm.kpi.conversion import (
    LeadConversion,
    WinLoss,
    funnel,
    lead_conversion,
    lead_conversion_compared,
    visit_conversion_by_rep,
    win_loss,
    win_loss_compared,
    win_rate_by_rep,
)
from crm.kpi.drilldown import (
    ComplaintSet,
    closed_opportunities,
    complaints,
    orders_in_period,
    survey_responses,
    visits,
)
from crm.kpi.loyalty import (
    CustomerValue,
    Loyalty,
    at_risk_customers,
    customer_value,
    loyalty_compared,
    loyalty_summary,
    pyramid,
    repeat_trend,
    retention_trend,
)
from crm.kpi.overview import HEADLINE_KEYS, KpiSummary, Overview, kpi_summary, overview
from crm.kpi.satisfaction import (
    Satisfaction,
    csat_trend,
    lowest_scoring_customers,
    nps_trend,
    satisfaction_by_rep,
    satisfaction_by_tier,
    satisfaction_compared,
    satisfaction_summary,
)
from crm.kpi.service import Service, complaints_by_severity, service_compared, service_summary

__all__ = [
    "HEADLINE_KEYS",
    "NOT_CONTACTED_DAYS",
    "Activity",
    "Compared",
    "ComplaintSet",
    "CustomerValue",
    "KpiSummary",
    "LeadConversion",
    "Loyalty",
    "Metric",
    "NotContacted",
    "Overview",
    "Satisfaction",
    "Service",
    "WinLoss",
    "activity_compared",
    "activity_summary",
    "at_risk_customers",
    "closed_opportunities",
    "complaints",
    "complaints_by_severity",
    "csat_trend",
    "customer_value",
    "funnel",
    "kpi_summary",
    "lead_conversion",
    "lead_conversion_compared",
    "lowest_scoring_customers",
    "loyalty_compared",
    "loyalty_summary",
    "my_day",
    "not_contacted",
    "nps_trend",
    "orders_in_period",
    "overview",
    "pyramid",
    "repeat_trend",
    "retention_trend",
    "satisfaction_by_rep",
    "satisfaction_by_tier",
    "satisfaction_compared",
    "satisfaction_summary",
    "service_compared",
    "service_summary",
    "survey_responses",
    "visit_conversion_by_rep",
    "visits",
    "visits_calls_by_week",
    "win_loss",
    "win_loss_compared",
    "win_rate_by_rep",
]
