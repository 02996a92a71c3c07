import pytest
from django.test import Client

from surveys.models import InvitationStatus, Response
from tests.factories import InvitationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def invitation():
    return InvitationFactory(status=InvitationStatus.SENT, customer__locale="en")


def answer_url(invitation, suffix=""):
    return f"/s/{invitation.token}/{suffix}"


@pytest.mark.parametrize(
    "url", ["/s/%00/", "/s/a%00b/thanks/", "/s/%00/unsubscribe/", "/s/%00/?score=3"]
)
def test_it_shows_the_unknown_link_page_for_a_nul_byte_in_the_token(client, url):
    for r in [client.get(url), client.post(url, {"score": "3"})]:
        assert r.status_code == 404
        assert "We could not find this survey" in r.content.decode()
    assert not Response.objects.exists()


@pytest.mark.parametrize("score", ["²", "٣", "１", "1" * 5000])
def test_it_treats_a_score_of_other_digits_like_any_bad_score(
    client, invitation, score
):
    r = client.get(answer_url(invitation), {"score": score})
    assert r.status_code == 200
    html = r.content.decode()
    assert "How likely are you to recommend" in html
    assert " checked" not in html

    r = client.post(answer_url(invitation), {"score": score, "comment": "kept?"})
    assert r.status_code == 400
    html = r.content.decode()
    assert 'class="field-error"' in html
    assert "kept?" in html
    assert not Response.objects.exists()


def test_it_asks_to_open_a_stale_answer_page_again(invitation):
    client = Client(enforce_csrf_checks=True)
    r = client.post(answer_url(invitation), {"score": "9"})
    assert r.status_code == 403
    html = r.content.decode()
    assert "This page has expired" in html
    assert f'<a href="/s/{invitation.token}/">Open the page again</a>' in html
    assert "CSRF" not in html
    assert not Response.objects.exists()


def test_it_asks_in_the_customers_language(invitation):
    invitation.customer.locale = "ko"
    invitation.customer.save()
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    r = client.post(answer_url(invitation, "more/"), {"comment": "late"})
    assert r.status_code == 403
    assert r["Content-Language"] == "ko"
    html = r.content.decode()
    assert '<html lang="ko">' in html
    assert f'href="/s/{invitation.token}/more/"' in html
    assert not Response.objects.exists()


@pytest.mark.parametrize("url", ["/s/not-a-token/", "/s/%00/"])
def test_it_asks_in_the_browsers_language_for_an_unknown_link(url):
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="ko")
    r = client.post(url, {"score": "9"})
    assert r.status_code == 403
    assert r["Content-Language"] == "ko"
    assert '<html lang="ko">' in r.content.decode()
