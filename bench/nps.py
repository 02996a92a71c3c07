"""NPS of a campaign with a million responses: surveys.metrics.nps against raw SQL."""

import statistics
import time

RAW_SQL = """
SELECT count(*),
       count(*) FILTER (WHERE r.score >= 9),
       count(*) FILTER (WHERE r.score <= 6)
FROM surveys_response r
JOIN surveys_invitation i ON i.id = r.invitation_id
WHERE i.campaign_id = %s
"""


def responses_create(*, campaign, count: int) -> None:
    """Inserts `count` customers, their answered invitations and responses, in SQL."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM customers_customer")
        (after,) = cursor.fetchone()
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            """
            INSERT INTO customers_customer
                (email, name, locale, external_id, properties, created_at, updated_at)
            SELECT 'nps' || g || '@bench.example.com', 'Customer ' || g,
                   CASE WHEN g %% 5 = 0 THEN 'ko' ELSE 'en' END, '', '{}'::jsonb,
                   now(), now()
            FROM generate_series(1, %s) g
            """,
            [count],
        )
        cursor.execute(
            """
            INSERT INTO surveys_invitation
                (campaign_id, customer_id, token, status, due_at, attempts, last_error,
                 sent_at, answered_at, created_at)
            SELECT %s, c.id, 'nps-' || c.id, 'answered', now(), 1, '',
                   now(), now(), now()
            FROM customers_customer c
            WHERE c.id > %s
            """,
            [campaign.pk, after],
        )
        cursor.execute(
            """
            INSERT INTO surveys_response (invitation_id, score, comment, created_at,
                                          updated_at)
            SELECT i.id, floor(random() * 11)::int, '', now(), now()
            FROM surveys_invitation i
            WHERE i.campaign_id = %s
            """,
            [campaign.pk],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def raw_counts(*, campaign_id: int) -> tuple[int, int, int]:
    """Returns (responses, promoters, detractors) of a campaign from one SQL query."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(RAW_SQL, [campaign_id])
        return cursor.fetchone()


def median_seconds(calls: list, *, warmup: int, runs: int) -> list[float]:
    """Returns the median seconds of each call, run in turns after a warm-up."""
    for _ in range(warmup):
        for call in calls:
            call()
    timings = [[] for _ in calls]
    for _ in range(runs):
        for call, times in zip(calls, timings, strict=True):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
    return [statistics.median(times) for times in timings]


def compare(*, campaign, warmup: int = 2, runs: int = 7) -> tuple[float, float]:
    """Returns the median seconds per call of metrics.nps and of the raw SQL."""
    from surveys import metrics

    orm = metrics.nps(campaign=campaign)
    raw = raw_counts(campaign_id=campaign.pk)
    if (orm.responses, orm.promoters, orm.detractors) != tuple(raw):
        raise RuntimeError(f"metrics.nps counted {orm}, the raw SQL {raw}")
    orm_seconds, raw_seconds = median_seconds(
        [
            lambda: metrics.nps(campaign=campaign),
            lambda: raw_counts(campaign_id=campaign.pk),
        ],
        warmup=warmup,
        runs=runs,
    )
    return orm_seconds, raw_seconds
