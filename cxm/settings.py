"""
cxm settings: every value comes from an environment variable, with embedded defaults
(SQLite under var/, a broker that needs no server, an email outbox) when nothing is set.

A variable with a bad value stops start-up with ImproperlyConfigured naming it.
"""

import re
import secrets
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from cxm.env import Env

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.str("CXM_VAR_DIR", str(BASE_DIR / "var")))


def _luminance(color: str) -> float:
    """The relative luminance of #rrggbb, as WCAG 2 defines it."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (
        c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels
    )
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_text_color(background: str) -> str:
    """Returns white or a near-black (black if need be), whichever reads better on
    `background`: at least 4.5:1 (WCAG AA) whenever any text colour can."""
    light = _luminance(background)
    on_white = 1.05 / (light + 0.05)
    on_black = (light + 0.05) / 0.05
    if on_white >= on_black:
        return "#ffffff"
    ink = (light + 0.05) / (_luminance("#111827") + 0.05)
    return "#111827" if ink >= 4.5 else "#000000"


def _secret_key() -> str:
    """Returns SECRET_KEY, or a key generated once and kept under var/."""
    if key := env.str("SECRET_KEY", ""):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


def _database() -> dict:
    # The web process, the worker and beat share an SQLite file: a transaction takes
    # the write lock when it begins, waiting for it, rather than failing halfway.
    sqlite_options = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    url = env.str("DATABASE_URL", "")
    if not url:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "cxm.sqlite3",
            "OPTIONS": sqlite_options,
        }
    config = env.db_url("DATABASE_URL")
    if config.get("ENGINE") not in (
        "django.db.backends.postgresql",
        "django.db.backends.sqlite3",
    ):
        raise ImproperlyConfigured(
            "DATABASE_URL must be postgres://… (or sqlite:///…), got "
            f"{urlsplit(url).scheme!r}"
        )
    # Unless the URL says otherwise (?conn_max_age=0): persistent connections,
    # checked before each request reuses one.
    config.setdefault("CONN_MAX_AGE", 60)
    config.setdefault("CONN_HEALTH_CHECKS", True)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Options in the URL (sqlite:///cx.sqlite3?timeout=60) win.
        config["OPTIONS"] = {**sqlite_options, **config.get("OPTIONS", {})}
    return config


# What EMAIL_HOST takes with it; EMAIL_URL holds the same in one value.
SMTP_VARIABLES = [
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
]


def _from_email() -> str:
    """Returns DEFAULT_FROM_EMAIL: an address, with or without a display name."""
    value = env.str("DEFAULT_FROM_EMAIL", "cxm <cx@localhost>")
    _name, address = parseaddr(value)
    local, _at, domain = address.rpartition("@")
    if not local or not domain or "\n" in value or "\r" in value:
        raise ImproperlyConfigured(
            "DEFAULT_FROM_EMAIL must be an email address such as "
            f"cx@acme.example or 'Acme CX <cx@acme.example>', got {value!r}"
        )
    return value


def _reply_to() -> str:
    """Returns EMAIL_REPLY_TO: a bare address (it goes into a mailto: URL), or ""."""
    value = env.str("EMAIL_REPLY_TO", "")
    local, _at, domain = value.rpartition("@")
    if value and (not local or not domain or any(c in value for c in ' <>,?\r\n"')):
        raise ImproperlyConfigured(
            f"EMAIL_REPLY_TO must be a bare email address such as "
            f"unsubscribe@acme.example, got {value!r}"
        )
    return value


def _email_list(var: str) -> list[str]:
    """Returns the comma-separated bare email addresses in `var` (none if unset)."""
    addresses = env.list(var, default=[])
    for address in addresses:
        local, _at, domain = address.rpartition("@")
        if not local or not domain or any(c in address for c in ' <>?\r\n"'):
            raise ImproperlyConfigured(
                f"{var} must be comma-separated email addresses such as "
                f"cx-lead@acme.example,coo@acme.example, got {address!r}"
            )
    return addresses


def _digest_hour() -> int | None:
    """
    Returns FOLLOWUP_DIGEST_HOUR, the hour (0-23, in TIME_ZONE) from which each
    agent's daily digest goes out, or None for "off": no digests.
    """
    value = env.str("FOLLOWUP_DIGEST_HOUR", "8").strip().lower()
    if value == "off":
        return None
    if not value.isdigit() or int(value) > 23:
        raise ImproperlyConfigured(
            f"FOLLOWUP_DIGEST_HOUR must be an hour from 0 to 23, or off, got {value!r}"
        )
    return int(value)


def _allowed_hosts() -> list[str]:
    hosts = env.list("ALLOWED_HOSTS", default=[])
    for host in hosts:
        if "/" in host or " " in host:
            raise ImproperlyConfigured(
                "ALLOWED_HOSTS must be host names separated by commas, such as "
                f"cx.example.com,.example.org (no scheme or path), got {host!r}"
            )
    return hosts or ["localhost", "127.0.0.1", "[::1]"]


# --- HTTPS and security headers (issue 10): helpers ---


def _origin(url: str) -> str:
    """Returns scheme://host[:port] of a URL, as browsers send it in Origin."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _csrf_trusted_origins(site_url: str) -> list[str]:
    """Returns CSRF_TRUSTED_ORIGINS: the comma-separated ones given, and SITE_URL's."""
    origins = []
    for origin in env.list("CSRF_TRUSTED_ORIGINS", default=[]):
        origin = origin.rstrip("/")
        if not origin:
            continue
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or " " in origin
        ):
            raise ImproperlyConfigured(
                "CSRF_TRUSTED_ORIGINS must be origins separated by commas, such as "
                "https://cx.example.com,https://*.example.org (a scheme and a host, "
                f"no path), got {origin!r}"
            )
        origins.append(origin)
    if _origin(site_url) not in origins:
        origins.append(_origin(site_url))
    return origins


