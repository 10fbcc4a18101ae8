"""Event funnels and cohort retention: raw aggregates over onboarding's events, computed in SQL
under a statement timeout, with the last result served (marked stale) when one times out."""
