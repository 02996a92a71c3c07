"""
cxm benchmarks on the real components. Prints one JSON line per figure:

    {"name", "value", "unit", "reference", "reference_value", "ratio"}

with ratio = value / reference_value, the reference measured in the same run on the
same machine. Progress goes to stderr.

It works in its own PostgreSQL database (BENCH_DATABASE, default cxm_bench, on the
server of DATABASE_URL or postgres://postgres@127.0.0.1:5432), created, migrated and
dropped here, and on Redis (BENCH_REDIS_URL) under a queue of its own.

    .venv/bin/python bench/run.py
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import delivery, nps, smtp_sink  # noqa: E402
from tests.processes import process_group_stop  # noqa: E402

BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "cxm_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
INVITATIONS = 5_000
RESPONSES = 1_000_000
WORKER_CONCURRENCY = 2
WAIT_TIMEOUT = 300


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def report(*, name, value, unit, reference, reference_value) -> None:
    print(
        json.dumps(
            {
                "name": name,
                "value": round(value, 6),
                "unit": unit,
                "reference": reference,
                "reference_value": round(reference_value, 6),
                "ratio": round(value / reference_value, 4),
            },
            ensure_ascii=False,
        ),
        flush=True,
    )


def server_url() -> str:
    """Returns the PostgreSQL server URL (database path left out) to work on."""
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme in ("postgres", "postgresql", "pgsql"):
        parts = urlsplit(url)
        return urlunsplit(("postgresql", parts.netloc, "", "", ""))
    return "postgresql://postgres@127.0.0.1:5432"


def database_reset(*, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(server_url() + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')


def redis_check() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        sys.exit(f"bench: Redis at {REDIS_URL} does not answer (BENCH_REDIS_URL): {e}")


def redis_forget(queue: str) -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).delete(queue, f"_kombu.binding.{queue}")


class Worker:
    """A Celery worker subprocess in its own process group, logging to a file."""

    def __init__(self, *, env: dict, log_path: Path):
        self.log_path = log_path
        with log_path.open("wb") as out:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "cxm",
                    "worker",
                    "--pool=prefork",
                    f"--concurrency={WORKER_CONCURRENCY}",
                    "-l",
                    "info",
                    "--without-mingle",
                    "--without-gossip",
                    "-n",
                    f"{env['CELERY_QUEUE']}@%h",
                ],
                cwd=BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log_path.read_text(errors="replace"):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.tail()}")
            time.sleep(0.1)

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers, to the worker and its children."""
        process_group_stop(self.popen)


def bench_delivery(*, smtp, env: dict, workdir: Path) -> None:
    log(f"delivery: {INVITATIONS} customers and a campaign")
    delivery.customers_create(count=INVITATIONS)
    campaign = delivery.campaign_create(name="Delivery bench")
    samples = delivery.samples(campaign=campaign)
    log(
        "delivery: an invitation is "
        + ", ".join(f"{k} {s.wire_bytes} bytes" for k, s in samples.items())
    )

    log(f"delivery: reference, smtplib sending {INVITATIONS} over one connection")
    already, octets = smtp.counts()
    seconds, transfer = delivery.smtplib_send(
        port=smtp.port, samples=samples, count=INVITATIONS
    )
    received, total = smtp.counts()
    if received - already != INVITATIONS:
        raise RuntimeError(f"the SMTP server got {received - already} reference emails")
    reference_rate = INVITATIONS / seconds
    log(
        f"delivery: reference {seconds:.2f} s, {reference_rate:.0f} messages/s, "
        f"{(total - octets) / INVITATIONS:.0f} bytes each; "
        f"{transfer:.2f} s of it in send_message, the rest building EmailMessages"
    )

    worker = Worker(env=env, log_path=workdir / "worker.log")
    try:
        worker.wait_ready()
        log("delivery: worker ready; campaign_send → worker → SMTP")
        already, octets = smtp.counts()
        try:
            seconds = delivery.pipeline_send(
                campaign=campaign, smtp=smtp, expected=INVITATIONS, timeout=WAIT_TIMEOUT
            )
        except (RuntimeError, TimeoutError):
            log(f"delivery: worker log:\n{worker.tail()}")
            raise
    finally:
        worker.stop()
    received, total = smtp.counts()
    rate = INVITATIONS / seconds
    log(
        f"delivery: pipeline {seconds:.2f} s, {rate:.0f} invitations/s, "
        f"{(total - octets) / INVITATIONS:.0f} bytes each"
    )
    report(
        name=(
            f"invitation delivery, {INVITATIONS:,} invitations: campaign_send → Celery "
            f"worker (prefork {WORKER_CONCURRENCY}, Redis, batches of 100) → SMTP, "
            "until all received and marked sent; ratio = pipeline rate ÷ plain smtplib "
            "rate (higher is better)"
        ),
        value=rate,
        unit="invitations/s",
        reference=(
            f"plain smtplib sending {INVITATIONS:,} similar text+HTML EmailMessages "
            "over one connection to the same SMTP server process"
        ),
        reference_value=reference_rate,
    )


def bench_nps() -> None:
    log(f"nps: inserting {RESPONSES:,} customers, invitations and responses in SQL")
    started = time.monotonic()
    campaign = delivery.campaign_create(name="NPS bench")
    nps.responses_create(campaign=campaign, count=RESPONSES)
    log(f"nps: rows ready in {time.monotonic() - started:.1f} s; timing")
    orm_seconds, raw_seconds = nps.compare(campaign=campaign)
    log(f"nps: metrics.nps {orm_seconds:.3f} s, raw SQL {raw_seconds:.3f} s")
    report(
        name=(
            f"NPS of one campaign over {RESPONSES:,} responses: surveys.metrics.nps, "
            "seconds per call (median of 7 after warm-up); ratio = ORM time ÷ raw SQL "
            "time (1.0 = no ORM overhead, lower is better)"
        ),
        value=orm_seconds,
        unit="s/call",
        reference="the same count … FILTER aggregate as one raw SQL query",
        reference_value=raw_seconds,
    )


def main() -> None:
    started = time.monotonic()
    redis_check()
    queue = f"cxm-bench-{uuid.uuid4().hex}"
    database_url = f"{server_url()}/{BENCH_DATABASE}"
    log(f"database {BENCH_DATABASE}: create and migrate")
    database_reset()
    smtp = None
    try:
        env = {
            # The shell's EMAIL_HOST would clash with the EMAIL_URL set below.
            **{k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")},
            "DJANGO_SETTINGS_MODULE": "cxm.settings",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_QUEUE": queue,
            "SITE_URL": "https://cx.example.com",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        # Only the schema matters here; `make test` is where system checks fail.
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "migrate",
                "--noinput",
                "--skip-checks",
                "-v",
                "0",
            ],
            cwd=BASE_DIR,
            env=env,
            check=True,
        )
        smtp = smtp_sink.start()
        env["EMAIL_URL"] = smtp.url
        # The worker logs its tasks at INFO; this process only reports.
        worker_env = {**env, "LOG_LEVEL": "INFO"}
        os.environ.update(env)

        import django

        django.setup()

        with tempfile.TemporaryDirectory(prefix="cxm-bench-") as workdir:
            bench_delivery(smtp=smtp, env=worker_env, workdir=Path(workdir))
        bench_nps()
    finally:
        if smtp is not None:
            smtp.stop()
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        redis_forget(queue)
        database_reset(drop_only=True)
        log(f"done in {time.monotonic() - started:.0f} s; {BENCH_DATABASE} dropped")


if __name__ == "__main__":
    main()
