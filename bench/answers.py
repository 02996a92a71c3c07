"""
Answer throughput: complete NPS answers POSTed to the answer page under gunicorn
(sync workers) by wrk, each to a different invitation with CSRF on, against the bare
view of bench/views.py (the same form, one INSERT) under the same server; and the SQL
statements one detractor's answer costs, counted in this process.
"""

import cProfile
import functools
import io
import json
import math
import pstats
import re
import secrets
import statistics
import string
import subprocess
import sys
import time
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
LUA_SCRIPT = Path(__file__).resolve().parent / "answers.lua"

ANSWER_PREFIX = "/s/"
BARE_PREFIX = "/bench/s/"

# Of ten answers, three are detractors (0–6), two passives, five promoters: about
# the share of detractors a CX team sees, and each of them opens a follow-up.
SCORES = [0, 6, 3, 7, 8, 9, 10, 9, 10, 10]
COMMENTS = [
    "The parcel came a week late and support never called back.",
    "",
    "배송이 늦었고 아무도 연락하지 않았습니다.",
    "Good, but the app logs me out every day.",
    "",
]


def csrf_secret() -> str:
    """A CSRF secret as Django makes it: 32 letters and digits. Sent unmasked as
    both cookie and form field, it passes CsrfViewMiddleware's check."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def answer_body(index: int) -> str:
    """The form of the index-th answer: a score from the mix and a comment (or an
    empty one, which still completes the page)."""
    return urllib.parse.urlencode(
        {
            "score": SCORES[index % len(SCORES)],
            "comment": COMMENTS[index % len(COMMENTS)],
        }
    )


def tokens_write(path: Path, tokens: list[str]) -> Path:
    """Writes the wrk script's input: one "token<TAB>form" line per request."""
    with path.open("w", encoding="utf-8") as out:
        for index, token in enumerate(tokens):
            out.write(f"{token}\t{answer_body(index)}\n")
    return path


# --- Data ------------------------------------------------------------------------


