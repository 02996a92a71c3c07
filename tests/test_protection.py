"""
The protections of a site on the open internet: login lockouts (django-axes), a 429
after too many wrong links from one address or one-click posts of one link, the API's
throttle per token; and that none of them gets in a legitimate user's way.

tests/conftest.py gives each test cache keys of its own and sets the limits the
suite would otherwise trip high; the tests here set them low again.
"""

import json
import os
import subprocess
import sys

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client, RequestFactory
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cxm.customers.models import Customer
from cxm.throttling import client_address, client_network
from surveys.models import Response
from tests.factories import InvitationFactory, UserFactory, agent

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # the factories' password
LOGINS = ["/accounts/login/", "/admin/login/"]
WRONG_LINKS = [
    "/s/{token}/",
    "/s/{token}/more/",
    "/s/{token}/thanks/",
    "/s/{token}/unsubscribe/",
]


@pytest.fixture(autouse=True)
def limits(settings):
    """Low limits, so that a test trips one in a few requests."""
    settings.AXES_FAILURE_LIMIT = 3
    settings.TOKEN_MISS_RATE = "3/h"
    settings.UNSUBSCRIBE_RATE = "2/h"
    settings.API_THROTTLE_RATE = "3/m"


def log_in(client, url, username, password, *, address="203.0.113.7", **headers):
    return client.post(
        url,
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        **headers,
    )


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# Login protection


@pytest.mark.parametrize("url", LOGINS)
def test_it_locks_an_account_out_after_failures_from_any_address(client, url):
    staff = UserFactory(username="mina", is_staff=True)
    for n in range(2):
        r = log_in(client, url, "mina", "guess", address=f"198.51.100.{n}")
        assert r.status_code == 200  # the form again, with its error

    r = log_in(client, url, "mina", "guess", address="198.51.100.9")
    assert r.status_code == 429
    assert "Log-in paused" in r.content.decode()

    # The account is locked from every address, even with its password.
    r = log_in(client, url, "mina", PASSWORD, address="192.0.2.50")
    assert r.status_code == 429
    assert "logging in is paused for 15 minutes" in r.content.decode()
    assert r["Retry-After"] == str(15 * 60)
    assert not logged_in(client)
    staff.refresh_from_db()
    assert staff.last_login is None


@pytest.mark.parametrize("url", LOGINS)
def test_it_locks_an_address_out_after_failures_at_many_accounts(client, url):
    UserFactory(username="mina", is_staff=True)
    for name in ["ana", "bo", "cy"]:
        r = log_in(client, url, name, "guess", address="198.51.100.1")
    assert r.status_code == 429

    r = log_in(client, url, "mina", PASSWORD, address="198.51.100.1")
    assert r.status_code == 429 and not logged_in(client)

    # The same account from another address is not locked.
    r = log_in(client, url, "mina", PASSWORD, address="192.0.2.50")
    assert r.status_code == 302 and logged_in(client)


def test_it_tells_a_locked_out_visitor_in_korean(client):
    UserFactory(username="mina")
    for _ in range(3):
        r = log_in(
            client, "/accounts/login/", "mina", "guess", HTTP_ACCEPT_LANGUAGE="ko"
        )

    assert r.status_code == 429
    html = r.content.decode()
    assert '<html lang="ko">' in html
    assert "로그인 일시 중지" in html
    assert 'href="/accounts/login/"' in html


def test_it_lets_an_agent_who_mistyped_once_log_in(client):
    agent(username="mina")
    r = log_in(client, "/accounts/login/", "mina", "correct horse batery")
    assert r.status_code == 200 and not logged_in(client)

    r = log_in(client, "/accounts/login/", "mina", PASSWORD)

    assert r.status_code == 302 and r["Location"] == "/"
    assert logged_in(client)


