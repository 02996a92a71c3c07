"""
The daily rollups the dashboard adds up on PostgreSQL: DailyScore (responses per
day, campaign and score) and DailyDelivery (invitations delivered per day and
campaign, and how many of them were answered), the day taken in the site's
TIME_ZONE.

PostgreSQL keeps them: triggers on the response and invitation tables append
each write's changes to a change table (per statement, grouped, for inserts and
deletes; per row, only where a counted column changed, for updates) (no lock: answers
to one campaign never queue behind each other on a day's row), and rollups_fold()
adds the changes to the rollups' rows in key order, before each read and on beat.
Every write counts, whatever wrote it: the services, a cascade from a deleted
customer or campaign, a bulk load in SQL. The zone the days are in is the SQL
function surveys_rollup_zone(); rollup_rebuild() changes it and recounts
everything (post_migrate does when TIME_ZONE changed).

metrics.py reads a rollup only where it gives the same answer as the rows: no
split by segment or customer field, whole days of the rollup's zone, the
request's zone being that zone. Elsewhere (SQLite, another zone, a segment) it
reads the rows, as before.
"""

import threading
from contextlib import contextmanager
from datetime import datetime, time

from django.conf import settings
from django.db import connection, transaction

# What one statement did to the responses, as (day, campaign, survey, score, ±n).
_SCORE_CHANGES = {
    "INSERT": """
        SELECT (r.created_at AT TIME ZONE surveys_rollup_zone())::date,
               r.campaign_id, r.survey_id, r.score, count(*)
        FROM new_rows r WHERE r.score IS NOT NULL GROUP BY 1, 2, 3, 4
    """,
    "DELETE": """
        SELECT (r.created_at AT TIME ZONE surveys_rollup_zone())::date,
               r.campaign_id, r.survey_id, r.score, -count(*)
        FROM old_rows r WHERE r.score IS NOT NULL GROUP BY 1, 2, 3, 4
    """,
}

# An invitation counts once delivered: sent and not bounced (metrics.DELIVERED).
_DELIVERED = "{t}.sent_at IS NOT NULL AND {t}.status <> 'bounced'"
_DELIVERY_CHANGES = {
    "INSERT": f"""
        SELECT (i.sent_at AT TIME ZONE surveys_rollup_zone())::date, i.campaign_id,
               count(*), count(i.answered_at)
        FROM new_rows i WHERE {_DELIVERED.format(t="i")} GROUP BY 1, 2
    """,
    "DELETE": f"""
        SELECT (i.sent_at AT TIME ZONE surveys_rollup_zone())::date, i.campaign_id,
               -count(*), -count(i.answered_at)
        FROM old_rows i WHERE {_DELIVERED.format(t="i")} GROUP BY 1, 2
    """,
}

# An update counts only where it changes what a row adds to a rollup (a changed
# score, a sent, bounced or answered invitation): a row-level trigger whose WHEN
# PostgreSQL checks before calling anything, so the many other updates (claims,
# reminders, touches) cost nothing, and a transition table is never kept for them.
_ROW_UPDATES = {
    "surveys_response": (
        """
        INSERT INTO surveys_dailyscorechange
            (day, campaign_id, survey_id, score, answers)
        SELECT (OLD.created_at AT TIME ZONE surveys_rollup_zone())::date,
               OLD.campaign_id, OLD.survey_id, OLD.score, -1
        WHERE OLD.score IS NOT NULL
        UNION ALL
        SELECT (NEW.created_at AT TIME ZONE surveys_rollup_zone())::date,
               NEW.campaign_id, NEW.survey_id, NEW.score, 1
        WHERE NEW.score IS NOT NULL
        """,
        "OLD.score IS DISTINCT FROM NEW.score"
        " OR OLD.created_at IS DISTINCT FROM NEW.created_at"
        " OR OLD.campaign_id IS DISTINCT FROM NEW.campaign_id"
        " OR OLD.survey_id IS DISTINCT FROM NEW.survey_id",
    ),
    "surveys_invitation": (
        f"""
        INSERT INTO surveys_dailydeliverychange
            (day, campaign_id, invitations, answered_invitations)
        SELECT (OLD.sent_at AT TIME ZONE surveys_rollup_zone())::date,
               OLD.campaign_id, -1, -(OLD.answered_at IS NOT NULL)::int
        WHERE {_DELIVERED.format(t="OLD")}
        UNION ALL
        SELECT (NEW.sent_at AT TIME ZONE surveys_rollup_zone())::date,
               NEW.campaign_id, 1, (NEW.answered_at IS NOT NULL)::int
        WHERE {_DELIVERED.format(t="NEW")}
        """,
        "OLD.sent_at IS DISTINCT FROM NEW.sent_at"
        " OR (OLD.status = 'bounced') IS DISTINCT FROM (NEW.status = 'bounced')"
        " OR (OLD.answered_at IS NULL) <> (NEW.answered_at IS NULL)"
        " OR OLD.campaign_id IS DISTINCT FROM NEW.campaign_id",
    ),
}

