"""
The live journey map over 1,000,000 responses of 2 years across 20 touchpoints and
5,000,000 interactions: the map's touchpoint figures and its drop-off, each against
the bare SQL a DBA would write for the same numbers on the same tables.
"""

import datetime as dt
import statistics
import time

STAGES = 5
TOUCHPOINTS = 20  # four per stage, each measured by a campaign of its own
KINDS = ["nps", "nps", "csat", "ces"]  # of the touchpoints' campaigns, in turn

# The touchpoint figures: one aggregate over the responses of both periods of the
# touchpoints' campaigns, grouped by touchpoint and kind, with the follow-ups.
BARE_TOUCHPOINTS = """
    SELECT tc.touchpoint_id, s.kind,
           count(r.score) FILTER (WHERE r.created_at >= %(start)s),
           count(r.score) FILTER (WHERE r.created_at >= %(start)s
               AND r.score <= CASE s.kind WHEN 'nps' THEN 6 WHEN 'csat' THEN 2
                                          ELSE 3 END),
           count(r.score) FILTER (WHERE r.created_at >= %(start)s
               AND r.score >= CASE s.kind WHEN 'nps' THEN 9 WHEN 'csat' THEN 4
                                          ELSE 5 END),
           avg(r.score) FILTER (WHERE r.created_at >= %(start)s),
           stddev_samp(r.score) FILTER (WHERE r.created_at >= %(start)s),
           count(r.score) FILTER (WHERE r.created_at < %(start)s),
           count(r.score) FILTER (WHERE r.created_at < %(start)s
               AND r.score <= CASE s.kind WHEN 'nps' THEN 6 WHEN 'csat' THEN 2
                                          ELSE 3 END),
           count(r.score) FILTER (WHERE r.created_at < %(start)s
               AND r.score >= CASE s.kind WHEN 'nps' THEN 9 WHEN 'csat' THEN 4
                                          ELSE 5 END),
           avg(r.score) FILTER (WHERE r.created_at < %(start)s),
           stddev_samp(r.score) FILTER (WHERE r.created_at < %(start)s),
           count(f.id) FILTER (WHERE r.created_at >= %(start)s
               AND f.status IN ('new', 'contacted', 'waiting')),
           count(f.id) FILTER (WHERE r.created_at >= %(start)s)
    FROM surveys_response r
    JOIN journeys_touchpoint_campaigns tc ON tc.campaign_id = r.campaign_id
    JOIN surveys_survey s ON s.id = r.survey_id
    LEFT JOIN followups_followup f ON f.response_id = r.id
    WHERE tc.touchpoint_id = ANY(%(touchpoints)s)
      AND r.created_at >= %(previous)s AND r.created_at < %(end)s
    GROUP BY tc.touchpoint_id, s.kind
"""

# The drop-off: the distinct (customer, stage) pairs of the period's interactions,
# and of each, whether the customer reached the next stage.
BARE_DROP_OFF = """
    WITH stage_kind(stage, kind) AS (
        SELECT * FROM unnest(%(stages)s::int[], %(kinds)s::text[])
    ),
    reached AS (
        SELECT DISTINCT i.customer_id, sk.stage
        FROM customers_interaction i JOIN stage_kind sk ON sk.kind = i.kind
        WHERE i.occurred_at >= %(start)s AND i.occurred_at < %(end)s
    )
    SELECT r.stage, count(*), count(n.customer_id)
    FROM reached r
    LEFT JOIN reached n ON n.customer_id = r.customer_id AND n.stage = r.stage + 1
    GROUP BY r.stage
"""