def test_it_lets_staff_log_in_to_the_admin_after_a_typo(client):
    UserFactory(username="mina", is_staff=True)
    log_in(client, "/admin/login/", "mina", "typo")

    r = log_in(client, "/admin/login/?next=/admin/", "mina", PASSWORD)

    assert r.status_code == 302 and r["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_it_keeps_a_lockout_to_its_account_however_often_its_owner_retries(client):
    """
    Tries during a lockout are not failures: the owner's retries from the office
    neither lock the office's address out for colleagues nor restart the pause.
    """
    UserFactory(username="mina")
    UserFactory(username="jiwoo")
    for n in range(3):
        log_in(client, "/accounts/login/", "mina", "guess", address=f"192.0.2.{n}")

    def attempts():
        return sorted(AccessAttempt.objects.values_list("ip_address", "attempt_time"))

    locked = attempts()

    for _ in range(5):
        r = log_in(client, "/accounts/login/", "mina", PASSWORD, address="203.0.113.9")
        assert r.status_code == 429

    assert attempts() == locked  # nothing recorded: the pause is not restarted
    assert not AccessAttempt.objects.filter(ip_address="203.0.113.9").exists()
    r = log_in(client, "/accounts/login/", "jiwoo", PASSWORD, address="203.0.113.9")
    assert r.status_code == 302 and logged_in(client)


def test_it_lists_lockouts_in_the_admin_where_deleting_one_lifts_it(client):
    UserFactory(username="mina")
    for _ in range(3):
        log_in(client, "/accounts/login/", "mina", "guess")
    assert log_in(client, "/accounts/login/", "mina", PASSWORD).status_code == 429

    admin = Client()
    admin.force_login(UserFactory(is_staff=True, is_superuser=True))
    r = admin.get("/admin/axes/accessattempt/")
    assert r.status_code == 200
    assert "mina" in r.content.decode()
    attempt = AccessAttempt.objects.get(username="mina")
    assert attempt.ip_address == "203.0.113.7"
    assert attempt.failures_since_start >= 3
    assert "correct horse" not in attempt.post_data  # passwords are never kept

    r = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert r.status_code == 302

    r = log_in(client, "/accounts/login/", "mina", PASSWORD)
    assert r.status_code == 302 and logged_in(client)


def test_it_counts_the_address_a_proxy_saw_not_the_proxy(client, settings):
    settings.NUM_PROXIES = 1
    UserFactory(username="mina")
    for n in range(3):
        # What a client writes in X-Forwarded-For itself stays on the left.
        log_in(
            client,
            "/accounts/login/",
            f"user{n}",
            "guess",
            address="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.1",
        )

    through_proxy = {"address": "10.0.0.2"}
    r = log_in(
        client,
        "/accounts/login/",
        "mina",
        PASSWORD,
        HTTP_X_FORWARDED_FOR="198.51.100.1",
        **through_proxy,
    )
    assert r.status_code == 429
    r = log_in(
        client,
        "/accounts/login/",
        "mina",
        PASSWORD,
        HTTP_X_FORWARDED_FOR="198.51.100.2",
        **through_proxy,
    )
    assert r.status_code == 302


@pytest.mark.parametrize(
    "proxies, remote, forwarded, address",
    [
        (0, "192.0.2.1", "198.51.100.1", "192.0.2.1"),
        (1, "10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        (2, "10.0.0.3", "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        (1, "10.0.0.2", "", "10.0.0.2"),  # not through the proxy
        (2, "10.0.0.3", "198.51.100.1", "10.0.0.3"),
        (1, "10.0.0.2", "not-an-address", "10.0.0.2"),
        (1, "10.0.0.2", "2001:db8::1", "2001:db8::1"),
        # An IPv4 client of a server bound to [::], or of such a proxy.
        (0, "::ffff:192.0.2.1", "", "192.0.2.1"),
        (1, "::ffff:10.0.0.2", "::ffff:198.51.100.1", "198.51.100.1"),
    ],
)
def test_it_finds_the_client_address(settings, proxies, remote, forwarded, address):
    settings.NUM_PROXIES = proxies
    request = RequestFactory().get(
        "/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded
    )
    assert client_address(request) == address


def test_it_counts_an_ipv6_client_by_its_64():
    request = RequestFactory().get("/", REMOTE_ADDR="2001:db8:1:2:aaaa::1")
    assert client_network(request) == "2001:db8:1:2::"
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1")
    assert client_network(request) == "192.0.2.1"


def test_it_counts_ipv4_clients_of_a_dual_stack_server_apart(client):
    """::ffff:a.b.c.d is a.b.c.d, not the /64 that all IPv4 addresses share."""
    for _ in range(3):  # TOKEN_MISS_RATE
        client.get("/s/guessed/", REMOTE_ADDR="::ffff:198.51.100.1")
    assert (
        client.get("/s/guessed/", REMOTE_ADDR="::ffff:198.51.100.1").status_code == 429
    )

    r = client.get("/s/guessed/", REMOTE_ADDR="::ffff:198.51.100.2")

    assert r.status_code == 404


# Wrong links on the customer pages


def test_it_answers_429_in_korean_after_too_many_wrong_links(client):
    statuses = []
    for path in WRONG_LINKS:
        r = client.get(path.format(token="guessedtoken"), HTTP_ACCEPT_LANGUAGE="ko")
        statuses.append(r.status_code)

    assert statuses == [404, 404, 404, 429]
    assert r["Content-Language"] == "ko"
    assert int(r["Retry-After"]) > 0
    html = r.content.decode()
    assert '<html lang="ko">' in html
    assert "시도 횟수가 너무 많습니다" in html


def test_it_counts_posts_and_malformed_tokens_as_misses(client):
    client.post("/s/%00/", {"score": "3"})
    client.post("/s/guessed/unsubscribe/")
    client.head("/s/guessed-too/")

    r = client.get("/s/again/")

    assert r.status_code == 429
    assert "Too many attempts" in r.content.decode()
    assert not Response.objects.exists()


def test_it_counts_wrong_links_per_address(client):
    for _ in range(4):
        r = client.get("/s/guessed/", REMOTE_ADDR="198.51.100.1")
    assert r.status_code == 429

    r = client.get("/s/guessed/", REMOTE_ADDR="198.51.100.2")
    assert r.status_code == 404


def test_it_serves_a_real_link_to_an_address_over_the_limit(client):
    invitation = InvitationFactory()
    for _ in range(4):
        client.get("/s/guessed/")
    assert client.get("/s/guessed/").status_code == 429

    r = client.get(f"/s/{invitation.token}/")

    assert r.status_code == 200


def test_it_never_limits_a_customer_opening_their_link(client, settings):
    settings.TOKEN_MISS_RATE = "1/h"
    invitation = InvitationFactory(customer__locale="ko")
    link = f"/s/{invitation.token}/"
    for _ in range(30):
        assert client.get(link).status_code == 200

    r = client.post(link, {"score": "9"})
    assert r.status_code == 302
    for _ in range(10):
        r = client.post(link, {"score": "10"})
        assert r.status_code == 302
    assert client.get(f"{link}thanks/").status_code == 200
    assert Response.objects.get().score == 10


# One-click unsubscribe


def test_it_limits_one_click_unsubscribes_per_link(client):
    invitation = InvitationFactory(customer__locale="ko")
    link = f"/s/{invitation.token}/unsubscribe/"
    for _ in range(2):  # UNSUBSCRIBE_RATE
        assert client.post(link).status_code == 200

    r = client.post(link, REMOTE_ADDR="198.51.100.2")  # whatever the address

    assert r.status_code == 429
    assert r["Content-Language"] == "ko"  # the customer's language
    assert int(r["Retry-After"]) > 0
    # The first post unsubscribed: a limit per link never refuses that one.
    assert Customer.objects.get(pk=invitation.customer_id).unsubscribed_at
    assert client.get(link).status_code == 200  # asking to confirm is not limited


def test_it_takes_every_one_click_unsubscribe_a_mail_provider_relays():
    """
    Gmail posts every recipient's RFC 8058 unsubscribe from the same servers, with
    no cookie and no CSRF token.
    """
    client = Client(enforce_csrf_checks=True)
    invitations = InvitationFactory.create_batch(6)
    for invitation in invitations:
        r = client.post(
            f"/s/{invitation.token}/unsubscribe/",
            {"List-Unsubscribe": "One-Click"},
            REMOTE_ADDR="209.85.220.41",
        )
        assert r.status_code == 200
    assert not Customer.objects.filter(unsubscribed_at__isnull=True).exists()


def test_it_answers_a_one_click_post_of_an_unknown_link_as_a_known_one():
    client = Client(enforce_csrf_checks=True)
    invitation = InvitationFactory(customer__email="kim@example.com")
    one_click = {"List-Unsubscribe": "One-Click"}

    known = client.post(f"/s/{invitation.token}/unsubscribe/", one_click)
    unknown = client.post("/s/guessedtoken/unsubscribe/", one_click)

    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    assert "kim@example.com" not in known.content.decode()
    assert Customer.objects.get(pk=invitation.customer_id).unsubscribed_at


def test_it_does_not_count_one_click_posts_of_unknown_links_as_misses(client):
    for n in range(5):  # over TOKEN_MISS_RATE
        r = client.post(
            f"/s/guessed{n}/unsubscribe/", {"List-Unsubscribe": "One-Click"}
        )
        assert r.status_code == 200

    # The confirmation page of an unknown link still counts, and is a 404.
    assert client.get("/s/guessed/unsubscribe/").status_code == 404


def test_it_unsubscribes_a_customer_who_clicks_twice(client):
    invitation = InvitationFactory()
    for _ in range(2):
        r = client.post(f"/s/{invitation.token}/unsubscribe/")
        assert r.status_code == 200
    assert Customer.objects.get(pk=invitation.customer_id).unsubscribed_at


# The API


@pytest.fixture
def staff_api():
    """Returns a new API client with its own staff user's token."""

    def staff_api():
        client = APIClient()
        token = Token.objects.create(user=UserFactory(is_staff=True))
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return staff_api


def test_it_throttles_an_api_token_over_its_rate(staff_api):
    api, other = staff_api(), staff_api()
    for _ in range(3):
        assert api.get("/api/customers/").status_code == 200

    r = api.get("/api/customers/")

    assert r.status_code == 429
    assert r["Content-Type"] == "application/json"
    assert set(r.json()) == {"detail"}
    assert "throttled" in r.json()["detail"]
    assert 0 < int(r["Retry-After"]) <= 60
    # Another token, from the same address, is counted on its own.
    assert other.get("/api/customers/").status_code == 200


def test_it_throttles_an_agents_session_too():
    api = APIClient()
    api.force_login(agent())
    for _ in range(3):
        assert api.get("/api/followups/").status_code == 200
    assert api.get("/api/followups/").status_code == 429


def test_it_serves_an_api_client_under_its_rate(staff_api, settings):
    settings.API_THROTTLE_RATE = "300/m"
    api = staff_api()
    for _ in range(40):
        assert api.get("/api/customers/").status_code == 200
    r = api.post("/api/customers/", {"email": "new@example.com"}, format="json")
    assert r.status_code == 201


def test_it_answers_429_to_an_address_sending_wrong_tokens(staff_api):
    guesser = APIClient()
    for n in range(3):
        guesser.credentials(HTTP_AUTHORIZATION=f"Token {n:040x}")
        assert guesser.get("/api/customers/").status_code == 401

    r = guesser.get("/api/customers/")

    assert r.status_code == 429
    assert set(r.json()) == {"detail"} and int(r["Retry-After"]) > 0
    # The right token still works from the same address.
    assert staff_api().get("/api/customers/").status_code == 200


def test_it_documents_the_429_of_every_operation():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    operations = [
        operation
        for path in schema["paths"].values()
        for method, operation in path.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 20
    for operation in operations:
        throttled = operation["responses"]["429"]
        assert throttled["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Detail"
        }
        assert "Retry-After" in throttled["headers"]
    assert schema["components"]["schemas"]["Detail"]["required"] == ["detail"]


# Where the counts live


def test_it_counts_in_the_database_cache_without_redis(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "cxm_cache_test",
        }
    }
    call_command("createcachetable")  # gone with the test's transaction
    for _ in range(3):
        assert client.get("/s/guessed/").status_code == 404
    assert client.get("/s/guessed/").status_code == 429


def test_it_lets_requests_through_when_the_cache_is_down(client, staff_api, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/1",  # nothing listens there
        }
    }
    for _ in range(5):
        assert client.get("/s/guessed/").status_code == 404
    api = staff_api()
    for _ in range(5):
        assert api.get("/api/customers/").status_code == 200


PRINT_SETTINGS = """
import json, sys, django
django.setup()
from django.conf import settings
print(json.dumps({name: getattr(settings, name) for name in sys.argv[1:]}, default=str))
"""
# Set by make test, and by the deployments the cases stand for: each case says.
UNSET = ["CELERY_BROKER_URL", "DATABASE_URL", "DEBUG", "SITE_URL", "SECRET_KEY"]


def start(tmp_path, *names, **env) -> subprocess.CompletedProcess:
    """Starts Django in a new process with `env`, printing settings `names`."""
    base = {k: v for k, v in os.environ.items() if k not in UNSET}
    base.update(
        DJANGO_SETTINGS_MODULE="cxm.settings", CXM_VAR_DIR=str(tmp_path / "var")
    )
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS, *names],
        env={**base, **env},
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def loaded(tmp_path, *names, **env) -> dict:
    process = start(tmp_path, *names, **env)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "broker, backend, location",
    [
        ("redis://127.0.0.1:6379/0", "redis.RedisCache", "redis://127.0.0.1:6379/1"),
        ("redis://cache.internal", "redis.RedisCache", "redis://cache.internal/1"),
        (
            "rediss://:secret@cache.internal:6380/15?ssl_cert_reqs=required",
            "redis.RedisCache",
            "rediss://:secret@cache.internal:6380/14?ssl_cert_reqs=required",
        ),
        ("amqp://guest:guest@mq.internal//", "db.DatabaseCache", "cxm_cache"),
        ("", "db.DatabaseCache", "cxm_cache"),
    ],
)
def test_it_keeps_the_counts_beside_a_redis_broker_else_in_the_database(
    tmp_path, broker, backend, location
):
    env = {"CELERY_BROKER_URL": broker} if broker else {}

    cache = loaded(tmp_path, "CACHES", **env)["CACHES"]["default"]

    assert cache["BACKEND"] == f"django.core.cache.backends.{backend}"
    assert cache["LOCATION"] == location


