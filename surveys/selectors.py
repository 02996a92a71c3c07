"""Reads of the surveys app that pages and the API share."""

from .models import TOKEN_PATTERN, Invitation


def invitation_open(*, token: str) -> Invitation | None:
    """Returns the invitation of a link, with what its page shows, or None."""
    if not TOKEN_PATTERN.fullmatch(token):
        # Not a token we make; a NUL byte in it would even fail in PostgreSQL.
        return None
    return (
        Invitation.objects.select_related("campaign__survey", "customer", "response")
        .prefetch_related("campaign__survey__questions", "response__answers")
        .filter(token=token)
        .first()
    )
