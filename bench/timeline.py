"""
The customer page and its timeline API (cxm.customers.timeline) over HTTP, with a
database of a million interactions and one customer of 10,000 events, against
the bare SQL union they are built on.
"""

import statistics
import time
from http.client import HTTPConnection

# One customer's history, by kind: 10,000 events in all.
STORY = {
    "interactions": 4_250,
    "invitations": 2_000,  # each sent; one in four reminded
    "responses": 2_000,  # one per invitation; one in four changed once
    "followups": 250,  # on the lowest answers, each with 2 events and a reply
}


def story_create(*, prefix: str, scale: int = 1) -> int:
    """
    Inserts, in SQL, one customer whose history holds STORY ÷ `scale` of each
    kind over the last two years (invitations, reminders, answers and their
    earlier versions, follow-ups with their events and emails); returns its id.
    """
    from django.db import connection, transaction

    from bench.data import campaign_create, customers_create

    n = {k: max(1, v // scale) for k, v in STORY.items()}
    customer, _last = customers_create(count=1, prefix=prefix)
    campaign = campaign_create(name=f"Timeline {prefix}")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.31)")
        cursor.execute(
            """
            INSERT INTO customers_interaction
                (customer_id, kind, channel, occurred_at, properties, external_id,
                 created_at)
            SELECT %s, (ARRAY['purchase', 'support_call', 'app_visit'])[1 + g %% 3],
                   (ARRAY['web', 'app', 'store', 'phone'])[1 + g %% 4],
                   now() - random() * interval '730 days',
                   jsonb_build_object('order_total', g %% 300), '', now()
            FROM generate_series(1, %s) g
            """,
            [customer, n["interactions"]],
        )
        cursor.execute(
            """
            INSERT INTO surveys_invitation
                (campaign_id, customer_id, token, status, due_at, attempts,
                 last_error, skip_reason, reminders_sent, reminded_at, wave,
                 sent_at, answered_at, created_at)
            SELECT %s, %s, %s || g, 'answered', t, 1, '', '',
                   CASE WHEN g %% 4 = 0 THEN 1 ELSE 0 END,
                   CASE WHEN g %% 4 = 0 THEN t + interval '3 days' END,
                   g, t, t + interval '4 days', t
            FROM (SELECT g, now() - random() * interval '730 days' AS t
                  FROM generate_series(1, %s) g) s
            """,
            [campaign.pk, customer, prefix, n["invitations"]],
        )
        cursor.execute(
            """
            INSERT INTO surveys_response
                (invitation_id, campaign_id, survey_id, customer_id, score, comment,
                 created_at, updated_at)
            SELECT i.id, i.campaign_id, %s, i.customer_id, i.id %% 11,
                   'Answer ' || i.id, i.answered_at,
                   CASE WHEN i.id %% 4 = 0 THEN i.answered_at + interval '1 hour'
                        ELSE i.answered_at END
            FROM surveys_invitation i WHERE i.campaign_id = %s
            ORDER BY i.id LIMIT %s
            """,
            [campaign.survey_id, campaign.pk, n["responses"]],
        )
        cursor.execute(
            """
            INSERT INTO surveys_responserevision
                (response_id, score, comment, answers, answered_at, replaced_at)
            SELECT r.id, (r.score + 3) %% 11, 'First thought ' || r.id, '{}'::jsonb,
                   r.created_at, r.updated_at
            FROM surveys_response r
            WHERE r.campaign_id = %s AND r.updated_at > r.created_at
            """,
            [campaign.pk],
        )
        cursor.execute(
            """
            INSERT INTO followups_followup
                (response_id, customer_id, priority, status, due_at, created_at,
                 resolution, no_action_needed)
            SELECT r.id, r.customer_id, 'normal', 'contacted',
                   r.updated_at + interval '48 hours', r.updated_at, '', false
            FROM surveys_response r
            WHERE r.campaign_id = %s AND r.score <= 6
            ORDER BY r.id LIMIT %s
            """,
            [campaign.pk, n["followups"]],
        )
        cursor.execute(
            """
            INSERT INTO followups_followupevent
                (followup_id, kind, actor_id, text, data, created_at)
            SELECT f.id, e.kind, NULL, e.text, e.data, f.created_at + e.after
            FROM followups_followup f
            JOIN surveys_response r ON r.id = f.response_id
            CROSS JOIN LATERAL (VALUES
                ('opened', r.comment, jsonb_build_object('score', r.score),
                 interval '0'),
                ('note', 'Called, left a message.', '{}'::jsonb, interval '2 hours')
            ) AS e (kind, text, data, after)
            WHERE f.customer_id = %s
            """,
            [customer],
        )
        cursor.execute(
            """
            INSERT INTO followups_followupmessage
                (followup_id, direction, kind, token, subject, body, from_email,
                 to_email, message_id, in_reply_to, created_at, due_at, sent_at,
                 attempts, last_error)
            SELECT f.id, 'out', 'reply', md5(%s || f.id), 'About your feedback',
                   'Hello, we are sorry about it.', '', '', '', '',
                   f.created_at + interval '3 hours', f.created_at + interval '3 hours',
                   f.created_at + interval '3 hours', 1, ''
            FROM followups_followup f WHERE f.customer_id = %s
            """,
            [prefix, customer],
        )
    return customer


def events_of(customer_id: int) -> int:
    """How many entries the customer's whole timeline holds, counted in SQL."""
    from django.db import connection

    from cxm.customers.timeline import customer_timeline

    del customer_timeline  # the branches are registered: the union names them all
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT count(*) FROM customers_interaction
                    WHERE customer_id = %(c)s)
                 + (SELECT count(*) FROM surveys_invitation WHERE customer_id = %(c)s)
                 + (SELECT count(*) FROM surveys_invitation
                    WHERE customer_id = %(c)s AND reminded_at IS NOT NULL)
                 + (SELECT count(*) FROM surveys_response WHERE customer_id = %(c)s)
                 + (SELECT count(*) FROM surveys_responserevision v
                    JOIN surveys_response r ON r.id = v.response_id
                    WHERE r.customer_id = %(c)s)
                 + (SELECT count(*) FROM followups_followupevent e
                    JOIN followups_followup f ON f.id = e.followup_id
                    WHERE f.customer_id = %(c)s)
                 + (SELECT count(*) FROM followups_followupmessage m
                    JOIN followups_followup f ON f.id = m.followup_id
                    WHERE f.customer_id = %(c)s)
            """,
            {"c": customer_id},
        )
        return cursor.fetchone()[0]


def session_cookie(user) -> str:
    """A Cookie header of a session signed in as `user`, saved in the database."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


