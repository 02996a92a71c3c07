"""Segments over the API, and the audience a campaign would invite."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.customers.models import Segment
from cxm.customers.services import segment_create
from surveys.models import Invitation
from tests.api.helpers import page_ids
from tests.factories import CampaignFactory, CustomerFactory

pytestmark = pytest.mark.django_db

PRO = {"type": "property", "name": "plan", "op": "equals", "value": "pro"}


def test_it_creates_a_segment_and_counts_its_customers(api):
    ann = CustomerFactory(properties={"plan": "pro"})
    CustomerFactory(properties={"plan": "pro"}, unsubscribed_at=timezone.now())
    CustomerFactory(properties={"plan": "free"})

    r = api.post(
        "/api/segments/",
        {"name": "Pro", "match": "all", "conditions": [PRO]},
        format="json",
    )

    assert r.status_code == 201, r.content
    segment = Segment.objects.get()
    assert r.json()["conditions"] == [PRO]
    count = api.get(f"/api/segments/{segment.pk}/count/")
    assert count.json() == {"customers": 2, "contactable": 1}
    members = api.get(f"/api/segments/{segment.pk}/customers/")
    assert ann.pk in page_ids(members) and len(page_ids(members)) == 2


def test_it_creates_a_segment_of_everyone_without_conditions(api):
    r = api.post("/api/segments/", {"name": "Everyone"}, format="json")

    assert r.status_code == 201, r.content
    assert Segment.objects.get().conditions == []


def test_it_names_the_bad_condition_in_a_400(api):
    r = api.post(
        "/api/segments/",
        {"name": "Bad", "conditions": [PRO, {"type": "interaction", "kind": "x"}]},
        format="json",
    )

    assert r.status_code == 400
    assert r.json() == {
        "conditions": ["Condition 2: This condition needs within_days."]
    }
    assert not Segment.objects.exists()


def test_it_answers_409_to_a_second_segment_of_one_name(api):
    segment_create(name="Pro", conditions=[PRO])

    r = api.post("/api/segments/", {"name": "Pro", "conditions": []}, format="json")

    assert r.status_code == 409
    assert r.json() == {"name": ["A segment with this name already exists."]}


def test_it_keeps_a_segment_a_campaign_targets(api):
    segment = segment_create(name="Pro", conditions=[PRO])
    CampaignFactory(segment=segment)

    r = api.delete(f"/api/segments/{segment.pk}/")

    assert r.status_code == 409
    assert "Campaigns target this segment" in r.json()["detail"]
    assert Segment.objects.exists()


def test_it_previews_whom_a_campaign_would_invite_and_why_not(api):
    pro = {"plan": "pro"}
    CustomerFactory.create_batch(3, properties=pro)
    CustomerFactory(properties=pro, unsubscribed_at=timezone.now())
    CustomerFactory(properties=pro, bounced_at=timezone.now())
    CustomerFactory(
        properties=pro, bounced_at=timezone.now(), unsubscribed_at=timezone.now()
    )
    invited_before = CustomerFactory(properties=pro)
    CustomerFactory(properties={"plan": "free"})
    campaign = CampaignFactory(segment=segment_create(name="Pro", conditions=[PRO]))
    Invitation.objects.create(campaign=campaign, customer=invited_before)

    r = api.get(f"/api/campaigns/{campaign.pk}/audience/")

    assert r.status_code == 200, r.content
    assert r.json() == {
        "audience": 7,
        "invited": 3,
        "excluded": {
            "unsubscribed": 2,
            "bounced": 1,
            "complained": 0,
            "already_invited": 1,
            "recently_contacted": 0,
        },
    }


def test_it_previews_whom_the_contact_frequency_would_hold_back(api, settings):
    settings.CONTACT_FREQUENCY_DAYS = 30
    pro = {"plan": "pro"}
    recent, old, fresh = CustomerFactory.create_batch(3, properties=pro)
    earlier = CampaignFactory()
    now = timezone.now()
    for customer, days_ago in [(recent, 3), (old, 45)]:
        Invitation.objects.create(
            campaign=earlier,
            customer=customer,
            status="sent",
            sent_at=now - timedelta(days=days_ago),
        )
    campaign = CampaignFactory(segment=segment_create(name="Pro", conditions=[PRO]))

    preview = api.get(f"/api/campaigns/{campaign.pk}/audience/").json()
    assert preview["invited"] == 2
    assert preview["excluded"]["recently_contacted"] == 1

    campaign.contact_frequency_days = 0  # this campaign asks for no limit
    campaign.save(update_fields=["contact_frequency_days"])
    preview = api.get(f"/api/campaigns/{campaign.pk}/audience/").json()
    assert preview["invited"] == 3
    assert preview["excluded"]["recently_contacted"] == 0


def test_it_previews_in_one_query_for_any_segment(api, django_assert_num_queries):
    campaign = CampaignFactory(segment=segment_create(name="Pro", conditions=[PRO]))
    CustomerFactory.create_batch(5, properties={"plan": "pro"})
    # the token with its user, the campaign, its segment, the counts
    with django_assert_num_queries(4):
        r = api.get(f"/api/campaigns/{campaign.pk}/audience/")
    assert r.json()["invited"] == 5


def test_it_lets_agents_read_segments_but_not_change_them(agent_api):
    segment = segment_create(name="Pro", conditions=[PRO])

    assert agent_api.get(f"/api/segments/{segment.pk}/count/").status_code == 200
    r = agent_api.patch(
        f"/api/segments/{segment.pk}/", {"conditions": []}, format="json"
    )
    assert r.status_code == 403
    segment.refresh_from_db()
    assert segment.conditions == [PRO]
