"""
cxm benchmarks on the real components. Prints one JSON line per figure:

    {"name", "value", "unit", "reference", "reference_value", "ratio"}

with ratio = value / reference_value, the reference measured in the same run on the
same machine (some lines add "details"). Progress goes to stderr.

It works in its own PostgreSQL database (BENCH_DATABASE, default cxm_bench, on the
server of DATABASE_URL or postgres://postgres@127.0.0.1:5432), created, migrated and
dropped here, and on Redis (BENCH_REDIS_URL) under a queue of its own. The answer
throughput needs wrk (`make wrk`, Debian's package).

    .venv/bin/python bench/run.py

Sizes (environment; the defaults are the issue's sizes):
    BENCH_ONLY         delivery,metrics,segments,answers,imports,followups,timeline,
                       customerlist,trends,journeys,exports (all by default)
    BENCH_INVITATIONS  invitations delivered, by 1 and by 2 worker processes (10000)
    BENCH_RESPONSES    responses of each kind's campaign, and of the trends over
                       two years (1000000)
    BENCH_FOLLOWUPS    follow-ups already there in the second answer run, and of
                       the follow-up figures (100000, 2000 of them due)
    BENCH_CUSTOMERS    customers of the segment figures (100000)
    BENCH_INTERACTIONS interactions of those customers (1000000)
    BENCH_DURATION     seconds of each measured wrk run (20); BENCH_WARMUP (3)
    BENCH_CONNECTIONS  wrk's concurrent connections (50)
    BENCH_MAX_ERRORS   non-302 answers or socket errors a run may have (5)
    BENCH_PROFILE      answers to time and profile in-process (0: none)
    BENCH_IMPORT_ROWS  customers in the CSV import (100000)
    BENCH_EXPORT_ROWS  responses of the campaign exported as CSV (1000000)
    BENCH_TIMELINE_INTERACTIONS  interactions in the database of the customer page
                       figures (1000000, over BENCH_CUSTOMERS customers), beside
                       one customer of 10,000 events (BENCH_TIMELINE_SCALE
                       divides that story: 1)
    BENCH_LIST_CUSTOMERS customers of the customer-list figures (1300000)
    BENCH_JOURNEY_RESPONSES     responses of the journey map, over 2 years (1000000)
    BENCH_JOURNEY_INTERACTIONS  interactions of its drop-off (5000000)
    BENCH_JOURNEY_CUSTOMERS     customers they belong to (100000)
    BENCH_KEEP         1 keeps the database afterwards, to look into a figure with
                       psql or a server of one's own (0: dropped)
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import (  # noqa: E402
    answers,
    customerlist,
    data,
    delivery,
    exports,
    followups,
    imports,
    journeys,
    metrics,
    segments,
    smtp_sink,
    timeline,
    trends,
)
from tests.processes import process_group_stop  # noqa: E402


def envint(name: str, default: int, *, minimum: int = 0) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value.replace("_", ""))
    except ValueError:
        sys.exit(f"bench: {name} must be a whole number, got {value!r}")
    if number < minimum:
        sys.exit(f"bench: {name} must be at least {minimum}, got {number}")
    return number


BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "cxm_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
PARTS = (
    "delivery",
    "metrics",
    "segments",
    "answers",
    "imports",
    "followups",
    "timeline",
    "customerlist",
    "trends",
    "journeys",
    "exports",
)
ONLY = [p.strip() for p in os.environ.get("BENCH_ONLY", ",".join(PARTS)).split(",")]
INVITATIONS = envint("BENCH_INVITATIONS", 10_000, minimum=1)
RESPONSES = envint("BENCH_RESPONSES", 1_000_000, minimum=10)
FOLLOWUPS = envint("BENCH_FOLLOWUPS", 100_000, minimum=1)
CUSTOMERS = envint("BENCH_CUSTOMERS", 100_000, minimum=100)
INTERACTIONS = envint("BENCH_INTERACTIONS", 1_000_000, minimum=1)
DURATION = envint("BENCH_DURATION", 20, minimum=1)
WARMUP = envint("BENCH_WARMUP", 3, minimum=1)
CONNECTIONS = envint("BENCH_CONNECTIONS", 50, minimum=1)
MAX_ERRORS = envint("BENCH_MAX_ERRORS", 5)
PROFILE = envint("BENCH_PROFILE", 0)
IMPORT_ROWS = envint("BENCH_IMPORT_ROWS", 100_000, minimum=1)
EXPORT_ROWS = envint("BENCH_EXPORT_ROWS", 1_000_000, minimum=100)
TIMELINE_INTERACTIONS = envint("BENCH_TIMELINE_INTERACTIONS", 1_000_000, minimum=1)
TIMELINE_SCALE = envint("BENCH_TIMELINE_SCALE", 1, minimum=1)
LIST_CUSTOMERS = envint("BENCH_LIST_CUSTOMERS", 1_300_000, minimum=1)
JOURNEY_RESPONSES = envint("BENCH_JOURNEY_RESPONSES", 1_000_000, minimum=20)
JOURNEY_INTERACTIONS = envint("BENCH_JOURNEY_INTERACTIONS", 5_000_000, minimum=1)
JOURNEY_CUSTOMERS = envint("BENCH_JOURNEY_CUSTOMERS", 100_000, minimum=100)
KEEP = envint("BENCH_KEEP", 0)
# The worker processes delivery is measured with, one run each (targets: 0.8 and
# 1.5 times plain smtplib).
DELIVERY_PROCESSES = (1, 2)
# Every other Celery worker the benchmarks start (the answers).
WORKER_CONCURRENCY = 2
WAIT_TIMEOUT = 300
# The answer page's server: gunicorn's sync workers, one per core of the 2-core
# machine the issue measured on; wrk runs a thread per core beside it.
SERVER_WORKERS = 2
WRK_THREADS = 2
AGENTS = 5
# A measured run with fewer 302s than this has no latency worth reporting.
MIN_ANSWERS = 20
# Tokens for the bare view: it needs no rows, so plenty (a spent list shows as
# errors, never as answers).
BARE_MAX_RATE = 6_000
KINDS = ("nps", "csat", "ces")


class BenchFailure(Exception):
    """A figure was measured but does not hold (errors, rows missing)."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def report(*, name, value, unit, reference, reference_value, details=None) -> None:
    line = {
        "name": name,
        "value": round(value, 6),
        "unit": unit,
        "reference": reference,
        "reference_value": round(reference_value, 6),
        "ratio": round(value / reference_value, 4),
    }
    if details:
        line["details"] = details
    print(json.dumps(line, ensure_ascii=False), flush=True)


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

    redis.Redis.from_url(REDIS_URL).delete(
        queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"
    )


class Worker:
    """A Celery worker subprocess in its own process group, logging to a file."""

    def __init__(
        self, *, env: dict, log_path: Path, concurrency: int = WORKER_CONCURRENCY
    ):
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
                    f"--concurrency={concurrency}",
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