def _proxy_ssl_header() -> tuple[str, str] | None:
    """
    Returns SECURE_PROXY_SSL_HEADER from the header a TLS-terminating proxy sets:
    `X-Forwarded-Proto` (meaning https), or `Name: value` for another header.
    """
    value = env.str("SECURE_PROXY_SSL_HEADER", "")
    if not value:
        return None
    name, _colon, expected = (part.strip() for part in value.partition(":"))
    expected = expected or "https"
    if not re.fullmatch(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*", name) or not re.fullmatch(
        r"[!-~]+", expected
    ):
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must name the header your proxy sets on HTTPS "
            "requests, such as X-Forwarded-Proto (meaning its value is https) or "
            f"'X-Forwarded-Ssl: on', got {value!r}"
        )
    return "HTTP_" + name.upper().replace("-", "_"), expected


def _email() -> dict:
    """
    Returns the email settings (EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT,
    EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS, EMAIL_USE_SSL, ANYMAIL) from
    EMAIL_URL (cxm.env.Env.email_url_config), or EMAIL_HOST/EMAIL_PORT, or the outbox.
    """
    url = env.str("EMAIL_URL", "")
    host = env.str("EMAIL_HOST", "")
    smtp_only = [name for name in SMTP_VARIABLES if env.str(name, "")]
    if url and (host or smtp_only):
        raise ImproperlyConfigured(
            f"EMAIL_URL and {(['EMAIL_HOST'] if host else smtp_only)[0]} are both "
            "set: give the server in one of them (EMAIL_URL, or EMAIL_HOST with "
            "EMAIL_PORT, …)"
        )
    if smtp_only and not host:
        raise ImproperlyConfigured(
            f"{smtp_only[0]} is set but EMAIL_HOST is not: set EMAIL_HOST too "
            "(or put the server in EMAIL_URL)"
        )
    # Django's defaults, for the backends that take no server.
    config = {
        "EMAIL_HOST": "localhost",
        "EMAIL_PORT": 25,
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
        "ANYMAIL": {},
    }
    if host:
        return {
            **config,
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": host,
            "EMAIL_PORT": env.int("EMAIL_PORT", 25, minimum=1),
            "EMAIL_HOST_USER": env.str("EMAIL_HOST_USER", ""),
            "EMAIL_HOST_PASSWORD": env.str("EMAIL_HOST_PASSWORD", ""),
            "EMAIL_USE_TLS": env.bool("EMAIL_USE_TLS", False),
            "EMAIL_USE_SSL": env.bool("EMAIL_USE_SSL", False),
        }
    return {**config, **env.email_url("EMAIL_URL", "outbox:")}


