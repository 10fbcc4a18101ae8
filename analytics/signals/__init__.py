"""Survey signals (seed 004): pre- and post-workflow answers kept in object storage, merged
nightly into a summary and a static report. See docs/analytics.md, "Signals"."""
