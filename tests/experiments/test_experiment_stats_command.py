"""`manage.py experiment_stats`: results from sufficient statistics, no database, clear errors.
The tests carry no django_db mark, so any database access would fail them."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]
ISSUE_EXAMPLE = {
    "metric": "proportion",
    "difference": "relative",
    "arms": [{"key": "control", "n": 1000, "conversions": 80}, {"key": "b", "n": 1030, "conversions": 95}],
    "weights": [50, 50],
}
# gbstats 0.8.0 on the same arms (tests/experiments/gbstats_reference.json).
GBSTATS = {
    "expected": 0.1529126213592233,
    "ci": [-0.1751722873667012, 0.4809975300851478],
    "p_value": 0.36080510590156467,
    "bayes_ci": [-0.17497624178945126, 0.4808014845078978],
    "chance_to_win": 0.8196518410308309,
    "risk": 0.016373534328683804,
    "srm_p_value": 0.5055100873510177,
}


def run(spec, tmp_path) -> dict:
    path = tmp_path / "in.json"
    path.write_text(json.dumps(spec))
    out = io.StringIO()
    call_command("experiment_stats", "--in", str(path), stdout=out)
    return json.loads(out.getvalue())


def test_the_issue_example(tmp_path):
    result = run(ISSUE_EXAMPLE, tmp_path)
    (variant,) = result["arms"]
    assert variant["key"] == "b"
    for name in ("expected", "p_value", "chance_to_win", "risk"):
        assert variant[name] == pytest.approx(GBSTATS[name], abs=1e-6)
    assert variant["ci"] == pytest.approx(GBSTATS["ci"], abs=1e-6)
    assert variant["bayes_ci"] == pytest.approx(GBSTATS["bayes_ci"], abs=1e-6)
    assert result["srm_p_value"] == pytest.approx(GBSTATS["srm_p_value"], abs=1e-6)
    assert result["control"] == {"key": "control", "n": 1000, "mean": 0.08}


def test_mean_metric_absolute_with_three_arms_sequential(tmp_path):
    spec = {
        "metric": "mean",
        "difference": "absolute",
        "sequential": {"tuning": 1000},
        "arms": [
            {"key": "control", "n": 15000, "sum": 450000, "sum_squares": 30000000},
            {"key": "short", "n": 11200, "sum": 320000, "sum_squares": 21000000},
            {"key": "long", "n": 11300, "sum": 345000, "sum_squares": 23500000},
        ],
    }
    result = run(spec, tmp_path)
    assert [arm["key"] for arm in result["arms"]] == ["short", "long"]
    short = result["arms"][0]
    assert short["expected"] == pytest.approx(320000 / 11200 - 30.0)
    # The always-valid interval is wider than the fixed-horizon one, and Holm adjusts upwards.
    assert short["sequential_ci"][0] < short["ci"][0] and short["ci"][1] < short["sequential_ci"][1]
    assert all(arm["p_value_adjusted"] >= arm["sequential_p_value"] for arm in result["arms"])
    assert result["srm_p_value"] is None


def test_srm_is_flagged_in_the_health_checks(tmp_path):
    spec = dict(
        ISSUE_EXAMPLE,
        arms=[
            {"key": "control", "n": 10400, "conversions": 1040},
            {"key": "b", "n": 9600, "conversions": 1000},
        ],
    )
    health = {check["name"]: check for check in run(spec, tmp_path)["health"]}
    assert not health["srm"]["passed"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": "median"}, "metric: must be one of proportion, mean"),
        ({"difference": "ratio"}, "difference: must be one of relative, absolute"),
        ({"weights": [60, 30]}, "weights: must sum to 100"),
        (
            {"arms": [{"key": "control", "n": 0, "conversions": 0}, {"key": "b", "n": 10, "conversions": 1}]},
            "arms[0].n: must be at least 1",
        ),
        (
            {
                "arms": [
                    {"key": "control", "n": 100, "conversions": 80},
                    {"key": "b", "n": 100, "conversions": 101},
                ]
            },
            "arms[1].conversions: 101 conversions exceed n=100",
        ),
        (
            {"arms": [{"key": "control", "n": 100, "conversions": 8}, {"key": "b", "n": 100}]},
            "arms[1].conversions: is required",
        ),
        ({"arms": [{"key": "control", "n": 100, "conversions": 8}]}, "arms: needs a list of at least two"),
        (
            {
                "metric": "mean",
                "arms": [
                    {"key": "a", "n": 10, "sum": 100, "sum_squares": 50},
                    {"key": "b", "n": 10, "sum": 100, "sum_squares": 2000},
                ],
            },
            "arms[0].sum_squares: negative variance",
        ),
        ({"colour": "blue"}, "colour: is not a known field"),
        ({"alpha": 2}, "alpha: must be a number between 0 and 1"),
    ],
)
def test_bad_input_names_the_field_and_the_reason(tmp_path, change, message):
    with pytest.raises(CommandError) as error:
        run({**ISSUE_EXAMPLE, **change}, tmp_path)
    assert str(error.value).startswith(message)


def test_unreadable_and_malformed_input(tmp_path):
    with pytest.raises(CommandError, match="--in: cannot read"):
        call_command("experiment_stats", "--in", str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CommandError, match="input: not valid JSON"):
        call_command("experiment_stats", "--in", str(tmp_path / "bad.json"))


def _manage(*args, stdin: str) -> subprocess.CompletedProcess:
    # A database nobody listens on: the command must not need one.
    env = {**os.environ, "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none"}
    return subprocess.run(  # noqa: S603 (our own manage.py)
        [sys.executable, "manage.py", "experiment_stats", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_through_a_subprocess_from_stdin():
    done = _manage("--in", "-", stdin=json.dumps(ISSUE_EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["arms"][0]["chance_to_win"] == pytest.approx(GBSTATS["chance_to_win"])


def test_bad_input_through_a_subprocess_exits_non_zero():
    bad = dict(ISSUE_EXAMPLE, weights=[70, 20])
    done = _manage("--in", "-", stdin=json.dumps(bad))
    assert done.returncode != 0
    assert "weights: must sum to 100 (or to 1), got 90" in done.stderr
    assert done.stdout == ""
