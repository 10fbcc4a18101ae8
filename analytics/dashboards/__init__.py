"""The admin's analytics dashboards: a registry of entries (analytics.dashboards.registry) rendered
by one admin view (analytics.dashboards.views); see registry.py for how to add one."""
