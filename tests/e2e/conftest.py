"""
The real components of the closed loop for end-to-end tests: an SMTP server, a Celery
worker and beat as separate processes on Redis, all on the pytest-django test database
that the live server uses too.
"""

import email
import email.policy
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings

from tests.conftest import celery_broker
from tests.processes import database_url_of_test_db, free_port, process_group_stop

BASE_DIR = Path(django_settings.BASE_DIR)
REDIS_URL = os.environ.get("E2E_REDIS_URL", "redis://127.0.0.1:6379/9")
# Beat sweeps this often (seconds) during an e2e test.
SWEEP_INTERVAL = 1
DELIVERY_REQUEUE_AFTER = 4
DELIVERY_CLAIM_TIMEOUT = 6
PROCESS_START_TIMEOUT = 60
# How much of a worker or beat log a failure report shows.
LOG_HEAD, LOG_TAIL = 4_000, 16_000

LOGS = pytest.StashKey[list]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Adds the worker and beat logs to the report of a failed e2e test."""
    report = yield
    if report.failed:
        for name, path in item.stash.get(LOGS, []):
            try:
                text = Path(path).read_text(errors="replace")
            except OSError as e:
                text = f"(cannot read {path}: {e})"
            report.sections.append((f"{name} log ({path})", log_excerpt(text)))
    return report


def log_excerpt(text: str) -> str:
    """Returns the start (the banner, start-up errors) and the end of a long log."""
    if len(text) <= LOG_HEAD + LOG_TAIL:
        return text
    return f"{text[:LOG_HEAD]}\n[…]\n{text[-LOG_TAIL:]}"


def wait_for(predicate, *, timeout: float, interval: float = 0.1, what: str):
    """Returns predicate()'s first truthy value, polling; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    # When the server took the message (time.monotonic()).
    at: float = field(default_factory=time.monotonic)
    # The client's address and port: one per SMTP session.
    peer: tuple | None = None

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.content, policy=email.policy.default)


@dataclass
class SmtpServer:
    """A real SMTP server on 127.0.0.1 that keeps every message it receives."""

    host: str
    port: int
    messages: list[ReceivedMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(
                ReceivedMessage(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.content,
                    peer=tuple(session.peer),
                )
            )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[ReceivedMessage]:
        """Returns the messages received so far for one recipient."""
        with self.lock:
            return [m for m in self.messages if address in m.rcpt_tos]

    def wait_for_messages(
        self, count: int, *, to: str | None = None, timeout: float = 30
    ):
        """Returns the messages (for `to`, or all) once at least `count` arrived."""

        def arrived():
            with self.lock:
                found = [m for m in self.messages if to is None or to in m.rcpt_tos]
            return found if len(found) >= count else None

        who = f" for {to}" if to else ""
        return wait_for(arrived, timeout=timeout, what=f"{count} email(s){who}")


@pytest.fixture
def smtp_server():
    server = SmtpServer(host="127.0.0.1", port=free_port())
    controller = Controller(server, hostname=server.host, port=server.port)
    # aiosmtpd logs every SMTP command at INFO; a failure report needs none of them.
    mail_log = logging.getLogger("mail.log")
    level = mail_log.level
    mail_log.setLevel(logging.WARNING)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
        mail_log.setLevel(level)


@pytest.fixture
def http():
    """Returns a factory of requests sessions, closed after the test.

    The live server's thread for a kept-alive connection holds a database connection
    until the client closes it, which would block dropping the test database.
    """
    sessions = []

    def session() -> requests.Session:
        sessions.append(requests.Session())
        return sessions[-1]

    yield session
    for s in sessions:
        s.close()


@pytest.fixture
def shared_redis_broker():
    """Returns the Redis broker URL; fails (not skips) when Redis does not answer."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        pytest.fail(
            f"The e2e tests need Redis at {REDIS_URL} "
            f"(set E2E_REDIS_URL to change it): {e}"
        )
    return REDIS_URL


@pytest.fixture
def redis_broker(shared_redis_broker):
    """The broker of the Celery processes (a test module may give its own)."""
    return shared_redis_broker


@pytest.fixture
def worker_env():
    """Environment variables the Celery processes get besides the fixture's own
    (a test module may give some)."""
    return {}


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, *, timeout: float = PROCESS_START_TIMEOUT):
        def seen():
            if self.popen.poll() is not None:
                pytest.fail(
                    f"{self.name} exited with {self.popen.returncode}:\n"
                    f"{log_excerpt(self.output())}"
                )
            return text in self.output()

        wait_for(seen, timeout=timeout, interval=0.2, what=f"{self.name}: {text!r}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers, to the process and its children."""
        process_group_stop(self.popen)


def start_process(name: str, args: list[str], *, env: dict, log: Path) -> Process:
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "cxm", *args],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group, so that stop() reaches the prefork children too.
            start_new_session=True,
        )
    return Process(name, popen, log)


