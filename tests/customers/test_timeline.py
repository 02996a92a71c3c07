"""
The customer's whole story: the customer page (/customers/<id>/) and its API
(/api/customers/<id>/timeline/), one timeline of every channel, paged by a
cursor in a fixed number of queries, seen by whom the one helper says
(cxm.access.customer_for_user).
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape
from rest_framework.test import APIClient

from cxm.customers.models import Interaction
from cxm.customers.services import (
    customer_mark_bounced,
    customer_mark_complained,
    customer_unsubscribe,
    interaction_record,
)
from cxm.followups.models import FollowUp, Team
from cxm.followups.replies import followup_reply_send
from cxm.followups.services import followup_add_note, followup_open_manual, team_save
from surveys.models import Invitation, InvitationStatus
from surveys.services import response_record
from tests.factories import (
    CustomerFactory,
    InvitationFactory,
    UserFactory,
    agent,
    manager,
    property_segment,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    seoul_agent, busan_agent = agent(), agent()
    seoul_manager, busan_manager = manager(), manager()
    seoul = team_save(
        team=Team(name="Seoul", manager=seoul_manager), members=[seoul_agent]
    )
    busan = team_save(
        team=Team(name="Busan", manager=busan_manager), members=[busan_agent]
    )
    staff = UserFactory(is_staff=True, is_superuser=True)
    customer = CustomerFactory(email="seoul@example.com", properties={"plan": "pro"})
    followup = followup_open_manual(
        customer=customer, actor=staff, team=seoul, owner=seoul_agent
    )
    return {
        "agent": seoul_agent,
        "busan_agent": busan_agent,
        "manager": seoul_manager,
        "other_manager": busan_manager,
        "staff": staff,
        "outsider": UserFactory(),
        "seoul": seoul,
        "busan": busan,
        "customer": customer,
        "followup": followup,
    }


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def timeline_url(customer) -> str:
    return f"/api/customers/{customer.pk}/timeline/"


def story(customer, staff):
    """A customer who bought, was invited, answered 3, then 2, and was replied to."""
    long_ago = timezone.now() - timedelta(days=30)
    interaction_record(
        customer=customer, kind="purchase", channel="store", occurred_at=long_ago
    )
    invitation = InvitationFactory(customer=customer)
    Invitation.objects.filter(pk=invitation.pk).update(
        status=InvitationStatus.SENT,
        sent_at=long_ago + timedelta(days=1),
        reminded_at=long_ago + timedelta(days=2),
        reminders_sent=1,
    )
    response_record(invitation=invitation, score=3, comment="Slow delivery")
    response_record(invitation=invitation, score=2, comment="Slow and rude")
    followup = FollowUp.objects.get(response__invitation=invitation)
    followup_add_note(followup=followup, actor=staff, text="Called, no answer")
    followup_reply_send(
        followup=followup, actor=staff, subject="Sorry", body="We are on it."
    )
    customer_unsubscribe(customer=customer)
    customer_mark_bounced(customer_id=customer.pk)
    customer_mark_complained(customer_id=customer.pk)
    return followup


def test_it_tells_every_channel_in_one_timeline_newest_first(client, people):
    customer, staff = people["customer"], people["staff"]
    story(customer, staff)
    body = api(staff).get(timeline_url(customer)).json()
    kinds = [entry["kind"] for entry in body["results"]]
    for kind in (
        "interaction",
        "invitation",
        "reminder",
        "response",
        "response_revision",
        "followup_event",
        "followup_message",
        "unsubscribed",
        "bounced",
        "complained",
    ):
        assert kind in kinds
    times = [entry["at"] for entry in body["results"]]
    assert times == sorted(times, reverse=True)
    assert kinds[-1] == "interaction"  # the oldest: the purchase
    revision = next(e for e in body["results"] if e["kind"] == "response_revision")
    assert revision["data"]["score"] == 3
    assert revision["data"]["comment"] == "Slow delivery"
    current = next(e for e in body["results"] if e["kind"] == "response")
    assert current["data"]["score"] == 2 and current["data"]["changed"] is True
    assert body["next"] is None

    client.force_login(staff)
    page = client.get(f"/customers/{customer.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in (
        "Slow delivery",
        "Slow and rude",
        "Called, no answer",
        "We are on it.",
        "purchase",
        "Unsubscribed",
        "Email bounced",
        "Reported our email as spam",
        "Detractor",
        "Scores over time",
        "</meter> 2.0",
        "plan",
    ):
        assert text in html


def test_it_names_the_segments_the_customer_is_in(client, people):
    pro, free = property_segment("plan", "pro"), property_segment("plan", "free")
    client.force_login(people["staff"])
    html = client.get(f"/customers/{people['customer'].pk}/").content.decode()
    assert escape(pro.name) in html
    assert escape(free.name) not in html


def test_it_pages_by_cursor_without_gaps_or_repeats(people):
    customer = people["customer"]
    same_time = timezone.now() - timedelta(days=1)
    # Many entries at one instant: the cursor's kind and id must break the tie.
    Interaction.objects.bulk_create(
        Interaction(customer=customer, kind="visit", occurred_at=same_time)
        for _ in range(20)
    )
    for _ in range(5):
        invitation = InvitationFactory(customer=customer)
        Invitation.objects.filter(pk=invitation.pk).update(sent_at=same_time)
    client = api(people["staff"])
    whole = client.get(timeline_url(customer) + "?limit=200").json()["results"]
    seen, url = [], timeline_url(customer) + "?limit=7"
    while url:
        body = client.get(url).json()
        assert len(body["results"]) <= 7
        seen += body["results"]
        url = body["next"]
    assert [(e["kind"], e["id"]) for e in seen] == [(e["kind"], e["id"]) for e in whole]
    assert len(seen) == 20 + 5 + 2  # and the follow-up's opened and assigned
    keys = [(e["at"], e["kind"], e["id"]) for e in seen]
    assert keys == sorted(keys, reverse=True)


def _grow(customer, n: int) -> None:
    """Adds n interactions and n//10 invitations to the customer's history."""
    now = timezone.now()
    Interaction.objects.bulk_create(
        Interaction(
            customer=customer,
            kind="visit",
            channel="web",
            occurred_at=now - timedelta(minutes=i),
        )
        for i in range(n)
    )
    for _ in range(max(1, n // 100)):
        invitation = InvitationFactory(customer=customer)
        response_record(invitation=invitation, score=9, comment="Fine")


@pytest.mark.parametrize("who", ["agent", "staff"])
def test_it_reads_a_page_in_the_same_queries_at_10_and_1000_events(
    client, people, who, django_assert_num_queries
):
    user = people[who]
    small, large = people["customer"], CustomerFactory()
    followup_open_manual(customer=large, actor=people["staff"], team=people["seoul"])
    _grow(small, 10)
    _grow(large, 1000)
    client.force_login(user)
    counts = {}
    for customer in (small, large):
        for url in (f"/customers/{customer.pk}/", timeline_url(customer)):
            caller = api(user) if url.startswith("/api/") else client
            with CaptureQueriesContext(connection) as queries:
                assert caller.get(url).status_code == 200
            counts.setdefault(url.startswith("/api/"), []).append(len(queries))
    page, api_ = counts[False], counts[True]
    assert page[0] == page[1]
    assert api_[0] == api_[1]
    # Pinned: the session and user, the rule, the follow-ups' ids, the union; the
    # page adds the segments and the scores.
    with django_assert_num_queries(page[1]):
        client.get(f"/customers/{large.pk}/")
    assert page[1] <= 14 and api_[1] <= 10


def test_it_shows_a_customer_to_whom_the_rule_says(client, people, settings):
    customer = people["customer"]
    url = f"/customers/{customer.pk}/"
    for who, status in [
        ("agent", 200),
        ("manager", 200),
        ("other_manager", 200),
        ("staff", 200),
        ("busan_agent", 404),
        ("outsider", 403),
    ]:
        client.force_login(people[who])
        assert client.get(url).status_code == status, who
        assert api(people[who]).get(timeline_url(customer)).status_code == status, who
    client.logout()
    assert client.get(url).status_code == 302
    assert APIClient().get(timeline_url(customer)).status_code in (401, 403)

    settings.CUSTOMER_PAGES_ALL_AGENTS = True
    client.force_login(people["busan_agent"])
    assert client.get(url).status_code == 200
    client.force_login(people["outsider"])
    assert client.get(url).status_code == 403


def test_it_answers_404_for_a_customer_that_is_not(client, people):
    client.force_login(people["staff"])
    assert client.get("/customers/999999/").status_code == 404
    assert (
        api(people["staff"]).get("/api/customers/999999/timeline/").status_code == 404
    )


def test_it_shows_an_agent_only_the_followups_they_may_see(people):
    customer = people["customer"]
    busan = followup_open_manual(
        customer=customer, actor=people["staff"], team=people["busan"]
    )
    followup_add_note(followup=busan, actor=people["staff"], text="Busan secret")
    seen = {
        e["data"]["followup"]
        for e in api(people["agent"]).get(timeline_url(customer)).json()["results"]
        if e["kind"].startswith("followup")
    }
    assert seen == {people["followup"].pk}
    seen = {
        e["data"]["followup"]
        for e in api(people["staff"]).get(timeline_url(customer)).json()["results"]
        if e["kind"].startswith("followup")
    }
    assert seen == {people["followup"].pk, busan.pk}


@pytest.mark.parametrize(
    "query", ["cursor=nonsense", "cursor=WyJ4IiwiYiIsMV0", "limit=0", "limit=x"]
)
def test_it_refuses_a_bad_cursor_or_limit_with_a_400(client, people, query):
    customer = people["customer"]
    response = api(people["staff"]).get(timeline_url(customer) + "?" + query)
    assert response.status_code == 400
    assert response.json()
    if query.startswith("cursor"):
        client.force_login(people["staff"])
        page = client.get(f"/customers/{customer.pk}/?{query}")
        assert page.status_code == 400
        assert b"not a cursor" in page.content


def test_it_links_the_queue_the_followup_and_the_responses_to_the_customer(
    client, people
):
    customer = people["customer"]
    story(customer, people["staff"])
    link = f'href="/customers/{customer.pk}/"'
    assert customer.get_absolute_url() == f"/customers/{customer.pk}/"
    client.force_login(people["agent"])
    assert link in client.get("/followups/").content.decode()
    assert link in client.get(f"/followups/{people['followup'].pk}/").content.decode()
    client.force_login(people["manager"])
    responses = client.get("/responses/")
    assert responses.status_code == 200
    assert link in responses.content.decode()
