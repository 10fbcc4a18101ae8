"""Bayesian comparison of a variant with control: gbstats' EffectBayesianABTest, a Gaussian
approximation on the effect (relative or absolute) with a Gaussian prior on it.

With the data's effect d and variance V (effects.py) and a prior N(m0, v0):

    uninformative prior (the default)  posterior N(d, V)
    proper prior                       precision P = 1/V + 1/v0,
                                       posterior mean (d/V + m0/v0) / P, variance 1/P
    chance to win   P(effect > 0) = 1 - Phi(-mu / sigma)   (P(effect < 0) for inverse metrics)
    credible interval   mu + sigma Phi^-1(alpha/2), mu + sigma Phi^-1(1 - alpha/2)
    risk (expected loss) of shipping the variant  E[max(0, -effect)]
                                       = sigma phi(mu/sigma) - mu Phi(-mu/sigma)
    and of keeping control            E[max(0, effect)] = sigma phi(mu/sigma) + mu Phi(mu/sigma)

A prior given on the other scale is rescaled by control's mean (relative -> absolute: mean x
mu_a, variance x mu_a^2). Source: GrowthBook documentation, "Bayesian statistics"; the loss as
in Stucchio (2015), "Bayesian A/B Testing at VWO"; truncated-normal moments in closed form.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats

from experiments.stats.constants import ALPHA
from experiments.stats.effects import (
    Moments,
    StatsInputError,
    check_difference,
    effect,
    effect_variance,
    undefined_reason,
)


@dataclass(frozen=True)
class GaussianPrior:
    """A prior on the effect; improper (flat) unless ``proper``. ``scale`` is the effect the
    mean and variance are expressed on ("relative" or "absolute")."""

    mean: float = 0.0
    variance: float = 1.0
    proper: bool = False
    scale: str = "relative"

    def __post_init__(self) -> None:
        if self.proper and not self.variance > 0:
            raise StatsInputError("prior.variance", f"must be positive, got {self.variance}")
        check_difference(self.scale, "prior.scale")


@dataclass(frozen=True)
class BayesianResult:
    """Posterior summary: ``risk`` is the expected loss of shipping the variant,
    ``risk_control`` that of keeping control."""

    expected: float
    ci: tuple[float, float]
    chance_to_win: float
    risk: float
    risk_control: float
    stddev: float
    message: str | None = None


def expected_losses(mean, stddev):
    """(loss of shipping the variant, loss of keeping control) for a N(mean, stddev) effect."""
    z = mean / stddev
    density = stddev * stats.norm.pdf(z)
    return density - mean * stats.norm.cdf(-z), density + mean * stats.norm.cdf(z)


def chance_to_win(mean, stddev, *, inverse: bool = False):
    """P(effect > 0), or P(effect < 0) when lower is better."""
    above = stats.norm.sf(0, mean, stddev)
    return 1 - above if inverse else above


def _prior_on(prior: GaussianPrior, relative: bool, control_mean: float) -> GaussianPrior:
    """The prior moved to the scale of the effect being estimated."""
    target = "relative" if relative else "absolute"
    if prior.scale == target:
        return prior
    factor = 1 / abs(control_mean) if relative else abs(control_mean)
    return GaussianPrior(
        mean=prior.mean * factor,
        variance=prior.variance * factor**2,
        proper=prior.proper,
        scale=target,
    )


def bayesian_test(
    control: Moments,
    variant: Moments,
    *,
    difference: str = "relative",
    prior: GaussianPrior | None = None,
    alpha: float = ALPHA,
    inverse: bool = False,
) -> BayesianResult:
    """Chance to win, credible interval and risk of variant against control."""
    relative = check_difference(difference)
    reason = undefined_reason(control, variant, relative)
    if reason:
        return BayesianResult(0.0, (0.0, 0.0), 0.5, 0.0, 0.0, 0.0, message=reason)
    prior = _prior_on(prior or GaussianPrior(), relative, control.unadjusted_mean)
    data_mean = effect(control.mean, variant.mean, control.unadjusted_mean, relative)
    data_variance = effect_variance(
        control.variance,
        control.unadjusted_mean,
        control.n,
        variant.variance,
        variant.unadjusted_mean,
        variant.n,
        relative,
    )
    precision = 1 / data_variance + (1 / prior.variance if prior.proper else 0.0)
    mean = (
        (data_mean / data_variance + prior.mean / prior.variance) / precision if prior.proper else data_mean
    )
    stddev = float(np.sqrt(1 / precision))
    loss_variant, loss_control = expected_losses(mean, stddev)
    if inverse:
        loss_variant, loss_control = loss_control, loss_variant
    low, high = stats.norm.ppf([alpha / 2, 1 - alpha / 2], mean, stddev)
    return BayesianResult(
        expected=float(mean),
        ci=(float(low), float(high)),
        chance_to_win=float(chance_to_win(mean, stddev, inverse=inverse)),
        risk=float(loss_variant),
        risk_control=float(loss_control),
        stddev=stddev,
    )
