"""Nothing a customer gives us waits on the broker."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.celery import app as celery_app
from cxm.followups.services import followups_sweep
from surveys.models import Response
from tests.conftest import celery_broker
from tests.factories import InvitationFactory, agent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_down():
    """Points Celery at a port where no broker listens, and publishes for real."""
    with celery_broker("redis://127.0.0.1:9/0"):
        yield


def test_it_saves_the_answer_and_thanks_the_customer_with_the_broker_down(
    client, broker_down, mailoutbox
):
    owner = agent()
    invitation = InvitationFactory()

    r = client.post(f"/s/{invitation.token}/", {"score": "2", "comment": "broken"})

    assert r.status_code == 302 and r["Location"].endswith("/thanks/")
    response = Response.objects.get(invitation=invitation)
    assert response.score == 2
    followup = response.followup
    assert followup.owner == owner and followup.owner_notified_at is None
    assert mailoutbox == []  # the enqueue failed; nothing was sent yet

    # The broker is back; the sweep finds the owner email whose message was lost.
    celery_app.conf.task_always_eager = True
    followups_sweep(now=timezone.now() + timedelta(minutes=5))
    assert [m.to for m in mailoutbox] == [[owner.email]]
