"""
The closed loop at size: 100,000 follow-ups, 2,000 of them due for escalation.
One sweep tick, the queue page, a follow-up's page and the reports, each against
the bare SQL it is built on, timed in the same run; and the queue page's query
count at 1,000 follow-ups and again at 100,000.

The pages are requested through Django's test client as a manager (a session,
all middleware, the templates rendered), in this process, so their statements
can be counted; the bare SQL is what a DBA would write for the same rows.
"""

import smtplib
import statistics
import time
from email.message import EmailMessage

from bench.metrics import seconds_of

# Two teams: the manager manages one, whose half of the follow-ups their queue
# and reports cover; five agents in each.
TEAMS = ("Bench Seoul", "Bench Busan")
AGENTS_PER_TEAM = 5
DUE = 2_000
PAGE_SIZE = 50

# The queue's default (no filter): the follow-ups the manager may see, soonest
# due first, a page of 50 with the customer and the answer; and their count.
BARE_QUEUE = """
    SELECT f.id, f.priority, f.status, f.due_at, f.first_contact_at,
           f.first_contact_due_at, c.email, c.name, r.score, r.comment, u.username
    FROM followups_followup f
    JOIN customers_customer c ON c.id = f.customer_id
    LEFT JOIN surveys_response r ON r.id = f.response_id
    LEFT JOIN auth_user u ON u.id = f.owner_id
    WHERE f.team_id IS NULL OR f.team_id = %(team)s
    ORDER BY f.due_at, f.id
    LIMIT 50
"""
BARE_QUEUE_COUNT = """
    SELECT count(*) FROM followups_followup f
    WHERE f.team_id IS NULL OR f.team_id = %(team)s
"""

# A follow-up's page: the row with its customer and answer, its timeline.
BARE_DETAIL = """
    SELECT f.*, c.email, c.name, r.score, r.comment, u.username
    FROM followups_followup f
    JOIN customers_customer c ON c.id = f.customer_id
    LEFT JOIN surveys_response r ON r.id = f.response_id
    LEFT JOIN auth_user u ON u.id = f.owner_id
    WHERE f.id = %(followup)s
"""
BARE_DETAIL_EVENTS = """
    SELECT e.*, u.username FROM followups_followupevent e
    LEFT JOIN auth_user u ON u.id = e.actor_id
    WHERE e.followup_id = %(followup)s
    ORDER BY e.created_at, e.id
"""

# The reports' figures over the manager's follow-ups: the totals, then the same
# aggregate grouped by team, owner, root cause and ISO week.
_FIGURES = """
    count(*),
    count(*) FILTER (WHERE status IN ('new', 'contacted', 'waiting')),
    count(*) FILTER (WHERE status IN ('new', 'contacted', 'waiting')
                     AND (due_at < now() OR (first_contact_at IS NULL
                                             AND first_contact_due_at < now()))),
    count(*) FILTER (WHERE resolved_at IS NOT NULL),
    count(*) FILTER (WHERE first_contact_at IS NOT NULL),
    count(*) FILTER (WHERE first_contact_at <= first_contact_due_at),
    count(*) FILTER (WHERE first_contact_at <= first_contact_due_at
                     OR first_contact_at > first_contact_due_at
                     OR (first_contact_at IS NULL AND first_contact_due_at < now()
                         AND status IN ('new', 'contacted', 'waiting'))),
    count(*) FILTER (WHERE resolved_at <= due_at),
    count(*) FILTER (WHERE resolved_at <= due_at OR resolved_at > due_at
                     OR (status IN ('new', 'contacted', 'waiting')
                         AND due_at < now())),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY first_contact_at - created_at),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY resolved_at - created_at),
    count(*) FILTER (WHERE recovered IS NOT NULL),
    count(*) FILTER (WHERE recovered)
"""
_VISIBLE = "FROM followups_followup WHERE team_id IS NULL OR team_id = %(team)s"
BARE_REPORTS = [
    f"SELECT {_FIGURES} {_VISIBLE}",
    f"SELECT team_id, {_FIGURES} {_VISIBLE} GROUP BY team_id",
    f"SELECT owner_id, {_FIGURES} {_VISIBLE} GROUP BY owner_id",
    f"SELECT root_cause_id, {_FIGURES} {_VISIBLE} GROUP BY root_cause_id",
    f"SELECT date_trunc('week', created_at), {_FIGURES} {_VISIBLE} GROUP BY 1",
]

