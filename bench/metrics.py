"""
Each kind's metric of a campaign with a million responses: surveys.metrics against
the bare SQL aggregate over the response table alone, and against the join through
surveys_invitation that the schema forced before responses carried their campaign.
"""

import statistics
import time
from dataclasses import dataclass

# The bounds are the kinds' own (surveys/kinds.py), written out as a DBA would.
BARE_SQL = {
    "nps": """
        SELECT count(*),
               count(*) FILTER (WHERE score >= 9),
               count(*) FILTER (WHERE score <= 6)
        FROM surveys_response
        WHERE campaign_id = %s
    """,
    "csat": """
        SELECT count(*),
               count(*) FILTER (WHERE score >= 4),
               count(*) FILTER (WHERE score <= 2)
        FROM surveys_response
        WHERE campaign_id = %s
    """,
    "ces": """
        SELECT count(*),
               count(*) FILTER (WHERE score >= 5),
               count(*) FILTER (WHERE score <= 3),
               avg(score),
               stddev_samp(score)
        FROM surveys_response
        WHERE campaign_id = %s
    """,
}

# The same aggregates through the invitation: the only way to a response's campaign
# before survey kinds.
JOIN_SQL = {
    kind: sql.replace("score", "r.score")
    .replace(
        "FROM surveys_response",
        "FROM surveys_response r JOIN surveys_invitation i ON i.id = r.invitation_id",
    )
    .replace("WHERE campaign_id", "WHERE i.campaign_id")
    for kind, sql in BARE_SQL.items()
}

# A sixth of the answers say why, in the two languages the pages speak.
COMMENTS = [
    "Delivery took two weeks and nobody answered my emails.",
    "The app is easy to use.",
    "배송이 너무 늦었습니다.",
]


@dataclass(frozen=True)
class Timing:
    """Median seconds per call of each query, and the fastest call of each (the
    least disturbed by whatever else the machine runs)."""

    orm: float
    bare: float
    join: float
    orm_min: float
    bare_min: float
    sql: str
    plan: str


def responses_create(*, campaign, customers: tuple[int, int], seed: float) -> int:
    """
    Inserts, in SQL, an answered invitation and a response for each customer with
    an id in `customers` (first, last), and the response's answers: the headline
    score, and the reason for one response in six. Scores are drawn uniformly on
    the campaign's scale. Returns the number of responses.
    """
    from django.db import connection, transaction

    from surveys.kinds import KINDS
    from surveys.models import QuestionRole

    survey = campaign.survey
    spec = KINDS[survey.kind]
    questions = {q.role: q.pk for q in survey.questions.all()}
    first, last = customers
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [seed])
        cursor.execute(
            """
            INSERT INTO surveys_invitation
                (campaign_id, customer_id, token, status, due_at, attempts, last_error,
                 skip_reason, reminders_sent, wave, sent_at, answered_at, created_at)
            SELECT %s, c.id, 'm' || %s || '-' || c.id, 'answered', now(), 1, '',
                   '', 0, 1, now(), now(), now()
            FROM customers_customer c
            WHERE c.id BETWEEN %s AND %s
            """,
            [campaign.pk, campaign.pk, first, last],
        )
        cursor.execute(
            """
            INSERT INTO surveys_response
                (invitation_id, campaign_id, survey_id, customer_id, score, comment,
                 created_at, updated_at)
            SELECT i.id, i.campaign_id, %s, i.customer_id,
                   %s + floor(random() * %s)::int,
                   CASE WHEN i.id %% 6 = 0 THEN (%s::text[])[1 + i.id %% 3] ELSE '' END,
                   i.t, i.t
            FROM (
                -- A volatile expression in a subquery: one draw per row.
                SELECT id, campaign_id, customer_id,
                       now() - random() * interval '90 days' AS t
                FROM surveys_invitation
                WHERE campaign_id = %s
            ) i
            """,
            [
                survey.pk,
                spec.low,
                spec.high - spec.low + 1,
                COMMENTS,
                campaign.pk,
            ],
        )
        count = cursor.rowcount
        cursor.execute(
            """
            INSERT INTO surveys_answer (response_id, question_id, number, text, choices)
            SELECT r.id, %s, r.score, '', '[]'::jsonb
            FROM surveys_response r
            WHERE r.campaign_id = %s
            UNION ALL
            SELECT r.id, %s, NULL, r.comment, '[]'::jsonb
            FROM surveys_response r
            WHERE r.campaign_id = %s AND r.comment <> ''
            """,
            [
                questions[QuestionRole.HEADLINE],
                campaign.pk,
                questions[QuestionRole.REASON],
                campaign.pk,
            ],
        )
    return count


