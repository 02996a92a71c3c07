"""
Follow-up notifications on the real components: beat (DatabaseScheduler) sweeps
every second, a Celery worker sends over a real SMTP server. The owner is emailed
on assignment, reminded before the due time, gets the day's digest (its task sent
twice from here), and the manager hears of the breach: each exactly once, however
many sweeps run.
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.followups import tasks
from cxm.followups.models import EventKind, FollowUp
from cxm.followups.services import followups_sweep
from surveys.services import response_record
from tests.factories import InvitationFactory, agent, manager

from .conftest import wait_for

pytestmark = pytest.mark.e2e

# The follow-up's SLA in this test, and the reminder's lead time before it.
SLA_SECONDS = 12
REMIND_BEFORE_SECONDS = 6


@pytest.fixture
def worker_env():
    return {
        "FOLLOWUP_REMIND_BEFORE_HOURS": str(REMIND_BEFORE_SECONDS / 3600),
        "FOLLOWUP_DIGEST_HOUR": "0",
    }


def subjects(messages) -> list[str]:
    return sorted(m.message["Subject"] for m in messages)


def test_beat_reminds_digests_and_escalates_each_once_over_smtp(
    settings, transactional_db, celery_processes, smtp_server
):
    settings.FOLLOWUP_SLA_HOURS = SLA_SECONDS / 3600
    owner = agent(email="owner@cx.example.com")
    boss = manager(email="boss@cx.example.com")
    invitation = InvitationFactory()

    followup = response_record(invitation=invitation, score=2).followup
    assert followup.owner == owner
    # Beat sends the digest task every 5 minutes at most: ask the worker now, twice.
    tasks.followup_digests_send.delay()
    tasks.followup_digests_send.delay()

    # Assigned and digest at once; the reminder REMIND_BEFORE_SECONDS before due.
    smtp_server.wait_for_messages(3, to=owner.email, timeout=SLA_SECONDS + 20)
    smtp_server.wait_for_messages(1, to=boss.email, timeout=SLA_SECONDS + 20)
    wait_for(
        lambda: FollowUp.objects.filter(
            pk=followup.pk, escalated_at__isnull=False
        ).exists(),
        timeout=10,
        what="the escalation recorded",
    )
    time.sleep(3)  # three more sweeps: nothing more may go out

    assert subjects(smtp_server.to(owner.email)) == sorted(
        [
            f"Follow-up #{followup.pk}: a customer scored 2",
            f"Reminder: follow-up #{followup.pk} is due soon",
            f"Your follow-ups on {time.strftime('%Y-%m-%d', time.gmtime())}: "
            "1 open, 0 overdue",
        ]
    )
    assert subjects(smtp_server.to(boss.email)) == [
        f"Overdue: follow-up #{followup.pk} missed its SLA"
    ]
    kinds = list(followup.events.values_list("kind", flat=True))
    assert kinds.count(EventKind.REMINDED) == 1
    assert kinds.count(EventKind.ESCALATED) == 1


@pytest.mark.django_db
def test_one_sweep_escalates_over_one_smtp_session(settings, smtp_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = smtp_server.host, smtp_server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.FOLLOWUP_REMIND_BEFORE_HOURS = 0
    boss = manager(email="boss@example.com")
    overdue = [
        response_record(invitation=InvitationFactory(), score=1).followup
        for _ in range(3)
    ]
    past = timezone.now() - timedelta(hours=1)
    FollowUp.objects.filter(pk__in=[f.pk for f in overdue]).update(
        due_at=past, first_contact_due_at=past, owner_notified_at=past
    )

    assert followups_sweep()["escalated"] == 3

    messages = smtp_server.wait_for_messages(3, to=boss.email, timeout=10)
    assert len(messages) == 3
    assert len({m.peer for m in messages}) == 1
    assert followups_sweep()["escalated"] == 0