@pytest.mark.parametrize(
    "variable, value",
    [
        ("TOKEN_MISS_RATE", "lots"),
        ("TOKEN_MISS_RATE", "0/h"),
        ("UNSUBSCRIBE_RATE", "5/week"),
        ("API_THROTTLE_RATE", "100"),
        ("AXES_FAILURE_LIMIT", "0"),
        ("AXES_COOLOFF_MINUTES", "a while"),
        ("NUM_PROXIES", "-1"),
        ("CELERY_BROKER_URL", "redis://127.0.0.1:6379/cache"),
    ],
)
def test_it_stops_start_up_naming_a_bad_limit(tmp_path, variable, value):
    process = start(tmp_path, **{variable: value})

    assert process.returncode != 0
    assert "ImproperlyConfigured" in process.stderr
    assert variable in process.stderr.strip().splitlines()[-1]


LIMITS = [
    "TOKEN_MISS_RATE",
    "UNSUBSCRIBE_RATE",
    "API_THROTTLE_RATE",
    "AXES_FAILURE_LIMIT",
    "AXES_COOLOFF_TIME",
    "NUM_PROXIES",
]


def test_it_reads_the_limits_from_the_environment(tmp_path):
    limits = loaded(
        tmp_path,
        *LIMITS,
        TOKEN_MISS_RATE="50 / hour",
        UNSUBSCRIBE_RATE="5/d",
        API_THROTTLE_RATE="1000/minute",
        AXES_FAILURE_LIMIT="10",
        AXES_COOLOFF_MINUTES="60",
        NUM_PROXIES="1",
    )

    assert limits == {
        "TOKEN_MISS_RATE": "50/h",
        "UNSUBSCRIBE_RATE": "5/d",
        "API_THROTTLE_RATE": "1000/m",
        "AXES_FAILURE_LIMIT": 10,
        "AXES_COOLOFF_TIME": "1:00:00",
        "NUM_PROXIES": 1,
    }


def test_it_ships_safe_defaults(tmp_path):
    names = ["AUTHENTICATION_BACKENDS", "MIDDLEWARE", "AXES_LOCKOUT_PARAMETERS"]

    defaults = loaded(tmp_path, *LIMITS, *names)

    assert {k: defaults[k] for k in LIMITS} == {
        "TOKEN_MISS_RATE": "30/h",
        "UNSUBSCRIBE_RATE": "10/h",
        "API_THROTTLE_RATE": "300/m",
        "AXES_FAILURE_LIMIT": 5,
        "AXES_COOLOFF_TIME": "0:15:00",
        "NUM_PROXIES": 0,
    }
    assert defaults["AXES_LOCKOUT_PARAMETERS"] == ["username", "ip_address"]
    assert (
        defaults["AUTHENTICATION_BACKENDS"][0] == "axes.backends.AxesStandaloneBackend"
    )
    assert defaults["MIDDLEWARE"][-1] == "axes.middleware.AxesMiddleware"
