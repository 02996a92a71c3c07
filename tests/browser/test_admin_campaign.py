"""
CX staff create a segment-targeted campaign in the admin, see whom it would
invite change with the segment, read the Korean invitation email, and send it:
at 360 px and on a desktop, in English and Korean.
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from surveys.models import Campaign, CampaignStatus
from tests.factories import (
    CustomerFactory,
    SurveyFactory,
    UserFactory,
    property_segment,
)

from .pages import axe_violations, hidden_overflow, screenshot, sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def staff(db):
    user = UserFactory(username="cx-admin", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def log_in(page, url, path):
    page.goto(f"{url}/admin/login/?next={path}")
    page.fill("#id_username", "cx-admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{path}")


def check(page, name: str) -> None:
    """Screenshot; no axe violation; no sideways scroll, of the page or inside it."""
    screenshot(page, name)
    assert axe_violations(page) == [], name
    assert sideways_scroll(page) <= 0, name
    assert hidden_overflow(page) == [], name


@pytest.mark.parametrize(
    "language, width", [("en", 1280), ("en", 360), ("ko", 1280), ("ko", 360)]
)
def test_it_creates_previews_and_sends_a_segment_campaign(
    browser, live_server, staff, language, width
):
    survey = SurveyFactory(name="Relationship NPS")
    pro = property_segment("plan", "pro")
    CustomerFactory(properties={"plan": "pro"}, locale="en", name="Ann Lee")
    CustomerFactory(properties={"plan": "pro"}, locale="ko", name="박서준")
    CustomerFactory(
        properties={"plan": "pro"}, unsubscribed_at=timezone.now() - timedelta(days=1)
    )
    CustomerFactory(properties={"plan": "free"})
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        locale="ko-KR" if language == "ko" else "en-US",
        is_mobile=width == 360,
        has_touch=width == 360,
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    tag = f"{language}-{width}"
    try:
        log_in(page, live_server.url, "/admin/surveys/campaign/add/")
        count = page.locator("#audience-preview .audience-count")
        # Every customer at first: four, three of whom may be emailed.
        invite_all = "3명을 초대" if language == "ko" else "would invite 3."
        assert invite_all in count.inner_text()

        page.fill("#id_name", "Pro plan NPS")
        page.select_option("#id_survey", str(survey.pk))
        page.select_option("#id_segment", str(pro.pk))
        # The count follows the segment chosen, with who is left out and why.
        invite_pro = "2명을 초대" if language == "ko" else "would invite 2."
        page.wait_for_function(
            "t => document.querySelector('#audience-preview .audience-count')"
            ".textContent.includes(t)",
            arg=invite_pro,
        )
        excluded = page.inner_text("#audience-preview .audience-excluded")
        assert ("수신 거부" if language == "ko" else "unsubscribed: 1") in excluded
        check(page, f"admin-campaign-add-{tag}")

        page.click("input[name=_continue]")
        page.wait_for_selector(".messagelist")
        campaign = Campaign.objects.get()
        assert campaign.segment == pro
        check(page, f"admin-campaign-change-{tag}")

        # The Korean email, as the Korean customer will get it.
        page.click("text=한국어 이메일" if language == "ko" else "text=Email in Korean")
        page.wait_for_selector("iframe.email-frame")
        subject = page.inner_text(".email-subject")
        assert any("\uac00" <= ch <= "\ud7a3" for ch in subject), subject
        frame = page.frame_locator("iframe.email-frame")
        assert "김지수" in frame.locator("body").inner_text()
        assert "김지수" in page.inner_text(".email-text")
        check(page, f"admin-campaign-email-ko-{tag}")

        page.goto(f"{live_server.url}/admin/surveys/campaign/{campaign.pk}/change/")
        page.click("text=보내기…" if language == "ko" else "text=Send…")
        page.wait_for_url(f"**/admin/surveys/campaign/{campaign.pk}/send/")
        assert invite_pro in page.inner_text(".audience-count")
        check(page, f"admin-campaign-send-{tag}")

        page.click(".campaign-send input[type=submit]")
        page.wait_for_url(f"**/admin/surveys/campaign/{campaign.pk}/change/")
        assert "2" in page.inner_text(".messagelist")
        check(page, f"admin-campaign-sent-{tag}")
    finally:
        context.close()

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    sent = {m.to[0]: m for m in mail.outbox}
    assert len(sent) == 2
    korean = next(m for m in mail.outbox if "박서준" in m.body)
    assert any("\uac00" <= ch <= "\ud7a3" for ch in korean.subject)