def _fetch(sql: str, campaign_id: int) -> tuple:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign_id])
        return cursor.fetchone()


def bare_row(kind: str, *, campaign_id: int) -> tuple:
    """Returns the kind's counts (and for CES the mean and deviation), bare SQL."""
    return _fetch(BARE_SQL[kind], campaign_id)


def join_row(kind: str, *, campaign_id: int) -> tuple:
    return _fetch(JOIN_SQL[kind], campaign_id)


def orm_metric(kind: str, *, campaign):
    from surveys import metrics

    return {"nps": metrics.nps, "csat": metrics.csat, "ces": metrics.ces}[kind](
        campaign=campaign
    )


def orm_row(kind: str, metric) -> tuple:
    """The ORM metric's numbers in the order of the bare SQL's columns."""
    if kind == "nps":
        return metric.responses, metric.promoters, metric.detractors
    if kind == "csat":
        return metric.responses, metric.satisfied, metric.dissatisfied
    return metric.responses, metric.easy, metric.hard, metric.mean, metric.stddev


def rows_agree(kind: str, orm: tuple, sql: tuple) -> bool:
    """The counts are equal; CES's mean and deviation agree to 1e-9 (float vs
    numeric)."""
    if tuple(orm[:3]) != tuple(sql[:3]):
        return False
    return all(
        a is None
        and b is None
        or a is not None
        and b is not None
        and abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
        for a, b in zip(orm[3:], sql[3:], strict=True)
    )


def seconds_of(calls: list, *, warmup: int, runs: int) -> list[list[float]]:
    """
    Returns the seconds of each run of each call, run in turns after a warm-up,
    the order reversed every other turn: a query that follows a bigger one finds
    fewer of its pages in shared buffers, which alone costs it about a third.
    """
    for _ in range(warmup):
        for call in calls:
            call()
    timings = [[] for _ in calls]
    for run in range(runs):
        turn = list(zip(calls, timings, strict=True))
        for call, times in turn if run % 2 == 0 else reversed(turn):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
    return timings


def compare(kind: str, *, campaign, warmup: int = 2, runs: int = 11) -> Timing:
    """
    Checks that surveys.metrics, the bare SQL and the join count the same, and that
    the ORM reads the response table alone; returns the median seconds per call of
    each and the ORM's SQL with its plan.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        metric = orm_metric(kind, campaign=campaign)
    orm = orm_row(kind, metric)
    bare = bare_row(kind, campaign_id=campaign.pk)
    join = join_row(kind, campaign_id=campaign.pk)
    if not rows_agree(kind, orm, bare) or not rows_agree(kind, orm, join):
        raise RuntimeError(
            f"{kind}: surveys.metrics counted {orm}, the bare SQL {bare}, "
            f"the join {join}"
        )
    # The campaign's survey is fetched on the first call only (then cached).
    sql = captured.captured_queries[-1]["sql"]
    if "surveys_invitation" in sql or " JOIN " in sql.upper():
        raise RuntimeError(f"{kind}: surveys.metrics joins another table: {sql}")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # The join reads the invitations too, so it is timed on its own, after.
    orm_times, bare_times = seconds_of(
        [
            lambda: orm_metric(kind, campaign=campaign),
            lambda: bare_row(kind, campaign_id=campaign.pk),
        ],
        warmup=warmup,
        runs=runs,
    )
    (join_times,) = seconds_of(
        [lambda: join_row(kind, campaign_id=campaign.pk)], warmup=1, runs=5
    )
    median = statistics.median
    return Timing(
        orm=median(orm_times),
        bare=median(bare_times),
        join=median(join_times),
        orm_min=min(orm_times),
        bare_min=min(bare_times),
        sql=sql,
        plan=plan,
    )
