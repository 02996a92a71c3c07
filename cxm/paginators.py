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
    Returns PostgreSQL's estimate of the rows of `queryset`, or None where there
    is none worth having (another database, or fewer than ESTIMATE_FROM rows, when
    counting them exactly is cheap). Unfiltered: the table's statistics
    (pg_class.reltuples); filtered: the planner's estimate of the query.
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    query = queryset.query
    with connection.cursor() as cursor:
        if not query.where and not query.distinct and not query.combinator:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [queryset.model._meta.db_table],
            )
            row = cursor.fetchone()
            estimate = row[0] if row else -1
        else:
            sql, params = queryset.order_by().values("pk").query.sql_with_params()
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
            if isinstance(plan, str):
                plan = json.loads(plan)
            estimate = plan[0]["Plan"]["Plan Rows"]
    # -1: never analyzed (a new table); small: the exact count costs little.
    return int(estimate) if estimate >= ESTIMATE_FROM else None


class EstimatedCountPaginator(Paginator):
    """A Paginator whose count is PostgreSQL's estimate on large lists (above)."""

    @cached_property
    def count(self):
        estimate = estimated_count(self.object_list)
        return super().count if estimate is None else estimate


class EstimatedCountPagination(PageNumberPagination):
    """The API's page numbers, with the estimated count on large lists: `count`
    is then approximate, as the schema says."""

    django_paginator_class = EstimatedCountPaginator
