"""
The headers every kind of page sends: a strict Content-Security-Policy (no inline
script or style; a nonce where a staff page needs one; the outbox's email framed
under a policy of its own), Permissions-Policy, `Cache-Control: no-store` wherever a
customer's data is shown, Referrer-Policy; and HTTPS behind a proxy.

tests/browser/test_csp.py shows the pages working under the policy in Chromium.
"""

import re

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from cxm.outbox.backends import EmailBackend
from cxm.outbox.models import OutboxEmail
from surveys.services import invitation_message, response_record
from tests.factories import InvitationFactory, UserFactory, agent

pytestmark = pytest.mark.django_db

STRICT = {
    "default-src": ["'none'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "manifest-src": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'none'"],
}
FEATURES_OFF = ["camera", "microphone", "geolocation", "payment", "usb"]
# A script without src, a style element, a style attribute, an event handler. Data
# from json_script (type="application/json") is never run, so the policy allows it.
INLINE = re.compile(
    r"<script(?![^>]*\s(src=|type=\"application/json\"))|<style|\sstyle=|\son[a-z]+=",
    re.I,
)


def policy(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [source, …]}."""
    header = response.headers["Content-Security-Policy"]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


def nonce_of(response) -> str:
    sources = policy(response)["script-src"]
    [nonce] = [s for s in sources if s.startswith("'nonce-")]
    return nonce.removeprefix("'nonce-").removesuffix("'")


@pytest.fixture
def answered():
    """An invitation whose customer gave a score and a comment."""
    invitation = InvitationFactory(customer__email="mina@example.com")
    response_record(invitation=invitation, score=3, comment="Late again")
    return invitation


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def email(answered):
    EmailBackend().send_messages([invitation_message(invitation=answered)])
    return OutboxEmail.objects.get()


def customer_pages(invitation) -> list[str]:
    base = f"/s/{invitation.token}/"
    return [base, f"{base}more/", f"{base}thanks/", f"{base}unsubscribe/"]


def staff_pages(invitation, email) -> list[str]:
    followup = invitation.response.followup
    return [
        "/followups/",
        f"/followups/{followup.pk}/",
        "/dashboard/",
        "/outbox/",
        f"/outbox/{email.pk}/",
        f"/outbox/{email.pk}/html/",
        "/admin/surveys/response/",
        f"/admin/surveys/response/{invitation.response.pk}/change/",
        f"/admin/customers/customer/{invitation.customer.pk}/change/",
    ]


def api_paths(invitation) -> list[str]:
    return [
        "/api/customers/",
        f"/api/customers/{invitation.customer.pk}/",
        "/api/responses/",
        f"/api/responses/{invitation.response.pk}/",
        "/api/followups/",
        "/api/metrics/nps/",
    ]


def test_it_forbids_any_inline_script_or_style_on_the_customer_pages(client, answered):
    closed = InvitationFactory(campaign__expires_at="2000-01-01T00:00:00Z")
    pages = [*customer_pages(answered), f"/s/{closed.token}/", "/s/nope/", "/nope/"]
    for path in pages:
        response = client.get(path)
        assert response.status_code in (200, 404, 410), path

        assert policy(response) == STRICT, path
        assert not INLINE.search(response.text), path


def test_it_keeps_the_policy_strict_on_a_customer_page_sent_back(client):
    invitation = InvitationFactory()

    response = client.post(f"/s/{invitation.token}/", {"score": "eleven"})

    assert response.status_code == 400
    assert policy(response) == STRICT


def test_it_gives_the_staff_pages_the_same_strict_policy(staff_client, answered):
    followup = answered.response.followup
    pages = ["/followups/", f"/followups/{followup.pk}/", "/dashboard/", "/outbox/"]
    for path in [*pages, "/admin/"]:
        response = staff_client.get(path)
        assert response.status_code == 200, path
        assert policy(response) == STRICT, path
        assert not INLINE.search(response.text), path


def test_it_gives_the_api_docs_a_fresh_nonce_for_their_inline_style_and_script(
    staff_client,
):
    first = staff_client.get("/api/docs/")
    second = staff_client.get("/api/docs/")

    nonce = nonce_of(first)
    assert nonce != nonce_of(second)
    assert policy(first)["style-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert policy(first)["script-src"] == ["'self'", f"'nonce-{nonce}'"]
    html = first.text
    inline = re.findall(r"<(script|style)( nonce=\"[^\"]*\")?>", html)
    assert inline == [("style", f' nonce="{nonce}"'), ("script", f' nonce="{nonce}"')]


def test_it_lets_only_the_outbox_page_frame_its_email(staff_client, email):
    detail = staff_client.get(f"/outbox/{email.pk}/")
    assert policy(detail) == {**STRICT, "frame-src": ["'self'"]}
    assert f'src="/outbox/{email.pk}/html/"' in detail.text
    assert "srcdoc" not in detail.text  # a srcdoc frame takes the page's policy

    frame = staff_client.get(f"/outbox/{email.pk}/html/")
    assert frame["X-Frame-Options"] == "SAMEORIGIN"
    assert policy(frame) == {
        "default-src": ["'none'"],  # no script
        "style-src": ["'unsafe-inline'"],
        "img-src": ["'self'", "https:", "data:"],
        "frame-ancestors": ["'self'"],
        "form-action": ["'none'"],
        "sandbox": [
            "allow-popups",
            "allow-popups-to-escape-sandbox",
            "allow-top-navigation-by-user-activation",
        ],
    }
    # Links open in a new tab; the email is otherwise as sent.
    assert frame.text.count('<base target="_blank">') == 1
    assert re.search(r"<head[^>]*><base target=\"_blank\">", frame.text)
    assert frame.text.replace('<base target="_blank">', "") == email.body_html


def test_it_shows_the_framed_email_to_staff_accounts_only(client, email):
    path = f"/outbox/{email.pk}/html/"

    assert client.get(path).status_code == 302  # to the login page
    client.force_login(agent())
    assert client.get(path).status_code == 403


def test_it_allows_style_attributes_on_the_browsable_api_only(staff_client):
    browsable = staff_client.get("/api/customers/", HTTP_ACCEPT="text/html")
    as_json = staff_client.get("/api/customers/", HTTP_ACCEPT="application/json")

    assert browsable["Content-Type"].startswith("text/html")
    assert policy(browsable) == {**STRICT, "style-src": ["'self'", "'unsafe-inline'"]}
    assert policy(as_json) == STRICT


def test_it_turns_off_the_browser_features_on_every_response(
    staff_client, answered, email
):
    anonymous = Client()
    responses = [
        *(anonymous.get(path) for path in customer_pages(answered)),
        anonymous.get("/followups/"),  # a redirect to log in
        anonymous.get("/accounts/login/"),
        anonymous.get("/nope/"),
        anonymous.get("/brand.css"),
        anonymous.get("/api/customers/"),  # refused
        *(staff_client.get(path) for path in staff_pages(answered, email)),
        *(staff_client.get(path) for path in api_paths(answered)),
    ]
    for response in responses:
        features = dict(
            feature.strip().split("=")
            for feature in response["Permissions-Policy"].split(",")
        )
        for feature in FEATURES_OFF:
            assert features[feature] == "()", (response.wsgi_request.path, feature)


def test_it_never_stores_a_page_with_a_customers_data(staff_client, answered, email):
    anonymous = Client()
    responses = {path: anonymous.get(path) for path in customer_pages(answered)} | {
        "unsubscribe POST": anonymous.post(f"/s/{answered.token}/unsubscribe/"),
        "answer POST": anonymous.post(f"/s/{answered.token}/", {"score": "x"}),
    }
    responses |= {path: staff_client.get(path) for path in staff_pages(answered, email)}
    token = Token.objects.create(user=UserFactory(is_staff=True))
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    responses |= {path: api.get(path) for path in api_paths(answered)}

    for name, response in responses.items():
        assert response.status_code == 200 or name.endswith("POST"), name
        assert "no-store" in response["Cache-Control"], name
    # What the staff opened showed the customer's data.
    assert "mina@example.com" in responses[f"/outbox/{email.pk}/"].text
    assert "Late again" in responses["/followups/"].text


def test_it_keeps_the_brand_stylesheet_cacheable(client):
    response = client.get("/brand.css")

    assert response["Cache-Control"] == "max-age=3600, public"


def test_it_sends_no_referrer_to_other_sites(client, answered):
    """An answer page's address carries the customer's token."""
    response = client.get(f"/s/{answered.token}/thanks/")

    assert response["Referrer-Policy"] == "same-origin"


@pytest.fixture
def https_behind_a_proxy(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 365 * 24 * 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True


def test_it_redirects_plain_http_to_https(client, https_behind_a_proxy, answered):
    response = client.get(f"/s/{answered.token}/", HTTP_X_FORWARDED_PROTO="http")

    assert response.status_code == 301
    assert response["Location"] == f"https://testserver/s/{answered.token}/"


def test_it_serves_https_from_behind_a_proxy_with_hsts(
    client, https_behind_a_proxy, answered
):
    response = client.get(f"/s/{answered.token}/", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )
