"""PII detector benchmark: recall and precision on the labelled corpus, and throughput on one core.

    .venv/bin/python bench/pii.py [--megabytes 4] [--repeat 3]

1. Scores `guardrails.pii.detector.redact` on the labelled corpus of tests/guardrails/pii_corpus.py with the
   scoring the tests use (a finding counts when type, JSON path and span match an expected one):
   recall and precision per type, for the end user's own contact values (CONTACT), overall, and
   how many spans are exact. Prints the first missed and spurious items, so a regression shows.
2. Throughput in MB/s (UTF-8 bytes) on one core, best of --repeat runs by CPU time (and wall
   time, which the machine's other load lowers), over realistic mixed text
   of --megabytes MB: onboarding notes, support replies and form answers full of harmless numbers
   (dates, times, prices, versions, counts, order and project ids) with
   - sparse PII (one item in about 40 sentences), as one string and as JSON (a list of notes);
   - dense PII (every sentence holds one or two items), as one string;
   and with the end user's contact values given, as a nudge would call it.

Pure CPU in one thread, no database or network.
"""

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the corpus and its scoring live in the tests

from guardrails.pii import detector as pii  # noqa: E402
from tests.guardrails import pii_corpus  # noqa: E402

CLEAN_SENTENCES = [
    "Completed step {n} of 12 in {n} minutes and {n} seconds.",
    "The import of {big} rows finished at {time} on {date}.",
    "Upgraded the workspace to plan v{version} for ${price}/month.",
    "Invited {n} teammates to project p_{id}; {n} accepted so far.",
    "Order #{id} was refunded on {date} (ticket {n}).",
    "Checklist progress is {n}% after the {n}th session this week.",
    "Webhook retries: {n} of 5, next attempt in {n}s, timeout 30s.",
    "The dashboard shows {big} events over the last {n} days.",
    "Connected Slack and GitHub; the sync took 1h {n}m.",
    "Please review the onboarding guide before the call on {date} at {time}.",
    "Build 2026.{n}.{n} is live; release notes mention {n} fixes.",
    "Average time to first value dropped from {n} to {n} days.",
    "The CSV export (about {n} MB) is ready in the Files tab.",
    "Trial ends {date}; the customer asked for {n} more seats at €{price}.",
    "Great progress so far, the team is moving through the setup quickly and asking good questions.",
    "Nothing blocks the rollout; the admin will finish the SSO configuration tomorrow morning.",
]


def _clean_sentence(rng: random.Random) -> str:
    template = rng.choice(CLEAN_SENTENCES)
    values = {
        "n": lambda: str(rng.randint(1, 60)),
        "big": lambda: f"{rng.randint(1, 999):,}",
        "time": lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
        "date": lambda: f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "version": lambda: f"{rng.randint(1, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
        "price": lambda: f"{rng.randint(9, 999)}.{rng.randint(0, 99):02d}",
        "id": lambda: str(rng.randint(10_000, 999_999)),
    }
    out, position = [], 0
    while (open_at := template.find("{", position)) != -1:
        close_at = template.index("}", open_at)
        out.append(template[position:open_at])
        out.append(values[template[open_at + 1 : close_at]]())
        position = close_at + 1
    out.append(template[position:])
    return "".join(out)


def _pii_sentences(seed: int) -> list[str]:
    return [item.value for item in pii_corpus.build_corpus(seed) if item.source in ("text", "contact text")]


def mixed_notes(megabytes: float, pii_every: int, seed: int = 7) -> list[str]:
    """Notes of 3-8 sentences; one sentence in `pii_every` is a corpus sentence holding PII."""
    rng = random.Random(seed)
    with_pii = _pii_sentences(seed)
    notes, size = [], 0
    while size < megabytes * 1_000_000:
        sentences = []
        for _ in range(rng.randint(3, 8)):
            if rng.randrange(pii_every) == 0:
                sentences.append(rng.choice(with_pii))
            else:
                sentences.append(_clean_sentence(rng))
        note = " ".join(sentences)
        notes.append(note)
        size += len(note.encode()) + 1
    return notes


def _throughput(label: str, value, size: int, repeat: int, contact: dict) -> None:
    """Best of `repeat` runs, by CPU time of this one-threaded process (what one core does,
    whatever else the machine runs) and by wall time."""
    best_cpu = best_wall = float("inf")
    findings = 0
    for _ in range(repeat):
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        result = pii.redact(value, contact=contact, region="US")
        best_cpu = min(best_cpu, time.process_time() - cpu_started)
        best_wall = min(best_wall, time.perf_counter() - wall_started)
        findings = len(result.findings)
    print(
        f"  {label:<40} {size / 1e6:5.2f} MB  {size / best_cpu / 1e6:6.2f} MB/s CPU"
        f"  {size / best_wall / 1e6:6.2f} MB/s wall  {findings:>7,} findings"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()

    corpus = pii_corpus.build_corpus()
    started = time.perf_counter()
    scores = pii_corpus.score(corpus, pii.redact)
    elapsed = time.perf_counter() - started
    expected = sum(len(item.expected) for item in corpus)
    print(f"Corpus: {len(corpus)} items, {expected} expected findings, scored in {elapsed:.2f} s")
    print(f"  {'type':<8} {'recall':>7} {'precision':>10} {'found':>6} {'missed':>7} {'spurious':>9}")
    for kind in scores.types():
        print(
            f"  {kind:<8} {scores.recall(kind):7.3f} {scores.precision(kind):10.3f} "
            f"{scores.true_positives[kind]:6} {scores.false_negatives[kind]:7} "
            f"{scores.false_positives[kind]:9}"
        )
    found = sum(count for kind, count in scores.true_positives.items() if kind != pii_corpus.CONTACT)
    print(
        f"  overall  {scores.overall_recall():7.3f} {scores.overall_precision():10.3f}"
        f"   exact spans {scores.exact_spans}/{found}"
    )
    for item, missed in scores.missed[:5]:
        print(f"  missed {missed.type} at {missed.path} in a {item.source} item")
    for item, finding in scores.spurious[:5]:
        print(f"  spurious {finding.type} at {finding.path} in a {item.source} item")

    contact = {
        "first_name": "Amelia",
        "last_name": "Okafor",
        "email": "amelia.okafor@acme.io",
        "phone": "+12015550123",
    }
    print(f"Throughput, one core, best of {arguments.repeat}:")
    sparse = mixed_notes(arguments.megabytes, pii_every=40)
    dense = mixed_notes(arguments.megabytes / 2, pii_every=1)
    sparse_text = "\n".join(sparse)
    dense_text = "\n".join(dense)
    sparse_size = len(sparse_text.encode())
    _throughput("sparse PII, one string", sparse_text, sparse_size, arguments.repeat, contact)
    _throughput(
        f"sparse PII, JSON list of {len(sparse):,} notes",
        {"notes": sparse},
        sparse_size,
        arguments.repeat,
        contact,
    )
    _throughput("dense PII, one string", dense_text, len(dense_text.encode()), arguments.repeat, contact)


if __name__ == "__main__":
    main()
