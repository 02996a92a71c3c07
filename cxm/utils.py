from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count, islice


def batched(items: Iterable, size: int) -> Iterator[tuple]:
    """Yields tuples of up to `size` items (itertools.batched is 3.12+)."""
    iterator = iter(items)
    while batch := tuple(islice(iterator, size)):
        yield batch


class RepeatedUpdate:
    """
    One ORM update, built and compiled to SQL once, then run many times with
    other values: a loop that runs the same UPDATE for every row (delivery claims
    and marks each invitation) spent more time in Django building the statement
    than the database spent running it.

    `build` takes a keyword argument for each name of `samples` and returns the
    queryset and the values of its update(); it is called once with a stand-in
    for each name, and the stand-ins' places among the compiled parameters are
    where each run's values go. Where the ORM does anything to a stand-in but
    pass it on (SQLite turns datetimes into text), the stand-in is not found,
    and every run builds the update anew: slower, never wrong.
    """

    def __init__(self, build, **samples):
        from django.db.models import sql

        self.build = build
        stand_ins = {name: _stand_in(sample) for name, sample in samples.items()}
        queryset, values = build(**stand_ins)
        query = queryset.query.chain(sql.UpdateQuery)
        query.add_update_values(values)
        self.using = queryset.db
        self.sql, params = query.get_compiler(self.using).as_sql()
        self.params = list(params)
        self.places = {
            name: [i for i, p in enumerate(self.params) if p is stand_in]
            for name, stand_in in stand_ins.items()
        }
        if not all(self.places.values()):
            self.sql = None

    def run(self, **values) -> int:
        """Runs the update with these values; returns how many rows it changed."""
        from django.db import connections, transaction

        if self.sql is None:
            queryset, update = self.build(**values)
            return queryset.update(**update)
        params = list(self.params)
        for name, places in self.places.items():
            for i in places:
                params[i] = values[name]
        connection = connections[self.using]
        with transaction.mark_for_rollback_on_error(using=self.using):
            if connection.vendor == "postgresql":
                # psycopg's own cursor binds on the server, so PostgreSQL parses and
                # plans the statement once per connection rather than every run
                # (Django's binds on the client: a new statement text each time).
                import psycopg

                connection.ensure_connection()
                with psycopg.Cursor(connection.connection) as cursor:
                    cursor.execute(self.sql, params, prepare=True)
                    return cursor.rowcount
            with connection.cursor() as cursor:
                cursor.execute(self.sql, params)
                return cursor.rowcount


_stand_ins = count(1)


def _stand_in(sample):
    """
    A value of the sample's type that no real parameter will be, and a new object
    each time, so each name's places are told apart (see RepeatedUpdate).
    """
    n = next(_stand_ins)
    if isinstance(sample, datetime):
        return datetime(1901, 2, 3, tzinfo=UTC) + timedelta(microseconds=n)
    if isinstance(sample, int) and not isinstance(sample, bool):
        return -(2**62) - n
    raise TypeError(f"no stand-in for a {type(sample).__name__}")
