"""
Email as three templates per message, emails/<name>-subject.txt, -body-text.txt and
-body-html.html, rendered in the recipient's language.
"""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation


def build(
    name: str,
    *,
    to: list[str],
    context: dict,
    language: str | None = None,
    headers: dict | None = None,
) -> EmailMultiAlternatives:
    """Returns the message <name> rendered for `to`, not yet sent."""
    context = {"SITE_URL": settings.SITE_URL, **context}
    with translation.override(language or settings.LANGUAGE_CODE):
        subject = render_to_string(f"emails/{name}-subject.txt", context)
        text = render_to_string(f"emails/{name}-body-text.txt", context)
        html = render_to_string(f"emails/{name}-body-html.html", context)
    message = EmailMultiAlternatives(
        " ".join(subject.split()), text, to=to, headers=headers or {}
    )
    message.attach_alternative(html, "text/html")
    return message


def send(name: str, **kwargs) -> None:
    """Renders and sends the message <name> now, on a fresh connection."""
    build(name, **kwargs).send()
