"""Child processes the e2e tests and the benchmarks start (Celery worker, beat,
gunicorn), and what they need to find the test's database and a port."""

import os
import signal
import socket
import subprocess
from urllib.parse import quote

import pytest
from django.db import connection


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url_of_test_db() -> str:
    """Returns a DATABASE_URL of the test database this process uses now."""
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.fail(
            "Tests that share the test database with another process "
            "need PostgreSQL: run with DATABASE_URL=postgres://… (got "
            f"{connection.vendor})"
        )
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    auth = f"{user}{password}@" if user else ""
    host = db["HOST"] or "localhost"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"


def process_group_stop(popen: subprocess.Popen) -> None:
    """
    SIGTERM to the process group (a warm shutdown), SIGKILL if it lingers, then
    SIGKILL to whatever of the group outlived it (a stray pool process).
    The process must have been started with start_new_session=True.
    """
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if popen.poll() is not None:
            break
        try:
            os.killpg(popen.pid, sig)
            popen.wait(grace)
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
