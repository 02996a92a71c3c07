"""Django's database sessions, refusing session keys it could never have made."""

from django.contrib.sessions.backends import db


class SessionStore(db.SessionStore):
    def _validate_session_key(self, key):
        # Keys are 32 lower-case letters and digits; anything else (a NUL byte,
        # which PostgreSQL refuses in a query) is no session, not a 500.
        return super()._validate_session_key(key) and key.isascii() and key.isalnum()
