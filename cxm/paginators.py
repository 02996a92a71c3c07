"""
Paginators for lists of a million rows: PostgreSQL's estimate of how many rows a
list holds where the exact number is not needed (a page's "about N customers"),
instead of a count(*) that reads every row on each page.
"""

import json

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property
from rest_framework.pagination import PageNumberPagination

# Below this many rows (as estimated) the exact count is cheap and shown instead.
ESTIMATE_FROM = 10_000


def estimated_count(queryset) -> int | None:
    """
    Returns the number of rows of `queryset` as PostgreSQL estimates it, or the
    exact count where that is cheap (fewer than ESTIMATE_FROM rows estimated), or
    None on another database. Unfiltered: the table's statistics
    (pg_class.reltuples), in the same query as the exact count it may need;
    filtered: the planner's estimate of the query.
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    query = queryset.query
    with connection.cursor() as cursor:
        if not query.where and not query.distinct and not query.combinator:
            table = connection.ops.quote_name(queryset.model._meta.db_table)
            # reltuples is -1 for a table never analyzed (a new one).
            cursor.execute(
                f"SELECT CASE WHEN reltuples >= %s THEN reltuples::bigint "
                f"ELSE (SELECT count(*) FROM {table}) END "
                "FROM pg_class WHERE oid = %s::regclass",
                [ESTIMATE_FROM, queryset.model._meta.db_table],
            )
            return cursor.fetchone()[0]
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    estimate = plan[0]["Plan"]["Plan Rows"]
    return int(estimate) if estimate >= ESTIMATE_FROM else queryset.count()


class EstimatedCountPaginator(Paginator):
    """A Paginator whose count is PostgreSQL's estimate on large lists (above)."""

    @cached_property
    def count(self):
        count = estimated_count(self.object_list)
        return super().count if count is None else count


class EstimatedCountPagination(PageNumberPagination):
    """The API's page numbers, with the estimated count on large lists: `count`
    is then approximate, as the schema says."""

    django_paginator_class = EstimatedCountPaginator
