"""CRM dashboard core: domain model, access rules, KPIs, appraisal, import/export."""
