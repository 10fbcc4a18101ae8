"""Routes of the experiments app, included at the site's root by config/urls.py."""

from django.urls import path

from experiments import api

urlpatterns = [
    path("api/v1/users/<str:user_id>/experiments", api.UserExperimentsApi.as_view(), name="user-experiments"),
]
