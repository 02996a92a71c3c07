"""
Reminders on the real components: a Celery worker (two processes) and beat on Redis,
a real SMTP server, and two more sweeps run at once from this process while beat
sweeps too. Every customer who has not answered gets one reminder, not two.
"""

import threading
import time
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from cxm.customers.models import Customer
from surveys import tasks
from surveys.models import Invitation, InvitationStatus
from surveys.services import campaign_send, invitations_sweep, response_record
from tests.factories import CampaignFactory

from .conftest import wait_for

pytestmark = pytest.mark.e2e

CUSTOMERS = 300


def sweep_in_threads(count: int) -> None:
    """Runs `count` sweeps at the same moment, each on its own connection."""
    start = threading.Barrier(count)
    errors = []

    def sweep():
        try:
            start.wait()
            invitations_sweep()
        except Exception as e:  # reported below, in the test's thread
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def test_it_sends_each_reminder_once_while_sweeps_run_at_once(
    celery_processes, smtp_server
):
    campaign = CampaignFactory(reminders=1, reminder_interval_days=2)
    Customer.objects.bulk_create(
        Customer(email=f"r{n}@example.com", name=f"R {n}") for n in range(CUSTOMERS)
    )
    campaign_send(campaign=campaign)
    smtp_server.wait_for_messages(CUSTOMERS, timeout=120)
    wait_for(
        lambda: (
            campaign.invitations.filter(status=InvitationStatus.SENT).count()
            == CUSTOMERS
        ),
        timeout=30,
        what="every invitation marked sent",
    )
    answered = campaign.invitations.get(customer__email="r0@example.com")
    response_record(invitation=answered, score=10)

    # Two days pass: every reminder is due now. Beat sweeps every second; two
    # sweep tasks go to the worker's two processes and two more run here.
    campaign.invitations.filter(status=InvitationStatus.SENT).update(
        remind_due_at=timezone.now()
    )
    tasks.invitations_sweep.delay()
    tasks.invitations_sweep.delay()
    sweep_in_threads(2)

    smtp_server.wait_for_messages(2 * CUSTOMERS - 1, timeout=120)
    wait_for(
        lambda: (
            Invitation.objects.filter(campaign=campaign, reminders_sent=1).count()
            == CUSTOMERS - 1
        ),
        timeout=30,
        what="every reminder recorded",
    )
    time.sleep(3)  # a few more sweeps: nothing more may go out
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert received["r0@example.com"] == 1
    assert set(received.values()) == {1, 2}
    assert sum(received.values()) == 2 * CUSTOMERS - 1

    [invitation_email, reminder] = smtp_server.to("r1@example.com")
    assert reminder.message["Subject"] == (
        "A reminder: a quick question about your experience"
    )
    assert reminder.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (
        reminder.message["List-Unsubscribe"]
        == (invitation_email.message["List-Unsubscribe"])
    )
    assert reminder.message["Message-ID"] != invitation_email.message["Message-ID"]
    assert not campaign.invitations.filter(remind_due_at__isnull=False).exists()
