"""CUPED variance reduction (Deng, Xu, Kohavi & Walker 2013, "Improving the Sensitivity of Online
Controlled Experiments by Utilizing Pre-Experiment Data"), as gbstats' RegressionAdjustedStatistic.

Optional: used where a pre-period covariate exists for every unit (e.g. the same metric in the
weeks before the experiment). With Y the metric and X the covariate, pooled over both arms,

    theta = cov(Y, X) / var(X)
    adjusted mean      = mean(Y) - theta mean(X)                   (per arm)
    adjusted variance  = var(Y) + theta^2 var(X) - 2 theta cov(Y, X)

The effect is then computed as usual from the adjusted means and variances; a relative effect
still divides by control's unadjusted mean(Y). When X or Y has no variance at all, theta is 0
and nothing is adjusted. Since theta is shared, mean(X) differs between arms only by chance,
and the estimate stays unbiased while its variance shrinks by the squared correlation.
"""

from dataclasses import dataclass

from experiments.stats.effects import Moments, StatsInputError, proportion, sample_mean


@dataclass(frozen=True)
class CupedArm:
    """Sufficient statistics of one arm: the metric (post), the covariate (pre), and their
    sum of products over units. A proportion's sum of squares is its sum."""

    n: int
    post_sum: float
    post_sum_squares: float
    pre_sum: float
    pre_sum_squares: float
    sum_of_products: float


def _moments(n: int, total: float, squares: float, kind: str, field: str) -> Moments:
    if kind == "proportion":
        return proportion(n, total, field=field)
    if kind == "mean":
        return sample_mean(n, total, squares, field=field)
    raise StatsInputError(f"{field}.kind", f"must be proportion or mean, got {kind!r}")


def _covariance(n: int, products: float, sum_y: float, sum_x: float) -> float:
    return (products - sum_y * sum_x / n) / (n - 1) if n > 1 else 0.0


def cuped_theta(control: CupedArm, variant: CupedArm, *, kind: str = "mean", pre_kind: str = "mean") -> float:
    """The pooled regression coefficient of the metric on the covariate (0 if undefined)."""
    n = control.n + variant.n
    post = _moments(
        n,
        control.post_sum + variant.post_sum,
        control.post_sum_squares + variant.post_sum_squares,
        kind,
        "pooled.post",
    )
    pre = _moments(
        n,
        control.pre_sum + variant.pre_sum,
        control.pre_sum_squares + variant.pre_sum_squares,
        pre_kind,
        "pooled.pre",
    )
    if pre.variance == 0 or post.variance == 0:
        return 0.0
    products = control.sum_of_products + variant.sum_of_products
    sum_y, sum_x = control.post_sum + variant.post_sum, control.pre_sum + variant.pre_sum
    return _covariance(n, products, sum_y, sum_x) / pre.variance


def cuped_adjust(
    arm: CupedArm, theta: float, *, kind: str = "mean", pre_kind: str = "mean", field: str = "arm"
) -> Moments:
    """One arm's adjusted moments for the shared ``theta``."""
    post = _moments(arm.n, arm.post_sum, arm.post_sum_squares, kind, f"{field}.post")
    if theta == 0:
        return post
    pre = _moments(arm.n, arm.pre_sum, arm.pre_sum_squares, pre_kind, f"{field}.pre")
    covariance = _covariance(arm.n, arm.sum_of_products, arm.post_sum, arm.pre_sum)
    variance = post.variance + theta**2 * pre.variance - 2 * theta * covariance
    return Moments(
        n=arm.n,
        mean=post.mean - theta * pre.mean,
        variance=variance if arm.n > 1 else 0.0,
        unadjusted_mean=post.mean,
    )


def cuped_pair(
    control: CupedArm, variant: CupedArm, *, kind: str = "mean", pre_kind: str = "mean"
) -> tuple[Moments, Moments, float]:
    """Control's and the variant's adjusted moments, and theta."""
    theta = cuped_theta(control, variant, kind=kind, pre_kind=pre_kind)
    return (
        cuped_adjust(control, theta, kind=kind, pre_kind=pre_kind, field="control"),
        cuped_adjust(variant, theta, kind=kind, pre_kind=pre_kind, field="variant"),
        theta,
    )
