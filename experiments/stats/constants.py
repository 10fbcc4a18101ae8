"""The decision thresholds of issue 15, in one place: the decision job reads them from here."""

# A variant wins when the Bayesian chance to beat control reaches this (issue 15, "Decisions").
CHANCE_TO_WIN_THRESHOLD = 0.95
# ...and its risk (expected loss of shipping it, relative to control) stays under this: 0.25 %,
# GrowthBook's default "acceptable risk" for a winner.
RISK_THRESHOLD = 0.0025
# Sample ratio mismatch is flagged when the chi-square p-value against the weights is below this.
SRM_P_VALUE_THRESHOLD = 0.001
# Two-sided tests and intervals at 95 %.
ALPHA = 0.05
# The mSPRT mixture's tuning parameter: the total sample (both arms) at which the always-valid
# interval is narrowest relative to a fixed-horizon one (GrowthBook's default, 5,000).
SEQUENTIAL_TUNING_PARAMETER = 5000.0
# "Too little data": fewer units than this in an arm, or fewer conversions for a proportion.
MINIMUM_UNITS_PER_ARM = 100
MINIMUM_CONVERSIONS_PER_ARM = 10
# Multiple exposures (a user seen in more than one arm) are flagged above this share of users
# (GrowthBook warns at 1 %).
MULTIPLE_EXPOSURE_SHARE_THRESHOLD = 0.01