# One sweep tick's reads: the three scans (overdue and not escalated, owners not
# yet emailed, notices due), each a batch through its partial index.
BARE_SWEEP_SCANS = [
    """
    SELECT id FROM followups_followup
    WHERE status IN ('new', 'contacted', 'waiting') AND escalated_at IS NULL
      AND (due_at < now() OR (first_contact_at IS NULL
                              AND first_contact_due_at < now()))
    ORDER BY due_at LIMIT 500
    """,
    """
    SELECT id FROM followups_followup
    WHERE status IN ('new', 'contacted', 'waiting') AND owner_id IS NOT NULL
      AND owner_notified_at IS NULL AND assigned_at < now() - interval '2 minutes'
    LIMIT 500
    """,
    """
    SELECT id FROM followups_followupnotice
    WHERE sent_at IS NULL AND due_at < now() - interval '2 minutes' LIMIT 500
    """,
]
# ...and its writes, for a batch of due follow-ups: claim them and record the
# escalation in their timelines, in one statement.
BARE_SWEEP_ESCALATE = """
    WITH claimed AS (
        UPDATE followups_followup SET escalated_at = now()
        WHERE id IN (
            SELECT id FROM followups_followup
            WHERE status IN ('new', 'contacted', 'waiting') AND escalated_at IS NULL
              AND (due_at < now() OR (first_contact_at IS NULL
                                      AND first_contact_due_at < now()))
            ORDER BY due_at LIMIT 500
            FOR UPDATE SKIP LOCKED
        )
        RETURNING id
    )
    INSERT INTO followups_followupevent (followup_id, kind, text, data, created_at)
    SELECT id, 'escalated', 'manager@bench.example.com', '{}'::jsonb, now()
    FROM claimed
"""


def people_create():
    """The manager, their team and another, five agents in each; returns them."""
    from cxm.followups.models import Team
    from cxm.followups.services import team_save
    from tests.factories import agent
    from tests.factories import manager as cx_manager

    manager = cx_manager(username="bench-manager", email="manager@bench.example.com")
    teams = []
    for number, name in enumerate(TEAMS):
        members = [
            agent(username=f"bench-agent-{number}-{i}") for i in range(AGENTS_PER_TEAM)
        ]
        teams.append(
            team_save(
                team=Team(name=name, manager=manager if number == 0 else None),
                members=members,
            )
        )
    return manager, teams


