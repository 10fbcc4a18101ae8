"""Give an admin user a TOTP device: the admin accepts no login without one (django-otp).

This is how a real deployment enrols its first superuser:

    python manage.py createsuperuser
    python manage.py otp_enrol --username admin
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from tenancy import services
from tenancy.totp import device_instructions


class Command(BaseCommand):
    help = "Create (or with --reset replace) a confirmed TOTP device for an admin user and show it."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument(
            "--reset", action="store_true", help="Replace the user's TOTP devices (a lost phone)."
        )

    def handle(self, *args, username: str, reset: bool, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}; create one with `manage.py createsuperuser`.")
        if not user.is_staff:
            raise CommandError(f"{username!r} is not staff, so it cannot use the admin.")
        try:
            device = services.totp_device_enrol(user=user, replace=reset)
        except services.AlreadyEnrolled:
            raise CommandError(
                f"{username!r} already has a TOTP device; pass --reset to replace it "
                "(the old codes stop working)."
            ) from None
        self.stdout.write(f"TOTP device {'replaced' if reset else 'created'} for {username!r}.")
        self.stdout.write(device_instructions(device))
