"""Routes of the nudges app, included at the site's root by config/urls.py."""

from django.urls import path

from nudges import api
from nudges.delivery import views, webhooks

INBOX = "api/v1/users/<str:user_id>/nudges"

urlpatterns = [
    path("n/c/<str:token>", views.click, name="nudge-click"),
    path("n/o/<str:token>.gif", views.open_pixel, name="nudge-open"),
    # The in-app inbox and Web Push subscriptions (nudges.api).
    path(INBOX, api.InboxListApi.as_view(), name="nudge-inbox"),
    path(f"{INBOX}/<str:nudge_id>/seen", api.InboxSeenApi.as_view(), name="nudge-inbox-seen"),
    path(f"{INBOX}/<str:nudge_id>/clicked", api.InboxClickedApi.as_view(), name="nudge-inbox-clicked"),
    path(f"{INBOX}/<str:nudge_id>/dismissed", api.InboxDismissedApi.as_view(), name="nudge-inbox-dismissed"),
    path(
        "api/v1/users/<str:user_id>/push-subscriptions",
        api.PushSubscriptionApi.as_view(),
        name="push-subscriptions",
    ),
    # Provider webhooks (nudges.delivery.webhooks), one URL per workspace.
    path(
        "webhooks/sendgrid/<slug:slug>", webhooks.SendGridEventsWebhookApi.as_view(), name="webhook-sendgrid"
    ),
    path("webhooks/twilio/<slug:slug>", webhooks.TwilioStatusWebhookApi.as_view(), name="webhook-twilio"),
]
