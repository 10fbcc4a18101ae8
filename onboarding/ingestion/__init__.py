"""Events in: the Segment-compatible API (api, parsers, segment), the pipeline that validates,
resolves and stores a batch in one transaction (pipeline, event_store, event_times), the checks
the apps above plug into it (guards), the live event debugger (debugger) and the repair of times
stored before their bounds existed (time_repair)."""
