"""The campaign API's schedules: set, checked, sent, paused and stopped."""

from datetime import timedelta

import pytest
from django.utils import timezone

from surveys.models import Campaign, Invitation
from tests.factories import CampaignFactory, CustomerFactory, SurveyFactory

pytestmark = pytest.mark.django_db


def test_it_creates_a_spread_campaign_and_sends_it(api):
    CustomerFactory.create_batch(4, properties={"timezone": "Asia/Seoul"})
    r = api.post(
        "/api/campaigns/",
        {
            "name": "Spring",
            "survey": SurveyFactory().pk,
            "schedule": "spread",
            "starts_at": "2027-03-01T00:00:00Z",
            "window_days": 10,
            "window_weekdays": [1, 2, 3, 4, 5],
            "window_start_hour": 9,
            "window_end_hour": 11,
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["schedule"], body["window_weekdays"]) == ("spread", [1, 2, 3, 4, 5])
    assert (body["wave"], body["next_wave_at"]) == (0, None)

    r = api.post(f"/api/campaigns/{body['id']}/send/")

    assert r.json() == {"invitations": 4}
    assert len({i.due_at for i in Invitation.objects.all()}) == 4


def test_it_creates_a_campaign_without_a_schedule_as_before(api):
    r = api.post(
        "/api/campaigns/",
        {"name": "Q3", "survey": SurveyFactory().pk},
        format="json",
    )

    assert r.status_code == 201, r.content
    assert r.json()["schedule"] == "now"


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"schedule": "triggered", "trigger_kind": "purchase"}, "trigger_delay_hours"),
        (
            {
                "schedule": "spread",
                "window_days": 3,
                "window_start_hour": 11,
                "window_end_hour": 9,
            },
            "window_end_hour",
        ),
        ({"schedule": "at"}, "starts_at"),
        (
            {"schedule": "spread", "window_days": 3, "window_weekdays": [8]},
            "window_weekdays",
        ),
        ({"schedule": "recurring", "recur_every_days": "7"}, "recur_every_days"),
    ],
)
def test_it_answers_400_naming_the_field_of_a_schedule_that_cannot_work(
    api, fields, field
):
    r = api.post(
        "/api/campaigns/",
        {"name": "Bad", "survey": SurveyFactory().pk, **fields},
        format="json",
    )

    assert r.status_code == 400
    assert field in r.json()
    assert not Campaign.objects.exists()


def test_it_checks_a_changed_schedule_against_the_fields_it_keeps(api):
    campaign = CampaignFactory(
        schedule="triggered", trigger_kind="purchase", trigger_delay_hours=72
    )

    r = api.patch(
        f"/api/campaigns/{campaign.pk}/", {"trigger_delay_hours": 0}, format="json"
    )
    assert r.status_code == 400
    r = api.patch(
        f"/api/campaigns/{campaign.pk}/", {"trigger_delay_hours": 24}, format="json"
    )
    assert r.status_code == 200, r.content
    assert r.json()["trigger_delay_hours"] == 24


def test_it_pauses_resumes_and_stops_a_running_campaign(api):
    CustomerFactory()
    campaign = CampaignFactory(schedule="recurring", recur_every_days=30)
    assert api.post(f"/api/campaigns/{campaign.pk}/send/").status_code == 202
    assert api.get(f"/api/campaigns/{campaign.pk}/").json()["status"] == "running"

    for verb, status in (
        ("pause", "paused"),
        ("resume", "running"),
        ("stop", "stopped"),
    ):
        r = api.post(f"/api/campaigns/{campaign.pk}/{verb}/")
        assert r.status_code == 200, r.content
        assert r.json()["status"] == status

    r = api.post(f"/api/campaigns/{campaign.pk}/pause/")
    assert r.status_code == 409
    assert "paused" in r.json()["status"][0]


def test_it_answers_409_when_pausing_a_draft(api):
    campaign = CampaignFactory()

    r = api.post(f"/api/campaigns/{campaign.pk}/pause/")

    assert r.status_code == 409


def test_it_lets_an_agent_read_but_not_pause_a_campaign(agent_api):
    campaign = CampaignFactory()

    assert agent_api.get(f"/api/campaigns/{campaign.pk}/").status_code == 200
    assert agent_api.post(f"/api/campaigns/{campaign.pk}/pause/").status_code == 403


def test_it_answers_409_when_the_time_to_send_at_has_passed(api):
    CustomerFactory()
    campaign = CampaignFactory(
        schedule="at", starts_at=timezone.now() - timedelta(minutes=5)
    )

    r = api.post(f"/api/campaigns/{campaign.pk}/send/")

    assert r.status_code == 409
    assert "passed" in r.json()["starts_at"][0]
    assert not Invitation.objects.exists()
