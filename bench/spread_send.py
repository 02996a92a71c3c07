"""
Sending a campaign spread over a window to 100,000 customers (half of them in
Asia/Seoul, a quarter in America/New_York, a quarter without a zone), against the
bare SQL a DBA would write to create the same rows due at one time
(INSERT … SELECT). Prints one JSON line per figure, as bench/run.py does.

    .venv/bin/python bench/spread_send.py   # with DATABASE_URL naming the server

Works in its own database (BENCH_DATABASE, default cxm_bench_spread), created,
migrated and dropped here. BENCH_CUSTOMERS changes the size.
"""

import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "100000"))
NAME = os.environ.get("BENCH_DATABASE", "cxm_bench_spread")
SERVER = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def main():
    import psycopg

    parts = urlsplit(SERVER)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{NAME}"')
        admin.execute(f'CREATE DATABASE "{NAME}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{NAME}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxm.settings")
    try:
        run()
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')


def run():
    import django

    django.setup()
    from datetime import UTC, datetime

    from django.core.management import call_command
    from django.db import connection

    from surveys.models import Campaign, Invitation
    from surveys.services import campaign_send, survey_create

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO customers_customer
                (email, name, locale, external_id, properties, created_at, updated_at)
            SELECT 'c' || n || '@example.com', '', 'en', '',
                   CASE n %% 4 WHEN 0 THEN '{"timezone": "America/New_York"}'
                              WHEN 1 THEN '{}'
                              ELSE '{"timezone": "Asia/Seoul"}' END::jsonb,
                   now(), now()
            FROM generate_series(1, %s) n
            """,
            [CUSTOMERS],
        )
        cursor.execute("ANALYZE")
    survey = survey_create(name="NPS")
    start = datetime(2030, 3, 4, tzinfo=UTC)

    def spread():
        campaign = Campaign.objects.create(
            name="Spread",
            survey=survey,
            schedule="spread",
            starts_at=start,
            window_days=10,
            window_weekdays=[1, 2, 3, 4, 5],
            window_start_hour=9,
            window_end_hour=11,
        )
        began = time.perf_counter()
        created = campaign_send(campaign=campaign, now=start)
        return time.perf_counter() - began, created

    def now():
        campaign = Campaign.objects.create(name="Now", survey=survey)
        began = time.perf_counter()
        created = campaign_send(campaign=campaign, now=start)
        return time.perf_counter() - began, created

    def bare_sql():
        campaign = Campaign.objects.create(name="Bare", survey=survey)
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO surveys_invitation
                    (campaign_id, customer_id, token, status, due_at, attempts,
                     last_error, skip_reason, reminders_sent, created_at, wave)
                SELECT %s, id, md5(random()::text) || md5(random()::text),
                       'queued', %s, 0, '', '', 0, now(), 1
                FROM customers_customer
                WHERE unsubscribed_at IS NULL AND bounced_at IS NULL
                """,
                [campaign.pk, start],
            )
            created = cursor.rowcount
        return time.perf_counter() - began, created

    results = {}
    # Twice each, alternating; the better of two.
    for name, fn in (("spread", spread), ("now", now), ("sql", bare_sql)) * 2:
        seconds, created = fn()
        assert created == CUSTOMERS, (name, created)
        results[name] = min(results.get(name, seconds), seconds)
        Invitation.objects.all().delete()
    print(
        json.dumps(
            {
                "name": f"campaign_send spread over 10 weekdays, {CUSTOMERS} customers",
                "value": round(results["spread"], 2),
                "unit": "s",
                "reference": "bare INSERT … SELECT of the same rows, one due time",
                "reference_value": round(results["sql"], 2),
                "ratio": round(results["spread"] / results["sql"], 2),
                "details": {
                    "campaign_send now, same customers (s)": round(results["now"], 2)
                },
            }
        )
    )


if __name__ == "__main__":
    main()