def rows_create(*, responses: int, interactions: int, customers: int):
    """
    Inserts, in SQL, `customers` customers, a journey of 5 stages of 4 touchpoints
    (each with an interaction kind and a campaign of its own: NPS, NPS, CSAT, CES in
    turn), `responses` responses spread evenly over the campaigns and the last two
    years (scores uniform on each scale; a follow-up for one negative answer in
    two) and `interactions` interactions, fewer at each later stage. Returns the
    journey.
    """
    from django.db import connection, transaction

    from bench import data
    from journeys.services import journey_create

    first, last = data.customers_create(count=customers, prefix="journeys-")
    campaigns = [
        data.campaign_create(name=f"Journey touchpoint {n}", kind=KINDS[n % 4])
        for n in range(TOUCHPOINTS)
    ]
    journey = journey_create(
        name="Bench journey",
        stages=[
            {
                "name": f"Stage {s}",
                "touchpoints": [
                    {
                        "name": f"Touchpoint {n}",
                        "channel": "web",
                        "interaction_kind": f"touchpoint_{n}",
                        "campaigns": [campaigns[n]],
                    }
                    for n in range(s * 4, s * 4 + 4)
                ],
            }
            for s in range(STAGES)
        ],
    )
    ids = [c.pk for c in campaigns]
    surveys = [c.survey_id for c in campaigns]
    low = [{"nps": 0, "csat": 1, "ces": 1}[k] for k in (KINDS * 5)]
    span = [{"nps": 11, "csat": 5, "ces": 7}[k] for k in (KINDS * 5)]
    negative = [{"nps": 6, "csat": 2, "ces": 3}[k] for k in (KINDS * 5)]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.31)")
        # One invitation per (campaign, customer): the n-th response of a
        # campaign goes to the n-th customer.
        cursor.execute(
            """
            INSERT INTO surveys_invitation
                (campaign_id, customer_id, token, status, due_at, attempts, last_error,
                 skip_reason, reminders_sent, wave, sent_at, answered_at, created_at)
            SELECT (%(ids)s::bigint[])[1 + g %% 20], %(first)s + (g / 20) %% %(n)s,
                   'j-' || g, 'answered', now(), 1, '', '', 0, 1, now(), now(), now()
            FROM generate_series(0, %(responses)s - 1) g
            """,
            {"ids": ids, "first": first, "n": last - first + 1, "responses": responses},
        )
        cursor.execute(
            """
            INSERT INTO surveys_response
                (invitation_id, campaign_id, survey_id, customer_id, score, comment,
                 created_at, updated_at)
            SELECT i.id, i.campaign_id, (%(surveys)s::bigint[])[i.n],
                   i.customer_id,
                   (%(low)s::int[])[i.n]
                       + floor(random() * (%(span)s::int[])[i.n])::int,
                   '', i.t, i.t
            FROM (
                SELECT id, campaign_id, customer_id,
                       array_position(%(ids)s::bigint[], campaign_id) AS n,
                       now() - random() * interval '730 days' AS t
                FROM surveys_invitation WHERE token LIKE 'j-%%'
            ) i
            """,
            {"surveys": surveys, "low": low, "span": span, "ids": ids},
        )
        cursor.execute(
            """
            INSERT INTO followups_followup
                (response_id, customer_id, priority, status, due_at, created_at,
                 resolution, no_action_needed)
            SELECT r.id, r.customer_id, 'normal',
                   CASE WHEN r.id %% 3 = 0 THEN 'waiting' ELSE 'new' END,
                   r.created_at + interval '48 hours', r.created_at, '', false
            FROM surveys_response r
            WHERE r.campaign_id = ANY(%(ids)s)
              AND r.score <= (%(negative)s::int[])[
                  array_position(%(ids)s::bigint[], r.campaign_id)]
              AND r.id %% 2 = 0
            """,
            {"ids": ids, "negative": negative},
        )
        # A customer's stage: later stages rarer (random()² leans to the start).
        cursor.execute(
            """
            INSERT INTO customers_interaction
                (customer_id, kind, channel, occurred_at, properties, external_id,
                 created_at)
            SELECT %(first)s + floor(random() * %(n)s)::bigint,
                   'touchpoint_' || floor(power(random(), 2) * 20)::int,
                   'web', now() - random() * interval '730 days', '{}'::jsonb, '',
                   now()
            FROM generate_series(1, %(interactions)s)
            """,
            {"first": first, "n": last - first + 1, "interactions": interactions},
        )
    data.vacuum_analyze(
        "customers_customer",
        "customers_interaction",
        "surveys_invitation",
        "surveys_response",
        "followups_followup",
        "journeys_touchpoint_campaigns",
    )
    return journey


