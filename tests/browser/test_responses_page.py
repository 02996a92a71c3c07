"""
The responses page in Chromium, as a CX agent: English and Korean, on a 360 px
phone and a desktop, through axe-core, with screenshots under var/screenshots/.
"""

import pytest

from surveys.services import response_record, survey_create
from tests.factories import CampaignFactory, CustomerFactory, InvitationFactory, agent

from .pages import check_page, session_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def answers():
    survey = survey_create(
        name="Delivery",
        kind="nps",
        questions=[{"type": "short_text", "text_en": "Your role?", "text_ko": "직무?"}],
    )
    campaign = CampaignFactory(survey=survey, name="Spring delivery survey")
    role = survey.questions.get(role="")
    said = [
        (3, "The parcel arrived two weeks late and nobody answered my emails."),
        (2, "배송이 너무 늦었어요. 고객센터도 연락이 안 됐어요."),
        (10, "Fast delivery, friendly staff."),
    ]
    for n, (score, comment) in enumerate(said):
        response_record(
            invitation=InvitationFactory(
                campaign=campaign,
                customer=CustomerFactory(
                    email=f"a-rather-long-address-{n}@customers.example.com"
                ),
            ),
            answers={"score": score, "comment": comment, role.field_name: "Buyer"},
        )
    return campaign


def test_it_lists_and_filters_responses_on_a_phone_and_a_desktop(
    live_server, page, locale, answers
):
    session_for(page, live_server, agent())
    page.goto(f"{live_server.url}/followups/")
    page.click("header nav a[href='/responses/']")
    page.wait_for_url("**/responses/")

    assert page.locator("h1").inner_text() == (
        "Responses" if locale == "en" else "응답"
    )
    assert page.locator("#responses tbody tr").count() == 3
    check_page(page, f"responses-{locale}-{page.size}")

    page.select_option("#id_bucket", "detractor")
    page.fill("#id_term", "배송")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/responses/?*")
    assert page.locator("#responses tbody tr").count() == 1
    assert "배송이" in page.locator("#responses tbody").inner_text()
    assert "bucket=detractor" in page.locator("#export").get_attribute("href")
    check_page(page, f"responses-filtered-{locale}-{page.size}")
