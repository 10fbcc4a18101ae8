"""Triggers: when a user should get a nudge.

Owns the trigger kinds (kinds/, one module each, registered in registry.py), the dispatcher that
asks them on progress, stored events and the periodic scan (engine.py), the firing of one nudge
per (trigger, user, occasion) and its hand-off to the pipeline in batches (firing.py), and the
receivers of onboarding's signals that queue that work after the commit (receivers.py). Writes
go through nudges.services (nudge_create) and the kinds' own wait records (CustomTriggerStart).
"""
