"""One incoming record, validated: either a :class:`Record` ready to store or a
:class:`Rejection` that says what is wrong with it. Nothing here touches the store."""

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from driftloop.platform.errors import TooManyRecords
from driftloop.platform.storable import text_problem

MAX_ID_CHARS = 256
DERIVED_ID_PREFIX = "sha256:"
# Producers' metadata is a few levels deep; a bound keeps every later reader (json.dumps,
# PostgreSQL's jsonb, the API's responses) far from its own recursion limits.
MAX_META_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Record:
    external_id: str
    text: str
    content_hash: bytes
    event_time: datetime | None
    meta: dict[str, Any] | None
    has_given_id: bool


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Unrepresentable:
    """A JSON number that driftloop cannot store (see ``decoding``), kept to say why."""

    description: str


def check_count(count: int, limit: int, what: str = "records") -> None:
    """:class:`TooManyRecords` when one request holds more than ``limit`` records (ingest's and
    predict's ``DRIFTLOOP_INGEST_MAX_RECORDS_PER_REQUEST``); ``what`` names them ("texts")."""
    if count > limit:
        raise TooManyRecords(
            f"{count} {what}, over the limit of {limit} per request: none of the request was taken "
            f"(the one at index {limit} is the first over); send at most {limit} per request",
            index=limit,
            limit=limit,
        )


def content_hash(text: str) -> bytes:
    """sha256 of the text as people would compare it: Unicode NFC, outer whitespace dropped."""
    return hashlib.sha256(unicodedata.normalize("NFC", text.strip()).encode()).digest()


def parse_record(raw: object, *, max_text_chars: int) -> Record | Rejection:
    if not isinstance(raw, dict):
        return Rejection("not_object", f"expected a JSON object, got {_json_type(raw)}")
    text = raw.get("text")
    if text is None:
        return Rejection("missing_text", 'missing "text"' if "text" not in raw else '"text" is null')
    if not isinstance(text, str):
        return Rejection("text_not_string", f'"text" must be a string, got {_json_type(text)}')
    if not text.strip():
        return Rejection("empty_text", '"text" is empty')
    if len(text) > max_text_chars:
        return Rejection("text_too_long", f'"text" has {len(text)} characters, over the limit of {max_text_chars}')
    if problem := text_problem(text):
        return Rejection("invalid_text", f'"text" {problem}')

    digest = content_hash(text)
    external_id = _parse_id(raw.get("id"))
    if isinstance(external_id, Rejection):
        return external_id
    event_time = _parse_ts(raw.get("ts"))
    if isinstance(event_time, Rejection):
        return event_time
    meta = raw.get("meta")
    if meta is not None and not isinstance(meta, dict):
        return Rejection("bad_meta", f'"meta" must be an object, got {_json_type(meta)}')
    if meta and (problem := _meta_problem(meta)):
        return problem

    return Record(
        external_id=external_id if external_id is not None else DERIVED_ID_PREFIX + digest.hex(),
        text=text,
        content_hash=digest,
        event_time=event_time,
        meta=meta,
        has_given_id=external_id is not None,
    )


def given_id(value: object) -> str | Rejection:
    """A given ``"id"`` as it is stored, by the one rule of ingest, predict and label import: a
    string as it is, an integer as its decimal string (exports number their rows: 17 and "17" are
    one id); anything else is refused, saying what is accepted. A float is refused even when whole:
    ``1.0`` and ``1`` would be one id or two depending on how the producer wrote the number."""
    if isinstance(value, Unrepresentable):
        return Rejection("bad_id", f'"id" is {value.description}: use a string of at most {MAX_ID_CHARS} characters')
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return Rejection("bad_id", f'"id" must be a string or an integer, got {"a float" if isinstance(value, float) else _json_type(value)}')
    if not value.strip():
        return Rejection("bad_id", '"id" is empty: give a non-empty string or an integer')
    if problem := text_problem(value):
        return Rejection("bad_id", f'"id" {problem}')
    return value


def _parse_id(value: object) -> str | None | Rejection:
    """A new record's id: :func:`given_id`, within ingest's length, and not a content id."""
    if value is None:
        return None
    external_id = given_id(value)
    if isinstance(external_id, Rejection):
        return external_id
    if len(external_id) > MAX_ID_CHARS:
        return Rejection("bad_id", f'"id" has {len(external_id)} characters, over the limit of {MAX_ID_CHARS}')
    if external_id.startswith(DERIVED_ID_PREFIX):
        return Rejection("bad_id", f'"id" may not start with {DERIVED_ID_PREFIX!r}: that prefix marks content ids')
    return external_id


def _meta_problem(meta: dict[str, Any]) -> Rejection | None:
    """Why ``meta`` cannot be stored: a key or string it cannot hold, a number it cannot
    represent, or nesting over :data:`MAX_META_DEPTH`. Walked with an explicit stack, so any
    depth the decoder let through is measured without recursion."""
    stack: list[tuple[str, object, int]] = [("meta", meta, 1)]
    while stack:
        where, value, depth = stack.pop()
        if isinstance(value, dict | list) and depth > MAX_META_DEPTH:
            return Rejection("too_deep", f'"meta" is nested more than {MAX_META_DEPTH} levels deep (at {where})')
        if isinstance(value, dict):
            for key, item in value.items():
                if problem := text_problem(key):
                    return Rejection("bad_meta", f"a key of {where} {problem}")
                stack.append((f"{where}.{key[:40]}", item, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item, depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str) and (problem := text_problem(value)):
            return Rejection("bad_meta", f"{where} {problem}")
        elif isinstance(value, Unrepresentable):
            return Rejection("bad_meta", f"{where} is {value.description}")
    return None


def _parse_ts(value: object) -> datetime | None | Rejection:
    if value is None:
        return None
    if not isinstance(value, str):
        return Rejection("bad_timestamp", f'"ts" must be an ISO-8601 string, got {_json_type(value)}')
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return Rejection("bad_timestamp", f'"ts" is not an ISO-8601 timestamp: {value[:60]!r}')
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float() | Unrepresentable():
            return "a number"
        case str():
            return "a string" if value.strip() else "an empty string"
        case list():
            return "an array"
        case dict():
            return "an object"
    return type(value).__name__
