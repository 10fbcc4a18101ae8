"""The policy engine: may this user get this nudge, this LLM call, this export or erasure?

Owns the rules (one small function each, in engine.RULES), the daily cap's counters, consent
(its defaults; the ledger's writes in services.py, its reads with the workspace's policy, the
user's preference row and the recorded decisions in selectors.py), the digests a suppression
stores instead of the address or user id it names (subjects.py), local days and quiet-hour
windows, and the admin of policies, consent, decisions, suppressions and preferences.
"""
