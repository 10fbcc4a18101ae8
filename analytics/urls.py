"""The analytics read API, mounted under /api/v1/analytics/ by config.urls."""

urlpatterns: list = []
