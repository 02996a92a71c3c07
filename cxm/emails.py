"""
Email as three templates per message, emails/<name>-subject.txt, -body-text.txt and
-body-html.html, rendered in the recipient's language.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.utils import translation

from cxm.context_processors import brand


def absolute_url(url: str) -> str:
    """Returns `url` with the site's scheme and host: mail clients need both."""
    if not url or urlsplit(url).scheme:
        return url
    return settings.SITE_URL + url


def build(
    name: str,
    *,
    to: list[str],
    context: dict,
    language: str | None = None,
    headers: dict | None = None,
) -> EmailMultiAlternatives:
    """Returns the message <name> rendered for `to`, not yet sent."""
    # Which email it is, for the outbox's search by kind.
    headers = {"X-Cxm-Email": name, **(headers or {})}
    return message_of(
        *render(name, context=context, language=language), to=to, headers=headers
    )


def render(
    name: str, *, context: dict, language: str | None = None
) -> tuple[str, str, str]:
    """Returns the subject, text and HTML of the message <name>."""
    company = brand()
    company["COMPANY_LOGO_URL"] = absolute_url(company["COMPANY_LOGO_URL"])
    context = {"SITE_URL": settings.SITE_URL, **company, **context}
    with translation.override(language or settings.LANGUAGE_CODE):
        subject = " ".join(
            render_to_string(f"emails/{name}-subject.txt", context).split()
        )
        context["subject"] = subject  # the HTML part's <title>
        text = render_to_string(f"emails/{name}-body-text.txt", context)
        html = render_to_string(f"emails/{name}-body-html.html", context)
    return subject, text, html


def message_of(
    subject: str, text: str, html: str, *, to: list[str], headers: dict | None = None
) -> EmailMultiAlternatives:
    """Returns a text and HTML message for `to`, not yet sent."""
    message = EmailMultiAlternatives(subject, text, to=to, headers=headers or {})
    message.attach_alternative(html, "text/html")
    return message


# The connection of the enclosing one_connection() block, if any.
_shared = ContextVar("cxm_email_connection", default=None)


@contextmanager
def one_connection():
    """
    Sends every message of the block (through send()) over one connection to the
    mail server, opened at the first message and closed at the end: a sweep that
    emails 500 managers opens one SMTP session, not 500.
    """
    connection = get_connection()
    token = _shared.set(connection)
    try:
        yield connection
    finally:
        _shared.reset(token)
        connection.close()


def send(name: str, **kwargs) -> None:
    """Renders and sends the message <name> now (see send_message)."""
    send_message(build(name, **kwargs))


def send_message(message: EmailMultiAlternatives) -> None:
    """
    Sends `message` now: on the one_connection() of the enclosing block, else on
    a fresh connection.
    """
    connection = _shared.get()
    if connection is None:
        message.send()
        return
    message.connection = connection
    try:
        # Opened once; a backend already open leaves it open after sending.
        connection.open()
        message.send()
    except Exception:
        # A session the server dropped is opened afresh for the next message.
        connection.close()
        raise
