"""The outbox of the embedded default: searched by recipient and kind, with the
invitations that were answered marked."""

import pytest

from cxm.outbox.models import OutboxEmail
from surveys.services import invitations_deliver, response_record
from tests.factories import InvitationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _outbox(settings):
    settings.EMAIL_BACKEND = "cxm.outbox.backends.EmailBackend"


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True))
    return client


def deliver(**customer):
    invitation = InvitationFactory(**{f"customer__{k}": v for k, v in customer.items()})
    invitations_deliver(invitation_ids=[invitation.pk])
    return invitation


def rows(response) -> list[str]:
    html = response.content.decode()
    table = html.split('<table class="list stack" id="outbox">', 1)[1]
    body = table.split("</tbody>")[0]
    return body.split("<tr>")[2:]  # after the header row


def test_it_stores_the_kind_and_invitation_of_each_email():
    invitation = deliver(email="kim@example.com")

    email = OutboxEmail.objects.get()
    assert (email.kind, email.invitation_id) == ("invitation", invitation.pk)


def test_it_searches_by_recipient_and_kind(staff_client):
    deliver(email="kim@example.com")
    deliver(email="lee@example.com")
    OutboxEmail.objects.create(
        to="kim@example.com",
        subject="Follow-up",
        body_text="",
        kind="followup-assigned",
    )

    by_recipient = rows(staff_client.get("/outbox/?q=KIM@"))
    by_both = rows(staff_client.get("/outbox/?q=kim&kind=invitation"))

    assert len(by_recipient) == 2
    assert all("kim@example.com" in row for row in by_recipient)
    assert len(by_both) == 1 and "Follow-up" not in by_both[0]


def test_it_marks_answered_invitations(staff_client):
    answered = deliver(email="kim@example.com")
    deliver(email="lee@example.com")
    response_record(invitation=answered, score=9)

    listed = rows(staff_client.get("/outbox/"))

    marked = [row for row in listed if 'class="badge resolved">Answered' in row]
    assert len(marked) == 1 and "kim@example.com" in marked[0]


def test_it_shows_everything_for_a_kind_it_does_not_know(staff_client):
    deliver()
    r = staff_client.get("/outbox/?kind=nonsense")
    assert r.status_code == 200
    assert len(rows(r)) == 1


def test_it_lists_the_outbox_in_constant_queries(
    staff_client, django_assert_num_queries
):
    deliver()
    with django_assert_num_queries(4) as few:
        staff_client.get("/outbox/?q=example")
    for _ in range(5):
        deliver()
    with django_assert_num_queries(len(few.captured_queries)):
        r = staff_client.get("/outbox/?q=example")
    assert len(rows(r)) == 6
