import pytest

from cxm.customers.models import Customer
from journeys.models import Journey
from surveys.models import Campaign, CampaignStatus, Survey
from surveys.services import campaign_send, response_record
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    InvitationFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_it_gives_a_survey_added_in_the_admin_its_nps_questions(admin_client):
    r = admin_client.post(
        "/admin/surveys/survey/add/",
        {
            "name": "Post-purchase NPS",
            "kind": "nps",
            "questions-TOTAL_FORMS": "0",
            "questions-INITIAL_FORMS": "0",
        },
    )
    assert r.status_code == 302
    survey = Survey.objects.get(name="Post-purchase NPS")
    assert [q.kind for q in survey.questions.all()] == ["score", "comment"]


def test_it_sends_campaigns_from_the_admin_action(
    admin_client, django_capture_on_commit_callbacks
):
    CustomerFactory.create_batch(3)
    campaign = CampaignFactory()
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_client.post(
            "/admin/surveys/campaign/",
            {"action": "send", "_selected_action": [campaign.pk]},
            follow=True,
        )
    assert "3 invitations queued" in r.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT  # eager Celery delivered all three
    assert campaign.invitations.filter(status="sent").count() == 3

    r = admin_client.post(
        "/admin/surveys/campaign/",
        {"action": "send", "_selected_action": [campaign.pk]},
        follow=True,
    )
    assert "already sent" in r.content.decode()
    assert campaign.invitations.count() == 3


def test_it_shows_the_nps_on_the_campaign(admin_client):
    campaign = CampaignFactory()
    CustomerFactory.create_batch(4)
    campaign_send(campaign=campaign)
    for invitation, score in zip(
        campaign.invitations.all(), [10, 9, 7, 3], strict=True
    ):
        response_record(invitation=invitation, score=score)
    html = admin_client.get(f"/admin/surveys/campaign/{campaign.pk}/change/").content
    assert "25.0 ± 81.3 from 4 responses: 2 promoters, 1 passives, 1 detractors" in (
        html.decode()
    )


def test_it_lists_campaigns_in_constant_queries(
    admin_client, django_assert_num_queries
):
    CampaignFactory()
    with django_assert_num_queries(6) as few:
        admin_client.get("/admin/surveys/campaign/")
    CampaignFactory.create_batch(5)
    with django_assert_num_queries(len(few.captured_queries)):
        r = admin_client.get("/admin/surveys/campaign/")
    assert r.content.decode().count('class="field-nps"') == Campaign.objects.count()


def test_it_finds_customers_by_email_in_the_admin(admin_client):
    CustomerFactory(email="mina@example.com")
    CustomerFactory(email="joon@example.com")
    html = admin_client.get("/admin/customers/customer/?q=mina").content.decode()
    assert "mina@example.com" in html and "joon@example.com" not in html


def test_it_builds_a_journey_with_ordered_stages_in_the_admin(admin_client):
    r = admin_client.post(
        "/admin/journeys/journey/add/",
        {
            "name": "Online shopper",
            "description": "",
            "stages-TOTAL_FORMS": "2",
            "stages-INITIAL_FORMS": "0",
            "stages-0-name": "Purchase",
            "stages-0-position": "3",
            "stages-1-name": "Awareness",
            "stages-1-position": "1",
        },
    )
    assert r.status_code == 302
    journey = Journey.objects.get()
    assert [s.name for s in journey.stages.all()] == ["Awareness", "Purchase"]


def test_it_assigns_through_the_service_when_the_owner_changes_in_the_admin(
    admin_client, mailoutbox, django_capture_on_commit_callbacks
):
    from cxm.followups.models import EventKind
    from tests.factories import agent

    first, second = agent(), agent()
    followup = response_record(invitation=InvitationFactory(), score=1).followup
    assert followup.owner == first
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_client.post(
            f"/admin/followups/followup/{followup.pk}/change/",
            {
                "response": followup.response_id,
                "owner": second.pk,
                "priority": "high",
                "events-TOTAL_FORMS": "0",
                "events-INITIAL_FORMS": "0",
            },
        )
    assert r.status_code == 302
    followup.refresh_from_db()
    assert followup.owner == second
    assert (
        followup.events.filter(kind=EventKind.ASSIGNED).last().text == second.username
    )
    assert [m.to for m in mailoutbox] == [[second.email]]


def test_it_freezes_the_audience_of_a_sent_campaign(admin_client):
    campaign = CampaignFactory()
    campaign_send(campaign=campaign)
    html = admin_client.get(f"/admin/surveys/campaign/{campaign.pk}/change/").content
    assert 'name="audience"' not in html.decode()


def test_it_passes_djangos_system_checks():
    """manage.py check runs before migrate and runserver: an error stops make run."""
    from django.core.management import call_command

    call_command("check", fail_level="WARNING")


def test_it_lists_follow_ups_with_their_score(admin_client):
    followup = response_record(invitation=InvitationFactory(), score=2).followup
    r = admin_client.get("/admin/followups/followup/")
    assert r.status_code == 200
    row = r.context["cl"].result_list
    assert list(row) == [followup]
    assert '<td class="field-score">2</td>' in r.content.decode()


@pytest.mark.parametrize(
    "properties, message",
    [
        ('{"score": NaN}', "Numbers must be finite."),
        ('{"plan": "pro\\u0000"}', "Text must not contain NUL"),
        ('["pro"]', "Expected an object"),
    ],
)
def test_it_refuses_customer_properties_the_database_cannot_store(
    admin_client, properties, message
):
    r = admin_client.post(
        "/admin/customers/customer/add/",
        {
            "email": "kim@example.com",
            "name": "Kim",
            "locale": "ko",
            "properties": properties,
        },
    )
    assert r.status_code == 200
    assert message in str(r.context["adminform"].form.errors["properties"])
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "audience, message",
    [
        ('{"spend": Infinity}', "Numbers must be finite."),
        ('{"plan": "pro\\u0000"}', "Text must not contain NUL"),
    ],
)
def test_it_refuses_an_audience_the_database_cannot_store(
    admin_client, audience, message
):
    survey = Survey.objects.create(name="NPS", kind="nps")
    r = admin_client.post(
        "/admin/surveys/campaign/add/",
        {"name": "Spring", "survey": survey.pk, "audience": audience},
    )
    assert r.status_code == 200
    assert message in str(r.context["adminform"].form.errors["audience"])
    assert not Campaign.objects.exists()
