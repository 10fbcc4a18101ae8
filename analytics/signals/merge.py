"""The merge of pre- and post-workflow signals on their correlation key: pure, no storage.

Definitions (docs/analytics.md, "Signals"):

* a session's signal per stage is its latest (by `timestamp`, then `received_at`): a resubmitted
  survey replaces the earlier answer;
* pair: a pre and a post with the same correlation key; confidence lift = post confidence - pre
  confidence (pairs whose post gave no confidence are pairs without a lift);
* abandonment: a pre without a post; its share is abandoned / pre, and each abandoned session
  counts as a lift of ABANDONMENT_PENALTY in `adjusted_confidence_lift_mean`, so a workflow that
  drives people away cannot look good on the lift of those who stayed;
* post without pre: its experience score still counts (mean, n);
* goal completion rate: counted posts with goal_completed true / counted posts.

For one day's report, `late_post` holds the next day's posts (a session that crossed midnight) and
`earlier_pre_keys` the previous day's pre keys: a post answering yesterday's pre belongs to
yesterday's report, so each signal counts in exactly one daily report.
"""

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

ABANDONMENT_PENALTY = -1.0
"""The confidence lift (in points on the 1-5 scale) an abandoned session is scored with."""
MAX_FEEDBACK_ITEMS = 50


def _latest_by_key(records: Iterable[dict]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for record in records:
        key = record["correlation_key"]
        order = (record.get("timestamp") or "", record.get("received_at") or "")
        kept = latest.get(key)
        if kept is None or order >= (kept.get("timestamp") or "", kept.get("received_at") or ""):
            latest[key] = record
    return latest


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _mean(values: list[float]) -> float | None:
    return _rounded(statistics.fmean(values)) if values else None


def _share(part: int, whole: int) -> float | None:
    return _rounded(part / whole) if whole else None


@dataclass(frozen=True)
class Joined:
    """The latest signal per correlation key, sorted into the merge's three groups."""

    pres: dict[str, dict]
    posts: dict[str, dict]
    paired_keys: list[str]
    abandoned_keys: list[str]
    post_only_keys: list[str]

    @property
    def counted_posts(self) -> list[dict]:
        return [self.posts[key] for key in (*self.paired_keys, *self.post_only_keys)]


def join(
    *,
    pre: Iterable[dict],
    post: Iterable[dict],
    late_post: Iterable[dict] = (),
    earlier_pre_keys: frozenset[str] | set[str] = frozenset(),
) -> Joined:
    pres = _latest_by_key(pre)
    posts = _latest_by_key(post)
    for key, record in _latest_by_key(late_post).items():
        if key in pres and key not in posts:
            posts[key] = record
    return Joined(
        pres=pres,
        posts=posts,
        paired_keys=sorted(pres.keys() & posts.keys()),
        abandoned_keys=sorted(pres.keys() - posts.keys()),
        post_only_keys=sorted(posts.keys() - pres.keys() - set(earlier_pre_keys)),
    )


def _scores(records: Iterable[dict]) -> dict:
    scores = [record["experience_score"] for record in records if record.get("experience_score") is not None]
    return {"n": len(scores), "mean": _mean(scores)}


def _feedback(records: list[dict]) -> list[dict]:
    with_text = [
        {"stage": "post", "timestamp": record.get("timestamp"), "text": record["text"]}
        for record in records
        if record.get("text")
    ]
    return sorted(with_text, key=lambda item: item["timestamp"] or "", reverse=True)[:MAX_FEEDBACK_ITEMS]


def summarize(
    *,
    pre: Iterable[dict],
    post: Iterable[dict],
    late_post: Iterable[dict] = (),
    earlier_pre_keys: frozenset[str] | set[str] = frozenset(),
) -> dict:
    joined = join(pre=pre, post=post, late_post=late_post, earlier_pre_keys=earlier_pre_keys)
    pres, posts, counted_posts = joined.pres, joined.posts, joined.counted_posts
    lifts = [
        posts[key]["confidence"] - pres[key]["confidence"]
        for key in joined.paired_keys
        if posts[key].get("confidence") is not None and pres[key].get("confidence") is not None
    ]
    abandoned = len(joined.abandoned_keys)
    completed = sum(1 for record in counted_posts if record.get("goal_completed") is True)
    return {
        "counts": {
            "pre": len(pres),
            "post": len(counted_posts),
            "pairs": len(joined.paired_keys),
            "pre_without_post": abandoned,
            "post_without_pre": len(joined.post_only_keys),
        },
        "confidence_lift": {
            "n": len(lifts),
            "mean": _mean(lifts),
            "median": _rounded(float(statistics.median(lifts))) if lifts else None,
            "distribution": {str(lift): count for lift, count in sorted(Counter(lifts).items())},
        },
        "abandonment": {
            "n": abandoned,
            "share": _share(abandoned, len(pres)),
            "penalty_per_session": ABANDONMENT_PENALTY,
            "adjusted_confidence_lift_mean": _mean(lifts + [ABANDONMENT_PENALTY] * abandoned),
        },
        "experience_score_post_without_pre": _scores(posts[key] for key in joined.post_only_keys),
        "experience_score_all_posts": _scores(counted_posts),
        "goal_completion": {
            "completed": completed,
            "posts": len(counted_posts),
            "rate": _share(completed, len(counted_posts)),
        },
        "feedback": _feedback(counted_posts),
    }
