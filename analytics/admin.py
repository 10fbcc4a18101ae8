"""Admin of the analytics app: each concern registers its admins in a module of its own."""

from analytics import settings_admin  # noqa: F401  (registers the analytics settings' admin)
from analytics.alerts import admin as admin_alerts  # noqa: F401  (registers its admins)
