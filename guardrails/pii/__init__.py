"""PII detection and redaction of strings and nested JSON, before anything reaches an LLM or a log.

Pure code, no database: candidate patterns, their format tests and validators, PII dict keys, the
end user's own contact values, and text decoded from percent-encoding, HTML or base64. The entry
points are detector.redact and detector.redact_for_llm.
"""
