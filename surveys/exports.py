"""
The CSV export of responses: one row per response, its customer, campaign and
headline score, a column per question of the survey when one survey is chosen, and
the customer's properties. Streamed in bounded memory however many rows: on
PostgreSQL the database writes the CSV itself (COPY … TO STDOUT), elsewhere (the
embedded SQLite) Python writes it from a cursor, a chunk at a time.
"""

import csv
import io
from collections.abc import Iterator

from django.db import connections
from django.db.models import (
    Case,
    CharField,
    F,
    OuterRef,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Concat, Left, NullIf
from django.db.models.lookups import In
from django.http import StreamingHttpResponse
from django.utils import timezone

from cxm.customers.models import Customer

from .kinds import KINDS
from .models import Answer, Campaign, Question, QuestionRole, QuestionType, Survey

BOM = "\ufeff"
# What a spreadsheet takes for a formula at the start of a cell: such a cell gets
# a leading ' so that it opens as the text the customer wrote (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Rows Python reads at a time where the database cannot write the CSV itself.
CHUNK_ROWS = 2000
# At most this many property columns: keys beyond are left out, not guessed.
PROPERTIES_MAX = 100

# (header, expression, typed): a typed column holds text someone wrote, where a
# formula could hide.
FIXED_COLUMNS = [
    ("response_id", F("pk"), False),
    ("answered_at", F("created_at"), False),
    ("customer_email", F("customer__email"), True),
    ("customer_name", F("customer__name"), True),
    ("customer_external_id", F("customer__external_id"), True),
    ("campaign", F("campaign__name"), True),
    ("survey", F("survey__name"), True),
    ("kind", F("survey__kind"), False),
    ("score", F("score"), False),
]


def _safe(expression):
    """Returns the text of `expression`, with a ' before a formula's first sign."""
    text = Cast(expression, TextField())
    return Case(
        When(
            In(Left(text, 1), list(FORMULA_STARTS)),
            then=Concat(Value("'"), text, output_field=TextField()),
        ),
        default=text,
        output_field=TextField(),
    )


def _bucket():
    """The bucket of the headline score, as in surveys.kinds."""
    return Case(
        *[
            When(
                survey__kind=kind,
                score__gte=scores.low,
                score__lte=scores.high,
                then=Value(scores.bucket),
            )
            for kind, spec in KINDS.items()
            for scores in spec.buckets
        ],
        default=Value(""),
        output_field=CharField(),
    )


def _answer(question: Question):
    """The answer to `question` of the row's response, as text."""
    if question.type == QuestionType.SINGLE_CHOICE:
        value = KeyTextTransform(0, "choices")
    elif question.type == QuestionType.MULTIPLE_CHOICE:
        value = Cast("choices", TextField())
    else:
        value = Coalesce(
            Cast("number", TextField()),
            NullIf("text", Value(""), output_field=TextField()),
            output_field=TextField(),
        )
    return Subquery(
        Answer.objects.filter(response=OuterRef("pk"), question=question)
        .annotate(value=value)
        .values("value")[:1],
        output_field=TextField(),
    )


def export_survey(*, survey: Survey | None, campaigns) -> Survey | None:
    """Returns the one survey an export is of: the one chosen, or the campaigns'
    when they all ask the same; None when responses of several surveys may come."""
    if survey is not None:
        return survey
    ids = {c.survey_id for c in campaigns or []}
    if len(ids) == 1:
        return Survey.objects.get(pk=ids.pop())
    return None


def _property_keys(responses) -> list[str]:
    """The property names of the exported responses' customers, sorted."""
    customers = Customer.objects.filter(pk__in=responses.values("customer_id"))
    if connections[responses.db].vendor == "postgresql":
        sql, params = customers.values("properties").query.sql_with_params()
        with connections[responses.db].cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT jsonb_object_keys(p.properties) AS k FROM "
                f"({sql}) p ORDER BY k LIMIT %s",
                (*params, PROPERTIES_MAX),
            )
            return [k for (k,) in cursor.fetchall()]
    keys = set()
    for properties in customers.values_list("properties", flat=True).iterator(
        chunk_size=CHUNK_ROWS
    ):
        keys.update(properties or {})
    return sorted(keys)[:PROPERTIES_MAX]