def _broker() -> tuple[str, dict]:
    """Returns the broker URL and transport options; a folder under var/ when unset."""
    url = env.str("CELERY_BROKER_URL", "")
    if not url:
        folder = VAR_DIR / "broker"
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return "filesystem://", {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem"):
        raise ImproperlyConfigured(
            "CELERY_BROKER_URL must be redis://host:6379/0 or amqp://user:pass@host//, "
            f"got {url!r}"
        )
    return url, {}


def _caches(broker_url: str) -> dict:
    """
    Returns CACHES, where the request limits count, shared by every process: Redis
    beside a Redis broker (the next database number, so that flushing the cache
    never empties the queue), else the database (`manage.py createcachetable`).
    """
    parts = urlsplit(broker_url)
    if parts.scheme not in ("redis", "rediss"):
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": "cxm_cache",
            }
        }
    number = parts.path.strip("/") or "0"
    if not number.isdigit():
        raise ImproperlyConfigured(
            "CELERY_BROKER_URL must end in a Redis database number, such as "
            f"redis://host:6379/0, got {broker_url!r}"
        )
    number = int(number)
    cache_number = number + 1 if number < 15 else number - 1  # Redis has 0 to 15
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": parts._replace(path=f"/{cache_number}").geturl(),
            "KEY_PREFIX": "cxm",
            # A Redis that does not answer costs a request a second at most: the
            # limits then let requests through (cxm.throttling).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG", False)
SITE_URL = env.http_url("SITE_URL", "http://127.0.0.1:8000")
ALLOWED_HOSTS = _allowed_hosts()
if (site_host := urlsplit(SITE_URL).hostname) and site_host not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(site_host)
CSRF_TRUSTED_ORIGINS = _csrf_trusted_origins(SITE_URL)
# A customer's stale answer page gets a translated "open it again" page.
CSRF_FAILURE_VIEW = "surveys.views.csrf_failure"

# The company the surveys ask about: "How likely are you to recommend {company}…",
# with its logo (a static file path) and colour on the customer pages and emails.
COMPANY_NAME = env.str("COMPANY_NAME", "cxm")
# PNG rather than SVG: Gmail and Outlook show no SVG in an email.
COMPANY_LOGO = env.str("COMPANY_LOGO", "cxm/logo.png" if COMPANY_NAME == "cxm" else "")
BRAND_COLOR = env.color("BRAND_COLOR", "#1d4ed8")
# Black or white, whichever reads better on the brand colour (WCAG contrast).
BRAND_TEXT_COLOR = contrast_text_color(BRAND_COLOR)
# A promoter's thank-you page may invite a review here (e.g. a review site).
PROMOTER_LINK_URL = env.http_url("PROMOTER_LINK_URL", "")