def delivery_reference(*, smtp, samples: dict) -> float:
    """Sends INVITATIONS emails with plain smtplib; returns messages per second."""
    log(f"delivery: reference, smtplib sending {INVITATIONS} over one connection")
    already, octets = smtp.counts()
    seconds, transfer = delivery.smtplib_send(
        port=smtp.port, samples=samples, count=INVITATIONS
    )
    received, total = smtp.counts()
    if received - already != INVITATIONS:
        raise RuntimeError(f"the SMTP server got {received - already} reference emails")
    rate = INVITATIONS / seconds
    log(
        f"delivery: reference {seconds:.2f} s, {rate:.0f} messages/s, "
        f"{(total - octets) / INVITATIONS:.0f} bytes each; "
        f"{transfer:.2f} s of it in send_message, the rest building EmailMessages"
    )
    return rate


def bench_delivery(*, smtp, env: dict, workdir: Path) -> None:
    log(f"delivery: {INVITATIONS} customers for each run")
    for processes in DELIVERY_PROCESSES:
        delivery.customers_create(count=INVITATIONS, run=str(processes))
    samples = None
    # The reference before and after each run, which is measured against their
    # mean: the machine's load drifts.
    before = None
    for processes in DELIVERY_PROCESSES:
        # A campaign of its own for each run, to customers of its own.
        campaign = delivery.campaign_create(
            name=f"Delivery bench {processes}", run=str(processes)
        )
        if samples is None:
            samples = delivery.samples(campaign=campaign)
            log(
                "delivery: an invitation is "
                + ", ".join(f"{k} {s.wire_bytes} bytes" for k, s in samples.items())
            )
            before = delivery_reference(smtp=smtp, samples=samples)
        worker = Worker(
            env=env,
            log_path=workdir / f"worker-{processes}.log",
            concurrency=processes,
        )
        try:
            worker.wait_ready()
            log(f"delivery: worker ({processes} processes) ready; campaign_send → SMTP")
            already, octets = smtp.counts()
            try:
                seconds = delivery.pipeline_send(
                    campaign=campaign,
                    smtp=smtp,
                    expected=INVITATIONS,
                    timeout=max(WAIT_TIMEOUT, INVITATIONS / 10),
                )
            except (RuntimeError, TimeoutError):
                log(f"delivery: worker log:\n{worker.tail()}")
                raise
        finally:
            worker.stop()
        received, total = smtp.counts()
        rate = INVITATIONS / seconds
        log(
            f"delivery: pipeline ({processes} processes) {seconds:.2f} s, "
            f"{rate:.0f} invitations/s, {(total - octets) / INVITATIONS:.0f} bytes each"
        )
        after = delivery_reference(smtp=smtp, samples=samples)
        target = {1: 0.8, 2: 1.5}.get(processes)
        report(
            name=(
                f"invitation delivery, {INVITATIONS:,} invitations: campaign_send → "
                f"Celery worker (prefork, {processes} process"
                f"{'es' if processes > 1 else ''}, Redis, batches of 100) → SMTP, "
                "until all received and marked sent; ratio = pipeline rate ÷ plain "
                "smtplib rate (higher is better"
                + (f"; target ≥ {target})" if target else ")")
            ),
            value=rate,
            unit="invitations/s",
            reference=(
                f"plain smtplib sending {INVITATIONS:,} similar text+HTML "
                "EmailMessages over one connection to the same SMTP server process, "
                "mean of the rates measured right before and right after"
            ),
            reference_value=(before + after) / 2,
            details={"reference_before": round(before, 1), "after": round(after, 1)},
        )
        before = after


def bench_customerlist(*, env: dict, workdir: Path) -> None:
    log(f"customerlist: {LIST_CUSTOMERS:,} customers (SQL)")
    started = time.monotonic()
    customerlist.rows_create(customers=LIST_CUSTOMERS)
    log(f"customerlist: rows in {time.monotonic() - started:.0f} s")
    cookie = customerlist.staff_cookie()
    bare = customerlist.bare_page()
    server = answers.Server(
        env=env,
        port=smtp_sink.free_port(),
        workers=SERVER_WORKERS,
        log_path=workdir / "gunicorn-customerlist.log",
    )
    try:
        server.wait_ready()
        for name, path in customerlist.PAGES:
            status, body = customerlist.get(server.port, path, cookie)
            if status != 200:
                raise BenchFailure(f"GET {path}: {status} {body[:300]!r}")
            seconds = customerlist.timed(
                lambda path=path: customerlist.get(server.port, path, cookie)
            )
            report(
                name=f"{name}, {LIST_CUSTOMERS:,} customers (median of 15)",
                value=seconds,
                unit="s",
                reference="bare SQL of one page (100 rows by lower(email))",
                reference_value=bare,
                details={"ms": round(seconds * 1e3, 1), "bytes": len(body)},
            )
    finally:
        server.stop()


def bench_segments() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from surveys.models import Invitation

    log(f"segments: {CUSTOMERS:,} customers, {INTERACTIONS:,} interactions (SQL)")
    started = time.monotonic()
    segments.rows_create(
        customers=CUSTOMERS, interactions=INTERACTIONS, prefix="segments-"
    )
    campaign = data.campaign_create(name="Segment bench")
    # Some of the segment were invited by this campaign already.
    Invitation.objects.bulk_create(
        Invitation(campaign=campaign, customer_id=pk, token=f"seg-{pk}")
        for pk in data.customer_ids(prefix="segments-", every=7)
    )
    # And some were emailed by another campaign lately (contact frequency).
    earlier = data.campaign_create(name="Segment bench, earlier")
    Invitation.objects.bulk_create(
        Invitation(
            campaign=earlier,
            customer_id=pk,
            token=f"seg-earlier-{pk}",
            status="sent",
            sent_at=timezone.now() - timedelta(days=pk % 60),
        )
        for pk in data.customer_ids(prefix="segments-", every=5)
    )
    data.vacuum_analyze(
        "customers_customer", "customers_interaction", "surveys_invitation"
    )
    log(f"segments: rows ready and vacuumed in {time.monotonic() - started:.0f} s")
    result = segments.compare(campaign=campaign)
    log(f"segments: {result['counts']}, preview {result['preview']}")
    conditions = "plan one of pro/team, seats 5–50, a purchase in the last 30 days"
    for key, bare_key, what, reference in [
        (
            "count",
            "count_bare",
            "segment_counts (members and contactable)",
            "the same count(*) and FILTER count as bare SQL with @>, jsonb_typeof "
            "and EXISTS on customers_interaction",
        ),
        (
            "preview_orm",
            "preview_bare",
            "campaign_audience_preview (audience, invited, each exclusion reason)",
            "the same counts as bare SQL, with EXISTS on surveys_invitation",
        ),
    ]:
        median, fastest = result[key]
        bare_median, bare_fastest = result[bare_key]
        report(
            name=(
                f"{what} of a segment ({conditions}) over {CUSTOMERS:,} customers "
                f"and {INTERACTIONS:,} interactions, seconds per call (median of 11 "
                "after 2 warm-ups); target under 1 s; ratio = cxm ÷ bare SQL"
            ),
            value=median,
            unit="s/call",
            reference=reference,
            reference_value=bare_median,
            details={
                "fastest_s": round(fastest, 6),
                "bare_fastest_s": round(bare_fastest, 6),
                "members": result["counts"]["customers"],
            },
        )


