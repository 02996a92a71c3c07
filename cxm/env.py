"""
Env: django-environ's typed reads of environment variables, made strict for cxm's
settings. A value that cannot be right raises ImproperlyConfigured naming the
variable and what is wrong, so a deployment fails at start rather than later.

What differs from django-environ's own Env:
- a blank value (`DEBUG=`, as compose files write it) counts as unset;
- a value is taken as written: `$NAME` is not a reference to another variable (a
  password or a secret key may start with `$`);
- booleans take true/false, 1/0, yes/no, on/off and nothing else; whole numbers and
  numbers refuse what Python would not read as one (environ reads `2m` as 2.0);
- email URLs: smtp:// (STARTTLS with ?tls=1), smtps:// (implicit TLS, port 465),
  outbox:, console: and anymail+<esp>://, see `email_url_config`.
"""

from __future__ import annotations

import math
import re
from urllib.parse import ParseResult, parse_qsl, urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
NOTSET = environ.Env.NOTSET


class Invalid(ValueError):
    """What is wrong with a value, worded to follow its variable's name: "must be …"."""


class Env(environ.Env):
    # django-environ reads smtps:// as STARTTLS; here it is implicit TLS, as the
    # scheme says and the README promises. anymail+<esp>:// is any ESP anymail has.
    EMAIL_SCHEMES = {
        "smtp": "django.core.mail.backends.smtp.EmailBackend",
        "smtps": "django.core.mail.backends.smtp.EmailBackend",
        "outbox": "cxm.outbox.backends.EmailBackend",
        "console": "django.core.mail.backends.console.EmailBackend",
    }
    EMAIL_URL_FORMS = (
        "smtp://user:password@host:port, smtps://…, outbox:, console: or "
        "anymail+<service>://?api_key=…"
    )

    def get_value(self, var, cast=None, default=NOTSET, parse_default=False):
        """Returns the variable cast to `cast`, or `default` if unset or blank."""
        value = self.ENVIRON.get(var, "").strip()
        if not value:
            if default is NOTSET:
                raise ImproperlyConfigured(f"Set the {var} environment variable")
            if not parse_default or default is None:
                return default
            value = default
        try:
            return self.parse_value(value, cast)
        except Invalid as e:
            raise ImproperlyConfigured(f"{var} {e}, got {value!r}") from None
        except ValueError as e:
            raise ImproperlyConfigured(
                f"{var} is not a valid value ({e}), got {value!r}"
            ) from None

    @classmethod
    def parse_value(cls, value, cast):
        if cast is bool:
            word = value.strip().lower()
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
            raise Invalid("must be true or false")
        if cast is int:
            try:
                return int(value)
            except ValueError:
                raise Invalid("must be a whole number") from None
        if cast is float:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise Invalid("must be a number")
            return number
        return super().parse_value(value, cast)

    def int(self, var, default=NOTSET, *, minimum: int | None = None) -> int:
        number = super().int(var, default)
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(
                f"{var} must be at least {minimum}, got {number}"
            )
        return number

    def float(self, var, default=NOTSET, *, positive: bool = False) -> float:
        number = super().float(var, default)
        if positive and number <= 0:
            raise ImproperlyConfigured(f"{var} must be greater than 0, got {number:g}")
        return number

    def list(self, var, cast=None, default=NOTSET) -> list:
        """Returns the comma-separated items, stripped, empty ones left out."""
        items = super().list(var, default=default)
        return [self.parse_value(i.strip(), cast) for i in items if i.strip()]

    def http_url(self, var, default=NOTSET) -> str:
        """Returns an absolute http(s) URL without a trailing slash ("" if default)."""
        url = self.str(var, default).rstrip("/")
        if not url and default == "":
            return ""
        try:
            parts = urlparse(url)
        except ValueError:
            parts = urlparse("")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ImproperlyConfigured(
                f"{var} must be an absolute http(s) URL such as "
                f"https://cx.example.com, got {url!r}"
            )
        return url

    def rate(self, var, default=NOTSET) -> str:
        """Returns a rate such as 30/h: a count per second, minute, hour or day (s,
        m, h, d, or the whole word), in the form DRF and django-ratelimit read."""
        value = self.str(var, default)
        match = re.fullmatch(r"([0-9]+) */ *(s|m|h|d|second|minute|hour|day)", value)
        if not match or int(match[1]) < 1:
            raise ImproperlyConfigured(
                f"{var} must be a count per second, minute, hour or day such as 30/h "
                f"or 100/minute, got {value!r}"
            )
        return f"{int(match[1])}/{match[2][0]}"

    def color(self, var, default=NOTSET) -> str:
        """Returns a #rrggbb colour, in lower case."""
        value = self.str(var, default)
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ImproperlyConfigured(
                f"{var} must be a colour such as #1d4ed8, got {value!r}"
            )
        return value.lower()

    def db_url(self, var="DATABASE_URL", default=NOTSET, engine=None) -> dict:
        value = self.str(var, default)
        try:
            return self.db_url_config(value, engine=engine)
        except ValueError as e:
            # Not the URL itself: it holds the password.
            raise ImproperlyConfigured(f"{var} is not a database URL: {e}") from None

    def email_url(self, var="EMAIL_URL", default=NOTSET, backend=None) -> dict:
        value = self.str(var, default)
        try:
            return self.email_url_config(value, backend=backend)
        except ValueError as e:
            raise ImproperlyConfigured(f"{var} {e}, got {value!r}") from None

    @classmethod
    def email_url_config(cls, url, backend=None) -> dict:
        """
        Returns the settings an email URL stands for: EMAIL_BACKEND, and for SMTP
        EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS
        and EMAIL_USE_SSL; for anymail+<esp>://?api_key=…, ANYMAIL, whose keys are
        the query's: <ESP>_API_KEY, <ESP>_SENDER_DOMAIN, …
        """
        try:
            url = url if isinstance(url, ParseResult) else urlparse(url)
        except ValueError:
            raise Invalid(f"must be {cls.EMAIL_URL_FORMS}") from None
        if url.scheme.startswith("anymail+"):
            esp = url.scheme.removeprefix("anymail+")
            if not esp.isidentifier():
                raise Invalid("names no email service")
            return {
                "EMAIL_BACKEND": backend or f"anymail.backends.{esp}.EmailBackend",
                "ANYMAIL": {
                    f"{esp.upper()}_{key.upper()}": value
                    for key, value in parse_qsl(url.query)
                },
            }
        smtp = url.scheme in ("smtp", "smtps")
        if url.scheme not in cls.EMAIL_SCHEMES or (smtp and not url.hostname):
            raise Invalid(f"must be {cls.EMAIL_URL_FORMS}")
        if not smtp:
            return {"EMAIL_BACKEND": backend or cls.EMAIL_SCHEMES[url.scheme]}
        try:
            config = super().email_url_config(url, backend=backend)
        except ValueError:  # ParseResult.port
            raise Invalid("has a bad port") from None
        tls = dict(parse_qsl(url.query)).get("tls", "0")
        try:
            use_tls = cls.parse_value(tls, bool)
        except Invalid:
            raise Invalid("must say ?tls=1 or ?tls=0") from None
        return {
            "EMAIL_BACKEND": config["EMAIL_BACKEND"],
            "EMAIL_HOST": config["EMAIL_HOST"],
            "EMAIL_PORT": config["EMAIL_PORT"]
            or (465 if url.scheme == "smtps" else 25),
            "EMAIL_HOST_USER": config["EMAIL_HOST_USER"] or "",
            "EMAIL_HOST_PASSWORD": config["EMAIL_HOST_PASSWORD"] or "",
            "EMAIL_USE_TLS": use_tls,
            "EMAIL_USE_SSL": url.scheme == "smtps",
        }
