"""The workflow: each move is a service on the timeline; overdue is derived."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from cxm.followups.models import EventKind, FollowUp, FollowUpStatus, RootCause
from cxm.followups.services import (
    followup_close,
    followup_log_contact,
    followup_reopen,
    followup_resolve,
    followup_wait_on_customer,
    followups_sweep,
)
from surveys.services import response_record
from tests.factories import InvitationFactory, agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def followup():
    return response_record(invitation=InvitationFactory(), score=2).followup


def resolve(followup, actor, cause="service"):
    return followup_resolve(
        followup=followup, actor=actor, resolution="Refunded", root_cause=cause
    )


def test_it_records_the_first_contact_once_and_moves_to_contacted(followup):
    person = agent()

    first = followup_log_contact(
        followup=followup, actor=person, channel="phone", note="Left a message"
    )
    followup_wait_on_customer(followup=followup, actor=person, note="Sent a form")
    again = followup_log_contact(followup=followup, actor=person, channel="email")

    assert first.status == FollowUpStatus.CONTACTED
    assert again.status == FollowUpStatus.CONTACTED
    assert again.first_contact_at == first.first_contact_at
    contact = followup.events.filter(kind=EventKind.CONTACTED).first()
    assert (contact.actor, contact.description()) == (
        person,
        "Phone call: Left a message",
    )
    waiting = followup.events.get(kind=EventKind.STATUS_CHANGED)
    assert waiting.description() == "Waiting on customer. Sent a form"


def test_it_walks_new_to_closed_and_reopens_as_contacted(followup):
    person = agent()
    followup_log_contact(followup=followup, actor=person, channel="phone")
    resolve(followup, person)
    closed = followup_close(followup=followup, actor=person, note="Confirmed")
    assert (closed.status, closed.closed_at is not None) == ("closed", True)

    reopened = followup_reopen(followup=followup, actor=person, note="Called again")

    assert reopened.status == FollowUpStatus.CONTACTED
    assert reopened.resolved_at is None and reopened.root_cause is None
    assert reopened.due_at > timezone.now() + timedelta(hours=47)
    kinds = list(followup.events.values_list("kind", flat=True))
    assert kinds[-3:] == [EventKind.RESOLVED, EventKind.CLOSED, EventKind.REOPENED]


def test_it_reopens_an_uncontacted_followup_as_new(followup):
    resolve(followup, agent())

    assert followup_reopen(followup=followup, actor=None).status == FollowUpStatus.NEW


@pytest.mark.parametrize(
    "move",
    [
        lambda f, a: followup_close(followup=f, actor=a),
        lambda f, a: followup_reopen(followup=f, actor=a),
    ],
    ids=["close a new one", "reopen an open one"],
)
def test_it_refuses_an_illegal_move_with_a_message(followup, move):
    with pytest.raises(ValidationError) as e:
        move(followup, agent())

    assert e.value.code == "conflict"
    assert e.value.messages[0].startswith(("A follow-up that is new", "This follow"))
    assert FollowUp.objects.get(pk=followup.pk).status == FollowUpStatus.NEW


def test_it_refuses_to_contact_or_wait_on_a_resolved_followup(followup):
    person = agent()
    resolve(followup, person)

    with pytest.raises(ValidationError) as contact:
        followup_log_contact(followup=followup, actor=person, channel="phone")
    with pytest.raises(ValidationError) as wait:
        followup_wait_on_customer(followup=followup, actor=person)

    assert contact.value.messages == ["This follow-up is resolved."]
    assert wait.value.messages == [
        "A follow-up that is resolved cannot become waiting on customer."
    ]


def test_it_resolves_only_with_an_active_root_cause(followup):
    RootCause.objects.filter(code="price").update(active=False)

    with pytest.raises(ValidationError) as e:
        resolve(followup, agent(), cause="price")

    assert "root_cause" in e.value.message_dict
    assert FollowUp.objects.get(pk=followup.pk).status == FollowUpStatus.NEW


def test_it_derives_overdue_from_the_first_contact_due_time(followup):
    soon = timezone.now() + timedelta(hours=1)
    FollowUp.objects.filter(pk=followup.pk).update(first_contact_due_at=soon)
    later = soon + timedelta(minutes=1)

    assert set(FollowUp.objects.overdue(later)) == {followup}
    assert not FollowUp.objects.not_overdue(later).exists()
    followup_log_contact(followup=followup, actor=agent(), channel="phone")
    assert not FollowUp.objects.overdue(later).exists()
    assert set(FollowUp.objects.not_overdue(later)) == {followup}


def test_it_shows_overdue_the_moment_the_due_time_passes_without_a_sweep(followup):
    FollowUp.objects.filter(pk=followup.pk).update(
        due_at=timezone.now() - timedelta(seconds=1)
    )
    followup.refresh_from_db()

    assert followup.is_overdue
    assert followup.status == FollowUpStatus.NEW
    assert list(FollowUp.objects.overdue()) == [followup]


def test_it_escalates_once_keeping_the_status_and_again_after_a_reopen(
    followup, mailoutbox
):
    person = agent()
    late = followup.due_at + timedelta(minutes=1)
    followups_sweep(now=late)
    followups_sweep(now=late)
    followup.refresh_from_db()
    assert followup.escalated_at is not None and followup.status == "new"

    resolve(followup, person)
    reopened = followup_reopen(followup=followup, actor=person)
    followups_sweep(now=reopened.due_at + timedelta(minutes=1))

    assert followup.events.filter(kind=EventKind.ESCALATED).count() == 2