def followups_create(*, count: int, teams, prefix: str) -> None:
    """
    Inserts, in SQL, `count` detractors of the last 180 days (customers,
    invitations, responses) and their follow-ups, the teams in turn, each team's
    agents in turn. Those opened more than 14 days ago are resolved (a root cause,
    first contact and resolution within or past their SLAs; every third answered
    its check-in); the rest are open, escalated once overdue.
    """
    from django.db import connection, transaction

    from bench.data import campaign_create, customers_create

    campaign = campaign_create(name=f"Follow-ups {prefix}")
    first, last = customers_create(count=count, prefix=prefix)
    team_ids = [t.pk for t in teams]
    members = {
        t.pk: list(t.memberships.order_by("pk").values_list("user_id", flat=True))
        for t in teams
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.23)")
        cursor.execute(
            """
            INSERT INTO surveys_invitation
                (campaign_id, customer_id, token, status, due_at, attempts,
                 last_error, skip_reason, reminders_sent, wave, sent_at,
                 answered_at, created_at)
            SELECT %s, c.id, %s || c.id, 'answered', t, 1, '', '', 0, 1, t, t, t
            FROM (
                SELECT id, now() - (id - %s) * interval '180 days' / %s AS t
                FROM customers_customer WHERE id BETWEEN %s AND %s
            ) c
            """,
            [campaign.pk, prefix, first, count, first, last],
        )
        cursor.execute(
            """
            INSERT INTO surveys_response
                (invitation_id, campaign_id, survey_id, customer_id, score, comment,
                 created_at, updated_at)
            SELECT i.id, i.campaign_id, %s, i.customer_id, i.id %% 7,
                   CASE WHEN i.id %% 2 = 0 THEN 'Late again, and nobody called.'
                        ELSE '' END,
                   i.answered_at, i.answered_at
            FROM surveys_invitation i WHERE i.campaign_id = %s
            """,
            [campaign.survey_id, campaign.pk],
        )
        cursor.execute(
            """
            INSERT INTO followups_followup
                (response_id, customer_id, team_id, owner_id, priority, status,
                 first_contact_due_at, first_contact_at, due_at, created_at,
                 assigned_at, owner_notified_at, touched_at, escalated_at,
                 resolved_at, resolved_by_id, resolution, root_cause_id,
                 no_action_needed, recovered, recovered_at)
            SELECT r.id, r.customer_id, x.team, x.owner,
                   CASE WHEN r.score <= 3 THEN 'high' ELSE 'normal' END,
                   x.status, r.created_at + interval '4 hours', x.contacted,
                   r.created_at + interval '48 hours', r.created_at,
                   r.created_at, r.created_at + interval '1 minute', x.contacted,
                   CASE WHEN x.status <> 'resolved'
                         AND r.created_at < now() - interval '48 hours'
                        THEN r.created_at + interval '49 hours' END,
                   x.resolved, CASE WHEN x.resolved IS NOT NULL THEN x.owner END,
                   CASE WHEN x.resolved IS NOT NULL THEN 'Refunded the shipping.'
                        ELSE '' END,
                   CASE WHEN x.resolved IS NOT NULL THEN
                        (SELECT id FROM followups_rootcause
                         ORDER BY position, id OFFSET r.id %% 7 LIMIT 1) END,
                   false,
                   CASE WHEN x.resolved IS NOT NULL AND r.id %% 3 = 0
                        THEN r.id %% 4 <> 0 END,
                   CASE WHEN x.resolved IS NOT NULL AND r.id %% 3 = 0
                        THEN x.resolved + interval '3 days' END
            FROM surveys_response r
            CROSS JOIN LATERAL (
                SELECT (%s::bigint[])[1 + r.id %% 2] AS team,
                       CASE WHEN r.id %% 2 = 0
                            THEN (%s::bigint[])[1 + (r.id / 2) %% %s]
                            ELSE (%s::bigint[])[1 + (r.id / 2) %% %s] END AS owner,
                       CASE WHEN r.created_at < now() - interval '14 days'
                            THEN 'resolved'
                            WHEN r.id %% 3 = 0 THEN 'new'
                            WHEN r.id %% 3 = 1 THEN 'contacted'
                            ELSE 'waiting' END AS status,
                       CASE WHEN r.id %% 3 = 0
                                 AND r.created_at >= now() - interval '14 days'
                            THEN NULL
                            ELSE r.created_at + random() * interval '8 hours'
                            END AS contacted,
                       CASE WHEN r.created_at < now() - interval '14 days'
                            THEN r.created_at + random() * interval '72 hours'
                            END AS resolved
                OFFSET 0
            ) x
            WHERE r.campaign_id = %s
            """,
            [
                team_ids,
                members[team_ids[0]],
                len(members[team_ids[0]]),
                members[team_ids[1]],
                len(members[team_ids[1]]),
                campaign.pk,
            ],
        )
        # Each follow-up's timeline starts with its opening and assignment.
        cursor.execute(
            """
            INSERT INTO followups_followupevent
                (followup_id, kind, actor_id, text, data, created_at)
            SELECT f.id, e.kind, NULL, e.text, e.data, f.created_at
            FROM followups_followup f
            JOIN surveys_response r ON r.id = f.response_id
            CROSS JOIN LATERAL (VALUES
                ('opened', r.comment, jsonb_build_object('score', r.score)),
                ('assigned', '', '{}'::jsonb)
            ) AS e (kind, text, data)
            WHERE r.campaign_id = %s
            """,
            [campaign.pk],
        )


_OVERDUE = """
    status IN ('new', 'contacted', 'waiting')
    AND (due_at < now() OR (first_contact_at IS NULL AND first_contact_due_at < now()))
"""


def due_set(*, count: int) -> int:
    """
    Marks every overdue follow-up escalated (an hour after its first due time)
    but the `count` latest: those the sweep has to escalate. Returns how many.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE followups_followup
            SET escalated_at = LEAST(due_at, first_contact_due_at) + interval '1 hour'
            WHERE escalated_at IS NULL AND {_OVERDUE}
            """
        )
        cursor.execute(
            f"""
            UPDATE followups_followup SET escalated_at = NULL
            WHERE id IN (
                SELECT id FROM followups_followup
                WHERE {_OVERDUE}
                ORDER BY due_at DESC, id LIMIT %s
            )
            """,
            [count],
        )
        return cursor.rowcount


def client_for(user):
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def _get(client, path: str) -> None:
    r = client.get(path)
    if r.status_code != 200:
        raise RuntimeError(f"GET {path}: {r.status_code}")


def _fetch(sql: str, params: dict, *, all_rows: bool = False):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if all_rows else cursor.fetchone()


def queries_of(client, path: str) -> int:
    """The number of SQL statements one GET of `path` runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        _get(client, path)
    return len(captured.captured_queries)


def slowest_statements(client, path: str, count: int = 3) -> list[tuple[float, str]]:
    """The `count` slowest statements of one GET of `path`, timed by EXPLAIN
    ANALYZE (milliseconds, SQL), for the log."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        _get(client, path)
    timed = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
            plan = cursor.fetchone()[0]
            plan = plan[0] if isinstance(plan, list) else plan
            timed.append((plan["Execution Time"], sql))
    return sorted(timed, reverse=True)[:count]


