"""Delivery: a queued nudge from its trigger to the provider, and what the provider says back.

Owns the pipeline (pipeline.py: policy, template, personalisation, send time, gateway), the
hand-off of nudges to the pipeline's jobs (dispatch.py), leases and the due sweep (leases.py),
attempts in flight and their reconciliation (attempts.py), the daily-cap slot of one channel's
try (cap_slot.py), failover across providers (failover.py), send time (sendtime.py), provider
webhooks and their replay guard (webhooks.py, webhook_events.py, webhook_deliveries.py), click
and open tracking (tracking.py, views.py), conversion attribution (conversion.py), and the nudge
log and dead-letter admin (admin.py). The channel gateways themselves are nudges.gateways.
"""
