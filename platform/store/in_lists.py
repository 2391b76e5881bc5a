"""``IN (...)`` lists of any length, one statement per slice.

Each value of an ``IN`` list is a bound parameter, and both backends cap the parameters of one
statement: PostgreSQL's protocol at 65,535 (a longer list fails before it reaches the server),
SQLite at 999 in builds before 3.32 (32,766 since; distributions often raise it). Pools, picks,
replay samples and outboxes grow with the stream, so a query on "these ids" runs once per slice
of at most :data:`MAX_IN_LIST` values and the caller merges the results.
"""

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

# Under SQLite's lowest limit (999), with room for the statement's other parameters.
MAX_IN_LIST = 900

T = TypeVar("T")


def in_list_chunks(values: Iterable[T], size: int = MAX_IN_LIST) -> Iterator[list[T]]:
    """``values`` in order, as lists of at most ``size``: one ``IN`` list each. Nothing for no values,
    so an empty list never reaches the database."""
    if size < 1:
        raise ValueError(f"an IN list holds at least one value, not {size}")
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk
