"""The closed loop: a detractor's answer opens one follow-up, owned and due."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from cxm.followups import tasks
from cxm.followups.models import (
    EventKind,
    FollowUp,
    FollowUpStatus,
    Priority,
    RootCause,
)
from cxm.followups.services import (
    followup_add_note,
    followup_assign,
    followup_owner_notify,
    followup_resolve,
)
from surveys.models import Response
from surveys.services import response_record
from tests.factories import InvitationFactory, UserFactory, agent, manager

pytestmark = pytest.mark.django_db


def answer(score, comment="", invitation=None):
    return response_record(
        invitation=invitation or InvitationFactory(), score=score, comment=comment
    )


def events(followup) -> list[str]:
    return list(followup.events.order_by("pk").values_list("kind", flat=True))


# Opening


@pytest.mark.parametrize("score", [0, 3, 6])
def test_it_opens_one_followup_for_a_detractor(score):
    response = answer(score)

    followup = FollowUp.objects.get()
    assert followup.response == response
    assert followup.status == FollowUpStatus.NEW
    assert EventKind.OPENED in events(followup)


@pytest.mark.parametrize("score", [7, 8, 9, 10])
def test_it_opens_no_followup_for_a_passive_or_promoter(score):
    answer(score)

    assert not FollowUp.objects.exists()


def test_it_opens_the_followup_in_the_transaction_of_the_answer(monkeypatch):
    """If opening the follow-up fails, the answer is not saved either: no detractor
    is ever left without a follow-up."""
    from cxm.followups import services

    agent()
    invitation = InvitationFactory()

    def fail_after_the_followup_row(followup):
        assert FollowUp.objects.filter(pk=followup.pk).exists()
        raise RuntimeError("the database went away")

    monkeypatch.setattr(
        services, "_notify_owner_on_commit", fail_after_the_followup_row
    )
    with pytest.raises(RuntimeError):
        answer(2, invitation=invitation)

    assert not FollowUp.objects.exists()
    assert not Response.objects.exists()
    invitation.refresh_from_db()
    assert invitation.answered_at is None


def test_it_keeps_one_followup_and_logs_the_change_when_a_detractor_answers_again():
    invitation = InvitationFactory()
    answer(3, invitation=invitation)

    answer(2, "still broken", invitation=invitation)

    followup = FollowUp.objects.get()
    assert events(followup).count(EventKind.ANSWER_CHANGED) == 1
    changed = followup.events.get(kind=EventKind.ANSWER_CHANGED)
    assert changed.description() == "Score 2. still broken"


def test_it_opens_a_followup_when_a_passive_changes_to_a_detractor():
    invitation = InvitationFactory()
    answer(8, invitation=invitation)
    assert not FollowUp.objects.exists()

    answer(3, invitation=invitation)

    followup = FollowUp.objects.get()
    assert followup.response.score == 3
    assert followup.priority == Priority.HIGH


# Owner, priority and due time


def test_it_gives_followups_to_the_cx_agents_in_turn():
    first, second = agent(), agent()

    owners = [answer(1).followup.owner for _ in range(4)]

    assert owners == [first, second, first, second]


def test_it_never_gives_a_followup_to_an_inactive_agent_or_a_non_agent():
    active = agent()
    agent(is_active=False)
    manager()
    UserFactory()

    owners = {answer(2).followup.owner for _ in range(3)}

    assert owners == {active}


def test_it_leaves_the_followup_unassigned_without_agents():
    agent(is_active=False)
    UserFactory()

    followup = answer(0).followup

    assert followup.owner is None
    assert followup.assigned_at is None
    assert events(followup) == [EventKind.OPENED]


def test_it_records_the_assignment_as_an_event():
    owner = agent()

    followup = answer(5).followup

    assert events(followup) == [EventKind.OPENED, EventKind.ASSIGNED]
    assert followup.events.get(kind=EventKind.ASSIGNED).text == owner.username
    assert followup.assigned_at == followup.created_at


@pytest.mark.parametrize(
    "score, priority",
    [
        (0, Priority.HIGH),
        (3, Priority.HIGH),
        (4, Priority.NORMAL),
        (6, Priority.NORMAL),
    ],
)
def test_it_gives_high_priority_to_scores_of_3_and_below(score, priority):
    assert answer(score).followup.priority == priority


def test_it_sets_the_due_time_from_the_sla(settings):
    settings.FOLLOWUP_SLA_HOURS = 4.5

    followup = answer(2).followup

    assert followup.due_at - followup.created_at == timedelta(hours=4, minutes=30)


# Telling the owner


def test_it_emails_the_owner_once_the_answer_commits(
    django_capture_on_commit_callbacks, mailoutbox
):
    owner = agent()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        followup = answer(1, "never arrived").followup
    assert mailoutbox == []
    assert len(callbacks) == 1

    callbacks[0]()

    [message] = mailoutbox
    assert message.to == [owner.email]
    assert f"#{followup.pk}" in message.subject
    assert followup.link in message.body
    followup.refresh_from_db()
    assert followup.owner_notified_at is not None
    assert EventKind.OWNER_NOTIFIED in events(followup)


def test_it_emails_the_owner_once_when_notified_twice(
    django_capture_on_commit_callbacks, mailoutbox
):
    agent()
    with django_capture_on_commit_callbacks(execute=True):
        followup = answer(1).followup

    assert followup_owner_notify(followup_id=followup.pk) is False
    assert tasks.followup_notify_owner.delay(followup.pk).get() is False

    assert len(mailoutbox) == 1
    assert events(followup).count(EventKind.OWNER_NOTIFIED) == 1


def test_it_notifies_the_owner_through_the_task(mailoutbox):
    owner = agent()
    followup = answer(4).followup  # no commit here: the message was never sent

    assert tasks.followup_notify_owner.delay(followup.pk).get() is True

    assert [m.to for m in mailoutbox] == [[owner.email]]


def test_it_notifies_someone_else_a_followup_is_assigned_to(
    django_capture_on_commit_callbacks, mailoutbox
):
    first = agent()
    followup = answer(2).followup
    assert followup.owner == first
    second, boss = agent(), manager()

    with django_capture_on_commit_callbacks(execute=True):
        followup = followup_assign(followup=followup, owner=second, actor=boss)

    assert followup.owner == second
    # The new owner, and the previous one, who should stop working on it.
    assert sorted(m.to[0] for m in mailoutbox) == sorted([second.email, first.email])
    [away] = [m for m in mailoutbox if m.to == [first.email]]
    assert f"#{followup.pk}" in away.subject and second.username in away.body
    assigned = followup.events.filter(kind=EventKind.ASSIGNED).last()
    assert (assigned.actor, assigned.text) == (boss, second.username)
    assert assigned.data == {"previous": first.username, "owner": second.username}


def test_it_does_not_notify_an_agent_who_takes_a_followup_themselves(
    django_capture_on_commit_callbacks, mailoutbox
):
    followup = answer(2).followup  # no agents yet: unassigned
    me = agent()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        followup = followup_assign(followup=followup, owner=me, actor=me)

    assert followup.owner == me
    assert followup.owner_notified_at is not None
    assert callbacks == []
    assert mailoutbox == []


def test_it_refuses_to_assign_to_an_inactive_user():
    followup = answer(2).followup

    with pytest.raises(ValidationError):
        followup_assign(
            followup=followup, owner=agent(is_active=False), actor=manager()
        )

    assert FollowUp.objects.get().owner is None


# Notes and resolving


def test_it_adds_a_note():
    followup = answer(2).followup
    me = agent()

    note = followup_add_note(followup=followup, actor=me, text="  Called, voicemail ")

    assert (note.kind, note.actor, note.text) == (
        EventKind.NOTE,
        me,
        "Called, voicemail",
    )


@pytest.mark.parametrize("text", ["", "   ", None])
def test_it_requires_the_text_of_a_note(text):
    followup = answer(2).followup

    with pytest.raises(ValidationError):
        followup_add_note(followup=followup, actor=agent(), text=text)

    assert not followup.events.filter(kind=EventKind.NOTE).exists()


def test_it_resolves_a_followup_recording_who_when_how_and_why():
    followup = answer(2).followup
    me = agent()
    before = timezone.now()

    followup_resolve(
        followup=followup,
        actor=me,
        resolution=" Refunded the order ",
        root_cause="delivery",
    )

    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.RESOLVED
    assert followup.resolved_by == me
    assert before <= followup.resolved_at <= timezone.now()
    assert followup.resolution == "Refunded the order"
    assert followup.root_cause.code == "delivery"
    resolved = followup.events.get(kind=EventKind.RESOLVED)
    assert (resolved.actor, resolved.text) == (me, "Refunded the order")


@pytest.mark.parametrize(
    "resolution, root_cause, field",
    [
        ("", "price", "resolution"),
        ("   ", "price", "resolution"),
        ("Refunded", "", "root_cause"),
        ("Refunded", "weather", "root_cause"),
    ],
)
def test_it_requires_a_resolution_and_a_valid_root_cause(resolution, root_cause, field):
    followup = answer(2).followup

    with pytest.raises(ValidationError) as e:
        followup_resolve(
            followup=followup,
            actor=agent(),
            resolution=resolution,
            root_cause=root_cause,
        )

    assert field in e.value.message_dict
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.NEW
    assert followup.resolved_at is None


def test_it_cannot_resolve_a_followup_twice():
    followup = answer(2).followup
    first, second = agent(), agent()
    followup_resolve(
        followup=followup, actor=first, resolution="Fixed", root_cause="product"
    )

    with pytest.raises(ValidationError):
        followup_resolve(
            followup=followup, actor=second, resolution="Again", root_cause="other"
        )

    followup.refresh_from_db()
    assert (followup.resolved_by, followup.resolution) == (first, "Fixed")
    assert events(followup).count(EventKind.RESOLVED) == 1


def test_it_refuses_to_assign_a_resolved_followup():
    followup = answer(2).followup
    followup_resolve(
        followup=followup, actor=agent(), resolution="Fixed", root_cause="other"
    )

    with pytest.raises(ValidationError):
        followup_assign(followup=followup, owner=agent(), actor=manager())


@pytest.mark.parametrize(
    "values",
    [
        {"resolved_at": None, "root_cause": "other"},
        {"resolved_at": timezone.now(), "root_cause": None},
        {"resolved_at": None, "root_cause": None},
    ],
    ids=["no resolved_at", "no root cause", "neither"],
)
def test_it_refuses_a_resolved_followup_without_time_or_root_cause_in_the_database(
    values,
):
    followup = answer(2).followup

    if values["root_cause"]:
        values["root_cause"] = RootCause.objects.get(code=values["root_cause"])
    with pytest.raises(IntegrityError), transaction.atomic():
        FollowUp.objects.filter(pk=followup.pk).update(status="resolved", **values)

    assert FollowUp.objects.get(pk=followup.pk).status == FollowUpStatus.NEW


def test_it_raises_the_priority_when_a_detractor_answers_angrier():
    followup = answer(5).followup
    assert followup.priority == Priority.NORMAL
    response_record(invitation=followup.response.invitation, score=2)
    followup.refresh_from_db()
    assert followup.priority == Priority.HIGH
    response_record(invitation=followup.response.invitation, score=6)
    followup.refresh_from_db()
    assert followup.priority == Priority.HIGH
    raised = followup.events.get(kind=EventKind.PRIORITY_CHANGED)
    assert raised.actor is None and raised.description() == "High"


def test_it_keeps_a_resolved_followups_priority_when_the_answer_changes():
    followup = answer(5).followup
    followup_resolve(
        followup=followup, actor=agent(), resolution="Called", root_cause="other"
    )

    response_record(invitation=followup.response.invitation, score=1)

    followup.refresh_from_db()
    assert followup.priority == Priority.NORMAL
    assert Response.objects.get().score == 1
