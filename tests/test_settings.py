"""
Settings come from environment variables: a bad value stops start-up with a message
naming the variable, and good values become the Django settings they describe.

Each case starts a fresh Python process, as a deployment would, with only the
variables under test set.
"""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from cxm.env import Env

# Every variable settings.py reads: removed from the inherited environment so a
# case sees only what it sets (make test exports DATABASE_URL, for one).
VARIABLES = [
    "ALLOWED_HOSTS",
    "ANYMAIL_WEBHOOK_SECRET",
    "API_THROTTLE_RATE",
    "AXES_COOLOFF_MINUTES",
    "AXES_FAILURE_LIMIT",
    "BRAND_COLOR",
    "CELERY_BROKER_URL",
    "CELERY_QUEUE",
    "COMPANY_LOGO",
    "COMPANY_NAME",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "DEBUG",
    "DEFAULT_CUSTOMER_TIMEZONE",
    "DEFAULT_FROM_EMAIL",
    "DELIVERY_CLAIM_TIMEOUT",
    "DELIVERY_REQUEUE_AFTER",
    "EMAIL_HOST",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_HOST_USER",
    "EMAIL_PORT",
    "EMAIL_SEND_RATE",
    "EMAIL_URL",
    "EMAIL_USE_SSL",
    "EMAIL_USE_TLS",
    "FOLLOWUP_CHECKIN_HOURS",
    "FOLLOWUP_REPLY_ADDRESS",
    "FOLLOWUP_DIGEST_HOUR",
    "FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS",
    "FOLLOWUP_ESCALATE_AGAIN_TO",
    "FOLLOWUP_REMIND_BEFORE_HOURS",
    "FOLLOWUP_SLA_HOURS",
    "LOG_LEVEL",
    "NUM_PROXIES",
    "PROMOTER_LINK_URL",
    "SECRET_KEY",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_HSTS_SECONDS",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "SITE_URL",
    "SLACK_WEBHOOK_ALLOW_HTTP",
    "SWEEP_INTERVAL",
    "TIME_ZONE",
    "TOKEN_MISS_RATE",
    "UNSUBSCRIBE_RATE",
]
SHOWN = [
    "DEBUG",
    "SITE_URL",
    "ALLOWED_HOSTS",
    "TIME_ZONE",
    "DEFAULT_CUSTOMER_TIMEZONE",
    "COMPANY_NAME",
    "COMPANY_LOGO",
    "BRAND_COLOR",
    "BRAND_TEXT_COLOR",
    "PROMOTER_LINK_URL",
    "FOLLOWUP_SLA_HOURS",
    "FOLLOWUP_REPLY_ADDRESS",
    "FOLLOWUP_CHECKIN_HOURS",
    "FOLLOWUP_REMIND_BEFORE_HOURS",
    "FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS",
    "FOLLOWUP_ESCALATE_AGAIN_TO",
    "FOLLOWUP_DIGEST_HOUR",
    "SLACK_WEBHOOK_ALLOW_HTTP",
    "SWEEP_INTERVAL",
    "DELIVERY_REQUEUE_AFTER",
    "DELIVERY_CLAIM_TIMEOUT",
    "CELERY_BROKER_URL",
    "CELERY_TASK_DEFAULT_QUEUE",
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "ANYMAIL",
    "ANYMAIL_WEBHOOK_SECRET",
    "EMAIL_SEND_RATE",
    "DEFAULT_FROM_EMAIL",
    "SECRET_KEY",
    "LOG_LEVEL",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "CSRF_TRUSTED_ORIGINS",
]
PRINT_SETTINGS = f"""
import json, django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
shown = {{k: getattr(settings, k, None) for k in {SHOWN!r}}}
shown["DATABASE"] = {{k: str(db.get(k)) for k in ("ENGINE", "NAME", "HOST", "PORT")}}
shown["DATABASE_OPTIONS"] = db.get("OPTIONS")
shown["DATABASE_LOGIN"] = [db.get("USER"), db.get("PASSWORD")]
shown["DATABASE_CONNECTIONS"] = [db.get("CONN_MAX_AGE"), db.get("CONN_HEALTH_CHECKS")]
print(json.dumps(shown))
"""