def http_get(port: int, path: str, cookie: str) -> bytes:
    """GETs `path` from the server over a new connection; the body (200 only)."""
    connection = HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path, headers={"Cookie": cookie, "Host": "127.0.0.1"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
    return body


def bare_union(*, customer_id: int, user, cursor=None, limit: int = 50):
    """The timeline's union as bare SQL, its parameters read beforehand: the rows."""
    from django.db import connection

    from cxm.customers import timeline

    params = {"customer": customer_id, "limit": limit + 1}
    if cursor is not None:
        params |= {"cursor_at": cursor.at, "cursor_id": cursor.id}
    for read in dict.fromkeys(b.params for b in timeline.BRANCHES.values() if b.params):
        params |= read(user, customer_id)
    sql = timeline.timeline_sql(cursor)

    def run():
        with connection.cursor() as db:
            db.execute(sql, params)
            return db.fetchall()

    return run


def seconds_of(calls, *, warmup: int = 2, runs: int = 11) -> list[list[float]]:
    """Each call's seconds, `runs` times in turns after `warmup` rounds."""
    for _ in range(warmup):
        for call in calls:
            call()
    times = [[] for _ in calls]
    for _ in range(runs):
        for i, call in enumerate(calls):
            started = time.perf_counter()
            call()
            times[i].append(time.perf_counter() - started)
    return times


def median_and_fastest(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), min(times)
