"""Analytics: whether onboarding works. Metric definitions (the product's single source of truth),
rollups refreshed incrementally, funnels, cohorts, time to activation, signals and alerts.

It sits above nudges and below config, and reads the other apps only through their selectors.
"""
