"""RepeatedUpdate: an ORM update compiled once and run with other values."""

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from cxm.utils import RepeatedUpdate
from surveys.models import Invitation, InvitationStatus
from tests.factories import InvitationFactory

pytestmark = pytest.mark.django_db


def mark_sent(pk, sent_at, expires_at):
    rows = Invitation.objects.filter(pk=pk, status=InvitationStatus.SENDING)
    return rows, {
        "status": InvitationStatus.SENT,
        "sent_at": sent_at,
        "expires_at": expires_at,
        "attempts": F("attempts") + 1,
    }


def test_it_compiles_once_and_runs_each_time_with_that_runs_values():
    first, second, other = InvitationFactory.create_batch(
        3, status=InvitationStatus.SENDING
    )
    now = timezone.now()
    update = RepeatedUpdate(mark_sent, pk=0, sent_at=now, expires_at=now)

    assert update.sql is not None  # PostgreSQL takes the stand-ins as they are
    assert update.run(pk=first.pk, sent_at=now, expires_at=None) == 1
    later = now + timedelta(hours=1)
    assert update.run(pk=second.pk, sent_at=later, expires_at=later) == 1
    assert update.run(pk=second.pk, sent_at=later, expires_at=later) == 0

    first.refresh_from_db()
    second.refresh_from_db()
    other.refresh_from_db()
    assert (first.status, first.sent_at, first.expires_at) == ("sent", now, None)
    assert (second.status, second.sent_at, second.expires_at) == ("sent", later, later)
    assert (first.attempts, second.attempts) == (1, 1)
    assert other.status == InvitationStatus.SENDING


def test_it_builds_the_update_anew_each_time_when_a_stand_in_is_not_passed_on():
    invitation = InvitationFactory(status=InvitationStatus.SENDING)
    now = timezone.now()

    def shifted(pk, sent_at):
        # The stand-in is changed before it reaches the parameters.
        return mark_sent(pk, sent_at + timedelta(days=1), None)

    update = RepeatedUpdate(shifted, pk=0, sent_at=now)

    assert update.sql is None
    assert update.run(pk=invitation.pk, sent_at=now) == 1
    invitation.refresh_from_db()
    assert invitation.sent_at == now + timedelta(days=1)
