"""
Delivery under faults, on the real components: a Celery worker SIGKILLed in the
middle of a campaign, beat sweeping every second, a real SMTP server counting what
arrives. Nothing is lost; nothing arrives twice but the one message each killed
process was in the middle of, and that one with the same Message-ID.
"""

import shutil
import subprocess
import time
from collections import Counter

import pytest
import redis

from cxm.customers.models import Customer
from surveys.models import Invitation, InvitationStatus
from surveys.services import campaign_send
from tests.factories import CampaignFactory
from tests.processes import free_port

from .conftest import (
    DELIVERY_CLAIM_TIMEOUT,
    DELIVERY_REQUEUE_AFTER,
    wait_for,
)

pytestmark = pytest.mark.e2e

INVITATIONS = 2000
# The worker's pool processes: each may die in the middle of one message.
POOL = 2


class RedisServer:
    """A Redis of the test's own on its own port, without persistence: a restart
    loses every message in it, as a crashed broker would."""

    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.popen = None

    def start(self):
        redis_server = shutil.which("redis-server")
        if not redis_server:
            pytest.fail("redis-server is missing: run `make system`")
        self.popen = subprocess.Popen(
            [
                redis_server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def answers():
            try:
                return client.ping()
            except redis.RedisError:
                return False

        wait_for(answers, timeout=10, what="the test's Redis")

    def stop(self):
        self.popen.kill()
        self.popen.wait(10)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_broker(request):
    """The broker of the Celery processes: the shared Redis, or for a test that asks
    for redis_server, its own."""
    if "redis_server" in request.fixturenames:
        return request.getfixturevalue("redis_server").url
    return request.getfixturevalue("shared_redis_broker")


def send_campaign() -> None:
    """Sends a campaign to INVITATIONS new customers (enqueued at once: no test
    transaction holds the commit back)."""
    campaign = CampaignFactory()
    Customer.objects.bulk_create(
        Customer(email=f"c{n}@example.com", name=f"C {n}") for n in range(INVITATIONS)
    )
    campaign_send(campaign=campaign)


def wait_until_all_sent(smtp_server, *, since: float, within: float) -> Counter:
    """Waits until every invitation is sent; returns the messages per address."""

    def all_sent():
        return not Invitation.objects.exclude(status=InvitationStatus.SENT).exists()

    wait_for(all_sent, timeout=120, interval=0.5, what="every invitation sent")
    took = time.monotonic() - since
    assert took < within, took
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert set(received) == {f"c{n}@example.com" for n in range(INVITATIONS)}
    return received


def test_it_delivers_every_invitation_once_or_the_in_flight_one_twice_with_one_message_id_after_a_worker_is_killed(  # noqa: E501
    celery_processes, smtp_server, tmp_path
):
    send_campaign()
    smtp_server.wait_for_messages(INVITATIONS // 4, timeout=60)

    celery_processes.worker_restart(kill=True, log=tmp_path / "worker-2.log")
    restarted = time.monotonic()
    assert len(smtp_server.messages) < INVITATIONS  # killed mid-campaign

    # The dead worker's claims wait their timeout, its batches their requeue.
    received = wait_until_all_sent(
        smtp_server, since=restarted, within=DELIVERY_CLAIM_TIMEOUT + 30
    )
    twice = [address for address, count in received.items() if count > 1]
    assert len(twice) <= POOL and max(received.values()) <= 2, twice
    for address in twice:
        ids = {m.message["Message-ID"] for m in smtp_server.to(address)}
        assert len(ids) == 1, (address, ids)


def test_it_delivers_every_invitation_exactly_once_after_the_broker_restarts(
    redis_server, celery_processes, smtp_server
):
    send_campaign()
    smtp_server.wait_for_messages(INVITATIONS // 4, timeout=60)

    redis_server.stop()  # every queued message is lost with it
    time.sleep(2)
    redis_server.start()
    back = time.monotonic()
    assert len(smtp_server.messages) < INVITATIONS  # restarted mid-campaign

    received = wait_until_all_sent(
        smtp_server, since=back, within=DELIVERY_REQUEUE_AFTER + 30
    )
    assert max(received.values()) == 1
