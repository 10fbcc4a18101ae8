"""One self-contained HTML page per signals summary: inline CSS and SVG, no script, no external asset.

It opens from file://, from a bucket or attached to an e-mail alike (seed 004: static,
self-sufficient reports). Every figure is written as text; the chart repeats its numbers as
labels and in the table below it, so nothing is told by colour alone.
"""

from html import escape

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;
padding:0 1rem;color:#1a1a1a;background:#fff}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin-top:2rem}
.muted{color:#555}table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #bbb;padding:.35rem .6rem;text-align:left}th{background:#f0f0f0}
td.number{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:.75rem}
.card{border:1px solid #bbb;border-radius:6px;padding:.75rem}.card strong{display:block;font-size:1.6rem}
svg text{font:12px system-ui,sans-serif;fill:#1a1a1a}
@media (prefers-color-scheme:dark){body{background:#111;color:#eee}th{background:#222}
.muted{color:#aaa}svg text{fill:#eee}}
"""


def _number(value, *, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    if percent:
        return f"{value * 100:.1f}%"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _card(title: str, value: str, note: str) -> str:
    return (
        f'<div class="card">{escape(title)}<strong>{escape(value)}</strong>'
        f'<span class="muted">{escape(note)}</span></div>'
    )


def _lift_chart(distribution: dict[str, int]) -> str:
    """Bars of the confidence lift's distribution, each labelled with its lift and count."""
    if not distribution:
        return '<p class="muted">No pre and post pairs with a confidence lift.</p>'
    items = list(distribution.items())
    tallest = max(count for _, count in items)
    bar_width, gap, height = 48, 16, 160
    width = len(items) * (bar_width + gap) + gap
    bars = []
    for index, (lift, count) in enumerate(items):
        bar_height = round(height * count / tallest)
        x = gap + index * (bar_width + gap)
        y = 20 + height - bar_height
        middle = x + bar_width / 2
        # Hatching as well as fill: a decrease reads differently in grey-scale print.
        fill = "url(#down)" if float(lift) < 0 else "#2f6db5"
        bars.append(
            f'<rect x="{x}" y="{y}" width="{bar_width}" height="{bar_height}" fill="{fill}" '
            'stroke="#1a1a1a"/>'
            f'<text x="{middle}" y="{y - 4}" text-anchor="middle">{count}</text>'
            f'<text x="{middle}" y="{height + 36}" text-anchor="middle">{escape(_signed(lift))}</text>'
        )
    return (
        f'<svg role="img" aria-label="Sessions per confidence lift" width="{width}" height="{height + 48}" '
        f'viewBox="0 0 {width} {height + 48}"><title>Sessions per confidence lift</title>'
        '<defs><pattern id="down" width="6" height="6" patternUnits="userSpaceOnUse">'
        '<rect width="6" height="6" fill="#f2f2f2"/><path d="M0 6L6 0" stroke="#a33" stroke-width="2"/>'
        f"</pattern></defs>{''.join(bars)}</svg>"
    )


def _signed(lift: str) -> str:
    value = float(lift)
    return f"+{value:g}" if value > 0 else f"{value:g}"


def _table(headers: tuple[str, ...], rows: list[tuple]) -> str:
    head = "".join(f'<th scope="col">{escape(header)}</th>' for header in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="number">{escape(str(cell))}</td>'
            if isinstance(cell, int | float)
            else f"<td>{escape(str(cell))}</td>"
            for cell in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cards(summary: dict) -> str:
    lift = summary["confidence_lift"]
    abandonment = summary["abandonment"]
    post_only = summary["experience_score_post_without_pre"]
    goals = summary["goal_completion"]
    return "".join(
        (
            _card(
                "Confidence lift (mean)",
                _number(lift["mean"]),
                f"median {_number(lift['median'])}, n={lift['n']}",
            ),
            _card(
                "Abandonment",
                _number(abandonment["share"], percent=True),
                f"{abandonment['n']} of {summary['counts']['pre']} pre without post",
            ),
            _card(
                "Goal completion",
                _number(goals["rate"], percent=True),
                f"{goals['completed']} of {goals['posts']} posts",
            ),
            _card(
                "Experience, post without pre", _number(post_only["mean"]), f"n={post_only['n']} (scale 1-10)"
            ),
        )
    )


def _figures(summary: dict) -> str:
    counts = summary["counts"]
    lift = summary["confidence_lift"]
    abandonment = summary["abandonment"]
    post_only = summary["experience_score_post_without_pre"]
    all_posts = summary["experience_score_all_posts"]
    penalty = abandonment["penalty_per_session"]
    return _table(
        ("figure", "value", "how it is computed"),
        [
            ("pre signals (sessions)", counts["pre"], "latest pre per correlation key"),
            ("post signals counted", counts["post"], "pairs plus posts without pre"),
            ("pre + post pairs", counts["pairs"], "same <user id>-<session id>"),
            ("confidence lift, mean", _number(lift["mean"]), "post confidence - pre confidence"),
            ("confidence lift, median", _number(lift["median"]), f"over {lift['n']} pairs"),
            ("abandonment share", _number(abandonment["share"], percent=True), "pre without post / pre"),
            (
                "lift adjusted for abandonment",
                _number(abandonment["adjusted_confidence_lift_mean"]),
                f"each abandoned session counted as a lift of {penalty:g}",
            ),
            ("experience score, post without pre", _number(post_only["mean"]), f"mean over {post_only['n']}"),
            ("experience score, all posts", _number(all_posts["mean"]), f"mean over {all_posts['n']}"),
            (
                "goal completion rate",
                _number(summary["goal_completion"]["rate"], percent=True),
                "posts with goal_completed / posts",
            ),
        ],
    )


def render(summary: dict) -> str:
    lift = summary["confidence_lift"]
    title = (
        f"Signals report: {summary['period']} ({summary['environment']}, workspace {summary['workspace_id']})"
    )
    distribution = _table(
        ("confidence lift", "sessions"),
        [(_signed(key), count) for key, count in lift["distribution"].items()],
    )
    feedback = _table(
        ("when", "feedback"), [(item["timestamp"] or "", item["text"]) for item in summary["feedback"]]
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="muted">Generated {escape(str(summary.get("generated_at", "")))} '
        "from pre- and post-workflow survey signals.</p>"
        f'<div class="cards">{_cards(summary)}</div>'
        f"<h2>Figures</h2>{_figures(summary)}"
        f"<h2>Confidence lift per session</h2>{_lift_chart(lift['distribution'])}{distribution}"
        f"<h2>Latest feedback (post)</h2>{feedback if summary['feedback'] else '<p class=muted>None.</p>'}"
        "</body></html>"
    )
