"""The SLA sweep: overdue follow-ups escalate once; lost owner emails go out once."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from cxm.followups import tasks
from cxm.followups.models import EventKind, FollowUp, FollowUpEvent, FollowUpStatus
from cxm.followups.services import NOTIFY_GRACE, followup_resolve, followups_sweep
from surveys.services import response_record
from tests import email_backends
from tests.factories import InvitationFactory, agent, manager

pytestmark = pytest.mark.django_db


def detractor_followup(score=2) -> FollowUp:
    response = response_record(invitation=InvitationFactory(), score=score)
    return FollowUp.objects.get(response=response)


def past_due(followup) -> timezone.datetime:
    return followup.due_at + timedelta(minutes=1)


def escalations(mailoutbox):
    return [m for m in mailoutbox if m.subject.startswith("Overdue")]


def kinds(followup) -> list[str]:
    return list(followup.events.order_by("pk").values_list("kind", flat=True))


def test_it_escalates_past_due_without_changing_the_status():
    followup = detractor_followup()

    result = followups_sweep(now=past_due(followup))

    assert result["escalated"] == 1
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.NEW
    assert followup.escalated_at is not None
    assert EventKind.OVERDUE not in kinds(followup)


def test_it_sends_the_cx_managers_one_escalation_however_often_it_runs(mailoutbox):
    bosses = [manager(), manager()]
    followup = detractor_followup()
    now = past_due(followup)

    results = [followups_sweep(now=now + timedelta(minutes=i)) for i in range(3)]

    assert [r["escalated"] for r in results] == [1, 0, 0]
    [message] = escalations(mailoutbox)
    assert message.to == [b.email for b in bosses]
    assert f"#{followup.pk}" in message.subject
    assert followup.link in message.body
    followup.refresh_from_db()
    assert followup.escalated_at is not None
    assert kinds(followup).count(EventKind.ESCALATED) == 1


def test_it_leaves_a_followup_that_is_not_yet_due_alone(mailoutbox):
    manager()
    followup = detractor_followup()

    result = followups_sweep(now=followup.due_at - timedelta(minutes=1))

    assert result["escalated"] == 0
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.NEW
    assert followup.escalated_at is None
    assert escalations(mailoutbox) == []


def test_it_leaves_a_resolved_followup_alone(mailoutbox):
    manager()
    followup = detractor_followup()
    followup_resolve(
        followup=followup,
        actor=agent(),
        resolution="Called",
        root_cause="other",
    )

    result = followups_sweep(now=past_due(followup))

    assert result["escalated"] == 0
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.RESOLVED
    assert followup.escalated_at is None
    assert kinds(followup)[-1] == EventKind.RESOLVED
    assert escalations(mailoutbox) == []


def test_it_does_not_email_an_inactive_manager(mailoutbox):
    active = manager()
    manager(is_active=False)
    followup = detractor_followup()

    followups_sweep(now=past_due(followup))

    [message] = escalations(mailoutbox)
    assert message.to == [active.email]


def test_it_says_so_and_sends_nothing_when_there_is_no_manager(mailoutbox):
    manager(is_active=False)
    followup = detractor_followup()

    result = followups_sweep(now=past_due(followup))

    assert result["escalated"] == 1
    assert mailoutbox == []
    followup.refresh_from_db()
    assert followup.escalated_at is not None
    escalated = followup.events.get(kind=EventKind.ESCALATED)
    assert escalated.description() == "No CX manager to notify."


def test_it_retries_the_escalation_when_the_mail_server_fails(
    settings, monkeypatch, mailoutbox
):
    settings.EMAIL_BACKEND = "tests.email_backends.FlakyBackend"
    monkeypatch.setattr(email_backends.FlakyBackend, "failures", 1)
    boss = manager()
    followup = detractor_followup()
    now = past_due(followup)

    first = followups_sweep(now=now)

    assert first["escalated"] == 0
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.NEW
    assert followup.escalated_at is None
    assert EventKind.ESCALATED not in kinds(followup)
    assert mailoutbox == []

    second = followups_sweep(now=now + timedelta(minutes=1))

    assert second["escalated"] == 1
    assert [m.to for m in escalations(mailoutbox)] == [[boss.email]]
    followup.refresh_from_db()
    assert followup.escalated_at is not None


def test_it_resends_an_owner_email_whose_message_was_lost_exactly_once(mailoutbox):
    owner = agent()
    # No commit in this test: the on-commit enqueue never ran, as if lost.
    followup = detractor_followup()
    assert followup.owner == owner and followup.owner_notified_at is None
    later = followup.assigned_at + NOTIFY_GRACE + timedelta(seconds=1)

    results = [followups_sweep(now=later + timedelta(minutes=i)) for i in range(3)]

    assert [r["notified"] for r in results] == [1, 0, 0]
    assert [m.to for m in mailoutbox] == [[owner.email]]
    followup.refresh_from_db()
    assert followup.owner_notified_at is not None


def test_it_waits_before_resending_an_owner_email(mailoutbox):
    agent()
    followup = detractor_followup()

    result = followups_sweep(now=followup.assigned_at + timedelta(seconds=30))

    assert result["notified"] == 0
    assert mailoutbox == []
    assert FollowUp.objects.get(pk=followup.pk).owner_notified_at is None


def test_it_does_not_resend_an_owner_email_that_went_out(
    django_capture_on_commit_callbacks, mailoutbox
):
    agent()
    with django_capture_on_commit_callbacks(execute=True):
        followup = detractor_followup()
    assert len(mailoutbox) == 1

    result = followups_sweep(now=followup.assigned_at + NOTIFY_GRACE * 2)

    assert result["notified"] == 0
    assert len(mailoutbox) == 1


def test_it_sweeps_through_the_followups_sweep_task(mailoutbox):
    boss = manager()
    followup = detractor_followup()
    # The task sweeps at the real time: make the follow-up late by then.
    FollowUp.objects.filter(pk=followup.pk).update(
        due_at=timezone.now() - timedelta(minutes=1)
    )

    result = tasks.followups_sweep.delay().get()

    assert result["escalated"] == 1
    assert [m.to for m in escalations(mailoutbox)] == [[boss.email]]


def test_it_does_not_email_an_owner_who_was_deactivated(mailoutbox):
    agent()
    followup = detractor_followup()
    followup.owner.is_active = False
    followup.owner.save()
    followups_sweep(now=timezone.now() + timedelta(minutes=5))
    assert mailoutbox == []


def test_the_sweep_task_reminds_and_escalates_twice(settings, mailoutbox):
    settings.FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS = 1
    owner = agent()
    manager()
    reminded, late = detractor_followup(), detractor_followup()
    now = timezone.now()
    FollowUp.objects.filter(pk=reminded.pk).update(
        due_at=now + timedelta(hours=1), assigned_at=now - timedelta(hours=5)
    )
    FollowUp.objects.filter(pk=late.pk).update(due_at=now - timedelta(hours=2))

    result = tasks.followups_sweep.delay().get()

    assert (result["reminded"], result["escalated"], result["escalated_again"]) == (
        1,
        1,
        1,
    )
    assert [m.to for m in mailoutbox if m.subject.startswith("Reminder")] == [
        [owner.email]
    ]


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_escalate_and_notify_each_followup_once(mailoutbox):
    boss = manager()
    agent()
    followups = [detractor_followup() for _ in range(6)]
    # As if the on-commit enqueues were lost: the sweeps must send the owner emails.
    FollowUp.objects.update(owner_notified_at=None)
    FollowUpEvent.objects.filter(kind=EventKind.OWNER_NOTIFIED).delete()
    mailoutbox.clear()
    now = max(past_due(f) for f in followups)
    start = threading.Barrier(2)
    results = []

    def sweep():
        try:
            start.wait()
            results.append(followups_sweep(now=now))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r["escalated"] for r in results) == 6
    assert sum(r["notified"] for r in results) == 6
    assert len(escalations(mailoutbox)) == 6
    assert all(m.to == [boss.email] for m in escalations(mailoutbox))
    owner_emails = [m for m in mailoutbox if not m.subject.startswith("Overdue")]
    assert sorted(m.subject for m in owner_emails) == sorted(
        {m.subject for m in owner_emails}
    )
    assert len(owner_emails) == 6
    for followup in followups:
        assert kinds(followup).count(EventKind.ESCALATED) == 1
        assert kinds(followup).count(EventKind.OWNER_NOTIFIED) == 1