def agents_create(*, count: int) -> list:
    """Creates `count` active users in the CX agents group (which gives each a
    round-robin turn); returns them."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    User = get_user_model()
    group = Group.objects.get(name=settings.FOLLOWUP_AGENTS_GROUP)
    users = [
        User.objects.create_user(
            username=f"agent{i}", email=f"agent{i}@bench.example.com"
        )
        for i in range(1, count + 1)
    ]
    group.user_set.add(*users)
    return users


def teams_of(agents: list) -> list:
    """
    Two teams sharing these agents, for the follow-up history bench/followups.py
    inserts (its follow-ups alternate between two teams).
    """
    from cxm.followups.models import Team
    from cxm.followups.services import team_save

    half = max(1, len(agents) // 2)
    return [
        team_save(team=Team(name="Answers history A"), members=agents[:half]),
        team_save(team=Team(name="Answers history B"), members=agents[half:] or agents),
    ]


def invitations_create(*, campaign, count: int, prefix: str) -> list[str]:
    """
    Inserts `count` customers and a sent, unanswered invitation to each, in SQL;
    returns their tokens in order.
    """
    from django.db import connection, transaction

    from bench.data import customers_create

    first, last = customers_create(count=count, prefix=f"{prefix}{campaign.pk}-")
    with transaction.atomic(), connection.cursor() as cursor:
        # 32 hex digits after a prefix: the shape of new_token()'s alphabet.
        cursor.execute(
            """
            INSERT INTO surveys_invitation
                (campaign_id, customer_id, token, status, due_at, attempts, last_error,
                 skip_reason, reminders_sent, wave, sent_at, created_at)
            SELECT %s, c.id, 'b' || c.id || '-' || md5(random()::text), 'sent',
                   now(), 1, '', '', 0, 1, now(), now()
            FROM customers_customer c
            WHERE c.id BETWEEN %s AND %s
            ORDER BY c.id
            RETURNING token
            """,
            [campaign.pk, first, last],
        )
        return [row[0] for row in cursor.fetchall()]


def bare_table_create() -> None:
    from django.db import connection

    from bench.views import TABLE_SQL

    with connection.cursor() as cursor:
        cursor.execute(TABLE_SQL)


# --- The server and the load ---------------------------------------------------


class Server:
    """gunicorn serving cxm (bench.settings) with sync workers, in its own process
    group, logging to a file."""

    def __init__(
        self,
        *,
        env: dict,
        port: int,
        workers: int,
        log_path: Path,
        settings: str = "bench.settings",
    ):
        self.port = port
        self.workers = workers
        self.log_path = log_path
        with log_path.open("wb") as out:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "cxm.wsgi",
                    "--chdir",
                    str(BASE_DIR),
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    str(workers),
                    "--worker-class",
                    "sync",
                    "--timeout",
                    "120",
                    "--graceful-timeout",
                    "10",
                    "--log-level",
                    "warning",
                    "--no-control-socket",
                ],
                cwd=BASE_DIR,
                env={**env, "DJANGO_SETTINGS_MODULE": settings},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def request(
        self, method: str, path: str, *, body: str = "", headers=None, timeout=30
    ):
        """Returns (status, location) of one request, over a new connection."""
        connection = HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
            response = connection.getresponse()
            response.read()
            return response.status, response.getheader("Location")
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.tail()}")
            try:
                status, _ = self.request("GET", "/brand.css")
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer:\n{self.tail()}")
            time.sleep(0.2)

    def drain(self) -> None:
        """
        Returns once the server has worked off what a finished wrk run left: sync
        workers still serve the requests queued when wrk closed its connections, and
        the kernel hands connections over in order, so a request sent now is served
        after them. One per worker, so none of them is still busy.
        """
        for _ in range(self.workers):
            self.request("GET", "/brand.css", timeout=300)

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        from tests.processes import process_group_stop

        process_group_stop(self.popen)


@dataclass(frozen=True)
class Load:
    """What wrk measured: answers are the 302s; everything else is an error."""

    seconds: float
    requests: int
    redirects: int
    others: int
    exhausted: int
    statuses: list
    socket_errors: dict
    latency_us: dict

    @property
    def rate(self) -> float:
        return self.redirects / self.seconds

    @property
    def errors(self) -> int:
        socket = sum(v for k, v in self.socket_errors.items() if k != "status")
        return self.others + socket

    def p(self, name: str) -> float:
        """A latency percentile (p50, p90, p99, max) in milliseconds."""
        return self.latency_us[name] / 1000

    def describe(self) -> str:
        text = (
            f"{self.redirects} answered (302) in {self.seconds:.1f} s = "
            f"{self.rate:.0f}/s, p50 {self.p('p50'):.0f} ms, p99 {self.p('p99'):.0f} "
            f"ms, max {self.p('max'):.0f} ms"
        )
        if self.errors:
            text += (
                f"; {self.errors} errors: statuses {self.statuses}, socket "
                f"{self.socket_errors}, {self.exhausted} after the tokens ran out"
            )
        return text


def wrk_run(
    *,
    port: int,
    prefix: str,
    tokens_file: Path,
    csrf: str,
    seconds: float,
    connections: int,
    threads: int,
) -> Load:
    """Runs wrk with bench/answers.lua against the server; returns what it counted."""
    command = [
        "wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        # A slow answer counts in the latency, not as a timeout.
        "--timeout=30s",
        "--latency",
        f"--script={LUA_SCRIPT}",
        f"http://127.0.0.1:{port}",
        "--",
        prefix,
        str(tokens_file),
        csrf,
        str(threads),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        stdin=subprocess.DEVNULL,
    )
    line = next(
        (x for x in done.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None
    )
    if done.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-3000:]}"
        )
    result = json.loads(line.removeprefix("BENCH_RESULT "))
    return Load(
        seconds=result["duration_us"] / 1e6,
        requests=result["requests"],
        redirects=result["redirects"],
        others=result["others"],
        exhausted=result["exhausted"],
        statuses=result["statuses"],
        socket_errors=result["errors"],
        latency_us=result["latency_us"],
    )


def csrf_refused(server: Server, *, path: str, body: str) -> int:
    """Returns the status of a POST without the CSRF cookie and field."""
    status, _ = server.request(
        "POST",
        path,
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return status


def answer_post(server: Server, *, path: str, body: str, csrf: str):
    """POSTs one form with the CSRF secret as cookie and field; (status, location)."""
    return server.request(
        "POST",
        path,
        body=f"{body}&csrfmiddlewaretoken={csrf}",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf}",
        },
    )


def tokens_needed(rate: float, seconds: float) -> int:
    """Invitations enough for `seconds` at twice `rate` (the bare view's, measured
    just before, bounds the answer page's; twice for a noisy measurement). A list
    used up shows as errors, never as answers."""
    return math.ceil(max(rate, 200) * 2 * seconds) + 500


# --- In this process -------------------------------------------------------------


@dataclass(frozen=True)
class Statements:
    """
    One request's SQL: the statements as Django logs them (BEGIN and COMMIT
    included), each statement sent with its seconds to the microsecond (Django's
    log rounds to the millisecond; BEGIN and COMMIT are not timed), and the
    request's seconds.
    """

    sql: list[str]
    timed: list[tuple[str, float]]
    seconds: float

    def __len__(self):
        return len(self.sql)

    @property
    def sql_seconds(self) -> float:
        return sum(took for _sql, took in self.timed)


@functools.cache
def _client(csrf: str):
    """One test client (a new one loads the middleware again, WhiteNoise's scan of
    the static files included) with CSRF checks on and the secret as its cookie."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
    client.cookies["csrftoken"] = csrf
    return client


