"""
A segment's count and a campaign's exclusion preview over 100,000 customers with
1,000,000 interactions: cxm's selectors against the bare SQL a DBA would write for
the same question on the same tables.
"""

import statistics
import time

# Plans and regions as a shop's CRM holds them; seats a number, but text for a few
# customers, as imports leave it.
SEGMENT_CONDITIONS = [
    {"type": "property", "name": "plan", "op": "one_of", "value": ["pro", "team"]},
    {"type": "property", "name": "seats", "op": "between", "value": [5, 50]},
    {"type": "interaction", "kind": "purchase", "within_days": 30},
]

BARE_COUNT = """
    SELECT count(*), count(*) FILTER (
        WHERE c.unsubscribed_at IS NULL AND c.bounced_at IS NULL
          AND c.complained_at IS NULL
    )
    FROM customers_customer c
    WHERE (c.properties @> '{"plan": "pro"}' OR c.properties @> '{"plan": "team"}')
      AND jsonb_typeof(c.properties -> 'seats') = 'number'
      AND (c.properties -> 'seats') >= '5' AND (c.properties -> 'seats') <= '50'
      AND EXISTS (
          SELECT 1 FROM customers_interaction i
          WHERE i.customer_id = c.id AND i.kind = 'purchase'
            AND i.occurred_at >= now() - interval '30 days'
      )
"""

BARE_PREVIEW = """
    SELECT count(*),
           count(*) FILTER (WHERE c.unsubscribed_at IS NULL
                            AND c.bounced_at IS NULL AND c.complained_at IS NULL
                            AND NOT invited AND NOT recent),
           count(*) FILTER (WHERE c.unsubscribed_at IS NOT NULL),
           count(*) FILTER (WHERE c.unsubscribed_at IS NULL
                            AND c.bounced_at IS NOT NULL),
           count(*) FILTER (WHERE c.unsubscribed_at IS NULL
                            AND c.bounced_at IS NULL AND c.complained_at IS NOT NULL),
           count(*) FILTER (WHERE c.unsubscribed_at IS NULL AND c.bounced_at IS NULL
                            AND c.complained_at IS NULL AND invited),
           count(*) FILTER (WHERE c.unsubscribed_at IS NULL AND c.bounced_at IS NULL
                            AND c.complained_at IS NULL AND NOT invited AND recent)
    FROM (
        SELECT c.*,
               EXISTS (
                   SELECT 1 FROM surveys_invitation v
                   WHERE v.campaign_id = %s AND v.customer_id = c.id
               ) AS invited,
               EXISTS (
                   SELECT 1 FROM surveys_invitation v
                   WHERE v.customer_id = c.id
                     AND (v.sent_at >= now() - interval '30 days'
                          OR v.status = 'sending')
               ) AS recent
        FROM customers_customer c
        WHERE (c.properties @> '{"plan": "pro"}' OR c.properties @> '{"plan": "team"}')
          AND jsonb_typeof(c.properties -> 'seats') = 'number'
          AND (c.properties -> 'seats') >= '5' AND (c.properties -> 'seats') <= '50'
          AND EXISTS (
              SELECT 1 FROM customers_interaction i
              WHERE i.customer_id = c.id AND i.kind = 'purchase'
                AND i.occurred_at >= now() - interval '30 days'
          )
    ) c
"""


def rows_create(*, customers: int, interactions: int, prefix: str) -> None:
    """
    Inserts, in SQL, `customers` customers with a plan, seats and a region (one in
    50 unsubscribed, one in 79 bounced, one in 100 with seats as text) and
    `interactions` interactions spread over them and over the last year.
    """
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.17)")
        cursor.execute(
            """
            INSERT INTO customers_customer
                (email, name, locale, external_id, properties, unsubscribed_at,
                 bounced_at, created_at, updated_at)
            SELECT %s || g || '@bench.example.com', 'Customer ' || g,
                   CASE WHEN g %% 5 = 0 THEN 'ko' ELSE 'en' END, 'seg-' || g,
                   jsonb_build_object(
                       'plan', (ARRAY['free', 'pro', 'team', 'enterprise'])[1 + g %% 4],
                       'seats', CASE WHEN g %% 100 = 0 THEN to_jsonb((g %% 60)::text)
                                     ELSE to_jsonb(g %% 60) END,
                       'region',
                       (ARRAY['Seoul', 'Busan', 'Berlin', 'Austin'])[1 + g %% 4]
                   ),
                   CASE WHEN g %% 50 = 0 THEN now() END,
                   CASE WHEN g %% 79 = 1 THEN now() END,
                   now(), now()
            FROM generate_series(1, %s) g
            """,
            [prefix, customers],
        )
        cursor.execute(
            "SELECT min(id), max(id) FROM customers_customer WHERE email LIKE %s",
            [prefix + "%"],
        )
        first, last = cursor.fetchone()
        cursor.execute(
            """
            INSERT INTO customers_interaction
                (customer_id, kind, channel, occurred_at, properties, external_id,
                 created_at)
            SELECT %s + floor(random() * %s)::bigint,
                   (ARRAY['purchase', 'support_call', 'app_visit', 'app_visit'])
                       [1 + floor(random() * 4)::int],
                   (ARRAY['web', 'app', 'store', 'phone'])
                       [1 + floor(random() * 4)::int],
                   now() - random() * interval '365 days', '{}'::jsonb, '', now()
            FROM generate_series(1, %s)
            """,
            [first, last - first + 1, interactions],
        )


def _seconds(call, *, warmup: int = 2, runs: int = 11) -> tuple[float, float]:
    """The median and the fastest seconds of `runs` calls after `warmup`."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def _fetch(sql: str, params=()) -> tuple:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def compare(*, campaign) -> dict:
    """
    Times segment_counts and campaign_audience_preview against their bare SQL, in
    turns; checks that each pair agrees. Returns the figures.
    """
    from cxm.customers.selectors import segment_counts
    from cxm.customers.services import segment_create
    from surveys.models import Campaign
    from surveys.selectors import campaign_audience_preview

    segment = segment_create(name="Bench segment", conditions=SEGMENT_CONDITIONS)
    Campaign.objects.filter(pk=campaign.pk).update(segment=segment)
    campaign.refresh_from_db()

    counts = segment_counts(segment=segment)
    bare = _fetch(BARE_COUNT)
    if (counts["customers"], counts["contactable"]) != tuple(bare):
        raise RuntimeError(f"the segment count {counts} is not the bare SQL's {bare}")
    preview = campaign_audience_preview(campaign=campaign)
    bare_preview = _fetch(BARE_PREVIEW, [campaign.pk])
    mine = (
        preview["audience"],
        preview["invited"],
        preview["excluded"]["unsubscribed"],
        preview["excluded"]["bounced"],
        preview["excluded"]["complained"],
        preview["excluded"]["already_invited"],
        preview["excluded"]["recently_contacted"],
    )
    if mine != tuple(bare_preview):
        raise RuntimeError(f"the preview {mine} is not the bare SQL's {bare_preview}")

    return {
        "counts": counts,
        "preview": preview,
        "count": _seconds(lambda: segment_counts(segment=segment)),
        "count_bare": _seconds(lambda: _fetch(BARE_COUNT)),
        "preview_orm": _seconds(lambda: campaign_audience_preview(campaign=campaign)),
        "preview_bare": _seconds(lambda: _fetch(BARE_PREVIEW, [campaign.pk])),
    }
