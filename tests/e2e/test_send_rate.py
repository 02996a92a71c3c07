"""
The send rate limit on the real components: two Celery workers (two processes
each) on Redis share EMAIL_SEND_RATE, measured where it matters, at the SMTP
server.
"""

import pytest

from cxm.customers.models import Customer
from surveys.services import campaign_send
from tests.factories import CampaignFactory

from .conftest import LOGS, worker_start

pytestmark = pytest.mark.e2e

RATE = 40  # emails a second, all workers together
INVITATIONS = 400  # four delivery batches: work for every worker process


@pytest.fixture
def worker_env():
    return {"EMAIL_SEND_RATE": str(RATE)}


def test_it_keeps_two_workers_together_under_the_send_rate(
    request, celery_processes, smtp_server, tmp_path
):
    log = tmp_path / "worker-b.log"
    second = worker_start(
        env=celery_processes.env, queue=celery_processes.queue, log=log
    )
    celery_processes.started.append(second)
    request.node.stash[LOGS].append(("second worker", log))
    second.wait_for_output(" ready.")
    campaign = CampaignFactory()
    Customer.objects.bulk_create(
        Customer(email=f"r{n}@example.com") for n in range(INVITATIONS)
    )

    campaign_send(campaign=campaign)
    messages = smtp_server.wait_for_messages(INVITATIONS, timeout=90)

    assert len({m.rcpt_tos[0] for m in messages}) == INVITATIONS
    times = sorted(m.at for m in messages)
    # One email per 1/RATE s slot: the last starts (INVITATIONS - 1) slots after
    # the first, whoever sends it.
    span = times[-1] - times[0]
    assert span >= (INVITATIONS - 1) / RATE * 0.97, span
    busiest = max(
        sum(1 for t in times[i:] if t < start + 1) for i, start in enumerate(times)
    )
    # A slot's email may arrive a little late, next to the following slot's.
    assert busiest <= RATE * 1.15, busiest
    for worker in (celery_processes.worker, second):
        assert "invitations_send" in worker.output() and "succeeded" in worker.output()