def client_post(*, path: str, body: dict, csrf: str):
    """POSTs through django.test.Client with CSRF checks on; returns the response
    and its SQL statements."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timed = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timed.append((sql, time.perf_counter() - started))

    client = _client(csrf)
    with CaptureQueriesContext(connection) as captured:
        with connection.execute_wrapper(timer):
            started = time.perf_counter()
            response = client.post(path, {**body, "csrfmiddlewaretoken": csrf})
            seconds = time.perf_counter() - started
    return response, Statements(
        [q["sql"] for q in captured.captured_queries], timed, seconds
    )


def statements_of(*, path: str, body: dict, csrf: str, then: str) -> Statements:
    """The statements of a POST that must redirect to path + `then`."""
    response, statements = client_post(path=path, body=body, csrf=csrf)
    if response.status_code != 302 or response["Location"] != path + then:
        raise RuntimeError(
            f"POST {path} answered {response.status_code} "
            f"{response.get('Location', '')}, not 302 to {path}{then}"
        )
    return statements


def statement_shape(sql: str) -> str:
    """A statement without its values and column lists, to group like ones."""
    sql = re.sub(r"SELECT .*? FROM", "SELECT … FROM", sql)
    sql = re.sub(r"'[^']*'|\b\d+\b", "?", sql)
    sql = re.sub(r'"s\d+_x\d+"', "sp", sql)
    return sql[:150]


def in_process(*, tokens: list[str], csrf: str, top: int = 30) -> str:
    """
    Answers the invitations of `tokens` through django.test.Client in this process
    (the load's score mix): the first half timed, the second under cProfile; then as
    many bare-view posts, timed. Returns the report: time per answer against the
    bare view's, the answer's SQL by statement, the functions that took most.
    """
    half = len(tokens) // 2
    profiler = cProfile.Profile()
    seconds = 0.0
    by_shape = defaultdict(list)
    for index, token in enumerate(tokens):
        body = dict(urllib.parse.parse_qsl(answer_body(index)))
        if index >= half:
            profiler.enable()
        response, statements = client_post(
            path=f"{ANSWER_PREFIX}{token}/", body=body, csrf=csrf
        )
        if index >= half:
            profiler.disable()
        else:
            seconds += statements.seconds
            for sql, took in statements.timed:
                by_shape[statement_shape(sql)].append(took)
        if response.status_code != 302:
            raise RuntimeError(f"in-process answer: {response.status_code}, not 302")
    bare_seconds = 0.0
    for index in range(half):
        body = dict(urllib.parse.parse_qsl(answer_body(index)))
        response, statements = client_post(
            path=f"{BARE_PREFIX}in-process-{index}/", body=body, csrf=csrf
        )
        bare_seconds += statements.seconds
        if response.status_code != 302:
            raise RuntimeError(f"in-process bare view: {response.status_code}")
    sql_seconds = sum(sum(times) for times in by_shape.values())
    lines = [
        f"{half} answers in-process (Client, no server): "
        f"{1000 * seconds / half:.2f} ms each, {1000 * sql_seconds / half:.2f} ms of "
        f"it in SQL statements (COMMIT not timed); the bare view "
        f"{1000 * bare_seconds / half:.2f} ms. Per statement of an answer (count "
        "per answer × mean ms):"
    ]
    for shape, times in sorted(by_shape.items(), key=lambda kv: -sum(kv[1])):
        lines.append(
            f"  {len(times) / half:4.2f} × {1000 * statistics.mean(times):6.2f} ms  "
            f"{shape}"
        )
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    lines.append(f"cProfile of {len(tokens) - half} more:\n{out.getvalue()}")
    return "\n".join(lines)
