"""What Argilla's Elasticsearch queries mean, evaluated in memory over records read from its database.

Runs inside the Argilla server's virtualenv (imports ``argilla_server``). Each rule mirrors the query
that ``argilla_server/search_engine/commons.py`` builds, so the UI and the SDK see the same records,
counts and order as with Elasticsearch: terms and ranges match when any of a field's values does,
responses are matched one at a time (nested documents), missing sort values go last.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np
from argilla_server.enums import ResponseStatusFilter, SortOrder
from argilla_server.search_engine.base import (
    AndFilter,
    Filter,
    FilterScope,
    MetadataFilterScope,
    Order,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SuggestionFilterScope,
    TermsFilter,
)


@dataclass
class ResponseDoc:
    user_id: UUID
    status: str
    values: dict[str, Any]


@dataclass
class SuggestionDoc:
    value: Any
    score: Any
    agent: str | None
    type: str | None


@dataclass
class RecordDoc:
    """One record as the search index would hold it; parts not needed by a query stay empty."""

    id: UUID
    external_id: str | None
    status: str
    inserted_at: datetime
    updated_at: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    responses: list[ResponseDoc] = field(default_factory=list)
    suggestions: dict[str, SuggestionDoc] = field(default_factory=dict)


def scopes_of(filter: Filter | None, sort: Sequence[Order] | None) -> list[FilterScope]:
    """Every scope a filter tree and a sort read, so the loader fetches only those parts."""
    scopes = [order.scope for order in sort or ()]
    pending = [filter] if filter is not None else []
    while pending:
        current = pending.pop()
        if isinstance(current, AndFilter):
            pending.extend(current.filters)
        else:
            scopes.append(current.scope)
    return scopes


# Filters ----------------------------------------------------------------------------------------


def matches(record: RecordDoc, filter: Filter) -> bool:
    if isinstance(filter, AndFilter):
        return all(matches(record, part) for part in filter.filters)
    if isinstance(filter.scope, ResponseFilterScope):
        return _matches_responses(record, filter)
    return _values_match(_scope_values(record, filter.scope), filter)


def _matches_responses(record: RecordDoc, filter: TermsFilter | RangeFilter) -> bool:
    scope: ResponseFilterScope = filter.scope
    user_id = scope.user.id if scope.user is not None else None
    responses = [r for r in record.responses if user_id is None or r.user_id == user_id]
    if scope.question:
        return any(_values_match(flatten(r.values.get(scope.question)), filter) for r in responses)
    if scope.property == "status" and isinstance(filter, TermsFilter):
        wanted = {str(value) for value in filter.values}
        pending = ResponseStatusFilter.pending.value
        # "pending" is the absence of a response: of this user, or of anyone when no user is given.
        if pending in wanted:
            if not responses:
                return True
            wanted.discard(pending)
            if not wanted:
                return False
        elif not wanted:
            return bool(responses) if user_id is not None else True
        return any(r.status in wanted for r in responses)
    raise ValueError(f"Cannot process filter scope {scope}")


def _scope_values(record: RecordDoc, scope: FilterScope) -> list[Any]:
    if isinstance(scope, MetadataFilterScope):
        return flatten(record.metadata.get(scope.metadata_property))
    if isinstance(scope, SuggestionFilterScope):
        suggestion = record.suggestions.get(scope.question)
        if suggestion is None:
            return []
        # The API hands "None" over for a scope without a property; it means the value.
        name = scope.property if scope.property in ("score", "agent", "type") else "value"
        return flatten(getattr(suggestion, name))
    if isinstance(scope, RecordFilterScope):
        return flatten(getattr(record, scope.property, None))
    raise ValueError(f"Cannot process request for search scope {scope}")


def _values_match(values: list[Any], filter: Filter) -> bool:
    if isinstance(filter, TermsFilter):
        wanted = {str(value) for value in filter.values}
        return any(_term(value) in wanted for value in values)
    if isinstance(filter, RangeFilter):
        return any(_in_range(value, filter.ge, filter.le) for value in values)
    raise ValueError(f"Cannot process request for filter {filter}")


def flatten(value: Any) -> list[Any]:
    """A field's values: none, one, or the items of a list."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [item for item in value if item is not None]
    return [value]


def _term(value: Any) -> str:
    return str(value)  # enums are StrEnums: their value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp() * 1000  # Elasticsearch compares dates as epoch milliseconds
    return None


def _in_range(value: Any, ge: float | None, le: float | None) -> bool:
    number = _number(value)
    if number is None:
        return False
    return (ge is None or number >= ge) and (le is None or number <= le)


# Text query -------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+")
_QUERY_TERM = re.compile(r'([+-]?)(?:"([^"]*)"|([^\s"]+))')


@dataclass(frozen=True)
class _Term:
    words: tuple[str, ...]
    prefix: bool = False
    negated: bool = False


