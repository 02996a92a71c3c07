"""Who may use the API: CX staff by token or session (agents change only follow-ups)."""

import pytest
from rest_framework.test import APIClient

from cxm.customers.models import Customer
from cxm.followups.models import EventKind, FollowUp, FollowUpStatus
from surveys.models import Campaign, CampaignStatus, Survey
from tests.api.helpers import answer
from tests.factories import CampaignFactory, CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects():
    customer = CustomerFactory()
    campaign = CampaignFactory()
    response = answer(2, campaign=campaign)
    return {
        "customer": customer.pk,
        "survey": campaign.survey_id,
        "campaign": campaign.pk,
        "invitation": response.invitation_id,
        "response": response.pk,
        "followup": response.followup.pk,
    }


def endpoints(ids) -> list[tuple[str, str, dict | None]]:
    """Every operation of the API, as (method, path, body)."""
    return [
        ("get", "/api/", None),
        ("get", "/api/schema/", None),
        ("get", "/api/docs/", None),
        ("get", "/api/customers/", None),
        ("post", "/api/customers/", {"email": "new@example.com"}),
        ("get", f"/api/customers/{ids['customer']}/", None),
        ("put", f"/api/customers/{ids['customer']}/", {"email": "x@example.com"}),
        ("patch", f"/api/customers/{ids['customer']}/", {"name": "X"}),
        ("delete", f"/api/customers/{ids['customer']}/", None),
        ("get", "/api/surveys/", None),
        ("post", "/api/surveys/", {"name": "New", "kind": "nps"}),
        ("get", f"/api/surveys/{ids['survey']}/", None),
        ("get", "/api/campaigns/", None),
        ("post", "/api/campaigns/", {"name": "New", "survey": ids["survey"]}),
        ("get", f"/api/campaigns/{ids['campaign']}/", None),
        ("put", f"/api/campaigns/{ids['campaign']}/", {"name": "X", "survey": 1}),
        ("patch", f"/api/campaigns/{ids['campaign']}/", {"name": "X"}),
        ("post", f"/api/campaigns/{ids['campaign']}/send/", None),
        ("get", "/api/invitations/", None),
        ("get", f"/api/invitations/{ids['invitation']}/", None),
        ("get", "/api/responses/", None),
        ("get", f"/api/responses/{ids['response']}/", None),
        ("get", "/api/followups/", None),
        ("get", f"/api/followups/{ids['followup']}/", None),
        ("patch", f"/api/followups/{ids['followup']}/", {"note": "Called back."}),
        ("patch", f"/api/followups/{ids['followup']}/", {"status": "resolved"}),
        ("get", "/api/metrics/nps/", None),
    ]


def call(client, method, path, body):
    return getattr(client, method)(path, body, format="json")


def assert_nothing_changed(ids):
    assert Customer.objects.filter(pk=ids["customer"]).exists()
    assert not Customer.objects.filter(email="new@example.com").exists()
    assert Survey.objects.count() == 1
    campaign = Campaign.objects.get()
    assert campaign.status == CampaignStatus.DRAFT
    assert campaign.name != "X"
    followup = FollowUp.objects.get(pk=ids["followup"])
    assert followup.status == FollowUpStatus.NEW
    assert not followup.events.filter(kind=EventKind.NOTE).exists()


def test_it_answers_401_to_anonymous_visitors_on_every_endpoint(anonymous_api, objects):
    for method, path, body in endpoints(objects):
        r = call(anonymous_api, method, path, body)
        assert r.status_code == 401, (method, path, r.status_code)
    assert_nothing_changed(objects)


def test_it_answers_403_to_users_outside_cx_on_every_endpoint(outsider_api, objects):
    for method, path, body in endpoints(objects):
        r = call(outsider_api, method, path, body)
        assert r.status_code == 403, (method, path, r.status_code)
    assert_nothing_changed(objects)


def test_it_refuses_a_wrong_token(objects):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/customers/").status_code == 401


def test_it_lets_staff_in_with_a_token(api, objects):
    for path in ["/api/", "/api/customers/", "/api/followups/", "/api/schema/"]:
        assert api.get(path).status_code == 200, path


def test_it_lets_a_cx_agent_in_with_a_session_and_act_on_followups(
    agent_api, cx_agent, objects
):
    for method, path, _body in endpoints(objects):
        if method == "get":
            r = agent_api.get(path)
            assert r.status_code == 200, (path, r.status_code)
    r = agent_api.patch(
        f"/api/followups/{objects['followup']}/",
        {"owner": cx_agent.pk, "note": "Mine."},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["owner"] == cx_agent.pk
    assert r.json()["status"] == FollowUpStatus.NEW


def test_it_keeps_customers_surveys_and_campaigns_read_only_for_cx_agents(
    agent_api, objects
):
    """Agents work follow-ups; building surveys and sending campaigns is staff's."""
    writes = [
        (method, path, body)
        for method, path, body in endpoints(objects)
        if method != "get" and not path.startswith("/api/followups/")
    ]
    assert writes
    for method, path, body in writes:
        r = call(agent_api, method, path, body)
        assert r.status_code == 403, (method, path, r.status_code)
    assert_nothing_changed(objects)


def test_it_answers_401_to_a_token_with_a_nul_byte(objects):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token abc\x00def")
    r = client.get("/api/customers/")
    assert r.status_code == 401
    assert r.json() == {"detail": "Invalid token."}
