"""Rows the benchmarks share, inserted in SQL where there are many."""


def customers_create(*, count: int, prefix: str) -> tuple[int, int]:
    """Inserts `count` customers (one in five Korean) in SQL, their emails starting
    with `prefix`; returns the first and last of their ids."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            WITH inserted AS (
                INSERT INTO customers_customer
                    (email, name, locale, external_id, properties, created_at,
                     updated_at)
                SELECT %s || g || '@bench.example.com', 'Customer ' || g,
                       CASE WHEN g %% 5 = 0 THEN 'ko' ELSE 'en' END, '',
                       jsonb_build_object(
                           'plan', CASE WHEN g %% 2 = 0 THEN 'pro' ELSE 'basic' END
                       ),
                       now(), now()
                FROM generate_series(1, %s) g
                RETURNING id
            )
            SELECT min(id), max(id) FROM inserted
            """,
            [prefix, count],
        )
        return cursor.fetchone()


def campaign_create(*, name: str, kind: str = "nps"):
    """A sent campaign of a new survey of `kind`, with the kind's standard
    questions (survey_create's)."""
    from django.utils import timezone

    from surveys.models import Campaign, CampaignStatus
    from surveys.services import survey_create

    return Campaign.objects.create(
        name=name,
        survey=survey_create(name=f"{name} survey", kind=kind),
        status=CampaignStatus.SENT,
        sent_at=timezone.now(),
    )


def vacuum_analyze(*tables: str) -> None:
    """VACUUM ANALYZE, as autovacuum would after a bulk load."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def customer_ids(*, prefix: str, every: int) -> list[int]:
    """Every `every`-th id of the customers whose emails start with `prefix`."""
    from cxm.customers.models import Customer

    ids = Customer.objects.filter(email__startswith=prefix).order_by("pk")
    return list(ids.values_list("pk", flat=True))[::every]
