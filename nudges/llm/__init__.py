"""LLM personalisation, behind the guardrails: the static template on any failure.

Owns the call to the provider and its answer cache (client.py), what an answer may hold and the
checks it passes before anyone sees it (output.py), and the one entry point the pipeline calls,
`personalise` (personalize.py: redaction, policy, the call, validation, the LLMCall record).
"""
