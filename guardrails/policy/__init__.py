"""The policy engine: may this user get this nudge, this LLM call, this export or erasure?

Owns the rules (one small function each, in engine.RULES), the daily cap's counters, consent
(its defaults and its ledger's reads and writes), local days and quiet-hour windows, and the
admin of policies, consent, decisions, suppressions and preferences.
"""
