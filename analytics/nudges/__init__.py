"""Nudge analytics: the nudge metrics (send, open and conversion rates), their breakdown per
channel, template, variant, trigger and day, and the read API. Every count comes from
nudges.selectors.nudge_outcome_counts, the rule the template admin's rates use too."""
