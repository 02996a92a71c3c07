"""
Email as three templates per message, emails/<name>-subject.txt, -body-text.txt and
-body-html.html, rendered in the recipient's language.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
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


def send(name: str, **kwargs) -> None:
    """Renders and sends the message <name> now, on a fresh connection."""
    build(name, **kwargs).send()
