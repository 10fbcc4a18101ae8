"""`make run`: the server it starts knows the address it serves on (PUBLIC_BASE_URL), so the links
in nudges (click tracking, unsubscribe, provider callbacks) point at it, whatever PORT is given."""

import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _commands(*arguments: str) -> list[list[str]]:
    """The commands `make run` would run (make -n prints them without running any)."""
    printed = subprocess.run(  # noqa: S603
        ["make", "-n", "--no-print-directory", "run", *arguments],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [shlex.split(line) for line in printed.splitlines() if "manage.py" in line or "uvicorn" in line]


def _environment(command: list[str]) -> dict[str, str]:
    return dict(word.split("=", 1) for word in command if "=" in word and not word.startswith("-"))


@pytest.mark.parametrize("port", ["8101", "8102"])
def test_every_command_of_make_run_gets_the_public_base_url_of_its_port(port, tmp_path):
    commands = _commands(f"PORT={port}", f"VAR_DIR={tmp_path}")

    server = [command for command in commands if any("uvicorn" in word for word in command)]
    assert server, "make run starts no server"
    for command in commands:
        assert _environment(command).get("PUBLIC_BASE_URL") == f"http://127.0.0.1:{port}"


def test_a_public_base_url_given_to_make_run_wins(tmp_path):
    commands = _commands("PORT=8101", "PUBLIC_BASE_URL=https://onboarding.example.com", f"VAR_DIR={tmp_path}")

    assert {_environment(command)["PUBLIC_BASE_URL"] for command in commands} == {
        "https://onboarding.example.com"
    }


def test_make_run_serves_with_the_lifespan_that_runs_the_periodic_jobs(tmp_path):
    [server] = [
        command for command in _commands(f"VAR_DIR={tmp_path}") if any("uvicorn" in w for w in command)
    ]

    assert server[server.index("--lifespan") + 1] == "on"
    # Without Redis, the embedded default: PERIODIC_JOBS_IN_PROCESS follows JOBS_RUN_INLINE, on.
    assert server[server.index("REDIS_URL") - 1] == "-u"
