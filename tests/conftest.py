from contextlib import contextmanager

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
