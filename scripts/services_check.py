"""
Exits 0 when the PostgreSQL server of DATABASE_URL and the Redis broker of
CELERY_BROKER_URL answer; else says which one does not and how to fix it, and exits 1.

`make test` runs it first: the unit tests need PostgreSQL, the end-to-end tests a
real broker. The database itself need not exist: the tests create test_<name>.
"""

import os
import sys
from urllib.parse import urlsplit

import environ
import psycopg
import redis

DATABASE_DEFAULT = "postgres://postgres@127.0.0.1:5432/cxm"
BROKER_DEFAULT = "redis://127.0.0.1:6379/0"


def postgresql_problem(url: str) -> str | None:
    try:
        config = environ.Env.db_url_config(url)
    except ValueError as e:
        return f"DATABASE_URL is not a database URL ({e}): {url}"
    if config.get("ENGINE") != "django.db.backends.postgresql":
        return f"DATABASE_URL must be a postgres:// URL for the tests, got {url}"
    try:
        # The maintenance database: the server and the credentials are what count.
        psycopg.connect(
            host=config.get("HOST") or None,
            port=config.get("PORT") or None,
            user=config.get("USER") or None,
            password=config.get("PASSWORD") or None,
            dbname="postgres",
            connect_timeout=5,
        ).close()
    except psycopg.Error as e:
        return (
            f"PostgreSQL does not answer at DATABASE_URL={url}:\n  {e}\n"
            "Start it, e.g. `pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start`,\nor point DATABASE_URL at yours: "
            "DATABASE_URL=postgres://user:password@host:5432/cxm make test"
        )
    return None


def broker_problem(url: str) -> str | None:
    if urlsplit(url).scheme not in ("redis", "rediss"):
        return None
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as e:
        return (
            f"Redis does not answer at CELERY_BROKER_URL={url}:\n  {e}\n"
            "Start it, e.g. `redis-server --daemonize yes --bind 127.0.0.1`,\n"
            "or point CELERY_BROKER_URL at yours."
        )
    return None


def main() -> int:
    problems = [
        p
        for p in (
            postgresql_problem(os.environ.get("DATABASE_URL") or DATABASE_DEFAULT),
            broker_problem(os.environ.get("CELERY_BROKER_URL") or BROKER_DEFAULT),
        )
        if p
    ]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
