"""Admin of the analytics app: each concern registers its admins in a module of its own."""

from analytics.alerts import admin as admin_alerts  # noqa: F401  (registers its admins)