def worker_start(*, env: dict, queue: str, log: Path) -> Process:
    """Starts a Celery worker (prefork, 2 processes) on the queue."""
    return start_process(
        "worker",
        [
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "-l",
            "info",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"{queue}-{uuid.uuid4().hex[:6]}@%h",
        ],
        env=env,
        log=log,
    )


@dataclass
class CeleryProcesses:
    worker: Process
    beat: Process
    queue: str
    broker_url: str
    env: dict
    started: list[Process]

    def worker_restart(self, *, log: Path, kill: bool = False) -> Process:
        """Stops the worker (SIGKILL to its whole group if kill) and starts another."""
        if kill:
            os.killpg(self.worker.popen.pid, signal.SIGKILL)
            self.worker.popen.wait(10)
        else:
            self.worker.stop()
        self.worker = worker_start(env=self.env, queue=self.queue, log=log)
        self.started.append(self.worker)
        self.worker.wait_for_output(" ready.")
        return self.worker


@pytest.fixture
def celery_processes(
    request,
    transactional_db,
    live_server,
    settings,
    smtp_server,
    redis_broker,
    worker_env,
    tmp_path,
):
    """
    Starts a Celery worker (prefork, 2 processes) and beat (DatabaseScheduler, sweeping
    every SWEEP_INTERVAL s) on the test database, a fresh Redis queue and the SMTP
    server, and makes this process (and its live server) publish to them.

    Depending on transactional_db, they stop before its flush.
    """
    queue = f"cxm-e2e-{uuid.uuid4().hex}"
    settings.SITE_URL = live_server.url
    env = {
        # Ours, not the shell's: EMAIL_HOST there would clash with EMAIL_URL.
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CELERY_", "EMAIL_"))
        },
        "DJANGO_SETTINGS_MODULE": "cxm.settings",
        "DATABASE_URL": database_url_of_test_db(),
        "CELERY_BROKER_URL": redis_broker,
        "CELERY_QUEUE": queue,
        "EMAIL_URL": smtp_server.url,
        "SITE_URL": live_server.url,
        "SWEEP_INTERVAL": str(SWEEP_INTERVAL),
        # What a killed worker or a lost message leaves waits seconds, not minutes.
        "DELIVERY_REQUEUE_AFTER": str(DELIVERY_REQUEUE_AFTER),
        "DELIVERY_CLAIM_TIMEOUT": str(DELIVERY_CLAIM_TIMEOUT),
        # Beat would email every agent with an open follow-up their daily digest
        # (after 08:00): only tests of the digest turn it on.
        "FOLLOWUP_DIGEST_HOUR": "off",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **worker_env,
    }
    request.node.stash[LOGS] = [
        ("worker", tmp_path / "worker.log"),
        ("beat", tmp_path / "beat.log"),
    ]
    processes = []
    try:
        with celery_broker(redis_broker, task_default_queue=queue):
            worker = worker_start(env=env, queue=queue, log=tmp_path / "worker.log")
            processes.append(worker)
            beat = start_process(
                "beat",
                ["beat", "-l", "info", "--schedule", str(tmp_path / "beat")],
                env=env,
                log=tmp_path / "beat.log",
            )
            processes.append(beat)
            worker.wait_for_output(" ready.")
            beat.wait_for_output("beat: Starting")
            yield CeleryProcesses(worker, beat, queue, redis_broker, env, processes)
    finally:
        for process in processes:
            process.stop()
        # What the stopped worker left in its queue is for nobody.
        redis.Redis.from_url(redis_broker).delete(
            queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"
        )