INSTALLED_APPS = [
    # The admin as CX staff use it (cxm/admin_site.py).
    "cxm.admin_site.CxAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Django's form templates, for FORM_RENDERER below.
    "django.forms",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    # The admin's CSV import (with a preview) and export of customers.
    "import_export",
    # Login protection: failed logins, lockouts (see "Request limits" below).
    "axes",
    "cxm.customers",
    "surveys",
    "cxm.followups",
    "journeys",
    "cxm.outbox",
    "cxm.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Security headers (after WhiteNoise: static files have their own caching).
    "csp.middleware.CSPMiddleware",
    "cxm.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A logged-in user's language and time zone (after Locale, sessions, auth).
    "cxm.middleware.PreferencesMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cxm.urls"
WSGI_APPLICATION = "cxm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cxm.context_processors.brand",
                "cxm.followups.context_processors.navigation",
            ],
            # {% load cxm_admin %}: the admin templates' filters.
            "libraries": {"cxm_admin": "cxm.admin_tags"},
        },
    },
]

# Widgets drawn through TEMPLATES, so that templates/ overrides a widget's
# template (the admin's date and time inputs carry labels there).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

DATABASES = {"default": _database()}
# The queue's index carries extra columns (INCLUDE) for PostgreSQL's index-only
# scans; SQLite, the embedded default, builds it without them, which is fine.
SILENCED_SYSTEM_CHECKS = (
    ["models.W040"]
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    else []
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
# `/` sends each user to their start page (cxm.followups.preferences).
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ko", _("Korean"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", "UTC")
try:
    import zoneinfo

    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"TIME_ZONE is not a time zone name: {TIME_ZONE!r}")
# The time zone of a customer whose `timezone` property names none: the hours of a
# campaign spread over a window are the customer's local hours.
DEFAULT_CUSTOMER_TIMEZONE = env.str("DEFAULT_CUSTOMER_TIMEZONE", TIME_ZONE)
try:
    zoneinfo.ZoneInfo(DEFAULT_CUSTOMER_TIMEZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        "DEFAULT_CUSTOMER_TIMEZONE is not a time zone name: "
        f"{DEFAULT_CUSTOMER_TIMEZONE!r}"
    )
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG

# Email
_email_settings = _email()
EMAIL_BACKEND = _email_settings["EMAIL_BACKEND"]
EMAIL_HOST = _email_settings["EMAIL_HOST"]
EMAIL_PORT = _email_settings["EMAIL_PORT"]
EMAIL_HOST_USER = _email_settings["EMAIL_HOST_USER"]
EMAIL_HOST_PASSWORD = _email_settings["EMAIL_HOST_PASSWORD"]
EMAIL_USE_TLS = _email_settings["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _email_settings["EMAIL_USE_SSL"]
# An email service's settings (anymail+<esp>://?api_key=…): <ESP>_API_KEY, …
ANYMAIL = _email_settings["ANYMAIL"]
DEFAULT_FROM_EMAIL = _from_email()
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where customers' replies go, and the mailto of the emails' List-Unsubscribe.
EMAIL_REPLY_TO = _reply_to()
EMAIL_TIMEOUT = 30
# The user:password an email service posts its tracking webhooks with (basic auth,
# in the webhook URL: https://user:password@cx.example.com/anymail/mailgun/tracking/).
# Unset, the webhooks are off. A service's signing key comes in EMAIL_URL
# (anymail+mailgun://?api_key=…&webhook_signing_key=…).
ANYMAIL_WEBHOOK_SECRET = env.str("ANYMAIL_WEBHOOK_SECRET", "")
if ANYMAIL_WEBHOOK_SECRET and ":" not in ANYMAIL_WEBHOOK_SECRET:
    raise ImproperlyConfigured("ANYMAIL_WEBHOOK_SECRET must be user:password")
# Most emails sent per second, by all workers together (the email service's
# quota); unset, no limit.
EMAIL_SEND_RATE = (
    env.float("EMAIL_SEND_RATE", positive=True)
    if env.str("EMAIL_SEND_RATE", "")
    else 0.0
)

# Celery: the database holds the work (rows with a state and a due time); the broker
# only carries "look at these rows now" messages, so a lost message delays, never loses.
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = _broker()
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", "cxm")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that enqueues work gives up on an unreachable broker within about a
# second; the row is already saved and the next sweep enqueues it.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# How often beat sweeps for due work, in seconds.
SWEEP_INTERVAL = env.int("SWEEP_INTERVAL", 60, minimum=1)
# Seconds an invitation enqueued for delivery may wait for a worker before a sweep
# enqueues it again (its message was lost: a broker restart, a worker killed after
# taking it). Another message for it costs nothing: a row is sent once.
DELIVERY_REQUEUE_AFTER = env.int("DELIVERY_REQUEUE_AFTER", 60, minimum=1)
# Seconds a worker may hold an invitation it is emailing before a sweep takes it
# back (the worker died). Longer than one message can take (EMAIL_TIMEOUT per step
# of the SMTP exchange), else a slow message could go out twice.
DELIVERY_CLAIM_TIMEOUT = env.int("DELIVERY_CLAIM_TIMEOUT", 120, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "invitations-sweep": {
        "task": "surveys.tasks.invitations_sweep",
        "schedule": float(SWEEP_INTERVAL),
    },
    # Triggered invitations whose interaction's signal was lost; recurring waves.
    "campaigns-sweep": {
        "task": "surveys.tasks.campaigns_sweep",
        "schedule": float(SWEEP_INTERVAL),
    },
    "followups-sweep": {
        "task": "cxm.followups.tasks.followups_sweep",
        "schedule": float(SWEEP_INTERVAL),
    },
    # The dashboard's daily rollups: what the triggers appended, added up (a read
    # folds too; this keeps that short).
    "rollups-fold": {
        "task": "surveys.tasks.rollups_fold",
        "schedule": float(SWEEP_INTERVAL),
    },
    # Sends nothing before FOLLOWUP_DIGEST_HOUR, then each agent's digest once that
    # day (a row per agent and day): a beat or a message lost at that hour delays
    # the digest by one interval instead of skipping the day. Every 5 minutes at
    # most: a digest needs no finer hour, and the worker has sweeps to run.
    "followups-digests": {
        "task": "cxm.followups.tasks.followup_digests_send",
        "schedule": float(max(SWEEP_INTERVAL, 300)),
    },
}

# Nobody is sent an invitation more often than once in this many days, across all
# campaigns (a campaign may say otherwise); 0: no limit.
CONTACT_FREQUENCY_DAYS = env.int("CONTACT_FREQUENCY_DAYS", 30, minimum=0)

# Closed loop
FOLLOWUP_SLA_HOURS = env.float("FOLLOWUP_SLA_HOURS", 48.0, positive=True)
FOLLOWUP_AGENTS_GROUP = "CX agents"
# Hours before each SLA's due time (first contact, resolution) that the owner is
# reminded, once per due time; 0: no reminders.
FOLLOWUP_REMIND_BEFORE_HOURS = env.float("FOLLOWUP_REMIND_BEFORE_HOURS", 4.0)
if FOLLOWUP_REMIND_BEFORE_HOURS < 0:
    raise ImproperlyConfigured(
        "FOLLOWUP_REMIND_BEFORE_HOURS must be 0 or more, "
        f"got {FOLLOWUP_REMIND_BEFORE_HOURS:g}"
    )
# The second breach level: hours past due after which an escalated follow-up is
# escalated again, to FOLLOWUP_ESCALATE_AGAIN_TO (addresses) or, if empty, the CX
# managers group.
FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS = env.float(
    "FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS", 24.0, positive=True
)
FOLLOWUP_ESCALATE_AGAIN_TO = _email_list("FOLLOWUP_ESCALATE_AGAIN_TO")
FOLLOWUP_DIGEST_HOUR = _digest_hour()
# Whether a team's Slack webhook may be plain http:// (a local stand-in for Slack
# in development and tests); otherwise only https:// is accepted.
SLACK_WEBHOOK_ALLOW_HTTP = env.bool("SLACK_WEBHOOK_ALLOW_HTTP", DEBUG)
FOLLOWUP_MANAGERS_GROUP = "CX managers"
# Whether CX agents may open every customer's page; otherwise only the customers
# of the follow-ups they see (managers and staff always see every customer).
CUSTOMER_PAGES_ALL_AGENTS = env.bool("CUSTOMER_PAGES_ALL_AGENTS", False)
# The largest CSV file an import takes (customers, interactions), in bytes.
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", 100 * 1024 * 1024, minimum=1)
# The customer properties the admin's customer list shows as columns and filters
# by (comma-separated names, e.g. plan,region).
CUSTOMER_LIST_PROPERTIES = env.list(
    "CUSTOMER_LIST_PROPERTIES", default=["plan", "region"]
)
for _name in CUSTOMER_LIST_PROPERTIES:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", _name):
        raise ImproperlyConfigured(
            "CUSTOMER_LIST_PROPERTIES must be property names separated by commas, "
            f"such as plan,region, got {_name!r}"
        )
# The customer property naming their account owner (a username or an email), for
# rules that assign follow-ups to the account owner.
FOLLOWUP_ACCOUNT_OWNER_PROPERTY = env.str(
    "FOLLOWUP_ACCOUNT_OWNER_PROPERTY", "account_owner"
)
# Where the customer's answer to a reply email goes: an address with "{token}"
# where each reply's token goes (a plus address, replies+{token}@example.com),
# which the email service's inbound webhook posts back (followups.replies). Blank:
# EMAIL_REPLY_TO, and answers are matched by their In-Reply-To alone.
FOLLOWUP_REPLY_ADDRESS = env.str("FOLLOWUP_REPLY_ADDRESS", "")
if FOLLOWUP_REPLY_ADDRESS and not re.fullmatch(
    r"[^@\s{}]*\{token\}[^@\s{}]*@[^@\s{}]+\.[^@\s{}]+", FOLLOWUP_REPLY_ADDRESS
):
    raise ImproperlyConfigured(
        "FOLLOWUP_REPLY_ADDRESS must be an address with {token} before the @, "
        f"such as replies+{{token}}@example.com, got {FOLLOWUP_REPLY_ADDRESS!r}"
    )
# Hours after a resolution that the customer is asked "Did we resolve your
# issue?" (the recovery check-in); 0: never.
FOLLOWUP_CHECKIN_HOURS = env.float("FOLLOWUP_CHECKIN_HOURS", 0.0)
if FOLLOWUP_CHECKIN_HOURS < 0:
    raise ImproperlyConfigured("FOLLOWUP_CHECKIN_HOURS must be 0 (off) or more")
# How long after answering the check-in the customer may still change the answer.
FOLLOWUP_CHECKIN_CHANGE_HOURS = 24

# Database sessions that refuse keys Django never makes (a NUL byte would 500).
SESSION_ENGINE = "cxm.sessions"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "cxm.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["cxm.access.IsCxStaff"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Documents every operation's errors (cxm/api.py).
    "DEFAULT_SCHEMA_CLASS": "cxm.api.AutoSchema",
    "EXCEPTION_HANDLER": "cxm.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        # DRF's, with the one Content-Security-Policy exception its pages need.
        "cxm.renderers.BrowsableAPIRenderer",
    ],
    # Per user, at API_THROTTLE_RATE (see "Request limits" below).
    "DEFAULT_THROTTLE_CLASSES": ["cxm.throttling.UserRateThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "cxm API",
    "DESCRIPTION": "Customers, surveys, campaigns, responses, follow-ups and metrics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # JSON Schema 2020-12, which can say what OpenAPI 3.0 cannot: which property
    # names an object takes, which fields go together, at most one such item.
    "OAS_VERSION": "3.1.0",
    # The docs page's scripts come from drf-spectacular-sidecar's static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "SurveyKindEnum": "surveys.kinds.SurveyKind.choices",
        "BucketEnum": "surveys.kinds.Bucket.choices",
        "FollowUpEventKindEnum": "cxm.followups.models.EventKind.choices",
        "TouchpointChannelEnum": "journeys.models.Channel.choices",
    },
}

