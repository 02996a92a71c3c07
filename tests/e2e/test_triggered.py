"""
A triggered campaign on the real components: an interaction recorded through
interaction_record (its signal on commit) and one whose signal was lost (written
without it) each become an invitation due an hour after the interaction; beat's
sweeps (every second) create the lost one and deliver both through a Celery
worker on Redis to a real SMTP server, not before their due time, once each, with
the worker SIGKILLed and restarted while they wait.
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.customers.models import Interaction
from cxm.customers.services import interaction_record
from surveys.models import Campaign, Invitation, InvitationStatus
from surveys.services import campaign_send
from tests.factories import CampaignFactory, CustomerFactory

from .conftest import DELIVERY_CLAIM_TIMEOUT, DELIVERY_REQUEUE_AFTER, wait_for

pytestmark = pytest.mark.e2e

# Seconds from recording the interactions to their invitations' due time: long
# enough to restart the worker and watch nothing arrive early.
LEAD = 15


def test_it_emails_a_triggered_invitation_once_after_its_due_time(
    celery_processes, smtp_server, tmp_path
):
    jane = CustomerFactory(email="jane@example.com")
    ken = CustomerFactory(email="ken@example.com")
    campaign = CampaignFactory(
        schedule="triggered", trigger_kind="purchase", trigger_delay_hours=1
    )
    campaign_send(campaign=campaign)
    # The campaign has run for two hours, so a purchase an hour ago counts.
    Campaign.objects.filter(pk=campaign.pk).update(
        starts_at=timezone.now() - timedelta(hours=2)
    )
    occurred_at = timezone.now() - timedelta(hours=1) + timedelta(seconds=LEAD)
    due_at = occurred_at + timedelta(hours=1)

    # Autocommit: the signal's receiver runs as interaction_record returns.
    interaction_record(customer=jane, kind="purchase", occurred_at=occurred_at)
    assert Invitation.objects.get(customer=jane).due_at == due_at
    # Ken's is written as if the process died before its receiver ran.
    Interaction.objects.create(customer=ken, kind="purchase", occurred_at=occurred_at)
    wait_for(
        lambda: Invitation.objects.filter(customer=ken).first(),
        timeout=10,
        what="the sweep to create the invitation whose signal was lost",
    )

    celery_processes.worker_restart(log=tmp_path / "worker-2.log", kill=True)
    while timezone.now() < due_at - timedelta(seconds=1):
        assert smtp_server.messages == [], "an invitation arrived before its due time"
        time.sleep(0.2)

    messages = smtp_server.wait_for_messages(2, timeout=30)
    assert timezone.now() >= due_at
    assert sorted(m.rcpt_tos[0] for m in messages) == [
        "jane@example.com",
        "ken@example.com",
    ]
    # Sweeps that would requeue a lost message or a dead worker's claim pass.
    time.sleep(DELIVERY_REQUEUE_AFTER + DELIVERY_CLAIM_TIMEOUT + 2)
    assert len(smtp_server.messages) == 2
    statuses = set(
        Invitation.objects.filter(campaign=campaign).values_list("status", flat=True)
    )
    assert statuses == {InvitationStatus.SENT}
    assert Invitation.objects.filter(campaign=campaign).count() == 2
