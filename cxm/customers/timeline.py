"""
A customer's whole story: one time-ordered timeline of everything that happened
with them, read as one SQL UNION ALL.

Customers is the lowest app, yet the story is mostly other apps' rows
(invitations, answers, follow-ups). So this module owns the mechanism and the
order, and each app registers the branches it owns from its AppConfig.ready()
(register_branch), as segments' condition types are registered: the customer
page and the API live here and never import a higher app, and a branch's SQL
lives beside the tables it reads.

Every entry is (at, kind, id, data): the time, a kind named by the branch, the
id of its row and a JSON object of what the page shows, built in SQL so a page
of the timeline is one query however long the history. Newest first, ordered
by (at, kind, id) and paged by a keyset cursor on the same three.
"""

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

# The most entries one page holds, and its default.
PAGE_MAX = 200
PAGE_SIZE = 50


@dataclasses.dataclass(frozen=True)
class TimelineBranch:
    """
    One source of entries. `table` is its table with an alias, `where` the
    condition naming the customer as %(customer)s (a function of the database
    vendor where the SQL differs), `at` and `id` SQL expressions of the time and
    the row's id: an index on (customer, at, id) keeps the branch's part of a
    page to a short scan. `joins` are what `data`, the (key, SQL expression)
    pairs the page shows, also reads (a key ending in ":json" for a column
    holding JSON); they are joined for the page's rows only.
    """

    kind: str
    label: str
    table: str
    where: str | Callable
    at: str
    id: str
    data: tuple
    template: str
    joins: str = ""
    # Extra SQL parameters the branch's SQL names, for the viewing user (who may
    # see which follow-up): a function of (user, customer id) returning a dict.
    params: Callable | None = None
    # Python-side additions to an entry's data for the page (labels in the
    # reader's language); no queries.
    describe: Callable | None = None


BRANCHES: dict[str, TimelineBranch] = {}


def register_branch(branch: TimelineBranch) -> None:
    """Adds a branch to every customer's timeline (apps call it from ready())."""
    if not branch.kind.isascii() or branch.kind != branch.kind.lower():
        raise ValueError("A timeline kind is lowercase ASCII: it is compared bytewise.")
    BRANCHES[branch.kind] = branch


@dataclasses.dataclass(frozen=True)
class Cursor:
    at: datetime
    kind: str
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat(), self.kind, self.id])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        """Returns the cursor `text` names; a ValidationError if it names none."""
        try:
            padded = text + "=" * (-len(text) % 4)
            at, kind, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
            cursor = cls(datetime.fromisoformat(at), str(kind), int(pk))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise ValidationError(
                _("This is not a cursor of this timeline: follow the next link."),
                code="bad_cursor",
            ) from None
        if (
            cursor.at.tzinfo is None
            or cursor.kind not in BRANCHES
            or not 0 <= cursor.id < 2**63
        ):
            raise ValidationError(
                _("This is not a cursor of this timeline: follow the next link."),
                code="bad_cursor",
            )
        return cursor


def _older_than(branch: TimelineBranch, cursor: Cursor | None) -> str:
    """
    The branch's part of (at, kind, id) < cursor: its kind is a constant, so the
    condition is decided here and left to PostgreSQL as a plain range on the
    branch's own (at, id), which its index serves.
    """
    if cursor is None:
        return "TRUE"
    if branch.kind < cursor.kind:
        return f"{branch.at} <= %(cursor_at)s"
    if branch.kind == cursor.kind:
        return f"({branch.at}, {branch.id}) < (%(cursor_at)s, %(cursor_id)s)"
    return f"{branch.at} < %(cursor_at)s"


def ids_in(column: str, name: str, vendor: str) -> str:
    """SQL: `column` is one of the ids of list parameter `name` (ids_param)."""
    if vendor == "postgresql":
        return f"{column} = ANY(%({name})s)"
    return f"{column} IN (SELECT value FROM json_each(%({name})s))"


def ids_param(ids: list[int], vendor: str):
    """The value of a list parameter ids_in names."""
    return list(ids) if vendor == "postgresql" else json.dumps(list(ids))


def _json_object(pairs: tuple, vendor: str) -> str:
    items = []
    for key, expression in pairs:
        key, _sep, kind = key.partition(":")
        if kind == "json" and vendor != "postgresql":
            expression = f"json({expression})"
        items += [f"'{key}'", expression]
    function = "jsonb_build_object" if vendor == "postgresql" else "json_object"
    return f"{function}({', '.join(items)})"