_local = threading.local()

# The triggers append a statement's changes; rollups_fold adds them up.
_SCORE_APPEND = """
    INSERT INTO surveys_dailyscorechange
        (day, campaign_id, survey_id, score, answers)
    {changes}
"""
_DELIVERY_APPEND = """
    INSERT INTO surveys_dailydeliverychange
        (day, campaign_id, invitations, answered_invitations)
    {changes}
"""
# The changes taken out and added to the rollups' rows, in key order (two folds at
# once lock rows in the same order; a change row is taken by one of them only).
_SCORE_UPSERT = """
    INSERT INTO surveys_dailyscore AS d
        (day, campaign_id, survey_id, score, answers)
    SELECT day, campaign_id, max(survey_id), score, sum(answers)
    FROM ({changes}) c (day, campaign_id, survey_id, score, answers)
    GROUP BY day, campaign_id, score ORDER BY day, campaign_id, score
    ON CONFLICT (day, campaign_id, score)
    DO UPDATE SET answers = d.answers + EXCLUDED.answers
"""
_DELIVERY_UPSERT = """
    INSERT INTO surveys_dailydelivery AS d
        (day, campaign_id, invitations, answered_invitations)
    SELECT day, campaign_id, sum(invitations), sum(answered_invitations)
    FROM ({changes}) c (day, campaign_id, invitations, answered_invitations)
    GROUP BY day, campaign_id ORDER BY day, campaign_id
    ON CONFLICT (day, campaign_id)
    DO UPDATE SET invitations = d.invitations + EXCLUDED.invitations,
                  answered_invitations =
                      d.answered_invitations + EXCLUDED.answered_invitations
"""
FOLD_SQL = f"""
    WITH scores AS (
        DELETE FROM surveys_dailyscorechange
        RETURNING day, campaign_id, survey_id, score, answers
    ), deliveries AS (
        DELETE FROM surveys_dailydeliverychange
        RETURNING day, campaign_id, invitations, answered_invitations
    ), scores_added AS (
        {_SCORE_UPSERT.format(changes="SELECT * FROM scores")}
        RETURNING 1
    ), deliveries_added AS (
        {_DELIVERY_UPSERT.format(changes="SELECT * FROM deliveries")}
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM scores_added),
           (SELECT count(*) FROM deliveries_added)
"""

_TABLES = {
    "surveys_response": ("surveys_dailyscore_apply", _SCORE_APPEND, _SCORE_CHANGES),
    "surveys_invitation": (
        "surveys_dailydelivery_apply",
        _DELIVERY_APPEND,
        _DELIVERY_CHANGES,
    ),
}
# Inserts and deletes come in bulk (a load, a cascade): one trigger call per
# statement, its rows grouped.
_TRANSITIONS = {
    "INSERT": "NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
}


def _zone_function(zone: str) -> str:
    # The zone is one zoneinfo knows (settings checks it), quoted as a literal.
    return (
        "CREATE OR REPLACE FUNCTION surveys_rollup_zone() RETURNS text "
        f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {_quote(zone)}::text $$"
    )


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def install_sql(zone: str) -> list[str]:
    """The statements that create the zone function, the trigger functions and
    the triggers (PostgreSQL)."""
    statements = [_zone_function(zone)]
    for table, (function, append, changes) in _TABLES.items():
        branches = "\n".join(
            f"{'IF' if n == 0 else 'ELSIF'} TG_OP = '{op}' THEN\n"
            f"{append.format(changes=changes[op])};"
            for n, op in enumerate(_TRANSITIONS)
        )
        statements.append(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$\nBEGIN\n{branches}\nEND IF;\n"
            "RETURN NULL;\nEND $$"
        )
        for op, transition in _TRANSITIONS.items():
            name = f"{function}_{op.lower()}"
            statements.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            statements.append(
                f"CREATE TRIGGER {name} AFTER {op} ON {table} "
                f"REFERENCING {transition} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION {function}()"
            )
        append_row, changed = _ROW_UPDATES[table]
        statements.append(
            f"CREATE OR REPLACE FUNCTION {function}_row() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$\nBEGIN\n{append_row};\nRETURN NULL;\nEND $$"
        )
        name = f"{function}_update"
        statements.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        statements.append(
            f"CREATE TRIGGER {name} AFTER UPDATE ON {table} FOR EACH ROW "
            f"WHEN ({changed}) EXECUTE FUNCTION {function}_row()"
        )
    return statements