@pytest.fixture
def start(tmp_path):
    """Returns a function that starts Django in a new process with the given env."""

    def start(**env) -> subprocess.CompletedProcess:
        base = {k: v for k, v in os.environ.items() if k not in VARIABLES}
        base.update(
            DJANGO_SETTINGS_MODULE="cxm.settings", CXM_VAR_DIR=str(tmp_path / "var")
        )
        return subprocess.run(
            [sys.executable, "-c", PRINT_SETTINGS],
            env={**base, **env},
            cwd=django_settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return start


@pytest.fixture
def loaded(start):
    """Returns a function that starts Django with env and returns its settings."""

    def loaded(**env) -> dict:
        process = start(**env)
        assert process.returncode == 0, process.stderr
        return json.loads(process.stdout.splitlines()[-1])

    return loaded


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"SITE_URL": "notaurl"}, "SITE_URL"),
        ({"SITE_URL": "ftp://cx.example.com"}, "SITE_URL"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"EMAIL_URL": "ftp://x"}, "EMAIL_URL"),
        ({"EMAIL_URL": "smtp://mail.example.com:port"}, "EMAIL_URL"),
        ({"CELERY_BROKER_URL": "http://x"}, "CELERY_BROKER_URL"),
        ({"TIME_ZONE": "Mars/Base"}, "TIME_ZONE"),
        ({"DEFAULT_CUSTOMER_TIMEZONE": "Seoul"}, "DEFAULT_CUSTOMER_TIMEZONE"),
        ({"FOLLOWUP_SLA_HOURS": "-1"}, "FOLLOWUP_SLA_HOURS"),
        ({"FOLLOWUP_SLA_HOURS": "two days"}, "FOLLOWUP_SLA_HOURS"),
        ({"FOLLOWUP_REPLY_ADDRESS": "replies@example.com"}, "FOLLOWUP_REPLY_ADDRESS"),
        ({"FOLLOWUP_REPLY_ADDRESS": "r+{token}"}, "FOLLOWUP_REPLY_ADDRESS"),
        ({"FOLLOWUP_CHECKIN_HOURS": "-1"}, "FOLLOWUP_CHECKIN_HOURS"),
        ({"SWEEP_INTERVAL": "0"}, "SWEEP_INTERVAL"),
        ({"DELIVERY_REQUEUE_AFTER": "0"}, "DELIVERY_REQUEUE_AFTER"),
        ({"DELIVERY_CLAIM_TIMEOUT": "2m"}, "DELIVERY_CLAIM_TIMEOUT"),
        ({"EMAIL_HOST": "mail.example.com", "EMAIL_PORT": "abc"}, "EMAIL_PORT"),
        ({"EMAIL_HOST": "mail.example.com", "EMAIL_USE_TLS": "sure"}, "EMAIL_USE_TLS"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"EMAIL_SEND_RATE": "fast"}, "EMAIL_SEND_RATE"),
        ({"EMAIL_SEND_RATE": "-5"}, "EMAIL_SEND_RATE"),
        ({"EMAIL_SEND_RATE": "inf"}, "EMAIL_SEND_RATE"),
        ({"ANYMAIL_WEBHOOK_SECRET": "no-colon"}, "ANYMAIL_WEBHOOK_SECRET"),
        ({"DEFAULT_FROM_EMAIL": "cx team"}, "DEFAULT_FROM_EMAIL"),
        ({"DEFAULT_FROM_EMAIL": "Acme <cx@>"}, "DEFAULT_FROM_EMAIL"),
        ({"ALLOWED_HOSTS": "https://cx.example.com"}, "ALLOWED_HOSTS"),
        ({"EMAIL_PORT": "587"}, "EMAIL_PORT"),
        ({"EMAIL_URL": "smtp://mail.example.com", "EMAIL_HOST": "x"}, "EMAIL_HOST"),
        ({"SECURE_SSL_REDIRECT": "sometimes"}, "SECURE_SSL_REDIRECT"),
        ({"SECURE_HSTS_SECONDS": "a year"}, "SECURE_HSTS_SECONDS"),
        ({"SECURE_HSTS_SECONDS": "-1"}, "SECURE_HSTS_SECONDS"),
        ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "all"}, "SECURE_HSTS_INCLUDE_SUBDOMAINS"),
        ({"SECURE_HSTS_PRELOAD": "please"}, "SECURE_HSTS_PRELOAD"),
        (
            {"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO"},
            "SECURE_PROXY_SSL_HEADER",
        ),
        (
            {"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto https"},
            "SECURE_PROXY_SSL_HEADER",
        ),
        ({"CSRF_TRUSTED_ORIGINS": "cx.example.com"}, "CSRF_TRUSTED_ORIGINS"),
        (
            {"CSRF_TRUSTED_ORIGINS": "https://cx.example.com/admin"},
            "CSRF_TRUSTED_ORIGINS",
        ),
        # Words django-environ alone would take: "ok" and "y" as true, anything
        # else as false, "48h" as 48.0, its own email schemes.
        ({"DEBUG": "ok"}, "DEBUG"),
        ({"SECURE_HSTS_PRELOAD": "y"}, "SECURE_HSTS_PRELOAD"),
        ({"FOLLOWUP_SLA_HOURS": "48h"}, "FOLLOWUP_SLA_HOURS"),
        ({"FOLLOWUP_SLA_HOURS": "inf"}, "FOLLOWUP_SLA_HOURS"),
        ({"EMAIL_URL": "smtp+tls://mail.example.com"}, "EMAIL_URL"),
        ({"EMAIL_URL": "consolemail://"}, "EMAIL_URL"),
        ({"EMAIL_URL": "smtp://mail.example.com?tls=maybe"}, "EMAIL_URL"),
        ({"EMAIL_URL": "smtp://"}, "EMAIL_URL"),
        ({"EMAIL_URL": "anymail+://?api_key=k"}, "EMAIL_URL"),
        ({"DATABASE_URL": "postgres://cx:pw@db.internal:port/cxm"}, "DATABASE_URL"),
        ({"DATABASE_URL": "cxm"}, "DATABASE_URL"),
        ({"SITE_URL": "http://[::1"}, "SITE_URL"),
        ({"BRAND_COLOR": "blue"}, "BRAND_COLOR"),
        ({"PROMOTER_LINK_URL": "reviews.example.com"}, "PROMOTER_LINK_URL"),
    ],
)
def test_it_stops_start_up_naming_the_variable_with_a_bad_value(start, env, variable):
    process = start(**env)

    assert process.returncode != 0
    assert "ImproperlyConfigured" in process.stderr
    assert variable in process.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DEBUG": "maybe"}, "DEBUG must be true or false, got 'maybe'"),
        ({"SWEEP_INTERVAL": "2m"}, "SWEEP_INTERVAL must be a whole number, got '2m'"),
        ({"SWEEP_INTERVAL": "0"}, "SWEEP_INTERVAL must be at least 1, got 0"),
        (
            {"FOLLOWUP_SLA_HOURS": "two days"},
            "FOLLOWUP_SLA_HOURS must be a number, got 'two days'",
        ),
        ({"FOLLOWUP_SLA_HOURS": "-1"}, "FOLLOWUP_SLA_HOURS must be greater than 0"),
        (
            {"FOLLOWUP_REMIND_BEFORE_HOURS": "-1"},
            "FOLLOWUP_REMIND_BEFORE_HOURS must be 0 or more, got -1",
        ),
        (
            {"FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS": "0"},
            "FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS must be greater than 0, got 0",
        ),
        (
            {"FOLLOWUP_ESCALATE_AGAIN_TO": "coo@acme.example,CX Lead <lead@acme>"},
            "FOLLOWUP_ESCALATE_AGAIN_TO must be comma-separated email addresses",
        ),
        (
            {"FOLLOWUP_DIGEST_HOUR": "24"},
            "FOLLOWUP_DIGEST_HOUR must be an hour from 0 to 23, or off, got '24'",
        ),
        (
            {"FOLLOWUP_DIGEST_HOUR": "8am"},
            "FOLLOWUP_DIGEST_HOUR must be an hour from 0 to 23, or off, got '8am'",
        ),
        (
            {"EMAIL_URL": "ftp://x"},
            "EMAIL_URL must be smtp://user:password@host:port, smtps://…, outbox:, "
            "console: or anymail+<service>://?api_key=…, got 'ftp://x'",
        ),
        (
            {"EMAIL_URL": "smtp://mail.example.com:port"},
            "EMAIL_URL has a bad port, got 'smtp://mail.example.com:port'",
        ),
        (
            {"EMAIL_URL": "smtp://mail.example.com?tls=maybe"},
            "EMAIL_URL must say ?tls=1 or ?tls=0",
        ),
        (
            {"EMAIL_URL": "anymail+://?api_key=k"},
            "EMAIL_URL names no email service",
        ),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be postgres://…"),
        # Not the URL: it holds the password.
        (
            {"DATABASE_URL": "postgres://cx:secret@db:port/cxm"},
            "DATABASE_URL is not a database URL: Port could not be cast",
        ),
    ],
)
def test_it_says_what_is_wrong_with_a_bad_value(start, env, message):
    process = start(**env)

    last_line = process.stderr.strip().splitlines()[-1]
    assert message in last_line
    assert "secret" not in last_line


