"""
The dashboard's figures at a million responses over two years: the weekly NPS
trend of surveys.metrics against the bare SQL it is built on, and /dashboard/ over
HTTP.
"""

import statistics
import time

# The weekly NPS trend as a DBA would write it on the response table: the kind's
# surveys, a week per row, the counts of the bounds of surveys/kinds.py.
BARE_TREND_SQL = """
    SELECT date_trunc('week', r.created_at AT TIME ZONE %s) AS week,
           count(r.score),
           count(r.score) FILTER (WHERE r.score <= 6),
           count(r.score) FILTER (WHERE r.score >= 9)
    FROM surveys_response r
    WHERE r.survey_id IN (SELECT id FROM surveys_survey WHERE kind = 'nps')
      AND r.created_at >= %s AND r.created_at < %s
    GROUP BY 1
    ORDER BY 1
"""

PLANS = ["basic", "pro", "enterprise"]
REGIONS = ["emea", "apac", "amer"]
COMMENTS = [
    "Delivery took two weeks and nobody answered my emails.",
    "The app is easy to use and support was quick.",
    "배송이 너무 늦었습니다.",
    "가격이 비싸지만 품질이 좋습니다.",
]


def rows_create(*, responses: int, campaigns: int = 20, days: int = 730) -> dict:
    """
    Inserts in SQL responses/10 customers (plan, region, one in five Korean),
    `campaigns` NPS campaigns, and `responses` answered invitations with their
    responses spread uniformly over the last `days` days, plus a quarter as many
    delivered, unanswered invitations (the response rate's denominator). Returns
    the customers' and campaigns' counts.
    """
    from django.db import connection, transaction

    from bench import data

    customers = max(100, responses // 10)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.17)")
        cursor.execute(
            """
            INSERT INTO customers_customer
                (email, name, locale, external_id, properties, created_at,
                 updated_at)
            SELECT 'trends-' || g || '@bench.example.com', 'Customer ' || g,
                   CASE WHEN g %% 5 = 0 THEN 'ko' ELSE 'en' END, '',
                   jsonb_build_object('plan', (%s::text[])[1 + g %% 3],
                                      'region', (%s::text[])[1 + g %% 7 %% 3]),
                   now(), now()
            FROM generate_series(1, %s) g
            """,
            [PLANS, REGIONS, customers],
        )
    first = connection.cursor()
    first.execute(
        "SELECT min(id), max(id) FROM customers_customer WHERE email LIKE 'trends-%%'"
    )
    low, high = first.fetchone()
    campaign_ids = [
        data.campaign_create(name=f"NPS trend {n}", kind="nps").pk
        for n in range(campaigns)
    ]
    from surveys.models import Campaign

    surveys = dict(
        Campaign.objects.filter(pk__in=campaign_ids).values_list("pk", "survey_id")
    )
    invited = responses + responses // 4
    with transaction.atomic(), connection.cursor() as cursor:
        # One draw per row: the time; 4 in 5 answered. Each invitation follows
        # an interaction (a triggered campaign), so a customer may have several.
        cursor.execute(
            """
            INSERT INTO surveys_invitation
                (campaign_id, customer_id, token, status, due_at, attempts,
                 last_error, skip_reason, reminders_sent, wave, sent_at,
                 answered_at, created_at, interaction_id)
            SELECT c.campaign, c.customer, 't' || g, CASE WHEN g %% 5 = 0
                   THEN 'sent' ELSE 'answered' END, t, 1, '', '', 0, 1, t,
                   CASE WHEN g %% 5 = 0 THEN NULL
                   ELSE t + interval '3 hours' END, t, g
            FROM (
                SELECT g, now() - random() * (%s * interval '1 day') AS t
                FROM generate_series(1, %s) g
            ) d
            CROSS JOIN LATERAL (
                SELECT (%s::bigint[])[1 + d.g %% %s] AS campaign,
                       %s + (d.g::bigint * 7919) %% %s AS customer
            ) c
            -- In the order they happen, as a live table fills.
            ORDER BY d.t
            """,
            [days, invited, campaign_ids, len(campaign_ids), low, high - low + 1],
        )
        cursor.execute(
            """
            INSERT INTO surveys_response
                (invitation_id, campaign_id, survey_id, customer_id, score,
                 comment, created_at, updated_at)
            SELECT i.id, i.campaign_id, (%s::jsonb ->> i.campaign_id::text)::bigint,
                   i.customer_id,
                   -- Scores lean to the top as real NPS answers do.
                   least(10, floor(random() * 8)::int + floor(random() * 4)::int),
                   CASE WHEN i.id %% 6 = 0 THEN (%s::text[])[1 + i.id %% 4]
                   ELSE '' END,
                   i.answered_at, i.answered_at
            FROM surveys_invitation i
            WHERE i.answered_at IS NOT NULL AND i.token LIKE 't%%'
            ORDER BY i.answered_at
            """,
            [_json({str(k): v for k, v in surveys.items()}), COMMENTS],
        )
    data.vacuum_analyze(
        "customers_customer",
        "surveys_survey",
        "surveys_campaign",
        "surveys_invitation",
        "surveys_response",
    )
    return {"customers": customers, "campaigns": len(campaign_ids)}


def _json(value) -> str:
    import json

    return json.dumps(value)


def bare_trend(*, since, until) -> list[tuple]:
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(BARE_TREND_SQL, [settings.TIME_ZONE, since, until])
        return cursor.fetchall()


def orm_trend(*, since, until) -> list:
    from surveys import metrics

    return metrics.trend("nps", interval="week", since=since, until=until)


def compare_trend(*, since, until, warmup: int = 2, runs: int = 11) -> dict:
    """
    Checks that metrics.trend counts what the bare SQL counts, then returns the
    median and fastest seconds of each, run in turns, and the ORM's SQL.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.metrics import seconds_of

    with CaptureQueriesContext(connection) as captured:
        points = orm_trend(since=since, until=until).points
    bare = bare_trend(since=since, until=until)
    orm = [
        (p.metric.responses, p.metric.detractors, p.metric.promoters) for p in points
    ]
    if orm != [tuple(row[1:]) for row in bare]:
        raise RuntimeError(f"trend: surveys.metrics {orm[:3]}…, bare SQL {bare[:3]}…")
    orm_times, bare_times = seconds_of(
        [
            lambda: orm_trend(since=since, until=until),
            lambda: bare_trend(since=since, until=until),
        ],
        warmup=warmup,
        runs=runs,
    )
    return {
        "weeks": len(points),
        "orm": statistics.median(orm_times),
        "bare": statistics.median(bare_times),
        "orm_min": min(orm_times),
        "bare_min": min(bare_times),
        "sql": captured.captured_queries[-1]["sql"],
    }


def staff_session() -> tuple[str, str]:
    """Returns the session cookie's name and value of a new CX staff user."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user(
        username="bench-dashboard", password=None, is_staff=True
    )
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return name, client.cookies[name].value