# The follow-up pages' size before the rest is loaded: their query count must
# not change between the two.
FOLLOWUPS_SMALL = 1_000


def bench_followups() -> None:
    small = min(FOLLOWUPS_SMALL, FOLLOWUPS)
    log(f"followups: {small:,} follow-ups (SQL), then the pages' query counts")
    manager, teams = followups.people_create()
    followups.followups_create(count=small, teams=teams, prefix="followups-a-")
    data.vacuum_analyze("followups_followup", "followups_followupevent")
    client = followups.client_for(manager)
    sample = teams[0].followups.order_by("-pk").values_list("pk", flat=True)[0]
    pages = {
        "queue": "/followups/",
        "detail": f"/followups/{sample}/",
        "reports": "/followups/reports/",
        "reports_api": "/api/reports/followups/",
    }
    counts_small = {k: followups.queries_of(client, p) for k, p in pages.items()}

    started = time.monotonic()
    log(f"followups: {FOLLOWUPS - small:,} more (SQL)")
    followups.followups_create(
        count=FOLLOWUPS - small, teams=teams, prefix="followups-b-"
    )
    due = followups.due_set(count=followups.DUE)
    data.vacuum_analyze(
        "customers_customer",
        "surveys_invitation",
        "surveys_response",
        "followups_followup",
        "followups_followupevent",
    )
    log(f"followups: rows ready and vacuumed in {time.monotonic() - started:.0f} s")
    counts_large = {k: followups.queries_of(client, p) for k, p in pages.items()}
    log(
        f"followups: queries at {small:,}: {counts_small}; at {FOLLOWUPS:,}: "
        f"{counts_large}"
    )
    for name, path in pages.items():
        for ms, sql in followups.slowest_statements(client, path):
            log(f"followups: {name}: {ms:.1f} ms: {sql[:400]}")

    timings = followups.compare_pages(
        manager=manager, team=teams[0], followup_id=sample
    )
    what = {
        "queue": (
            "the queue page /followups/ as a manager (default: no filter)",
            "the page of 50 (soonest due, with customer, answer and owner) and the "
            "count, as bare SQL",
        ),
        "detail": (
            "a follow-up's page /followups/<id>/ as a manager",
            "the follow-up with its customer, answer and owner, and its timeline, as "
            "bare SQL",
        ),
        "reports_page": (
            "the reports page /followups/reports/ as a manager",
            "the totals and the four breakdowns as five bare SQL aggregates "
            "(count … FILTER, percentile_cont)",
        ),
        "reports_api": (
            "GET /api/reports/followups/ as a manager",
            "the same five bare SQL aggregates",
        ),
        "reports_service": (
            "cxm.followups.reports.followups_report for a manager",
            "the same five bare SQL aggregates",
        ),
    }
    for key, (median, fastest, bare_median, bare_fastest) in timings.items():
        title, reference = what[key]
        page = key if key in counts_large else "reports"
        report(
            name=(
                f"{title}, {FOLLOWUPS:,} follow-ups (half the manager's), seconds per "
                "request through Django's test client (median of 11 after 2 "
                "warm-ups); target under 0.1 s; ratio = cxm ÷ bare SQL"
            ),
            value=median,
            unit="s/request",
            reference=reference,
            reference_value=bare_median,
            details={
                "fastest_s": round(fastest, 6),
                "bare_fastest_s": round(bare_fastest, 6),
                **(
                    {}
                    if key == "reports_service"
                    else {
                        f"queries_at_{small}": counts_small[page],
                        f"queries_at_{FOLLOWUPS}": counts_large[page],
                    }
                ),
            },
        )
    if counts_small["queue"] != counts_large["queue"]:
        raise BenchFailure(
            f"the queue page ran {counts_small['queue']} queries at {small:,} "
            f"follow-ups and {counts_large['queue']} at {FOLLOWUPS:,}"
        )

    log(f"followups: sweep ticks, {due:,} due")
    sweep = followups.sweep_tick()
    report(
        name=(
            f"one sweep tick (followups_sweep) with {due:,} of {FOLLOWUPS:,} "
            f"follow-ups due: escalates a batch of {sweep['escalated']}, emailing the "
            "manager about each over SMTP (median of 3, from the same state)"
        ),
        value=sweep["working"][0],
        unit="s/tick",
        reference=(
            "the same tick's bare SQL: the three scans, then the claim and the "
            "timeline rows in one UPDATE … RETURNING / INSERT (no email)"
        ),
        reference_value=sweep["bare_working"][0],
        details={
            "fastest_s": round(sweep["working"][1], 6),
            "bare_fastest_s": round(sweep["bare_working"][1], 6),
        },
    )
    report(
        name=(
            f"the same sweep tick ({sweep['escalated']} escalations) against its bare "
            "SQL plus plain smtplib sending as many escalation emails over one "
            "connection (median of 3)"
        ),
        value=sweep["working"][0],
        unit="s/tick",
        reference="the bare SQL tick, then smtplib over one SMTP connection",
        reference_value=sweep["bare_mailing"][0],
        details={"bare_fastest_s": round(sweep["bare_mailing"][1], 6)},
    )
    report(
        name=(
            f"an idle sweep tick (nothing due) over {FOLLOWUPS:,} follow-ups, "
            "seconds (median of 11 after 2 warm-ups)"
        ),
        value=sweep["idle"][0],
        unit="s/tick",
        reference="the three scans as bare SQL (LIMIT 500, each on its index)",
        reference_value=sweep["bare_idle"][0],
        details={
            "fastest_s": round(sweep["idle"][1], 6),
            "bare_fastest_s": round(sweep["bare_idle"][1], 6),
        },
    )


