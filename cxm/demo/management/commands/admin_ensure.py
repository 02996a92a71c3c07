"""
Makes sure an admin account exists and prints how to log in.

The password is generated the first time and kept in var/admin-password, so every
`make run` can print it again. An existing account's password is never changed.
"""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

USERNAME = "admin"


class Command(BaseCommand):
    help = "Creates the admin account once (password in var/admin-password); prints it."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default="",
            help="Where the site answers, for the printed links (default: SITE_URL).",
        )

    def handle(self, *args, base_url: str, **options):
        base_url = (base_url or settings.SITE_URL).rstrip("/")
        path = Path(settings.VAR_DIR) / "admin-password"
        User = get_user_model()
        user = User.objects.filter(username=USERNAME).first()
        if user is None:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch(mode=0o600)
                path.write_text(secrets.token_urlsafe(12) + "\n")
            password = path.read_text().strip()
            User.objects.create_superuser(USERNAME, "admin@localhost", password)
        elif path.exists() and user.check_password(path.read_text().strip()):
            password = path.read_text().strip()
        else:
            password = None

        lines = [
            f"Admin:      {base_url}/admin/",
            f"  username: {USERNAME}",
            (
                f"  password: {password}  (kept in {path})"
                if password
                else "  password: set before, not known here; change it with "
                f"`manage.py changepassword {USERNAME}`"
            ),
            f"Follow-ups: {base_url}/followups/",
            f"Outbox:     {base_url}/outbox/",
            f"Dashboard:  {base_url}/dashboard/",
            f"API docs:   {base_url}/api/docs/",
        ]
        self.stdout.write("\n".join(lines))