# --- Request limits and login protection (issue 10) ---
# The counts live in CACHES, shared by every process: Redis beside a Redis broker,
# else the database. A cache that fails lets requests through (cxm/throttling.py).
CACHES = _caches(CELERY_BROKER_URL)
# Whose requests are counted together: REMOTE_ADDR, or behind NUM_PROXIES reverse
# proxies that each append to X-Forwarded-For, the address the outermost one saw.
NUM_PROXIES = env.int("NUM_PROXIES", 0, minimum=0)
# Wrong tokens (survey links, API tokens) per client address; past the rate, a 429.
# A customer's link that exists is always served, whatever the address did.
TOKEN_MISS_RATE = env.rate("TOKEN_MISS_RATE", "30/h")
# One-click unsubscribes per link (a mail provider posts everyone's from a few
# addresses, so not per address; guessed links count as wrong tokens above).
UNSUBSCRIBE_RATE = env.rate("UNSUBSCRIBE_RATE", "10/h")
# API requests per user: an integrator's token, an agent's browser session.
API_THROTTLE_RATE = env.rate("API_THROTTLE_RATE", "300/m")
RATELIMIT_FAIL_OPEN = True

# django-axes: AXES_FAILURE_LIMIT failed logins to one account, or from one address,
# lock that account, or that address, out of /accounts/login/ and /admin/login/
# until AXES_COOLOFF_MINUTES pass without a failure. The admin's "Access attempts"
# lists lockouts; deleting one lifts it (or `manage.py axes_reset`).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "cxm.throttling.client_address"
AXES_LOCKOUT_CALLABLE = "cxm.views.login_locked_out"
# A good password does not wipe the count: axes would wipe every failure from the
# same address too, so one account of one's own would reset guesses at another's.
AXES_RESET_ON_SUCCESS = False
# A try during a lockout is not a failure: else the locked-out owner's own retries
# would lock out their office's address and restart the cool-off each time (and
# one guess every few minutes would keep any account locked for good).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Lockouts are logged as warnings; no banner at each start.
AXES_VERBOSE = False

