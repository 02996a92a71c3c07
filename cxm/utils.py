from collections.abc import Iterable, Iterator
from itertools import islice


def batched(items: Iterable, size: int) -> Iterator[tuple]:
    """Yields tuples of up to `size` items (itertools.batched is 3.12+)."""
    iterator = iter(items)
    while batch := tuple(islice(iterator, size)):
        yield batch