def timeline_sql(cursor: Cursor | None, vendor: str | None = None) -> str:
    """
    Returns the timeline's SQL, newest first, a page long: the UNION ALL of every
    branch's keys (time, kind, id), each branch stopping at a page's length on its
    own index, sorted and cut to a page; then the page's rows joined back for
    what the page shows, so nothing is built for the rows the page leaves out.
    The SQL of PostgreSQL, or of SQLite (the embedded default).
    """
    vendor = vendor or connection.vendor
    collation = '"C"' if vendor == "postgresql" else "BINARY"
    order = f"at DESC, kind COLLATE {collation} DESC, id DESC"
    keys, rows = [], []
    for number, branch in enumerate(BRANCHES.values()):
        where = branch.where(vendor) if callable(branch.where) else branch.where
        keys.append(
            f"SELECT * FROM (SELECT {branch.at} AS at, '{branch.kind}' AS kind, "
            f"{branch.id} AS id FROM {branch.table} WHERE {where} "
            f"AND {_older_than(branch, cursor)} "
            f"ORDER BY {branch.at} DESC, {branch.id} DESC LIMIT %(limit)s) AS k{number}"
        )
        rows.append(
            f"SELECT tp.at, tp.kind, tp.id, {_json_object(branch.data, vendor)} "
            f"AS data FROM timeline_page tp JOIN {branch.table} "
            f"ON {branch.id} = tp.id {branch.joins} WHERE tp.kind = '{branch.kind}'"
        )
    return (
        "WITH timeline_page AS (SELECT at, kind, id FROM (\n"
        + "\nUNION ALL\n".join(keys)
        + f"\n) AS timeline_keys ORDER BY {order} LIMIT %(limit)s)\n"
        "SELECT at, kind, id, data FROM (\n"
        + "\nUNION ALL\n".join(rows)
        + f"\n) AS timeline ORDER BY {order}"
    )


def customer_timeline(
    *, customer_id: int, user, cursor: Cursor | None = None, limit: int = PAGE_SIZE
) -> dict:
    """
    Returns a page of the customer's timeline for `user`, newest first: its
    entries (dicts of at, kind, id, data, label, template) and the cursor of the
    next page (None on the last). One query, plus what branches' params read.
    """
    limit = max(1, min(limit, PAGE_MAX))
    params = {"customer": customer_id, "limit": limit + 1}
    if cursor is not None:
        params |= {
            "cursor_at": connection.ops.adapt_datetimefield_value(cursor.at),
            "cursor_id": cursor.id,
        }
    # Branches sharing a params function (the follow-ups' visibility) read it once.
    for read in dict.fromkeys(b.params for b in BRANCHES.values() if b.params):
        params |= read(user, customer_id)
    with connection.cursor() as db:
        db.execute(timeline_sql(cursor), params)
        rows = db.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    entries = []
    for at, kind, pk, data in rows:
        if isinstance(data, str):  # SQLite: JSON and times are text
            data = json.loads(data)
        if isinstance(at, str):
            at = parse_datetime(at)
        if timezone.is_naive(at):  # SQLite keeps UTC without its offset
            at = timezone.make_aware(at, UTC)
        branch = BRANCHES[kind]
        entry = {"at": at, "kind": kind, "id": pk, "data": data}
        entries.append(
            entry
            | {
                "label": branch.label,
                "template": branch.template,
                **({"shown": branch.describe(data)} if branch.describe else {}),
            }
        )
    next_cursor = None
    if more:
        last = entries[-1]
        next_cursor = Cursor(last["at"], last["kind"], last["id"])
    return {"entries": entries, "next": next_cursor}


# Panels of the customer page other apps add (the scores over time): a template
# and a function of the customer returning its context, in a fixed few queries.
@dataclasses.dataclass(frozen=True)
class CustomerPanel:
    name: str
    template: str
    context: Callable


PANELS: dict[str, CustomerPanel] = {}


def register_panel(panel: CustomerPanel) -> None:
    """Adds a panel to the customer page (apps call it from ready())."""
    PANELS[panel.name] = panel


def customer_panels(customer) -> list[dict]:
    """Returns each registered panel's template and context for `customer`."""
    return [
        {"template": p.template, "name": p.name, **p.context(customer)}
        for p in PANELS.values()
    ]


def _suppression(kind: str, column: str, label) -> TimelineBranch:
    return TimelineBranch(
        kind=kind,
        label=label,
        table="customers_customer cc",
        where=f"cc.id = %(customer)s AND cc.{column} IS NOT NULL",
        at=f"cc.{column}",
        id="cc.id",
        data=(),
        template="customers/timeline/_suppression.html",
    )


def register() -> None:
    """The customers app's own branches: interactions, and the contact state."""
    register_branch(
        TimelineBranch(
            kind="interaction",
            label=_("Interaction"),
            table="customers_interaction ci",
            where="ci.customer_id = %(customer)s",
            at="ci.occurred_at",
            id="ci.id",
            data=(
                ("kind", "ci.kind"),
                ("channel", "ci.channel"),
                ("properties:json", "ci.properties"),
                ("external_id", "ci.external_id"),
            ),
            template="customers/timeline/_interaction.html",
            describe=_interaction_shown,
        )
    )
    register_branch(_suppression("unsubscribed", "unsubscribed_at", _("Unsubscribed")))
    register_branch(_suppression("bounced", "bounced_at", _("Email bounced")))
    register_branch(
        _suppression("complained", "complained_at", _("Reported our email as spam"))
    )


def _interaction_shown(data: dict) -> dict:
    from .models import Channel

    channel = data.get("channel")
    return {"channel": Channel(channel).label if channel in Channel else channel}
