"""Abuse of the ingestion API and of end-user tokens: rate limits, counters, detection, flags.

Owns the per-key rate limits and per-minute counters (Redis, or this process without it), the
periodic detector that reads them, end-user token misuse, and the flags a human resolves in the
admin; an open flag on an end user stops their nudges (guardrails.policy).
"""