UNINSTALL_SQL = (
    [
        f"DROP TRIGGER IF EXISTS {function}_{op} ON {table}"
        for table, (function, _append, _changes) in _TABLES.items()
        for op in ("insert", "update", "delete")
    ]
    + [
        f"DROP FUNCTION IF EXISTS {function}{suffix}()"
        for function in ("surveys_dailyscore_apply", "surveys_dailydelivery_apply")
        for suffix in ("", "_row")
    ]
    + ["DROP FUNCTION IF EXISTS surveys_rollup_zone()"]
)

# Everything recounted from the rows, in the current zone function.
_REFILL_SQL = [
    "DELETE FROM surveys_dailyscore",
    "DELETE FROM surveys_dailydelivery",
    "DELETE FROM surveys_dailyscorechange",
    "DELETE FROM surveys_dailydeliverychange",
    _SCORE_UPSERT.format(
        changes=_SCORE_CHANGES["INSERT"].replace("new_rows", "surveys_response")
    ),
    _DELIVERY_UPSERT.format(
        changes=_DELIVERY_CHANGES["INSERT"].replace("new_rows", "surveys_invitation")
    ),
]


def rollup_rebuild(*, zone: str | None = None, using=None) -> None:
    """
    Installs the triggers with days in `zone` (default TIME_ZONE) and recounts
    both rollups from the rows, in one transaction that holds writers off the
    response and invitation tables meanwhile (readers go on). PostgreSQL only.
    """
    from django.db import connections

    db = connections[using or "default"]
    if db.vendor != "postgresql":
        return
    zone = zone or settings.TIME_ZONE
    with transaction.atomic(using=db.alias), db.cursor() as cursor:
        cursor.execute("LOCK TABLE surveys_response, surveys_invitation IN SHARE MODE")
        for statement in install_sql(zone) + _REFILL_SQL:
            cursor.execute(statement)
    _zone_cache.clear()


def rollups_fold() -> tuple[int, int]:
    """
    Adds the changes the triggers appended to the rollups' rows and removes them,
    in one statement; returns how many rollup rows of each it touched. The metrics
    fold before they read a rollup (so they count every committed write); beat
    folds every SWEEP_INTERVAL, so that there is little to fold then.
    """
    if connection.vendor != "postgresql" or getattr(_local, "folded", False):
        return 0, 0
    if getattr(_local, "folded", None) is False:
        _local.folded = True
    with connection.cursor() as cursor:
        cursor.execute(FOLD_SQL)
        return cursor.fetchone()


@contextmanager
def _thread_flag(name: str, value):
    """Sets this thread's flag `name` to `value` inside the block."""
    before = getattr(_local, name, None)
    setattr(_local, name, value)
    try:
        yield
    finally:
        setattr(_local, name, before)


def one_fold():
    """Inside the block the rollups are folded once, before the first read: a
    page of several figures reads them as of that moment, as one query would."""
    return _thread_flag("folded", False)


_zone_cache: dict[str, str | None] = {}


def _stored_zone(db) -> str | None:
    """The zone of the installed rollups on `db`, or None if none is installed."""
    if db.vendor != "postgresql":
        return None
    with db.cursor() as cursor:
        cursor.execute("SELECT to_regproc('surveys_rollup_zone') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT surveys_rollup_zone()")
        return cursor.fetchone()[0]


def rollup_zone() -> str | None:
    """The zone the rollups' days are in, or None where there is no rollup (not
    PostgreSQL, or not installed). Asked once per process."""
    if connection.alias not in _zone_cache:
        _zone_cache[connection.alias] = _stored_zone(connection)
    return _zone_cache[connection.alias]


def rows_only():
    """Inside the block the metrics read the rows, never a rollup: what the
    tests and the benchmark compare a rollup's figures with."""
    return _thread_flag("rows_only", True)


def rollup_days(since: datetime | None, until: datetime | None):
    """
    Returns (first day, day after the last) of [since, until) in the rollup's
    days, or None if the rollup cannot answer for that period now: no rollup, a
    current time zone other than the rollup's, or a bound that is not the start
    of a day there. A bound of None stays None (no limit).
    """
    from django.utils import timezone

    if getattr(_local, "rows_only", False):
        return None
    zone = rollup_zone()
    if zone is None or timezone.get_current_timezone_name() != zone:
        return None
    days = []
    for bound in (since, until):
        if bound is None:
            days.append(None)
            continue
        local = timezone.localtime(bound)
        if local.time() != time.min:
            return None
        days.append(local.date())
    return tuple(days)


def on_post_migrate(sender, using="default", **kwargs) -> None:
    """Recounts the rollups when TIME_ZONE is no longer the zone they count in
    (the migration that made them counted in the TIME_ZONE of its day)."""
    from django.db import connections

    zone = _stored_zone(connections[using])
    if zone is not None and zone != settings.TIME_ZONE:
        rollup_rebuild(using=using)