# --- HTTPS and security headers (issue 10) ---
# With an https:// SITE_URL the defaults are the safe ones: HTTPS only (a plain
# http request is redirected), HSTS for a year on the host and its subdomains,
# cookies sent over HTTPS only. With http (make run) all of them stay off.
# Behind a proxy that ends TLS, SECURE_PROXY_SSL_HEADER names the header it sets
# (it must overwrite any the client sent), or SECURE_SSL_REDIRECT=false leaves the
# redirect to the proxy; otherwise every request is redirected, over and over.
_https = SITE_URL.startswith("https://")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", _https)
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header()
SECURE_HSTS_SECONDS = env.int(
    "SECURE_HSTS_SECONDS", 365 * 24 * 3600 if _https else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _https)
# Only asks to be preloaded: a browser preloads a domain someone submitted at
# hstspreload.org, and only a registrable domain (example.com) can be submitted.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", _https)
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
# The answer pages' addresses carry the customer's token: no other site sees them.
SECURE_REFERRER_POLICY = "same-origin"
# No inline script or style: the few staff pages that need one (the API docs,
# django-celery-beat's task form) give it the request's nonce, {{ request.csp_nonce }};
# a page that needs more says so with django-csp's decorators (the outbox's email
# frame) or its renderer (DRF's browsable API, cxm.renderers.BrowsableAPIRenderer).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "manifest-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
    }
}

LOG_LEVEL = env.str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

# Comment themes (surveys.themes) read at most this many of the newest comments of
# a filter, and keep what they found for THEMES_CACHE_SECONDS.
THEMES_COMMENTS_MAX = env.int("THEMES_COMMENTS_MAX", 5000, minimum=1)
THEMES_CACHE_SECONDS = env.int("THEMES_CACHE_SECONDS", 300, minimum=0)
