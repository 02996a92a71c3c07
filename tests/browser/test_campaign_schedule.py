"""CX staff set a campaign's schedule in the admin, in English and in Korean."""

import pytest

from surveys.models import Campaign
from tests.factories import SurveyFactory, UserFactory

from .pages import axe_violations, screenshot, sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def staff(db):
    user = UserFactory(username="cx-admin", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def log_in(page, url):
    page.goto(f"{url}/admin/login/?next=/admin/surveys/campaign/add/")
    page.fill("#id_username", "cx-admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/surveys/campaign/add/")


@pytest.mark.parametrize(
    "language, width", [("en", 1280), ("en", 360), ("ko", 1280), ("ko", 360)]
)
def test_it_sets_up_a_campaign_three_days_after_each_purchase(
    browser, live_server, staff, language, width
):
    survey = SurveyFactory(name="Post-purchase CSAT")
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        locale="ko-KR" if language == "ko" else "en-US",
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        log_in(page, live_server.url)
        page.fill("#id_name", "After purchase")
        page.select_option("#id_survey", str(survey.pk))
        page.select_option("#id_schedule", "triggered")
        page.fill("#id_trigger_kind", "purchase")
        page.fill("#id_trigger_delay_hours", "0")
        page.click("input[name=_save]")

        # A delay of 0 is refused, with the reason next to the field.
        error = page.inner_text(".field-trigger_delay_hours .errorlist")
        assert ("최소 1" if language == "ko" else "at least 1") in error
        screenshot(page, f"admin-campaign-schedule-error-{language}-{width}")
        assert not Campaign.objects.exists()

        page.fill("#id_trigger_delay_hours", "72")
        page.click("input[name=_continue]")
        page.wait_for_selector(".messagelist")
        screenshot(page, f"admin-campaign-schedule-{language}-{width}")
        heading = "일정" if language == "ko" else "Schedule"
        assert heading in page.inner_text("fieldset:nth-of-type(2) h2")
        if width == 1280:
            assert sideways_scroll(page) <= 0
        # Django's own breadcrumbs are told from their text by colour alone on
        # some widths; that is the admin's style sheet, not this form.
        assert [
            v
            for v in axe_violations(page)
            if not v.startswith("link-in-text-block") or "breadcrumbs" not in v
        ] == []
    finally:
        context.close()

    campaign = Campaign.objects.get()
    assert (campaign.schedule, campaign.trigger_kind, campaign.trigger_delay_hours) == (
        "triggered",
        "purchase",
        72,
    )