class TextMatcher:
    """Elasticsearch's ``simple_query_string`` with AND as default operator, on the standard analyzer:
    words, ``"phrases"``, ``prefix*``, ``-excluded`` and ``a | b`` alternatives, case-insensitive."""

    def __init__(self, query: str) -> None:
        self._clauses = [terms for terms in map(_parse_clause, query.split("|")) if terms]

    def score(self, tokens: Sequence[str], document_frequency: dict[_Term, int], documents: int) -> float | None:
        """Relevance of a tokenised text, or None when it does not match."""
        best = None
        for clause in self._clauses:
            score = 0.0
            for term in clause:
                count = _occurrences(term, tokens)
                if term.negated == (count > 0):
                    score = None
                    break
                if not term.negated:
                    idf = math.log(1 + documents / (1 + document_frequency.get(term, 0)))
                    score += (1 + math.log(count)) * idf
            if score is not None and (best is None or score > best):
                best = score
        return best

    def rank(self, texts: dict[UUID, list[str]]) -> dict[UUID, float]:
        """Score of each matching text, keyed like ``texts``."""
        frequency: dict[_Term, int] = {}
        for tokens in texts.values():
            for clause in self._clauses:
                for term in clause:
                    if _occurrences(term, tokens):
                        frequency[term] = frequency.get(term, 0) + 1
        scores = {}
        for key, tokens in texts.items():
            score = self.score(tokens, frequency, len(texts))
            if score is not None:
                scores[key] = max(score, 1e-6)
        return scores


def _parse_clause(text: str) -> list[_Term]:
    terms = []
    for sign, phrase, word in _QUERY_TERM.findall(text.replace("(", " ").replace(")", " ")):
        raw = phrase if phrase else word
        prefix = not phrase and raw.endswith("*")
        words = tuple(_TOKEN.findall(raw.lower()))
        if words:
            terms.append(_Term(words=words, prefix=prefix, negated=sign == "-"))
    return terms


def _occurrences(term: _Term, tokens: Sequence[str]) -> int:
    if len(term.words) == 1:
        word = term.words[0]
        if term.prefix:
            return sum(1 for token in tokens if token.startswith(word))
        return sum(1 for token in tokens if token == word)
    size = len(term.words)
    return sum(1 for i in range(len(tokens) - size + 1) if tuple(tokens[i : i + size]) == term.words)


def tokens_of(fields: dict[str, Any], names: Iterable[str]) -> list[str]:
    """The words of the named record fields; chat and custom fields give their nested strings."""
    tokens: list[str] = []
    for name in names:
        for text in _strings(fields.get(name)):
            tokens.extend(_TOKEN.findall(text.lower()))
    return tokens


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif value is not None:
        yield str(value)


# Order ------------------------------------------------------------------------------------------


def user_rank(user_id: UUID | str, record_id: UUID) -> float:
    """A per-user shuffle in (0, 1]: annotators meet records in different but stable orders."""
    digest = hashlib.sha256(f"{user_id}:{record_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") + 1) / 2**64


def sort_records(records: list[RecordDoc], sort: Sequence[Order]) -> None:
    """Sort in place by each order in turn; ties keep the records' current order."""
    for order in reversed(sort):
        descending = order.order == SortOrder.desc
        keyed = [(_sort_value(record, order.scope, descending), record) for record in records]
        # Missing values go last in both directions, as in Elasticsearch.
        if descending:
            keyed.sort(key=lambda pair: (pair[0] is not None, pair[0] or (0, 0.0)), reverse=True)
        else:
            keyed.sort(key=lambda pair: (pair[0] is None, pair[0] or (0, 0.0)))
        records[:] = [record for _, record in keyed]


def _sort_value(record: RecordDoc, scope: FilterScope, descending: bool) -> tuple[int, Any] | None:
    if isinstance(scope, ResponseFilterScope):
        user_id = scope.user.id if scope.user is not None else None
        responses = [r for r in record.responses if user_id is None or r.user_id == user_id]
        if scope.question:
            values = [value for r in responses for value in flatten(r.values.get(scope.question))]
        else:
            values = [r.status for r in responses]
        numbers = [number for number in map(_number, values) if number is not None]
        if numbers and len(numbers) == len(values):
            return (0, sum(numbers) / len(numbers))  # nested sort with mode "avg"
    else:
        values = _scope_values(record, scope)
    keys = [_sort_key(value) for value in values]
    if not keys:
        return None
    # A field with several values sorts by its smallest ascending, its largest descending.
    return max(keys) if descending else min(keys)


def _sort_key(value: Any) -> tuple[int, Any]:
    number = _number(value)
    if number is not None:
        return (0, number)
    return (1, _term(value))


# Vectors ----------------------------------------------------------------------------------------


def cosine_scores(query: Sequence[float], vectors: dict[UUID, Sequence[float]]) -> dict[UUID, float]:
    """Elasticsearch's cosine score, (1 + cos) / 2, of each non-zero vector against ``query``."""
    if not vectors:
        return {}
    ids = list(vectors)
    matrix = np.asarray([vectors[key] for key in ids], dtype=np.float64)
    target = np.asarray(query, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(target)
    usable = norms > 0
    cosine = np.zeros(len(ids))
    cosine[usable] = (matrix[usable] @ target) / norms[usable]
    return {key: float((1 + cos) / 2) for key, cos, ok in zip(ids, cosine, usable, strict=True) if ok}