def dashboard_latency(*, port: int, path: str, cookie: tuple[str, str], runs=21):
    """Returns the median and fastest seconds of GET `path` over HTTP (a new
    connection each, as a browser's first request), signed in with `cookie`."""
    from http.client import HTTPConnection

    def get() -> float:
        started = time.perf_counter()
        connection = HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request(
                "GET", path, headers={"Cookie": f"{cookie[0]}={cookie[1]}"}
            )
            answer = connection.getresponse()
            body = answer.read()
        finally:
            connection.close()
        elapsed = time.perf_counter() - started
        if answer.status != 200 or b'id="trend"' not in body:
            raise RuntimeError(f"GET {path}: {answer.status}, not the dashboard")
        return elapsed

    for _ in range(3):
        get()
    times = [get() for _ in range(runs)]
    return {"median": statistics.median(times), "min": min(times)}


def dashboard_sql(*, path: str, user_cookie: tuple[str, str], runs: int = 11) -> dict:
    """
    Returns the median seconds of the SQL statements one GET `path` runs (captured
    from an in-process request), each run bare on a cursor in turn: the database's
    share of the page, measured beside it.
    """
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.cookies[user_cookie[0]] = user_cookie[1]
    with CaptureQueriesContext(connection) as captured:
        answer = client.get(path, HTTP_HOST=settings.ALLOWED_HOSTS[0])
    if answer.status_code != 200:
        raise RuntimeError(f"GET {path} in process: {answer.status_code}")
    statements = [q["sql"] for q in captured.captured_queries]

    def run_all():
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
                cursor.fetchall()

    run_all()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run_all()
        times.append(time.perf_counter() - started)
    return {"median": statistics.median(times), "statements": len(statements)}
