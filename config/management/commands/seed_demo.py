"""Seed the demo workspace: an admin login with TOTP, API keys, simulated end users, nudges.

Composition of the layers' demo services (tenancy's workspace and admin, onboarding's paths and
simulated events, the experiments' demo experiment (started before the events, so the planner
assigns the sign-ups), nudges' demo triggers, analytics' rollup rebuild so the Overview shows numbers
at once, the ML layer's simulated people and first models), which is why it lives in config.
Idempotent: when the demo workspace exists, it only prints how to log in again. The keys, the
password and the TOTP secret exist in plain only at creation, so they are kept (mode 0600) in
VAR_DIR/demo-credentials.json for later runs to print.
"""

import json
import os
import secrets
import shlex
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from analytics.events.rollups import event_rollups_rebuild
from analytics.rollups.services import rollups_rebuild
from experiments.demo import demo_experiment_create
from ml import demo as ml_demo
from nudges.demo import demo_nudges_create
from nudges.demo_history import demo_nudge_history_seed
from onboarding.demo import journeys
from onboarding.demo import services as demo_services
from tenancy import selectors, services
from tenancy.models import Workspace
from tenancy.totp import totp_instructions, totp_secret

DEMO_WORKSPACE_NAME = "Demo SaaS"
DEMO_WORKSPACE_SLUG = "demo-saas"
CREDENTIALS_FILE_NAME = "demo-credentials.json"
UNAMBIGUOUS_CHARACTERS = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _password() -> str:
    groups = ("".join(secrets.choice(UNAMBIGUOUS_CHARACTERS) for _ in range(5)) for _ in range(4))
    return "-".join(groups)


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write readable by the owner only, atomically (a crash leaves the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(data, file, indent=2)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class Progress:
    """One line redrawn in a terminal; a line per tenth of the work elsewhere (logs, tests)."""

    def __init__(self, stdout, total: int, label: str):
        self.stdout, self.total, self.label = stdout, max(total, 1), label
        self.started, self.last_tenth = time.monotonic(), -1
        self.redraw = stdout.isatty()

    def update(self, done: int) -> None:
        percent = 100 * done // self.total
        line = f"  {self.label}: {done:,}/{self.total:,} ({percent}%) {time.monotonic() - self.started:.1f}s"
        if self.redraw:
            self.stdout.write("\r" + line, ending="\n" if done >= self.total else "")
            self.stdout.flush()
        elif percent // 10 > self.last_tenth:
            self.last_tenth = percent // 10
            self.stdout.write(line)


class Command(BaseCommand):
    help = "Create the demo workspace with an admin (TOTP), API keys and simulated users (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=3000, help="Simulated people (default 3000).")
        parser.add_argument(
            "--days", type=int, default=70, help="Length of their history in days (default 70, ten weeks)."
        )
        parser.add_argument("--seed", type=int, default=42, help="Random seed of the simulation.")
        parser.add_argument("--username", default="demo", help="Login of the demo admin user.")
        parser.add_argument(
            "--base-url",
            default=settings.PUBLIC_BASE_URL,
            help="Where the server will answer (printed URLs); default PUBLIC_BASE_URL.",
        )

    def handle(self, *args, users: int, days: int, seed: int, username: str, base_url: str, **options):
        self.base_url = base_url.rstrip("/")
        if users < 1 or days < 1:
            raise CommandError("--users and --days must be at least 1")
        path = Path(settings.VAR_DIR) / CREDENTIALS_FILE_NAME
        workspace = selectors.workspace_get_by_slug(slug=DEMO_WORKSPACE_SLUG)
        credentials = _read(path)
        if workspace is None:
            credentials = self._create(path=path, username=username, users=users, days=days, seed=seed)
            workspace = selectors.workspace_get_by_slug(slug=DEMO_WORKSPACE_SLUG)
        elif credentials is None or credentials.get("workspace_id") != workspace.pk:
            self._explain_lost_credentials(path)
            return
        elif credentials.get("seeded"):
            self.stdout.write(f"The demo workspace {DEMO_WORKSPACE_NAME!r} exists already; nothing to do.")
        else:
            self.stdout.write("Resuming the seeding of the demo workspace, which was interrupted.")
        if not credentials.get("seeded"):
            # A first run that was interrupted resumes: the same seed and clock give the same
            # messageIds, so the batches stored already are recognised as duplicates.
            self._seed_events(workspace=workspace, credentials=credentials)
            # The Overview reads the rollups: build them now so it shows numbers at once.
            report = rollups_rebuild(workspace=workspace)
            event_rollups_rebuild(workspace=workspace)
            self.stdout.write(f"Built the analytics rollups ({report.slices:,} path-version days).")
            credentials["seeded"] = True
            _write_private(path, credentials)
        if demo_nudges_create(workspace=workspace):
            self.stdout.write("Created the demo's in-app nudges: welcome, stuck and halfway-there triggers.")
            simulation = credentials["simulation"]
            written = demo_nudge_history_seed(
                workspace=workspace,
                seed=simulation["seed"],
                clock=datetime.fromisoformat(simulation["clock"]),
            )
            self.stdout.write(f"Wrote the simulated nudge history: {written:,} in-app nudges.")
        self._seed_ml(workspace=workspace, credentials=credentials)
        self._print_credentials(credentials, path)

    def _seed_ml(self, *, workspace: Workspace, credentials: dict[str, Any]) -> None:
        """After the nudges (their history covers every enrollment, their triggers are created only
        where none exists): the ML layer's simulated people with planted effects, and a candidate
        of each model trained on them (a few seconds)."""
        simulation = credentials["simulation"]
        if simulation["users"] < ml_demo.DEMO_MIN_USERS:
            return  # a demo this small (the tests') has no use for models
        clock = datetime.fromisoformat(simulation["clock"])
        seeded = ml_demo.demo_seed(workspace=workspace, now=clock, train=True)
        if seeded is None:
            return
        report = seeded.simulation
        self.stdout.write(
            f"Simulated {report.people:,} more people for the ML layer (planted effects, "
            f"{report.explored:,} exploratory path choices) in {report.seconds:.1f}s; "
            f"trained: {', '.join(seeded.trained) or 'nothing'}."
        )
        for refused in seeded.refused:
            self.stdout.write(f"  {refused}")

    def _create(self, *, path: Path, username: str, users: int, days: int, seed: int) -> dict[str, Any]:
        if get_user_model().objects.filter(username=username).exists():
            raise CommandError(f"A user named {username!r} exists already; pick another with --username.")
        password = _password()
        with transaction.atomic():
            # The simulated product's own address: the demo paths' relative deep links lead there.
            workspace, write_key, secret_key = services.workspace_create(
                name=DEMO_WORKSPACE_NAME, product_base_url=journeys.SITE
            )
            user = services.admin_user_create(
                username=username, password=password, email=f"{username}@demo-saas.example"
            )
            services.workspace_grant(workspace=workspace, user=user, can_change=True)
            device = services.totp_device_enrol(user=user)
            # Two published paths, so the simulated sign-ups are enrolled and tracked.
            demo_services.demo_paths_import(workspace=workspace)
            clock = timezone.now().replace(microsecond=0)
            # Running before the simulated sign-ups, so the planner assigns them as it would live.
            demo_experiment_create(workspace=workspace, started_at=clock - timedelta(days=days))
            credentials = {
                "workspace": workspace.name,
                "workspace_slug": workspace.slug,
                "workspace_id": workspace.pk,
                "username": username,
                "password": password,
                "totp_secret": totp_secret(device),
                "otpauth_uri": device.config_url,
                "write_key": write_key.key,
                "secret_key": secret_key.key,
                "simulation": {
                    "users": users,
                    "days": days,
                    "seed": seed,
                    "clock": clock.isoformat(),
                },
                "seeded": False,
            }
            # Inside the transaction: without this file the plain keys would be lost for good.
            _write_private(path, credentials)
        self.stdout.write(
            f"Created workspace {workspace.name!r}, staff user {username!r} with a TOTP device, "
            "a write key and a secret key."
        )
        return credentials

    def _seed_events(self, *, workspace: Workspace, credentials: dict[str, Any]) -> None:
        simulation = credentials["simulation"]
        started = time.monotonic()
        self.stdout.write(
            f"Simulating {simulation['users']:,} people over {simulation['days']} days "
            f"(seed {simulation['seed']})..."
        )
        progress: list[Progress] = []

        def on_progress(done: int, total: int) -> None:
            if not progress:
                progress.append(Progress(self.stdout, total, "events ingested"))
            progress[0].update(done)

        try:
            seeded = demo_services.demo_events_seed(
                workspace=workspace,
                people=simulation["users"],
                seed=simulation["seed"],
                clock=datetime.fromisoformat(simulation["clock"]),
                days=simulation["days"],
                on_progress=on_progress,
            )
        except demo_services.SimulatedCallRejected as rejected:
            raise CommandError(str(rejected)) from rejected
        credentials["seeded_counts"] = {
            "people": seeded.people,
            "signed_up": seeded.signed_up,
            "events": seeded.events,
        }
        self.stdout.write(
            f"Stored {seeded.stored:,} events of {seeded.people:,} people ({seeded.signed_up:,} signed up) "
            f"in {time.monotonic() - started:.1f}s."
        )

    def _explain_lost_credentials(self, path: Path) -> None:
        self.stdout.write(
            f"The demo workspace {DEMO_WORKSPACE_NAME!r} exists, but its credentials file {path} is "
            "missing or belongs to another database, and the keys are only stored hashed.\n"
            "  New password:     python manage.py changepassword <username>\n"
            "  New TOTP device:  python manage.py otp_enrol --username <username> --reset\n"
            "  New API key:      in the admin, API keys > Add (the key is shown once)\n"
            "  Or start afresh:  delete the database (var/db.sqlite3) and run `make run` again."
        )

    def _print_credentials(self, credentials: dict[str, Any], path: Path) -> None:
        secret = credentials["totp_secret"]
        device = TOTPDevice.objects.filter(user__username=credentials["username"]).first()
        counts = credentials.get("seeded_counts", {})
        body = json.dumps(
            {"userId": "user-00001", "event": "Report Viewed", "properties": {"report": "Funnel"}}
        )
        lines = [
            "",
            "=" * 78,
            f"Demo workspace {credentials['workspace']!r}"
            + (
                f": {counts['people']:,} simulated people, {counts['signed_up']:,} signed up, "
                f"{counts['events']:,} events."
                if counts
                else "."
            ),
            "",
            f"Admin:     {self.base_url}/admin/",
            f"Login:     {credentials['username']}",
            f"Password:  {credentials['password']}",
            "Then the 6-digit code from your authenticator app (password + TOTP, django-otp).",
            "",
        ]
        if device is not None and totp_secret(device) != secret:
            lines.append(
                "The TOTP device was replaced since (otp_enrol --reset): use the secret printed then.\n"
            )
        else:
            lines.append(totp_instructions(config_url=credentials["otpauth_uri"], secret=secret))
        lines += [
            "API keys of the demo workspace (stored hashed; kept in plain only in the file below):",
            f"  write key (events only):  {credentials['write_key']}",
            f"  secret key (server API):  {credentials['secret_key']}",
            "",
            "Send an event (Segment's HTTP Tracking API; the write key is the Basic-auth user name):",
            f"  curl -u {shlex.quote(credentials['write_key'] + ':')} -H 'Content-Type: application/json' \\",
            f"    -d {shlex.quote(body)} \\",
            f"    {self.base_url}/v1/track",
            "",
            f"These credentials are kept in {path} (readable by you only).",
            "=" * 78,
        ]
        self.stdout.write("\n".join(lines))
