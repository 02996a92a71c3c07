"""
The CSV export of a campaign's million responses (surveys.exports) against
PostgreSQL's own COPY … TO STDOUT WITH CSV of the same rows, its peak memory, and
the latency of the responses API list over HTTP against the bare SQL of its page.
"""

import statistics
import time

from bench.imports import _peak_rss_kb

# The export's columns written out as a DBA would: the same rows, newest first.
COPY_SQL = """
    COPY (
        SELECT r.id, r.created_at, c.email, c.name, c.external_id, ca.name, s.name,
               s.kind, r.score, r.comment, c.properties ->> 'plan'
        FROM surveys_response r
        JOIN customers_customer c ON c.id = r.customer_id
        JOIN surveys_campaign ca ON ca.id = r.campaign_id
        JOIN surveys_survey s ON s.id = r.survey_id
        WHERE r.campaign_id = {campaign}
        ORDER BY r.created_at DESC, r.id DESC
    ) TO STDOUT WITH (FORMAT csv)
"""

# The API list's first page as bare SQL: the rows with their customer and survey,
# and their answers.
PAGE_SQL = """
    SELECT r.*, c.email, s.kind FROM surveys_response r
    JOIN customers_customer c ON c.id = r.customer_id
    JOIN surveys_survey s ON s.id = r.survey_id
    WHERE r.campaign_id = %s ORDER BY r.created_at DESC, r.id DESC LIMIT 51
"""
ANSWERS_SQL = "SELECT * FROM surveys_answer WHERE response_id = ANY(%s)"
# What the list did before: an exact count of the campaign's rows over the join.
COUNT_SQL = """
    SELECT count(*) FROM surveys_response r
    JOIN customers_customer c ON c.id = r.customer_id
    JOIN surveys_survey s ON s.id = r.survey_id
    WHERE r.campaign_id = %s
"""


def copy_reference(campaign_id: int) -> tuple[float, int]:
    """Returns (seconds, bytes) of COPY's CSV of the campaign's rows, read here."""
    from django.db import connection

    connection.ensure_connection()
    size = 0
    started = time.monotonic()
    with connection.connection.cursor() as cursor:
        with cursor.copy(COPY_SQL.format(campaign=int(campaign_id))) as copy:
            for chunk in copy:
                size += len(chunk)
    return time.monotonic() - started, size


def export(campaign) -> tuple[float, int, int, int, int]:
    """
    Returns (seconds, rows, bytes, resident kB before, peak resident kB during) of
    the export of the campaign's responses, as the API streams it, read here.
    """
    from surveys.exports import responses_csv
    from surveys.models import Response

    before = _peak_rss_kb(reset=True)
    started = time.monotonic()
    size = rows = 0
    for chunk in responses_csv(
        responses=Response.objects.filter(campaign=campaign), survey=campaign.survey
    ):
        size += len(chunk)
        rows += chunk.count(b"\n")
    seconds = time.monotonic() - started
    # The header's line; a comment's newline is quoted, and counted: none here.
    return seconds, rows - 1, size, before, _peak_rss_kb()


def page_bare(campaign_id: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(PAGE_SQL, [campaign_id])
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(ANSWERS_SQL, [ids])
        cursor.fetchall()


def count_old(campaign_id: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(COUNT_SQL, [campaign_id])
        cursor.fetchall()


def staff_token() -> str:
    """A staff user's API token."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user("bench-exports", is_staff=True)
    return Token.objects.create(user=user).key


def seconds_each(call, *, warmup: int = 3, runs: int = 21) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def api_latency(*, url: str, token: str, campaign_id: int) -> list[float]:
    """Seconds of each GET /api/responses/?campaign= over one kept-alive
    connection, after checking a page of 50 comes back."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    address = f"{url}/api/responses/?campaign={campaign_id}"
    body = session.get(address, timeout=60).json()
    if len(body["results"]) != 50 or not body["next"]:
        raise RuntimeError(f"the API list gave {str(body)[:300]}")

    def call():
        r = session.get(address, timeout=60)
        r.raise_for_status()

    return seconds_each(call)


median = statistics.median
