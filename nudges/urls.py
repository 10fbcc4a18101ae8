"""Routes of the nudges app, included at the site's root by config/urls.py."""

from django.urls import path

from nudges import views

urlpatterns = [
    path("n/c/<str:token>", views.click, name="nudge-click"),
    path("n/o/<str:token>.gif", views.open_pixel, name="nudge-open"),
]