def bench_timeline(*, env: dict, workdir: Path) -> None:
    """The customer page and its API over HTTP (gunicorn) against the bare union."""
    from cxm.customers.timeline import Cursor, customer_timeline
    from tests.factories import manager as cx_manager

    started = time.monotonic()
    log(
        f"timeline: {CUSTOMERS:,} customers and {TIMELINE_INTERACTIONS:,} "
        "interactions (SQL), a customer of 10 events and one of "
        f"{10_000 // TIMELINE_SCALE:,}"
    )
    segments.rows_create(
        customers=CUSTOMERS, interactions=TIMELINE_INTERACTIONS, prefix="timeline-"
    )
    small = timeline.story_create(prefix="timeline-small-", scale=1_000)
    large = timeline.story_create(prefix="timeline-large-", scale=TIMELINE_SCALE)
    data.vacuum_analyze(
        "customers_customer",
        "customers_interaction",
        "surveys_invitation",
        "surveys_response",
        "surveys_responserevision",
        "followups_followup",
        "followups_followupevent",
        "followups_followupmessage",
    )
    events = {c: timeline.events_of(c) for c in (small, large)}
    log(f"timeline: rows ready in {time.monotonic() - started:.0f} s: {events}")
    viewer = cx_manager(username="bench-timeline-manager")
    client = followups.client_for(viewer)
    paths = {
        "page": "/customers/{}/",
        "api": "/api/customers/{}/timeline/",
    }
    counts = {
        (name, c): followups.queries_of(client, path.format(c))
        for name, path in paths.items()
        for c in (small, large)
    }
    log(f"timeline: queries {counts}")
    # A page deep in the history: the cursor of the middle entry.
    middle = customer_timeline(customer_id=large, user=viewer, limit=200, cursor=None)[
        "entries"
    ][-1]
    deep = Cursor(middle["at"], middle["kind"], middle["id"])
    for _ in range(events[large] // 2 // 200 - 1):
        page = customer_timeline(customer_id=large, user=viewer, limit=200, cursor=deep)
        if page["next"] is None:
            break
        deep = page["next"]

    server = answers.Server(
        env=env, port=smtp_sink.free_port(), workers=1, log_path=workdir / "tl.log"
    )
    try:
        server.wait_ready()
        cookie = timeline.session_cookie(viewer)
        port = server.port
        pairs = {
            "page": (
                f"the customer page /customers/<id>/ (first page of 50) as a "
                f"manager, a customer of {events[large]:,} events",
                lambda: timeline.http_get(port, f"/customers/{large}/", cookie),
                timeline.bare_union(customer_id=large, user=viewer),
                ("page", large),
            ),
            "api": (
                "GET /api/customers/<id>/timeline/ (first page of 50) as a manager, "
                f"a customer of {events[large]:,} events",
                lambda: timeline.http_get(
                    port, f"/api/customers/{large}/timeline/", cookie
                ),
                timeline.bare_union(customer_id=large, user=viewer),
                ("api", large),
            ),
            "api_deep": (
                "GET /api/customers/<id>/timeline/?cursor= (a page of 50 in the "
                f"middle of {events[large]:,} events) as a manager",
                lambda: timeline.http_get(
                    port,
                    f"/api/customers/{large}/timeline/?cursor={deep.encode()}",
                    cookie,
                ),
                timeline.bare_union(customer_id=large, user=viewer, cursor=deep),
                ("api", large),
            ),
        }
        for title, call, bare, count_key in pairs.values():
            mine, reference = timeline.seconds_of([call, bare])
            median, fastest = timeline.median_and_fastest(mine)
            bare_median, bare_fastest = timeline.median_and_fastest(reference)
            report(
                name=(
                    f"{title}, {TIMELINE_INTERACTIONS:,} interactions in the "
                    "database; seconds per request over HTTP (gunicorn, 1 sync "
                    "worker; median of 11 after 2 warm-ups); ratio = cxm ÷ bare SQL"
                ),
                value=median,
                unit="s/request",
                reference=(
                    "the timeline's UNION ALL (every branch on its customer + time "
                    "index, ORDER BY … LIMIT 51) as bare SQL in this process"
                ),
                reference_value=bare_median,
                details={
                    "fastest_s": round(fastest, 6),
                    "bare_fastest_s": round(bare_fastest, 6),
                    f"queries_at_{events[small]}_events": counts[(count_key[0], small)],
                    f"queries_at_{events[large]}_events": counts[count_key],
                },
            )
    finally:
        server.stop()
    for name in paths:
        if counts[(name, small)] != counts[(name, large)]:
            raise BenchFailure(
                f"the customer {name} ran {counts[(name, small)]} queries at "
                f"{events[small]} events and {counts[(name, large)]} at "
                f"{events[large]:,}"
            )


def bench_metrics() -> None:
    log(
        f"metrics: {RESPONSES:,} customers, then for each of {', '.join(KINDS)} a "
        f"campaign with {RESPONSES:,} answered invitations, responses and answers (SQL)"
    )
    started = time.monotonic()
    customers = data.customers_create(count=RESPONSES, prefix="metrics-")
    campaigns = {}
    for number, kind in enumerate(KINDS):
        campaign = data.campaign_create(name=f"{kind.upper()} bench", kind=kind)
        metrics.responses_create(
            campaign=campaign, customers=customers, seed=0.42 + number / 100
        )
        campaigns[kind] = campaign
        log(f"metrics: {kind} rows in, {time.monotonic() - started:.0f} s so far")
    data.vacuum_analyze(
        "customers_customer", "surveys_invitation", "surveys_response", "surveys_answer"
    )
    log(f"metrics: rows ready and vacuumed in {time.monotonic() - started:.0f} s")
    for kind, campaign in campaigns.items():
        timing = metrics.compare(kind, campaign=campaign)
        if kind == KINDS[0]:
            log(f"metrics: the ORM's SQL ({kind}): {timing.sql}")
        log(f"metrics: {kind} plan:\n{timing.plan}")
        log(
            f"metrics: {kind}: surveys.metrics {timing.orm * 1000:.1f} ms, bare SQL "
            f"{timing.bare * 1000:.1f} ms, join {timing.join * 1000:.1f} ms"
        )
        title = (
            f"{kind.upper()} of one campaign over {RESPONSES:,} responses (of "
            f"{RESPONSES * len(KINDS):,} in the table): surveys.metrics.{kind}, "
            "seconds per call (median of 11 after 2 warm-ups)"
        )
        report(
            name=(
                f"{title}; ratio = ORM ÷ bare SQL on the response table (target "
                "≤ 1.2, lower is better)"
            ),
            value=timing.orm,
            unit="s/call",
            reference=(
                "the same count(*) … FILTER aggregate"
                + (", avg and stddev_samp" if kind == "ces" else "")
                + " as bare SQL over surveys_response WHERE campaign_id = %s"
            ),
            reference_value=timing.bare,
            details={
                "orm_fastest_s": round(timing.orm_min, 6),
                "bare_fastest_s": round(timing.bare_min, 6),
                "ratio_of_fastest": round(timing.orm_min / timing.bare_min, 4),
            },
        )
        report(
            name=(
                f"{title}; ratio = ORM ÷ the join (second reference, median of 5, "
                "timed after the others)"
            ),
            value=timing.orm,
            unit="s/call",
            reference=(
                "the same aggregate through surveys_invitation (JOIN on "
                "invitation_id, WHERE i.campaign_id = %s), the query before "
                "responses carried their campaign"
            ),
            reference_value=timing.join,
        )


def answer_checks(*, campaign, load) -> list[str]:
    """
    Returns what is wrong with the rows of an answer run: answers missing from the
    database, detractors without an owned follow-up.
    """
    from django.db.models import Count

    from cxm.followups.models import FollowUp
    from surveys.models import Response

    problems = []
    saved = Response.objects.filter(campaign=campaign)
    count = saved.count()
    # wrk stops counting at the deadline with requests in flight that may land.
    if not load.redirects <= count <= load.redirects + CONNECTIONS:
        problems.append(f"{load.redirects} answers got a 302, {count} are saved")
    detractors = saved.filter(score__lte=6).count()
    followups = FollowUp.objects.filter(response__campaign=campaign)
    opened = followups.count()
    owners = dict(
        followups.values_list("owner__username").annotate(n=Count("pk")).order_by()
    )
    log(
        f"answers: {count} saved, {detractors} detractors "
        f"({100 * detractors / max(count, 1):.0f} %), {opened} follow-ups opened, "
        f"owners {owners}"
    )
    if opened != detractors:
        problems.append(f"{detractors} detractors opened {opened} follow-ups")
    if owners.get(None):
        problems.append(f"{owners[None]} follow-ups have no owner")
    return problems


def bare_rows(prefix: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM bench_answer WHERE token LIKE %s", [prefix + "%"]
        )
        return cursor.fetchone()[0]


def answer_round(
    *, server, csrf: str, workdir: Path, label: str, tag: str
) -> list[str]:
    """
    One answer run bracketed by two bare-view runs under the same server, each after
    a warm-up; reports answers/s and p99 against the bare view's mean. Returns the
    problems found.
    """
    from cxm.followups.models import FollowUp

    problems = []

    def load(prefix: str, tokens: list[str], name: str, *, warm: bool = False):
        """Runs wrk on these tokens; a warm-up's figures only count its errors."""
        path = answers.tokens_write(workdir / f"{name}.tokens", tokens)
        measured = answers.wrk_run(
            port=server.port,
            prefix=prefix,
            tokens_file=path,
            csrf=csrf,
            seconds=WARMUP if warm else DURATION,
            connections=CONNECTIONS,
            threads=min(WRK_THREADS, CONNECTIONS),
        )
        # Requests in flight at wrk's deadline would slow the next run down.
        server.drain()
        if measured.errors > MAX_ERRORS:
            problems.append(
                f"{name}: {measured.errors} errors (BENCH_MAX_ERRORS={MAX_ERRORS}): "
                f"{measured.describe()}"
            )
        if not warm and measured.redirects < MIN_ANSWERS:
            problems.append(f"{name}: only {measured.redirects} requests got a 302")
        return measured

    def bare(name: str):
        tokens = [f"{name}-{i}" for i in range(BARE_MAX_RATE * WARMUP)]
        load(answers.BARE_PREFIX, tokens, f"{name}-warm", warm=True)
        tokens = [f"{name}-run-{i}" for i in range(BARE_MAX_RATE * DURATION)]
        measured = load(answers.BARE_PREFIX, tokens, name)
        log(f"answers [{label}]: bare view {measured.describe()}")
        saved = bare_rows(f"{name}-run-")
        if not measured.redirects <= saved <= measured.redirects + CONNECTIONS:
            problems.append(
                f"bare view: {measured.redirects} got a 302, {saved} rows inserted"
            )
        return measured

    before = bare(f"bare{tag}a")

    warm = data.campaign_create(name=f"Answers warm-up {tag}")
    campaign = data.campaign_create(name=f"Answers {tag}")
    warm_tokens = answers.invitations_create(
        campaign=warm,
        count=answers.tokens_needed(before.rate, WARMUP),
        prefix="warm",
    )
    tokens = answers.invitations_create(
        campaign=campaign,
        count=answers.tokens_needed(before.rate, DURATION),
        prefix="answer",
    )
    load(answers.ANSWER_PREFIX, warm_tokens, f"answers{tag}-warm", warm=True)
    followups_before = FollowUp.objects.count()
    log(
        f"answers [{label}]: {len(tokens):,} invitations to answer "
        f"({followups_before:,} follow-ups in the table)"
    )
    measured = load(answers.ANSWER_PREFIX, tokens, f"answers{tag}")
    log(f"answers [{label}]: answer page {measured.describe()}")
    problems += [
        f"answer page: {p}" for p in answer_checks(campaign=campaign, load=measured)
    ]

    after = bare(f"bare{tag}b")
    reference_rate = (before.rate + after.rate) / 2
    reference_p99 = (before.p("p99") + after.p("p99")) / 2
    setup = (
        f"gunicorn cxm.wsgi ({SERVER_WORKERS} sync workers, DEBUG off), wrk "
        f"{CONNECTIONS} connections × {DURATION} s on loopback, each POST a new "
        f"invitation with CSRF on, ≈30 % detractors; {followups_before:,} "
        "follow-ups in the table before"
    )
    reference = (
        "a bare Django view (bench/views.py: same middleware, same CSRF-protected "
        "form, one INSERT) under the same server and database; mean of a run "
        f"before ({before.rate:.0f}/s, p99 {before.p('p99'):.0f} ms) and after "
        f"({after.rate:.0f}/s, p99 {after.p('p99'):.0f} ms)"
    )
    details = {
        "answers": measured.redirects,
        "errors": measured.errors,
        "p50_ms": round(measured.p("p50"), 1),
        "p99_ms": round(measured.p("p99"), 1),
        "max_ms": round(measured.p("max"), 1),
        "followups_before": followups_before,
        "meets_targets": {
            "≥ 0.7 of the bare view": measured.rate >= 0.7 * reference_rate,
            "p99 < 100 ms": measured.p("p99") < 100,
        },
    }
    report(
        name=(
            f"answer throughput, {label}: complete NPS answers (score + comment → "
            f"302) per second; {setup}; ratio = answers/s ÷ bare view/s (target "
            "≥ 0.7, higher is better)"
        ),
        value=measured.rate,
        unit="answers/s",
        reference=reference,
        reference_value=reference_rate,
        details=details,
    )
    report(
        name=(
            f"answer latency p99, {label}: {setup}; ratio = p99 ÷ bare view's p99 "
            "(target: p99 < 100 ms, lower is better)"
        ),
        value=measured.p("p99"),
        unit="ms",
        reference=reference,
        reference_value=reference_p99,
        details=details,
    )
    return problems


def bench_answers(*, env: dict, workdir: Path) -> None:
    from cxm.followups.models import FollowUp
    from surveys.models import Response

    if shutil.which("wrk") is None:
        raise BenchFailure("wrk is not installed: `make wrk` (Debian's package)")
    log(f"answers: {AGENTS} CX agents, the bare view's table, gunicorn")
    agents = answers.agents_create(count=AGENTS)
    answers.bare_table_create()
    csrf = answers.csrf_secret()
    server = answers.Server(
        env=env,
        port=smtp_sink.free_port(),
        workers=SERVER_WORKERS,
        log_path=workdir / "gunicorn.log",
    )
    problems = []
    try:
        server.wait_ready()
        probes = data.campaign_create(name="Answer probes")
        probe = answers.invitations_create(
            campaign=probes, count=3 + PROFILE, prefix="probe"
        )
        body = answers.answer_body(0)
        for path in (f"{answers.ANSWER_PREFIX}{probe[0]}/", f"{answers.BARE_PREFIX}x/"):
            status = answers.csrf_refused(server, path=path, body=body)
            if status != 403:
                raise BenchFailure(f"POST {path} without the CSRF token: {status}")
        status, location = answers.answer_post(
            server, path=f"{answers.ANSWER_PREFIX}{probe[0]}/", body=body, csrf=csrf
        )
        if status != 302 or not location.endswith(f"/s/{probe[0]}/thanks/"):
            raise BenchFailure(f"an answer through gunicorn: {status} → {location}")
        log("answers: CSRF on (403 without the token), an answer → 302 thanks")

        detractor = answers.statements_of(
            path=f"{answers.ANSWER_PREFIX}{probe[1]}/",
            body={"score": "3", "comment": "Late again."},
            csrf=csrf,
            then="thanks/",
        )
        response = Response.objects.get(invitation__token=probe[1])
        followup = FollowUp.objects.filter(response=response).first()
        if followup is None or followup.owner_id is None:
            raise BenchFailure("the detractor's answer opened no owned follow-up")
        promoter = answers.statements_of(
            path=f"{answers.ANSWER_PREFIX}{probe[2]}/",
            body={"score": "10", "comment": "Great."},
            csrf=csrf,
            then="thanks/",
        )
        bare = answers.statements_of(
            path=f"{answers.BARE_PREFIX}probe/",
            body={"score": "3", "comment": "Late again."},
            csrf=csrf,
            then="thanks/",
        )
        log(
            f"answers: a detractor's answer issues {len(detractor)} SQL statements, "
            f"a promoter's {len(promoter)}, the bare view's {len(bare)}:\n"
            + "\n".join(f"  {n}. {sql[:300]}" for n, sql in enumerate(detractor.sql, 1))
        )
        report(
            name=(
                "SQL statements of one detractor's complete answer (POST score 3 + "
                "comment → follow-up opened and assigned), as Django logs them in "
                "this process: BEGIN, COMMIT and any SAVEPOINT included, gunicorn's "
                "per-request connection health check (SELECT 1) not; the issue "
                f"counted 21 before survey kinds; a promoter's costs {len(promoter)}"
            ),
            value=len(detractor),
            unit="statements",
            reference="the bare view's statements (one INSERT)",
            reference_value=len(bare),
        )
        if PROFILE:
            log("answers: " + answers.in_process(tokens=probe[3:], csrf=csrf, top=30))

        problems += answer_round(
            server=server,
            csrf=csrf,
            workdir=workdir,
            label="no follow-up history",
            tag="empty",
        )
        log(f"answers: inserting {FOLLOWUPS:,} follow-ups with their history (SQL)")
        started = time.monotonic()
        followups.followups_create(
            count=FOLLOWUPS, teams=answers.teams_of(agents), prefix="history-"
        )
        data.vacuum_analyze(
            "customers_customer",
            "surveys_invitation",
            "surveys_response",
            "surveys_answer",
            "followups_followup",
            "followups_followupevent",
            "followups_agentturn",
        )
        log(f"answers: follow-ups ready in {time.monotonic() - started:.0f} s")
        problems += answer_round(
            server=server,
            csrf=csrf,
            workdir=workdir,
            label=f"{FOLLOWUPS:,} follow-ups of history",
            tag="full",
        )
        problems += protection_round(env=env, server=server, csrf=csrf, workdir=workdir)
    except (RuntimeError, BenchFailure):
        log(f"answers: gunicorn log:\n{server.tail()}")
        raise
    finally:
        server.stop()
    if problems:
        raise BenchFailure("answers: " + "; ".join(problems))


def protection_round(*, env: dict, server, csrf: str, workdir: Path) -> list[str]:
    """
    The answer page with issue 10's protections (CSP and the other headers, login
    protection, rate limits) against the same page without them (bench/
    settings_unprotected.py), in the order on, off, off, on; reports the ratio of
    their mean rates. Returns the problems found.
    """
    problems = []
    bare = answers.Server(
        env=env,
        port=smtp_sink.free_port(),
        workers=SERVER_WORKERS,
        log_path=workdir / "gunicorn-unprotected.log",
        settings="bench.settings_unprotected",
    )
    try:
        bare.wait_ready()
        rates = {"on": [], "off": []}
        for n, (state, target) in enumerate(
            [("on", server), ("off", bare), ("off", bare), ("on", server)]
        ):
            campaign = data.campaign_create(name=f"Protections {state} {n}")
            for name, seconds in [("warm", WARMUP), ("run", DURATION)]:
                part = answers.invitations_create(
                    campaign=campaign,
                    # The answer page runs far below the bare view's rate.
                    count=answers.tokens_needed(BARE_MAX_RATE / 4, seconds),
                    prefix=f"protect{n}{name}",
                )
                measured = answers.wrk_run(
                    port=target.port,
                    prefix=answers.ANSWER_PREFIX,
                    tokens_file=answers.tokens_write(
                        workdir / f"protect{n}{name}.tokens", part
                    ),
                    csrf=csrf,
                    seconds=seconds,
                    connections=CONNECTIONS,
                    threads=min(WRK_THREADS, CONNECTIONS),
                )
                target.drain()
                if measured.errors > MAX_ERRORS:
                    problems.append(f"protections {state}: {measured.describe()}")
            rates[state].append(measured.rate)
            log(f"answers [protections {state}]: answer page {measured.describe()}")
    finally:
        bare.stop()
    on, off = (sum(rates[s]) / len(rates[s]) for s in ("on", "off"))
    report(
        name=(
            "answer throughput with issue 10's protections (Content-Security-Policy, "
            "Permissions-Policy and no-store headers, django-axes, rate limits) on, "
            "against the same page with them off (bench/settings_unprotected.py), "
            f"same server setup, runs on, off, off, on of {DURATION} s; ratio = "
            "on ÷ off (target ≥ 0.95)"
        ),
        value=on,
        unit="answers/s",
        reference="the answer page with the protections off, mean of two runs",
        reference_value=off,
    )
    return problems


def bench_imports(*, workdir: Path) -> None:
    path = imports.csv_write(workdir / "customers.csv", count=IMPORT_ROWS)
    size = path.stat().st_size
    log(f"imports: {IMPORT_ROWS:,} rows, {size / 1e6:.1f} MB; reference COPY")
    reference = imports.copy_import(path)
    log(f"imports: COPY {reference:.2f} s; customers_import")
    seconds, result, rss_before, rss_after = imports.service_import(path)
    if result.created != IMPORT_ROWS or result.error_count:
        raise BenchFailure(f"imports: {result.created} created, {result.errors[:3]}")
    log(
        f"imports: {seconds:.2f} s, resident memory {rss_before / 1e3:.0f} MB "
        f"before, peak {rss_after / 1e3:.0f} MB during"
    )
    report(
        name=(
            f"CSV import of {IMPORT_ROWS:,} new customers ({size / 1e6:.1f} MB) "
            "through customers_import, read as a stream in batches of 2,000; ratio "
            "= rows/s ÷ COPY's rows/s (higher is better)"
        ),
        value=IMPORT_ROWS / seconds,
        unit="rows/s",
        reference="PostgreSQL COPY of the same file into a bare table (no index)",
        reference_value=IMPORT_ROWS / reference,
        details={
            "process_rss_mb_before": round(rss_before / 1e3, 1),
            "process_peak_rss_mb_during": round(rss_after / 1e3, 1),
            "file_mb": round(size / 1e6, 1),
        },
    )


def bench_trends(*, env: dict, workdir: Path) -> None:
    from datetime import timedelta

    from django.utils import timezone

    log(
        f"trends: {RESPONSES:,} responses over 2 years in 20 NPS campaigns, "
        f"{RESPONSES // 4:,} more delivered invitations, {RESPONSES // 10:,} "
        "customers (SQL)"
    )
    started = time.monotonic()
    trends.rows_create(responses=RESPONSES)
    log(f"trends: rows ready and vacuumed in {time.monotonic() - started:.0f} s")
    until = timezone.now()
    since = until - timedelta(days=731)
    timing = trends.compare_trend(since=since, until=until)
    log(f"trends: the ORM's SQL: {timing['sql']}")
    log(
        f"trends: weekly NPS, {timing['weeks']} weeks: surveys.metrics.trend "
        f"{timing['orm'] * 1000:.1f} ms, bare SQL {timing['bare'] * 1000:.1f} ms"
    )
    report(
        name=(
            f"Weekly NPS trend over 2 years ({RESPONSES:,} responses, "
            f"{timing['weeks']} weeks): surveys.metrics.trend, seconds per call "
            "(median of 11 after 2 warm-ups); ratio = ORM ÷ bare SQL (target "
            "≤ 1.3, lower is better)"
        ),
        value=timing["orm"],
        unit="s/call",
        reference=(
            "the same date_trunc('week') … count(*) FILTER aggregate as bare SQL "
            "over surveys_response of the NPS surveys"
        ),
        reference_value=timing["bare"],
        details={
            "fastest_s": round(timing["orm_min"], 6),
            "bare_fastest_s": round(timing["bare_min"], 6),
        },
    )
    cookie = trends.staff_session()
    server = answers.Server(
        env=env,
        port=smtp_sink.free_port(),
        workers=SERVER_WORKERS,
        log_path=workdir / "gunicorn-trends.log",
    )
    try:
        server.wait_ready()
        for path in ("/dashboard/", "/dashboard/?by=plan"):
            latency = trends.dashboard_latency(
                port=server.port, path=path, cookie=cookie
            )
            sql = trends.dashboard_sql(path=path, user_cookie=cookie)
            log(
                f"trends: GET {path}: median {latency['median'] * 1000:.1f} ms, "
                f"fastest {latency['min'] * 1000:.1f} ms; its {sql['statements']} "
                f"SQL statements bare: {sql['median'] * 1000:.1f} ms"
            )
            report(
                name=(
                    f"GET {path} over HTTP (gunicorn, a new connection each) with "
                    f"{RESPONSES:,} responses: median of 21 after 3 warm-ups; "
                    "ratio = median ÷ the 100 ms target (≤ 1 holds, lower is "
                    "better)"
                ),
                value=latency["median"],
                unit="s/request",
                reference="the issue's target, 100 ms",
                reference_value=0.1,
                details={
                    "fastest_s": round(latency["min"], 6),
                    "its_sql_bare_s": round(sql["median"], 6),
                    "ratio_to_its_sql_bare": round(
                        latency["median"] / sql["median"], 4
                    ),
                },
            )
    finally:
        server.stop()


def bench_exports(*, env: dict, workdir: Path) -> None:
    log(f"exports: a campaign with {EXPORT_ROWS:,} responses and answers (SQL)")
    started = time.monotonic()
    customers = data.customers_create(count=EXPORT_ROWS, prefix="exports-")
    campaign = data.campaign_create(name="Export bench")
    metrics.responses_create(campaign=campaign, customers=customers, seed=0.7)
    data.vacuum_analyze(
        "customers_customer", "surveys_invitation", "surveys_response", "surveys_answer"
    )
    log(f"exports: rows ready in {time.monotonic() - started:.0f} s; COPY reference")
    exports.copy_reference(campaign.pk)  # warm the caches for both alike
    copy_s, copy_bytes = exports.copy_reference(campaign.pk)
    seconds, rows, size, rss_before, rss_peak = exports.export(campaign)
    if rows != EXPORT_ROWS:
        raise BenchFailure(f"exports: {rows:,} rows exported of {EXPORT_ROWS:,}")
    log(
        f"exports: COPY {copy_s:.2f} s ({copy_bytes / 1e6:.0f} MB), export "
        f"{seconds:.2f} s ({size / 1e6:.0f} MB), resident memory "
        f"{rss_before / 1e3:.0f} MB before, peak {rss_peak / 1e3:.0f} MB during"
    )
    report(
        name=(
            f"CSV export of {EXPORT_ROWS:,} responses of one campaign "
            "(surveys.exports.responses_csv, as /api/responses/export.csv streams it, "
            "read in this process); ratio = rows/s ÷ COPY's rows/s (target ≥ 0.25, "
            "higher is better)"
        ),
        value=rows / seconds,
        unit="rows/s",
        reference=(
            "COPY (SELECT the same rows' columns, joined, newest first) TO STDOUT "
            "WITH (FORMAT csv), read here through psycopg"
        ),
        reference_value=EXPORT_ROWS / copy_s,
        details={
            "process_rss_mb_before": round(rss_before / 1e3, 1),
            "process_peak_rss_mb_during": round(rss_peak / 1e3, 1),
            "peak_rss_target_mb": 150,
            "export_mb": round(size / 1e6, 1),
            "copy_mb": round(copy_bytes / 1e6, 1),
        },
    )
    server = answers.Server(
        env=env,
        port=smtp_sink.free_port(),
        workers=SERVER_WORKERS,
        log_path=workdir / "gunicorn-exports.log",
    )
    try:
        server.wait_ready()
        api = exports.api_latency(
            url=f"http://127.0.0.1:{server.port}",
            token=exports.staff_token(),
            campaign_id=campaign.pk,
        )
    finally:
        server.stop()
    bare = exports.seconds_each(lambda: exports.page_bare(campaign.pk))
    old_count = exports.seconds_each(
        lambda: exports.count_old(campaign.pk), warmup=1, runs=5
    )
    median = exports.median
    log(
        f"exports: API list {median(api) * 1000:.1f} ms, bare SQL "
        f"{median(bare) * 1000:.1f} ms, the old exact count alone "
        f"{median(old_count) * 1000:.1f} ms"
    )
    report(
        name=(
            f"GET /api/responses/?campaign= (first page of 50 of {EXPORT_ROWS:,}, "
            "keyset paging, no count) over HTTP to gunicorn, median of 21 on a "
            "kept-alive connection (target < 0.1 s); ratio = HTTP ÷ bare SQL"
        ),
        value=median(api),
        unit="s/request",
        reference=(
            "the page's two queries as bare SQL in this process (rows joined to "
            "customer and survey, LIMIT 51; their answers)"
        ),
        reference_value=median(bare),
        details={
            "api_fastest_s": round(min(api), 6),
            "old_exact_count_alone_s": round(median(old_count), 6),
        },
    )


def bench_journeys() -> None:
    log(
        f"journeys: {JOURNEY_RESPONSES:,} responses over 2 years, "
        f"{JOURNEY_INTERACTIONS:,} interactions, {JOURNEY_CUSTOMERS:,} customers (SQL)"
    )
    started = time.monotonic()
    journey = journeys.rows_create(
        responses=JOURNEY_RESPONSES,
        interactions=JOURNEY_INTERACTIONS,
        customers=JOURNEY_CUSTOMERS,
    )
    log(f"journeys: rows ready and vacuumed in {time.monotonic() - started:.0f} s")
    for days in (90, 365):
        result = journeys.compare(journey=journey, days=days)
        log(f"journeys, {days} days: {result['responses']:,} responses counted")
        if not result["agree"]:
            raise BenchFailure(f"journeys: cxm and the bare SQL disagree ({days} d)")
        sizes = (
            f"{JOURNEY_RESPONSES:,} responses over 2 years across "
            f"{journeys.TOUCHPOINTS} touchpoints and {JOURNEY_INTERACTIONS:,} "
            f"interactions, the last {days} days against the {days} before"
        )
        for key, what, reference in [
            (
                "touchpoints",
                "the journey map's touchpoint figures (score counts of both periods, "
                "follow-ups; selectors.touchpoint_counts)",
                "the same GROUP BY touchpoint, kind with FILTER as bare SQL",
            ),
            (
                "drop_off",
                "the journey map's drop-off per stage (selectors.stage_reach)",
                "the same DISTINCT (customer, stage) self-join as bare SQL",
            ),
        ]:
            median, fastest = result[key]
            bare_median, bare_fastest = result[key + "_bare"]
            report(
                name=(
                    f"{what} over {sizes}, seconds per call (median of 5 after 1 "
                    "warm-up, in turns with the bare SQL); target within 1.3× of it"
                ),
                value=median,
                unit="s/call",
                reference=reference,
                reference_value=bare_median,
                details={
                    "fastest_s": round(fastest, 6),
                    "bare_fastest_s": round(bare_fastest, 6),
                },
            )
        median, _ = result["map"]
        bare, _ = result["map_bare"]
        report(
            name=(
                "the whole journey map (selectors.journey_map, 5 queries) over "
                f"{sizes}, seconds per call (median of 5 after 1 warm-up, in turns "
                "with the bare SQL)"
            ),
            value=median,
            unit="s/call",
            reference="the two bare SQL queries above, one after the other",
            reference_value=bare,
            details={"reached": result["reached"]},
        )


def main() -> None:
    started = time.monotonic()
    unknown = set(ONLY) - set(PARTS)
    if unknown:
        sys.exit(f"bench: BENCH_ONLY names {sorted(unknown)}; choose from {PARTS}")
    # A SIGTERM (a CI timeout, kill) unwinds through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    redis_check()
    queue = f"cxm-bench-{uuid.uuid4().hex}"
    database_url = f"{server_url()}/{BENCH_DATABASE}"
    log(f"database {BENCH_DATABASE}: create and migrate")
    database_reset()
    smtp = None
    failure = None
    try:
        env = {
            # The shell's EMAIL_HOST would clash with the EMAIL_URL set below.
            **{k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")},
            "DJANGO_SETTINGS_MODULE": "cxm.settings",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_QUEUE": queue,
            "SITE_URL": "https://cx.example.com",
            # wrk speaks plain HTTP to gunicorn, as a TLS-terminating proxy would;
            # every other header an https site sends stays on.
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
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
        # This process serves the bare view too (its statements are counted here).
        os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "bench.settings"})

        import django

        # No collectstatic here: nothing this process serves is a static file.
        warnings.filterwarnings("ignore", "No directory at", UserWarning)
        django.setup()

        with tempfile.TemporaryDirectory(prefix="cxm-bench-") as workdir:
            if "delivery" in ONLY:
                bench_delivery(smtp=smtp, env=worker_env, workdir=Path(workdir))
            if "metrics" in ONLY:
                bench_metrics()
            if "segments" in ONLY:
                bench_segments()
            if "imports" in ONLY:
                bench_imports(workdir=Path(workdir))
            if "followups" in ONLY:
                bench_followups()
            if "timeline" in ONLY:
                bench_timeline(env=env, workdir=Path(workdir))
            if "customerlist" in ONLY:
                bench_customerlist(env=env, workdir=Path(workdir))
            if "trends" in ONLY:
                bench_trends(env=env, workdir=Path(workdir))
            if "journeys" in ONLY:
                bench_journeys()
            if "exports" in ONLY:
                bench_exports(env=env, workdir=Path(workdir))
            if "answers" in ONLY:
                try:
                    bench_answers(env=env, workdir=Path(workdir))
                except BenchFailure as e:
                    failure = e
    finally:
        if smtp is not None:
            smtp.stop()
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        redis_forget(queue)
        if KEEP:
            log(f"done in {time.monotonic() - started:.0f} s; {BENCH_DATABASE} kept")
        else:
            database_reset(drop_only=True)
            log(f"done in {time.monotonic() - started:.0f} s; {BENCH_DATABASE} dropped")
    if failure is not None:
        sys.exit(f"bench: FAILED: {failure}")


if __name__ == "__main__":
    main()
