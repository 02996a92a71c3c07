"""
The admin's customer list and GET /api/customers/ over 1,300,000 customers,
measured from outside (gunicorn, a logged-in staff user's session), against the
bare SQL of one page of the same list, timed in the same run.
"""

import statistics
import time
from http.client import HTTPConnection

# What a staff member does on the list: open it, search an email, filter a plan.
PAGES = [
    ("admin customer list", "/admin/customers/customer/"),
    ("admin customer list, search by email", "/admin/customers/customer/?q=c777777%40"),
    (
        "admin customer list, filtered by plan",
        "/admin/customers/customer/?property_plan=%22team%22",
    ),
    ("GET /api/customers/", "/api/customers/"),
    ("GET /api/customers/?email=", "/api/customers/?email=C777777%40list.example.com"),
]

# One page of the list as a DBA would read it: the first rows by the index.
BARE_PAGE = """
    SELECT id, email, name, locale, external_id, properties, unsubscribed_at,
           bounced_at, complained_at, created_at
    FROM customers_customer ORDER BY lower(email) LIMIT 100
"""


def rows_create(*, customers: int) -> None:
    """Inserts `customers` customers in SQL, with a plan and a region, then
    ANALYZE (the estimated counts read the statistics)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO customers_customer
                (email, name, locale, external_id, properties, created_at,
                 updated_at, unsubscribed_at, bounced_at)
            SELECT 'c' || g || '@list.example.com', 'Customer ' || g,
                   CASE WHEN g %% 5 = 0 THEN 'ko' ELSE 'en' END, 'ext-' || g,
                   jsonb_build_object(
                       'plan', (ARRAY['free', 'pro', 'team', 'enterprise'])[1 + g %% 4],
                       'region',
                       (ARRAY['Seoul', 'Busan', 'Berlin', 'Austin'])[1 + g %% 4]
                   ),
                   now() - g * interval '1 second', now(),
                   CASE WHEN g %% 50 = 0 THEN now() END,
                   CASE WHEN g %% 79 = 1 THEN now() END
            FROM generate_series(1, %s) g
            """,
            [customers],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")


def staff_cookie() -> str:
    """Returns the Cookie header of a logged-in staff superuser's session."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )

    user = get_user_model().objects.create_superuser(
        "bench-staff", "staff@bench.example.com", "bench-password-1"
    )
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def get(port: int, path: str, cookie: str) -> tuple[int, bytes]:
    connection = HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path, headers={"Cookie": cookie})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def timed(call, *, warmup: int = 2, runs: int = 15) -> float:
    """The median seconds of `runs` calls after `warmup`."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bare_page() -> float:
    from django.db import connection

    def run():
        with connection.cursor() as cursor:
            cursor.execute(BARE_PAGE)
            cursor.fetchall()

    return timed(run)
