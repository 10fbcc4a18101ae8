"""What the ops dashboard reads: ingestion, API latency and errors, job queues, the nudge
pipeline and rollup freshness (queries.py)."""