def explain(sql: str, params: dict) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN ANALYZE " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def compare_pages(*, manager, team, followup_id: int, runs: int = 11) -> dict:
    """
    Times the queue, a follow-up's page, the reports page and its API, and the
    reports' service alone, against their bare SQL, in turns. Returns
    {name: (median seconds, fastest, bare median, bare fastest)}.
    """
    from cxm.followups.reports import followups_report

    client = client_for(manager)
    params = {"team": team.pk, "followup": followup_id}

    def bare_queue():
        _fetch(BARE_QUEUE, params, all_rows=True)
        _fetch(BARE_QUEUE_COUNT, params)

    def bare_detail():
        _fetch(BARE_DETAIL, params)
        _fetch(BARE_DETAIL_EVENTS, params, all_rows=True)

    def bare_reports():
        for sql in BARE_REPORTS:
            _fetch(sql, params, all_rows=True)

    pairs = {
        "queue": (lambda: _get(client, "/followups/"), bare_queue),
        "detail": (lambda: _get(client, f"/followups/{followup_id}/"), bare_detail),
        "reports_page": (lambda: _get(client, "/followups/reports/"), bare_reports),
        "reports_api": (
            lambda: _get(client, "/api/reports/followups/"),
            bare_reports,
        ),
        "reports_service": (lambda: followups_report(user=manager), bare_reports),
    }
    results = {}
    for name, (call, bare) in pairs.items():
        mine, reference = seconds_of([call, bare], warmup=2, runs=runs)
        results[name] = (
            statistics.median(mine),
            min(mine),
            statistics.median(reference),
            min(reference),
        )
    return results


def sweep_tick(*, runs: int = 3) -> dict:
    """
    Times one sweep tick with 2,000 follow-ups due (it escalates a batch of 500,
    emailing the manager about each) against the bare SQL of the same tick (the
    three scans, the claim and the timeline rows in one statement), each from the
    same state; then an idle tick (nothing due) against the three bare scans.
    """
    from django.conf import settings
    from django.db import connection, transaction

    from cxm import emails
    from cxm.followups.models import FollowUp
    from cxm.followups.services import followups_sweep

    def mail_sample():
        """The escalation email of one follow-up: subject, text and HTML."""
        followup = FollowUp.objects.select_related("customer").order_by("-pk")[0]
        return emails.render("followup-escalated", context={"followup": followup})

    def reset():
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM followups_followupevent WHERE kind = 'escalated' "
                "AND created_at > now() - interval '1 hour'"
            )
        due_set(count=DUE)

    def bare_tick():
        with transaction.atomic():
            for sql in BARE_SWEEP_SCANS:
                _fetch(sql, {}, all_rows=True)
            with connection.cursor() as cursor:
                cursor.execute(BARE_SWEEP_ESCALATE)
                return cursor.rowcount

    def bare_tick_mailing():
        """The bare tick, then as many escalation-sized emails by plain smtplib."""
        escalated = bare_tick()
        subject, text, html = mail_sample()
        with smtplib.SMTP(settings.EMAIL_HOST, settings.EMAIL_PORT) as smtp:
            for i in range(escalated):
                message = EmailMessage()
                message["Subject"] = subject
                message["From"] = settings.DEFAULT_FROM_EMAIL
                message["To"] = f"manager{i}@bench.example.com"
                message.set_content(text)
                message.add_alternative(html, subtype="html")
                smtp.send_message(message)
        return escalated

    working, bare_working, bare_mailing = [], [], []
    escalated = bare_escalated = 0
    for _ in range(runs):
        reset()
        started = time.perf_counter()
        escalated = followups_sweep()["escalated"]
        working.append(time.perf_counter() - started)
        reset()
        started = time.perf_counter()
        bare_escalated = bare_tick()
        bare_working.append(time.perf_counter() - started)
        reset()
        started = time.perf_counter()
        bare_tick_mailing()
        bare_mailing.append(time.perf_counter() - started)
    if escalated != bare_escalated:
        raise RuntimeError(
            f"the sweep escalated {escalated}, the bare SQL {bare_escalated}"
        )
    reset()
    # Nothing left to do: escalate every due one, then time the scans alone.
    while followups_sweep()["escalated"]:
        pass

    def bare_scans():
        for sql in BARE_SWEEP_SCANS:
            _fetch(sql, {}, all_rows=True)

    idle, bare_idle = seconds_of([followups_sweep, bare_scans], warmup=2, runs=11)
    return {
        "escalated": escalated,
        "working": (statistics.median(working), min(working)),
        "bare_working": (statistics.median(bare_working), min(bare_working)),
        "bare_mailing": (statistics.median(bare_mailing), min(bare_mailing)),
        "idle": (statistics.median(idle), min(idle)),
        "bare_idle": (statistics.median(bare_idle), min(bare_idle)),
    }
