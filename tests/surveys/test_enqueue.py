"""Enqueueing against a real Redis broker: every due row once, lost ones again."""

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from surveys.models import Invitation
from surveys.services import (
    DELIVERY_BATCH,
    LOST_MESSAGE,
    invitations_sweep,
)
from tests.conftest import celery_broker
from tests.factories import CampaignFactory, CustomerFactory

pytestmark = pytest.mark.django_db

BROKER = "redis://127.0.0.1:6379/14"


@pytest.fixture
def broker():
    """A real Redis broker on a database of its own; nothing consumes the queue."""
    client = redis.Redis.from_url(BROKER)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not answering at 127.0.0.1:6379 (make test starts it)")
    client.flushdb()
    with celery_broker(BROKER):
        yield lambda: client.llen(settings.CELERY_TASK_DEFAULT_QUEUE)
    client.flushdb()


@pytest.fixture
def queued():
    campaign = CampaignFactory()
    customers = CustomerFactory.create_batch(DELIVERY_BATCH * 2 + 5)
    Invitation.objects.bulk_create(
        Invitation(campaign=campaign, customer=c) for c in customers
    )
    return Invitation.objects.filter(campaign=campaign)


def test_it_enqueues_each_due_invitation_once(broker, queued):
    assert invitations_sweep() == queued.count()
    assert broker() == 3  # batches of DELIVERY_BATCH
    assert not queued.filter(enqueued_at__isnull=True).exists()

    assert invitations_sweep() == 0
    assert broker() == 3


def test_it_enqueues_again_when_the_message_looks_lost(broker, queued):
    invitations_sweep()
    later = timezone.now() + LOST_MESSAGE + timedelta(seconds=1)
    assert invitations_sweep(now=later) == queued.count()
    assert broker() == 6


def test_it_leaves_rows_for_the_next_sweep_when_the_broker_is_down(queued):
    with celery_broker("redis://127.0.0.1:9/0"):
        with pytest.raises(Exception):  # noqa: B017 - kombu's error class varies
            invitations_sweep()
    assert not queued.filter(enqueued_at__isnull=False).exists()
