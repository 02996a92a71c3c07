from datetime import timedelta

import pytest
from django.utils import timezone

from surveys.models import Invitation, InvitationStatus, Response
from tests.factories import CampaignFactory, InvitationFactory, agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def invitation():
    return InvitationFactory(status=InvitationStatus.SENT)


def answer_url(invitation, suffix=""):
    return f"/s/{invitation.token}/{suffix}"


def test_it_preselects_the_score_from_the_email_link(client, invitation):
    r = client.get(answer_url(invitation) + "?score=3")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="score-3" value="3" checked' in html
    assert html.count(" checked") == 1
    assert "How likely are you to recommend" in html


def test_it_records_nothing_on_get(client, invitation):
    client.get(answer_url(invitation) + "?score=0")
    client.head(answer_url(invitation) + "?score=0")
    invitation.refresh_from_db()
    assert not Response.objects.exists()
    assert invitation.status == InvitationStatus.SENT


def test_it_records_the_answer_on_post_before_thanking(client, invitation):
    r = client.post(answer_url(invitation), {"score": "9", "comment": " Great "})
    assert r.status_code == 302
    assert r["Location"] == answer_url(invitation, "thanks/")
    response = Response.objects.get(invitation=invitation)
    assert (response.score, response.comment) == (9, "Great")
    thanks = client.get(r["Location"])
    assert "Thank you for your feedback" in thanks.content.decode()


def test_it_updates_the_same_response_when_answering_again(client, invitation):
    client.post(answer_url(invitation), {"score": "9"})
    page = client.get(answer_url(invitation)).content.decode()
    assert "You answered on " in page
    assert 'value="9" checked' in page
    client.post(answer_url(invitation), {"score": "4", "comment": "changed my mind"})
    assert Response.objects.filter(invitation=invitation).count() == 1
    assert Response.objects.get().score == 4


@pytest.mark.parametrize("score", ["11", "-1", "abc", "", "3.5"])
def test_it_shows_the_form_again_for_a_bad_score_and_saves_nothing(
    client, invitation, score
):
    r = client.post(answer_url(invitation), {"score": score, "comment": "kept?"})
    assert r.status_code == 400
    html = r.content.decode()
    assert 'class="field-error" id="score-error"' in html
    assert 'aria-invalid="true" aria-describedby="score-error"' in html
    assert "kept?" in html  # the comment is not lost from the form
    assert not Response.objects.exists()


def test_it_shows_a_friendly_404_for_an_unknown_token(client):
    for url in ["/s/not-a-token/", "/s/not-a-token/thanks/", "/s/x/unsubscribe/"]:
        r = client.get(url)
        assert r.status_code == 404
        assert "We could not find this survey" in r.content.decode()


def test_it_refuses_answers_after_the_campaign_expired(client):
    campaign = CampaignFactory(expires_at=timezone.now() - timedelta(minutes=1))
    invitation = InvitationFactory(campaign=campaign)
    assert client.get(answer_url(invitation)).status_code == 410
    r = client.post(answer_url(invitation), {"score": "3"})
    assert r.status_code == 410
    assert "This survey is closed" in r.content.decode()
    assert not Response.objects.exists()


def test_it_opens_a_followup_when_a_detractor_answers_on_the_page(client, invitation):
    owner = agent()
    client.post(answer_url(invitation), {"score": "2", "comment": "slow delivery"})
    followup = Response.objects.get().followup
    assert followup.owner == owner


def test_it_speaks_the_customers_language(client):
    invitation = InvitationFactory(customer__locale="ko")
    r = client.get(answer_url(invitation), HTTP_ACCEPT_LANGUAGE="en")
    assert r["Content-Language"] == "ko"
    assert '<html lang="ko">' in r.content.decode()
    assert "추천" in r.content.decode()


def test_it_unsubscribes_only_on_post(client, invitation):
    r = client.get(answer_url(invitation, "unsubscribe/"))
    assert r.status_code == 200
    invitation.customer.refresh_from_db()
    assert invitation.customer.unsubscribed_at is None
    r = client.post(answer_url(invitation, "unsubscribe/"))
    assert "You are unsubscribed" in r.content.decode()
    invitation.customer.refresh_from_db()
    assert invitation.customer.unsubscribed_at is not None


def test_it_renders_the_answer_page_in_constant_queries(
    client, invitation, django_assert_max_num_queries
):
    with django_assert_max_num_queries(4):
        client.get(answer_url(invitation))
    assert Invitation.objects.count() == 1


def test_it_records_a_detractors_answer_and_follow_up_in_few_statements(
    client, invitation, django_assert_num_queries
):
    """The invitation (its survey's questions are known to the process already);
    in one transaction (a savepoint here): the invitation marked answered, the
    response, its answers, an agent's turn taken and moved on, the follow-up and its
    timeline; and the follow-up rules, read once. 21 statements before survey kinds."""
    agent()
    other = InvitationFactory(campaign=invitation.campaign)
    client.post(answer_url(other), {"score": "9"})  # a promoter first
    with django_assert_num_queries(11):
        r = client.post(answer_url(invitation), {"score": "2", "comment": "late"})
    assert r.status_code == 302
    assert Response.objects.get(invitation=invitation).followup.owner is not None
