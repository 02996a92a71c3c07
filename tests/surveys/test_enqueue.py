"""Enqueueing against a real Redis broker: every due row once, lost ones again."""

from datetime import timedelta

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone
from psycopg.conninfo import make_conninfo

from surveys import tasks
from surveys.models import Invitation
from surveys.services import (
    DELIVERY_BATCH,
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


def test_it_enqueues_again_when_the_message_looks_lost(settings, broker, queued):
    settings.DELIVERY_REQUEUE_AFTER = 45
    invitations_sweep()
    soon = timezone.now() + timedelta(seconds=44)
    assert invitations_sweep(now=soon) == 0
    later = timezone.now() + timedelta(seconds=46)
    assert invitations_sweep(now=later) == queued.count()
    assert broker() == 6


def test_it_leaves_rows_for_the_next_sweep_when_the_broker_is_down(queued):
    with celery_broker("redis://127.0.0.1:9/0"):
        with pytest.raises(Exception):  # noqa: B017 - kombu's error class varies
            invitations_sweep()
    assert not queued.filter(enqueued_at__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_it_publishes_a_batch_only_once_its_rows_are_marked_and_free(
    broker, queued, monkeypatch
):
    """
    A worker may take a message the moment it is published: its claim must find the
    rows already marked enqueued and not locked by the enqueuer (a claim skips
    locked rows, and a row skipped so would wait for the next lost-message sweep).
    """
    seen = []
    publish = tasks.invitations_send.delay

    def delay(batch):
        # Another connection, as a worker's would be.
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(make_conninfo(**params), autocommit=True) as worker:
            free = worker.execute(
                f"SELECT id, enqueued_at FROM {Invitation._meta.db_table} "
                "WHERE id = ANY(%s) FOR UPDATE SKIP LOCKED",
                [batch],
            ).fetchall()
        seen.append((sorted(batch), sorted(pk for pk, _ in free), free))
        return publish(batch)

    monkeypatch.setattr(tasks.invitations_send, "delay", delay)

    assert invitations_sweep() == queued.count()

    assert len(seen) == 3
    for batch, free, rows in seen:
        assert free == batch  # every row of the message free to claim
        assert all(enqueued_at is not None for _, enqueued_at in rows)
    assert broker() == 3
