"""Run one abuse-detection pass now (the scheduler runs the same pass every minute)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from guardrails.abuse import detection as abuse
from guardrails.abuse import ratelimit


class Command(BaseCommand):
    help = "Flag API keys and end users whose recent traffic is far over their baseline; prints counts."

    def handle(self, *args, **options):
        if not settings.REDIS_URL:
            self.stderr.write(
                "No REDIS_URL: ingestion keeps its counters in each web process, out of this one's sight."
            )
        report = abuse.abuse_detect()
        if report.unavailable:
            self.stderr.write("The counters could not be read (Redis unavailable): nothing judged.")
        flagged = ", ".join(f"{kind} {count}" for kind, count in sorted(report.flagged.items())) or "none"
        self.stdout.write(f"{report.api_keys} active API key(s) judged; new flags: {flagged}.")
        self.stdout.write(f"Detector unavailable so far: {ratelimit.detector_unavailable_count()} time(s).")
