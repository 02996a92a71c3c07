"""
The recovery check-in: after resolution the customer is asked "Did we resolve
your issue?" once; the answer (on a public page, GET shows, POST records) gives
the recovery rate.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from cxm.followups.models import (
    EventKind,
    FollowUp,
    FollowUpMessage,
    FollowUpStatus,
    MessageKind,
)
from cxm.followups.replies import followup_checkin_answer
from cxm.followups.selectors import recovery_rate
from cxm.followups.services import (
    followup_log_contact,
    followup_reopen,
    followup_resolve,
    followups_sweep,
)
from surveys.services import response_record
from tests.factories import InvitationFactory, agent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def checkin_on(settings):
    settings.FOLLOWUP_CHECKIN_HOURS = 24
    settings.COMPANY_NAME = "Acme"


@pytest.fixture
def owner():
    return agent()


def resolved(owner, *, locale="en"):
    invitation = InvitationFactory(customer__locale=locale)
    followup = response_record(invitation=invitation, score=2).followup
    followup_log_contact(followup=followup, actor=owner, channel="phone")
    return followup_resolve(
        followup=followup, actor=owner, resolution="Refunded", root_cause="service"
    )


def sweep_at(hours: float, **kwargs) -> dict:
    return followups_sweep(now=timezone.now() + timedelta(hours=hours), **kwargs)


def checkins_sent(outbox, followup) -> list:
    return [
        m
        for m in outbox
        if m.to == [followup.customer.email]
        and m.extra_headers.get("X-Cxm-Email") == "followup-checkin"
    ]


def sent_checkin(owner, **kwargs) -> FollowUpMessage:
    followup = resolved(owner, **kwargs)
    sweep_at(25)
    return FollowUpMessage.objects.get(followup=followup, kind=MessageKind.CHECKIN)


# Sending


def test_it_asks_the_customer_once_the_delay_after_resolution_has_passed(
    owner, mailoutbox
):
    followup = resolved(owner)
    checkin = FollowUpMessage.objects.get(followup=followup, kind=MessageKind.CHECKIN)
    assert checkin.due_at == followup.resolved_at + timedelta(hours=24)

    sweep_at(23)
    assert checkins_sent(mailoutbox, followup) == []

    sweep_at(25)
    sweep_at(26)

    [email] = checkins_sent(mailoutbox, followup)
    assert email.subject == "Did we resolve your issue?"
    link = "http://testserver" + reverse("followups:checkin", args=[checkin.token])
    assert f"Yes: {link}?answer=yes" in email.body
    assert f"No: {link}?answer=no" in email.body
    assert email.extra_headers["Message-ID"] == checkin.message_id
    followup.refresh_from_db()
    assert followup.checkin_sent_at is not None
    assert followup.events.filter(kind=EventKind.CHECKIN_SENT).count() == 1


def test_it_asks_in_the_customers_korean(owner, mailoutbox):
    followup = resolved(owner, locale="ko")

    sweep_at(25)

    [email] = checkins_sent(mailoutbox, followup)
    assert email.subject == "문제가 해결되었나요?"
    assert "예: http://testserver/followups/checkin/" in email.body
    assert "Acme 팀 드림" in email.body


def test_it_asks_nothing_while_the_setting_is_zero(settings, owner, mailoutbox):
    settings.FOLLOWUP_CHECKIN_HOURS = 0
    followup = resolved(owner)

    sweep_at(1000)

    assert not FollowUpMessage.objects.filter(followup=followup).exists()
    assert checkins_sent(mailoutbox, followup) == []


def test_it_does_not_ask_a_customer_who_unsubscribed(owner, mailoutbox):
    followup = resolved(owner)
    followup.customer.unsubscribed_at = timezone.now()
    followup.customer.save()

    sweep_at(25)

    assert checkins_sent(mailoutbox, followup) == []
    assert not FollowUpMessage.objects.filter(followup=followup).exists()
    assert FollowUp.objects.get(pk=followup.pk).checkin_sent_at is None


def test_a_followup_reopened_before_the_checkin_is_not_asked_about(owner, mailoutbox):
    followup = resolved(owner)
    followup_reopen(followup=followup, actor=owner)

    sweep_at(25)

    assert checkins_sent(mailoutbox, followup) == []


def test_it_asks_once_however_often_the_followup_is_resolved(owner, mailoutbox):
    followup = resolved(owner)
    sweep_at(25)
    followup_reopen(followup=followup, actor=owner)
    followup_resolve(
        followup=followup, actor=owner, resolution="Again", root_cause="service"
    )

    sweep_at(50)

    assert len(checkins_sent(mailoutbox, followup)) == 1


# The customer's page


def test_opening_the_link_records_nothing(client, owner):
    checkin = sent_checkin(owner)
    url = reverse("followups:checkin", args=[checkin.token])

    page = client.get(url + "?answer=no")

    assert page.status_code == 200
    body = page.content.decode()
    assert "Did we resolve your issue?" in body
    assert 'id="checkin-yes"' in body and 'id="checkin-no"' in body
    followup = FollowUp.objects.get(pk=checkin.followup_id)
    assert (followup.recovered, followup.recovered_at) == (None, None)


def test_answering_yes_records_the_recovery_on_the_timeline(client, owner):
    checkin = sent_checkin(owner)
    url = reverse("followups:checkin", args=[checkin.token])

    response = client.post(url, {"answer": "yes"}, follow=True)

    assert response.status_code == 200
    assert 'id="checkin-thanks"' in response.content.decode()
    followup = FollowUp.objects.get(pk=checkin.followup_id)
    assert followup.recovered is True
    assert followup.recovered_at is not None
    answered = followup.events.get(kind=EventKind.CHECKIN_ANSWERED)
    assert answered.description() == "Yes: the issue is resolved."


def test_answering_no_tells_the_owner(
    client, owner, mailoutbox, django_capture_on_commit_callbacks
):
    checkin = sent_checkin(owner)
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("followups:checkin", args=[checkin.token]), {"answer": "no"}
        )

    followup = FollowUp.objects.get(pk=checkin.followup_id)
    assert followup.recovered is False
    [notice] = mailoutbox
    assert notice.to == [owner.email]
    assert "not resolved" in notice.subject
    assert followup.link in notice.body


def test_the_page_speaks_the_customers_korean(client, owner):
    checkin = sent_checkin(owner, locale="ko")

    page = client.get(reverse("followups:checkin", args=[checkin.token]))

    assert page["Content-Language"] == "ko"
    assert "문제가 해결되었나요?" in page.content.decode()


def test_the_answer_may_change_for_a_day_then_it_stands(client, owner, settings):
    checkin = sent_checkin(owner)
    url = reverse("followups:checkin", args=[checkin.token])
    client.post(url, {"answer": "no"})
    first = FollowUp.objects.get(pk=checkin.followup_id)

    client.post(url, {"answer": "yes"})
    changed = FollowUp.objects.get(pk=checkin.followup_id)
    assert (changed.recovered, changed.recovered_at) == (True, first.recovered_at)

    FollowUp.objects.filter(pk=first.pk).update(
        recovered_at=timezone.now() - timedelta(hours=25)
    )
    late = client.post(url, {"answer": "no"})

    assert late.status_code == 409
    assert "You answered this already." in late.content.decode()
    assert FollowUp.objects.get(pk=first.pk).recovered is True
    assert 'id="checkin-yes"' not in client.get(url).content.decode()


def test_it_refuses_an_answer_that_is_neither_yes_nor_no(client, owner):
    checkin = sent_checkin(owner)

    response = client.post(
        reverse("followups:checkin", args=[checkin.token]), {"answer": "maybe"}
    )

    assert response.status_code == 400
    assert "Choose yes or no." in response.content.decode()
    assert FollowUp.objects.get(pk=checkin.followup_id).recovered is None


def test_an_unknown_or_unsent_link_finds_nothing(client, owner):
    followup = resolved(owner)
    unsent = FollowUpMessage.objects.get(followup=followup, kind=MessageKind.CHECKIN)

    for token in ("0" * 32, "not-a-token", unsent.token):
        page = client.post(
            reverse("followups:checkin", args=[token]), {"answer": "yes"}
        )
        assert page.status_code == 404

    assert FollowUp.objects.get(pk=followup.pk).recovered is None


# The recovery rate


def test_recovery_rate_is_the_share_of_answered_checkins_that_say_yes(owner):
    yes = [sent_checkin(owner) for _ in range(3)]
    no = sent_checkin(owner)
    sent_checkin(owner)  # not answered: not counted
    for checkin in yes:
        followup_checkin_answer(checkin=checkin, recovered=True)
    followup_checkin_answer(checkin=no, recovered=False)

    assert recovery_rate(FollowUp.objects.all()) == {
        "answered": 4,
        "recovered": 3,
        "rate": 0.75,
    }
    assert recovery_rate(FollowUp.objects.none())["rate"] is None
    assert recovery_rate(
        FollowUp.objects.filter(status=FollowUpStatus.RESOLVED, recovered=False)
    ) == {"answered": 1, "recovered": 0, "rate": 0.0}
