"""
The daily digest email as Chromium draws it, at a desktop client's 600 px and a
phone's 360 px, in English and Korean: no sideways scrolling, each follow-up a
link. The PNGs under var/screenshots/ are for a reviewer to look at.
"""

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.db import connections
from django.utils import timezone

from cxm.followups.models import FollowUp, StaffProfile
from cxm.followups.services import followup_digests_send
from surveys.services import response_record
from tests.factories import CustomerFactory, InvitationFactory, agent

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots"


@pytest.fixture(scope="module", autouse=True)
def _close_connections(browser):
    # As in test_email.py: connections opened under Playwright's event loop.
    yield
    connections.close_all()


def digest_html(language: str, settings) -> tuple[list[FollowUp], str]:
    owner = agent(first_name="Minji" if language == "en" else "민지")
    StaffProfile.objects.create(user=owner, language=language)
    now = timezone.now()
    followups = []
    for hours, score, name in [
        (-3, 0, "Kim Seo-yeon (a rather long name for a phone)"),
        (5, 4, "Ana Kim"),
        (72, 6, "박지훈"),
    ]:
        customer = CustomerFactory(name=name)
        invitation = InvitationFactory(customer=customer)
        followup = response_record(invitation=invitation, score=score).followup
        FollowUp.objects.filter(pk=followup.pk).update(
            due_at=now + timedelta(hours=hours)
        )
        followups.append(followup)
    mail.outbox.clear()
    settings.FOLLOWUP_DIGEST_HOUR = 0
    followup_digests_send(now=now)
    [message] = mail.outbox
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return followups, html


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_digest_fits_a_phone_and_a_desktop(browser, language, settings):
    followups, html = digest_html(language, settings)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    for width in (600, 360):
        context = browser.new_context(viewport={"width": width, "height": 480})
        page = context.new_page()
        page.set_content(html, wait_until="load")

        assert page.evaluate("document.documentElement.lang") == language
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        links = page.eval_on_selector_all("a", "links => links.map(a => a.href)")
        assert links[: len(followups)] == [f.link for f in followups]
        page.screenshot(
            path=SCREENSHOTS / f"email-digest-{language}-{width}.png", full_page=True
        )
        context.close()
