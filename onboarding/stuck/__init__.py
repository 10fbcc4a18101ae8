"""Stuck detection: when time on a step is too long and how to say why (rules), and the signals
it writes, resolves and flags for human review (services)."""
