import pytest

from cxm.followups.models import FollowUpStatus
from surveys.models import Response
from surveys.services import response_record
from tests.factories import InvitationFactory, agent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_lets_a_customer_answer_on_a_phone(live_server, phone):
    invitation = InvitationFactory()
    owner = agent()
    phone.goto(f"{live_server.url}/s/{invitation.token}/?score=3")

    assert phone.locator("#score-3").is_checked()
    assert not Response.objects.exists()  # opening the link records nothing

    phone.tap("label[for=score-1]")
    assert phone.locator("#score-1").is_checked()
    phone.click("button[type=submit]")
    phone.wait_for_url(f"**/s/{invitation.token}/more/")
    phone.fill("#id_comment", "The courier never came.")
    phone.click("button[type=submit]")

    phone.wait_for_url(f"**/s/{invitation.token}/thanks/")
    assert "Thank you for your feedback" in phone.content()
    response = Response.objects.get(invitation=invitation)
    assert (response.score, response.comment) == (1, "The courier never came.")
    assert response.followup.owner == owner
    # The scale fits the phone's width: no sideways scrolling.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_it_says_to_choose_a_score_and_saves_nothing_without_one(live_server, phone):
    invitation = InvitationFactory()
    phone.goto(f"{live_server.url}/s/{invitation.token}/")
    phone.click("button[type=submit]")
    assert "Please choose a score." in phone.content()
    assert phone.locator("#score-0").get_attribute("aria-invalid") == "true"
    assert not Response.objects.exists()


def test_it_asks_a_korean_customer_in_korean(live_server, phone):
    invitation = InvitationFactory(customer__locale="ko")
    phone.goto(f"{live_server.url}/s/{invitation.token}/?score=10")
    assert (
        phone.locator("h1.question-text").inner_text()
        == "친구나 동료에게 cxm 서비스를 추천하실 가능성은 얼마나 되십니까?"
    )
    phone.click("button[type=submit]")
    phone.wait_for_url("**/more/")
    phone.click("button[type=submit]")
    phone.wait_for_url("**/thanks/")
    assert "소중한 의견 감사합니다!" in phone.content()


def test_it_lets_an_agent_find_and_resolve_a_detractor(live_server, desktop):
    owner = agent(username="mina")
    owner.set_password("correct horse battery")
    owner.save()
    invitation = InvitationFactory(customer__email="angry@example.com")
    response_record(invitation=invitation, score=2, comment="Late again")

    desktop.goto(f"{live_server.url}/followups/")
    desktop.fill("#id_username", "mina")
    desktop.fill("#id_password", "correct horse battery")
    desktop.click("button[type=submit]")
    # Logging in from the queue's address comes back to it.
    desktop.wait_for_url("**/followups/")

    desktop.select_option("#id_overdue", "false")
    desktop.click("text=Filter")
    # The row's number opens the follow-up (the customer's name, their page).
    desktop.click("tr:has-text('angry@example.com') td.id a")
    assert desktop.inner_text("#score") == "2"
    assert "Late again" in desktop.inner_text("#comment")

    desktop.fill("#note-form textarea", "Called; sending a voucher.")
    desktop.click("#note-form button")
    assert "Called; sending a voucher." in desktop.inner_text("#timeline")

    desktop.select_option("#id_root_cause", "delivery")
    desktop.fill("#id_resolution", "Voucher sent, courier changed.")
    desktop.click("#resolve-form button")
    desktop.wait_for_selector("text=Thank you for closing the loop")
    assert desktop.inner_text("#status") == "Resolved"

    followup = Response.objects.get().followup
    assert followup.status == FollowUpStatus.RESOLVED
    assert followup.resolved_by == owner