@pytest.mark.parametrize(
    "email_url, backend",
    [
        ("outbox:", "cxm.outbox.backends.EmailBackend"),
        ("outbox://", "cxm.outbox.backends.EmailBackend"),
        ("console:", "django.core.mail.backends.console.EmailBackend"),
        ("console://", "django.core.mail.backends.console.EmailBackend"),
    ],
)
def test_it_reads_an_email_url_without_a_server(loaded, email_url, backend):
    s = loaded(EMAIL_URL=email_url)

    assert s["EMAIL_BACKEND"] == backend
    # Django's defaults: nothing of an SMTP server, no email service.
    assert (s["EMAIL_HOST"], s["EMAIL_PORT"]) == ("localhost", 25)
    assert (s["EMAIL_HOST_USER"], s["EMAIL_HOST_PASSWORD"]) == ("", "")
    assert (s["EMAIL_USE_TLS"], s["EMAIL_USE_SSL"]) == (False, False)
    assert s["ANYMAIL"] == {}


def test_it_takes_a_blank_variable_as_unset(loaded, tmp_path):
    s = loaded(
        DEBUG="",
        SWEEP_INTERVAL="  ",
        EMAIL_URL="",
        DATABASE_URL=" ",
        ALLOWED_HOSTS=" , ",
        SITE_URL="",
    )

    assert s["DEBUG"] is False
    assert s["SWEEP_INTERVAL"] == 60
    assert s["EMAIL_BACKEND"] == "cxm.outbox.backends.EmailBackend"
    assert s["DATABASE"]["NAME"] == str(tmp_path / "var" / "cxm.sqlite3")
    assert s["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    assert s["SITE_URL"] == "http://127.0.0.1:8000"


def test_it_takes_a_value_starting_with_a_dollar_as_written(loaded):
    """django-environ would read `$NAME` as the value of the variable NAME."""
    s = loaded(
        SECRET_KEY="$SITE_URL",
        EMAIL_HOST="mail.example.com",
        EMAIL_HOST_PASSWORD="$ecret",
    )

    assert s["SECRET_KEY"] == "$SITE_URL"
    assert s["EMAIL_HOST_PASSWORD"] == "$ecret"


@pytest.mark.parametrize(
    "word, value",
    [
        *((word, True) for word in ("1", "true", "yes", "on", "TRUE", "On")),
        *((word, False) for word in ("0", "false", "no", "off", "False")),
    ],
)
def test_it_reads_the_boolean_words_the_readme_lists(word, value):
    env = Env()
    env.ENVIRON = {"DEBUG": word}

    assert env.bool("DEBUG", not value) is value


def test_it_reads_a_list_without_spaces_or_empty_items():
    env = Env()
    env.ENVIRON = {"ALLOWED_HOSTS": " cx.example.com ,, .example.org, "}

    assert env.list("ALLOWED_HOSTS", default=[]) == ["cx.example.com", ".example.org"]
    assert env.list("CSRF_TRUSTED_ORIGINS", default=[]) == []


def test_it_runs_embedded_without_any_variable(loaded, tmp_path):
    s = loaded()

    assert s["DEBUG"] is False
    assert s["DATABASE"]["ENGINE"] == "django.db.backends.sqlite3"
    assert s["DATABASE"]["NAME"] == str(tmp_path / "var" / "cxm.sqlite3")
    assert s["CELERY_BROKER_URL"] == "filesystem://"
    assert (tmp_path / "var" / "broker" / "queue").is_dir()
    assert s["EMAIL_BACKEND"] == "cxm.outbox.backends.EmailBackend"
    assert s["SITE_URL"] == "http://127.0.0.1:8000"
    assert s["FOLLOWUP_SLA_HOURS"] == 48.0
    assert (s["FOLLOWUP_REPLY_ADDRESS"], s["FOLLOWUP_CHECKIN_HOURS"]) == ("", 0.0)
    assert s["FOLLOWUP_REMIND_BEFORE_HOURS"] == 4.0
    assert s["FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS"] == 24.0
    assert s["FOLLOWUP_ESCALATE_AGAIN_TO"] == []  # the CX managers group
    assert s["FOLLOWUP_DIGEST_HOUR"] == 8
    assert s["SLACK_WEBHOOK_ALLOW_HTTP"] is False  # https only
    assert s["SWEEP_INTERVAL"] == 60
    assert s["DELIVERY_REQUEUE_AFTER"] == 60
    assert s["DELIVERY_CLAIM_TIMEOUT"] == 120
    assert (s["BRAND_COLOR"], s["BRAND_TEXT_COLOR"]) == ("#1d4ed8", "#ffffff")
    assert s["COMPANY_LOGO"] == "cxm/logo.png"
    assert s["PROMOTER_LINK_URL"] == ""
    assert s["EMAIL_SEND_RATE"] == 0.0  # no limit
    assert s["ANYMAIL_WEBHOOK_SECRET"] == ""  # webhooks off


def test_it_reads_the_send_rate_and_the_webhook_secret(loaded):
    s = loaded(EMAIL_SEND_RATE="12.5", ANYMAIL_WEBHOOK_SECRET="mailgun:s3cret")

    assert s["EMAIL_SEND_RATE"] == 12.5
    assert s["ANYMAIL_WEBHOOK_SECRET"] == "mailgun:s3cret"


def test_it_reads_the_reply_address_and_the_checkin_delay(loaded):
    s = loaded(
        FOLLOWUP_REPLY_ADDRESS="replies+{token}@cx.example.com",
        FOLLOWUP_CHECKIN_HOURS="24",
    )

    assert s["FOLLOWUP_REPLY_ADDRESS"] == "replies+{token}@cx.example.com"
    assert s["FOLLOWUP_CHECKIN_HOURS"] == 24.0


def test_it_reads_the_notification_settings(loaded):
    s = loaded(
        FOLLOWUP_REMIND_BEFORE_HOURS="0",
        FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS="8.5",
        FOLLOWUP_ESCALATE_AGAIN_TO="coo@acme.example, cx-lead@acme.example",
        FOLLOWUP_DIGEST_HOUR="off",
        SLACK_WEBHOOK_ALLOW_HTTP="yes",
    )

    assert s["FOLLOWUP_REMIND_BEFORE_HOURS"] == 0.0  # no reminders
    assert s["FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS"] == 8.5
    assert s["FOLLOWUP_ESCALATE_AGAIN_TO"] == [
        "coo@acme.example",
        "cx-lead@acme.example",
    ]
    assert s["FOLLOWUP_DIGEST_HOUR"] is None  # no digests
    assert s["SLACK_WEBHOOK_ALLOW_HTTP"] is True
    assert loaded(FOLLOWUP_DIGEST_HOUR="0")["FOLLOWUP_DIGEST_HOUR"] == 0


def test_it_keeps_the_generated_secret_key_across_starts(loaded, tmp_path):
    first = loaded()["SECRET_KEY"]

    assert len(first) >= 50
    assert loaded()["SECRET_KEY"] == first
    assert (tmp_path / "var" / "secret_key").read_text().strip() == first
    assert loaded(SECRET_KEY="from-the-environment")["SECRET_KEY"] == (
        "from-the-environment"
    )


def test_it_reads_an_smtp_email_url(loaded):
    s = loaded(EMAIL_URL="smtp://u:p@host:2525?tls=1")

    assert s["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (s["EMAIL_HOST"], s["EMAIL_PORT"]) == ("host", 2525)
    assert (s["EMAIL_HOST_USER"], s["EMAIL_HOST_PASSWORD"]) == ("u", "p")
    assert (s["EMAIL_USE_TLS"], s["EMAIL_USE_SSL"]) == (True, False)


def test_it_reads_an_smtps_email_url_with_escaped_credentials(loaded):
    s = loaded(EMAIL_URL="smtps://cx%40example.com:p%2Fss@smtp.example.com")

    assert (s["EMAIL_HOST"], s["EMAIL_PORT"]) == ("smtp.example.com", 465)
    assert (s["EMAIL_HOST_USER"], s["EMAIL_HOST_PASSWORD"]) == (
        "cx@example.com",
        "p/ss",
    )
    assert (s["EMAIL_USE_TLS"], s["EMAIL_USE_SSL"]) == (False, True)


def test_it_reads_an_anymail_email_url(loaded):
    s = loaded(EMAIL_URL="anymail+mailgun://?api_key=k&sender_domain=d")

    assert s["EMAIL_BACKEND"] == "anymail.backends.mailgun.EmailBackend"
    assert s["ANYMAIL"] == {"MAILGUN_API_KEY": "k", "MAILGUN_SENDER_DOMAIN": "d"}
    assert s["EMAIL_HOST"] == "localhost"


def test_it_reads_an_anymail_email_url_with_escaped_values(loaded):
    s = loaded(EMAIL_URL="anymail+postmark://?server_token=a%2Fb%26c")

    assert s["EMAIL_BACKEND"] == "anymail.backends.postmark.EmailBackend"
    assert s["ANYMAIL"] == {"POSTMARK_SERVER_TOKEN": "a/b&c"}


def test_it_reads_an_smtp_email_url_without_credentials(loaded):
    s = loaded(EMAIL_URL="smtp://mail.example.com?tls=on")

    assert (s["EMAIL_HOST"], s["EMAIL_PORT"]) == ("mail.example.com", 25)
    assert (s["EMAIL_HOST_USER"], s["EMAIL_HOST_PASSWORD"]) == ("", "")
    assert (s["EMAIL_USE_TLS"], s["EMAIL_USE_SSL"]) == (True, False)


def test_it_reads_email_host_and_port(loaded):
    s = loaded(
        EMAIL_HOST="mail.example.com",
        EMAIL_PORT="587",
        EMAIL_HOST_USER="cx",
        EMAIL_HOST_PASSWORD="secret",
        EMAIL_USE_TLS="yes",
        DEFAULT_FROM_EMAIL="Acme CX <cx@acme.example>",
    )

    assert s["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (s["EMAIL_HOST"], s["EMAIL_PORT"]) == ("mail.example.com", 587)
    assert (s["EMAIL_HOST_USER"], s["EMAIL_HOST_PASSWORD"]) == ("cx", "secret")
    assert (s["EMAIL_USE_TLS"], s["EMAIL_USE_SSL"]) == (True, False)
    assert s["DEFAULT_FROM_EMAIL"] == "Acme CX <cx@acme.example>"


def test_it_reads_the_servers_and_the_site(loaded):
    s = loaded(
        DATABASE_URL="postgres://cx:pw@db.internal:5433/cxm",
        CELERY_BROKER_URL="amqp://cx:pw@rabbit.internal:5672//",
        CELERY_QUEUE="cxm-eu",
        SITE_URL="https://cx.example.com/",
        ALLOWED_HOSTS="cx.internal, 10.0.0.5",
        DEBUG="on",
        TIME_ZONE="Asia/Seoul",
        COMPANY_NAME="Acme",
        BRAND_COLOR="#FDE047",
        PROMOTER_LINK_URL="https://reviews.example.com/acme/",
        FOLLOWUP_SLA_HOURS="24",
        SWEEP_INTERVAL="30",
        DELIVERY_REQUEUE_AFTER="45",
        DELIVERY_CLAIM_TIMEOUT="90",
        LOG_LEVEL="warning",
    )

    assert s["DATABASE"] == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "cxm",
        "HOST": "db.internal",
        "PORT": "5433",
    }
    assert s["CELERY_BROKER_URL"] == "amqp://cx:pw@rabbit.internal:5672//"
    assert s["CELERY_TASK_DEFAULT_QUEUE"] == "cxm-eu"
    assert s["SITE_URL"] == "https://cx.example.com"
    assert s["ALLOWED_HOSTS"] == ["cx.internal", "10.0.0.5", "cx.example.com"]
    assert s["DEBUG"] is True
    assert s["TIME_ZONE"] == "Asia/Seoul"
    assert s["DEFAULT_CUSTOMER_TIMEZONE"] == "Asia/Seoul"  # TIME_ZONE's
    assert s["COMPANY_NAME"] == "Acme"
    assert s["COMPANY_LOGO"] == ""
    assert (s["BRAND_COLOR"], s["BRAND_TEXT_COLOR"]) == ("#fde047", "#111827")
    assert s["PROMOTER_LINK_URL"] == "https://reviews.example.com/acme"
    assert s["FOLLOWUP_SLA_HOURS"] == 24.0
    assert s["SWEEP_INTERVAL"] == 30
    assert (s["DELIVERY_REQUEUE_AFTER"], s["DELIVERY_CLAIM_TIMEOUT"]) == (45, 90)
    assert s["LOG_LEVEL"] == "WARNING"


def test_it_keeps_database_connections_open_unless_the_url_says(loaded):
    s = loaded(DATABASE_URL="postgres://cx:p%40ss@db.internal/cxm?sslmode=require")

    assert s["DATABASE_LOGIN"] == ["cx", "p@ss"]
    assert s["DATABASE_OPTIONS"] == {"sslmode": "require"}
    assert s["DATABASE_CONNECTIONS"] == [60, True]
    s = loaded(DATABASE_URL="postgres://db.internal/cxm?conn_max_age=0")
    assert s["DATABASE_CONNECTIONS"] == [0, True]
    assert s["DATABASE_OPTIONS"] == {}


def test_it_waits_for_the_write_lock_of_any_sqlite_file(loaded, tmp_path):
    waits = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    path = tmp_path / "cx.sqlite3"

    assert loaded()["DATABASE_OPTIONS"] == waits
    s = loaded(DATABASE_URL=f"sqlite:///{path}")
    assert s["DATABASE"]["NAME"] == str(path)
    assert s["DATABASE_OPTIONS"] == waits
    s = loaded(DATABASE_URL=f"sqlite:///{path}?timeout=60")
    assert s["DATABASE_OPTIONS"] == {**waits, "timeout": 60}
    s = loaded(DATABASE_URL="postgres://cx:pw@db.internal:5433/cxm")
    assert s["DATABASE_OPTIONS"] == {}


def test_it_is_https_only_with_an_https_site_url(loaded):
    s = loaded(SITE_URL="https://cx.example.com")

    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    assert s["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert s["SECURE_HSTS_PRELOAD"] is True
    assert s["SESSION_COOKIE_SECURE"] is True
    assert s["CSRF_COOKIE_SECURE"] is True
    assert s["SECURE_PROXY_SSL_HEADER"] is None
    assert s["CSRF_TRUSTED_ORIGINS"] == ["https://cx.example.com"]


def test_it_keeps_plain_http_on_an_http_site_url(loaded):
    s = loaded()

    assert s["SECURE_SSL_REDIRECT"] is False
    assert s["SECURE_HSTS_SECONDS"] == 0
    assert s["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert s["SECURE_HSTS_PRELOAD"] is False
    assert s["SESSION_COOKIE_SECURE"] is False
    assert s["CSRF_COOKIE_SECURE"] is False
    assert s["CSRF_TRUSTED_ORIGINS"] == ["http://127.0.0.1:8000"]


def test_it_reads_the_https_settings_behind_a_proxy(loaded):
    s = loaded(
        SITE_URL="https://cx.example.com/cx/",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="no",
        SECURE_HSTS_PRELOAD="off",
        CSRF_TRUSTED_ORIGINS="https://admin.example.com, https://*.example.org/",
    )

    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_HSTS_SECONDS"] == 3600
    assert s["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert s["SECURE_HSTS_PRELOAD"] is False
    # Origins as browsers send them: SITE_URL's path is no part of its origin.
    assert s["CSRF_TRUSTED_ORIGINS"] == [
        "https://admin.example.com",
        "https://*.example.org",
        "https://cx.example.com",
    ]
    s = loaded(
        SITE_URL="https://cx.example.com",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Ssl: on",
        SECURE_SSL_REDIRECT="false",
    )
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_SSL", "on"]
    assert s["SECURE_SSL_REDIRECT"] is False


PRODUCTION = {
    "SITE_URL": "https://cx.example.com",
    "SECRET_KEY": "q7Vx2mRk9LpZt4Wc8NbHs3Jd6Fg1Ya5Ue0Oi-Tr_Kw2Xq9Mv7Pn4Bz8Lc3Gh6Dj1",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "cx.example.com",
}


@pytest.fixture
def deploy_check(tmp_path):
    """Returns a function that runs `check --deploy`, failing on warnings, with env."""

    def deploy_check(**env) -> subprocess.CompletedProcess:
        # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process, which
        # no deployment sets (the check says so).
        unset = [*VARIABLES, "DJANGO_ALLOW_ASYNC_UNSAFE"]
        base = {k: v for k, v in os.environ.items() if k not in unset}
        base.update(
            DJANGO_SETTINGS_MODULE="cxm.settings", CXM_VAR_DIR=str(tmp_path / "var")
        )
        command = ["manage.py", "check", "--deploy", "--fail-level", "WARNING"]
        return subprocess.run(
            [sys.executable, *command],
            env={**base, **env},
            cwd=django_settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return deploy_check


def test_it_passes_the_deploy_check_with_production_settings(deploy_check):
    process = deploy_check(**PRODUCTION)

    assert process.returncode == 0, process.stdout + process.stderr
    assert "no issues" in process.stdout


def test_it_passes_the_deploy_check_behind_a_proxy(deploy_check):
    process = deploy_check(**PRODUCTION, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")

    assert process.returncode == 0, process.stdout + process.stderr


def test_it_fails_the_deploy_check_on_plain_http(deploy_check):
    """The check above would catch a setting gone missing: here, four are."""
    process = deploy_check(**{**PRODUCTION, "SITE_URL": "http://cx.example.com"})

    assert process.returncode != 0
    for warning in ("W004", "W008", "W012", "W016"):
        assert f"security.{warning}" in process.stderr + process.stdout