def export_columns(*, responses, survey: Survey | None):
    """Returns (header, queryset of rows as tuples) for the CSV of `responses`."""
    columns = [
        *FIXED_COLUMNS,
        ("bucket", _bucket(), False),
        ("comment", F("comment"), True),
    ]
    if survey is not None:
        extra = Question.objects.filter(survey=survey, role=QuestionRole.EXTRA)
        for question in extra.order_by("position"):
            columns.append((question.display_text(), _answer(question), True))
    for key in _property_keys(responses):
        properties = KeyTextTransform(key, "customer__properties")
        columns.append((f"customer.{key}", properties, True))
    annotations = {
        f"c{i}": _safe(expression) if typed else expression
        for i, (_, expression, typed) in enumerate(columns)
    }
    rows = responses.annotate(**annotations).order_by("-created_at", "-id")
    return [header for header, _, _ in columns], rows.values_list(*annotations)


def responses_csv(*, responses, survey: Survey | None = None, bom: bool = False):
    """
    Yields the CSV of `responses` (a Response queryset) in chunks of UTF-8 bytes:
    a header, then one row per response, newest first. `bom` puts a UTF-8 byte
    order mark first, by which Excel knows the file is UTF-8 (Korean opens right).
    """
    header, rows = export_columns(responses=responses, survey=survey)
    head = io.StringIO()
    csv.writer(head).writerow(_header_safe(header))
    yield ((BOM if bom else "") + head.getvalue()).encode()
    connection = connections[rows.db]
    if connection.vendor == "postgresql":
        yield from _copy(connection, rows)
    else:
        yield from _written(rows)


def _header_safe(header: list[str]) -> list[str]:
    # Question wordings and property names are typed by staff: cells like the rest.
    return ["'" + h if h.startswith(FORMULA_STARTS) else h for h in header]


def _copy(connection, rows) -> Iterator[bytes]:
    """The CSV rows as PostgreSQL's COPY writes them, chunk by chunk as they come."""
    sql, params = rows.query.sql_with_params()
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        with cursor.copy(
            f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, ENCODING 'UTF8')", params
        ) as copy:
            yield from (bytes(chunk) for chunk in copy)


def _written(rows) -> Iterator[bytes]:
    """The CSV rows written by Python from a cursor, CHUNK_ROWS at a time."""
    out = io.StringIO()
    writer = csv.writer(out)
    for n, row in enumerate(rows.iterator(chunk_size=CHUNK_ROWS), 1):
        writer.writerow(["" if v is None else v for v in row])
        if n % CHUNK_ROWS == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


def campaigns_of(campaign_ids) -> list[Campaign]:
    """The campaigns of the ids a filter gave (survey ids only)."""
    return list(Campaign.objects.filter(pk__in=campaign_ids).only("pk", "survey_id"))


def export_response(*, responses, survey=None, bom: bool = False):
    """Returns the streamed HTTP response of the CSV of `responses`, as a download."""
    response = StreamingHttpResponse(
        responses_csv(responses=responses, survey=survey, bom=bom),
        content_type="text/csv; charset=utf-8",
    )
    day = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="responses-{day}.csv"'
    return response


def filtered_export(filterset, *, bom: bool = False):
    """Returns the CSV download of a valid ResponseFilter's responses, with a
    column per question when they are of one survey."""
    data = filterset.form.cleaned_data
    survey = export_survey(
        survey=data.get("survey"), campaigns=campaigns_of(data.get("campaign") or [])
    )
    return export_response(responses=filterset.qs, survey=survey, bom=bom)