def _seconds(*calls, warmup: int = 1, runs: int = 5) -> list[tuple[float, float]]:
    """
    The median and the fastest seconds of `runs` calls of each of `calls` after
    `warmup`, taken in turns so that a busy moment of the machine falls on both.
    """
    for _ in range(warmup):
        for call in calls:
            call()
    times = [[] for _ in calls]
    for _ in range(runs):
        for call, measured in zip(calls, times, strict=True):
            started = time.perf_counter()
            call()
            measured.append(time.perf_counter() - started)
    return [(statistics.median(t), min(t)) for t in times]


def _rows(sql: str, params) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def compare(*, journey, days: int) -> dict:
    """
    Times, for the last `days` days (against the `days` before): the map's touchpoint
    figures (selectors.touchpoint_counts and the metrics built from them), the
    drop-off (selectors.stage_reach) and the whole map (selectors.journey_map), each
    against the bare SQL; checks that each pair agrees. Returns the figures.
    """
    from django.utils import timezone

    from journeys import selectors
    from journeys.models import Touchpoint

    until = timezone.localdate()
    period = selectors.Period(since=until - dt.timedelta(days=days - 1), until=until)
    touchpoints = list(
        Touchpoint.objects.filter(stage__journey=journey).select_related("stage")
    )
    ids = [t.pk for t in touchpoints]
    stage_of = {s.pk: n for n, s in enumerate(journey.stages.all())}
    stage_kinds = sorted(
        (stage_of[t.stage_id], t.interaction_kind) for t in touchpoints
    )
    bare_params = {
        "start": period.start,
        "end": period.end,
        "previous": period.previous().start,
        "touchpoints": ids,
    }
    drop_params = {
        "stages": [n for n, _ in stage_kinds],
        "kinds": [k for _, k in stage_kinds],
        "start": period.start,
        "end": period.end,
    }

    def orm_touchpoints():
        rows = selectors.touchpoint_counts(
            touchpoint_ids=ids, period=period, segment=None
        )
        return rows

    def orm_drop_off():
        return selectors.stage_reach(
            stage_kinds=stage_kinds, period=period, segment=None, channel=None
        )

    def whole_map():
        return selectors.journey_map(
            journey=journey, since=period.since, until=period.until
        )

    orm = {
        (r["campaign__touchpoints"], r["survey__kind"]): r for r in orm_touchpoints()
    }
    bare = {(r[0], r[1]): r for r in _rows(BARE_TOUCHPOINTS, bare_params)}
    agree = set(orm) == set(bare) and all(
        (
            o["responses"],
            o["negative"],
            o["positive"],
            o["responses_before"],
            o["followups_open"],
            o["followups_opened"],
        )
        == (b[2], b[3], b[4], b[7], b[12], b[13])
        for key, o in orm.items()
        for b in [bare[key]]
    )
    reach = orm_drop_off()
    bare_reach = {r[0]: (r[1], r[2]) for r in _rows(BARE_DROP_OFF, drop_params)}
    results = {
        "agree": agree and reach == bare_reach,
        "responses": sum(o["responses"] + o["responses_before"] for o in orm.values()),
        "reached": {stage: counts for stage, counts in sorted(reach.items())},
    }
    results["touchpoints"], results["touchpoints_bare"] = _seconds(
        orm_touchpoints, lambda: _rows(BARE_TOUCHPOINTS, bare_params)
    )
    results["drop_off"], results["drop_off_bare"] = _seconds(
        orm_drop_off, lambda: _rows(BARE_DROP_OFF, drop_params)
    )
    results["map"], results["map_bare"] = _seconds(
        whole_map,
        lambda: (
            _rows(BARE_TOUCHPOINTS, bare_params),
            _rows(BARE_DROP_OFF, drop_params),
        ),
        warmup=1,
        runs=5,
    )
    return results
