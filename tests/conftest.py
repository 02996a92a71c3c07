from contextlib import contextmanager
from uuid import uuid4

import kombu.pools
import pytest

from cxm.celery import app as celery_app


def pytest_configure(config):
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if not engine.endswith("postgresql"):
        raise pytest.UsageError(
            "The tests run on PostgreSQL, not "
            f"{engine.rsplit('.', 1)[-1]}: set DATABASE_URL=postgres://... or "
            "run `make test`, which does."
        )


@pytest.fixture(autouse=True)
def _celery_eager():
    """Unit tests run tasks in-process; the e2e tests start a real worker instead."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield


@pytest.fixture(autouse=True)
def _test_settings(settings):
    settings.SITE_URL = "http://testserver"
    settings.FOLLOWUP_SLA_HOURS = 48.0
    # Tests create many users; the production hasher spends ~0.5 s on each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _language_and_zone_reset():
    """
    Each test starts in the default language and time zone: a request of an earlier
    test (a Korean browser, a user's preferences) leaves its own active in the
    thread, where code outside a request would read it.
    """
    from django.utils import timezone, translation

    yield
    translation.deactivate()
    timezone.deactivate()


@pytest.fixture(autouse=True)
def _fresh_limits(settings):
    """
    Each test starts with nothing counted against a request limit: it counts under
    a cache key prefix of its own (the cache, Redis in `make test`, outlives a test
    and the run; its keys expire with their window). Failed logins are rows in the
    test database, gone with the test.

    The suite's personas open wrong links and call the API far more often than
    anyone would; tests/test_protection.py sets these low again to trip them.
    """
    default = settings.CACHES["default"]
    settings.CACHES = {"default": {**default, "KEY_PREFIX": f"test-{uuid4().hex}"}}
    settings.TOKEN_MISS_RATE = "100000/h"
    settings.API_THROTTLE_RATE = "100000/m"


@pytest.fixture(autouse=True)
def _followup_defaults(request):
    """
    The default follow-up rules and root causes, which migrations create: tests
    that empty the database (transaction=True) take them away from those after.
    And the rollups' zone, known before the test (see below).
    """
    if request.node.get_closest_marker("django_db"):
        request.getfixturevalue("_django_db_helper")
    elif {"db", "transactional_db"} & set(request.fixturenames):
        request.getfixturevalue(
            "db" if "db" in request.fixturenames else "transactional_db"
        )
    else:
        return
    from cxm.followups.services import followup_defaults_ensure
    from surveys.rollups import rollup_zone

    followup_defaults_ensure()
    # A serving process asks the database once which zone the daily rollups
    # count in, and remembers it; asked here, before the test, the query counts
    # tests pin are those of every later request.
    rollup_zone()


def _forget_broker_connections():
    # Celery caches its connection and producer pools on first publish; drop them
    # (as Celery does after a fork) so the next publish uses the broker set now.
    kombu.pools.reset()  # closes and forgets kombu's global pools
    celery_app._pool = None
    if "amqp" in celery_app.__dict__:
        celery_app.amqp._producer_pool = None


@contextmanager
def celery_broker(url: str, **conf):
    """Publishes tasks for real to the broker at `url` inside the block.

    Celery prefers a CELERY_BROKER_URL environment variable (make test sets one)
    to conf.broker_url, but not to broker_read_url/broker_write_url: set all three.
    """
    urls = {"broker_url": url, "broker_read_url": url, "broker_write_url": url}
    keys = {*urls, "task_always_eager", *conf}
    saved = {k: celery_app.conf[k] for k in keys}
    celery_app.conf.update(urls, task_always_eager=False, **conf)
    _forget_broker_connections()
    try:
        yield
    finally:
        celery_app.conf.update(saved)
        _forget_broker_connections()
