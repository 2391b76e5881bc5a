"""One incoming record, validated: either a :class:`Record` ready to store or a
:class:`Rejection` that says what is wrong with it. Nothing here touches the store."""

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_ID_CHARS = 256
DERIVED_ID_PREFIX = "sha256:"


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

    return Record(
        external_id=external_id if external_id is not None else DERIVED_ID_PREFIX + digest.hex(),
        text=text,
        content_hash=digest,
        event_time=event_time,
        meta=meta,
        has_given_id=external_id is not None,
    )


def _parse_id(value: object) -> str | None | Rejection:
    if value is None:
        return None
    # Integer ids are common in exports; they are the same id as their decimal string.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return Rejection("bad_id", f'"id" must be a non-empty string, got {_json_type(value)}')
    if len(value) > MAX_ID_CHARS:
        return Rejection("bad_id", f'"id" has {len(value)} characters, over the limit of {MAX_ID_CHARS}')
    if value.startswith(DERIVED_ID_PREFIX):
        return Rejection("bad_id", f'"id" may not start with {DERIVED_ID_PREFIX!r}: that prefix marks content ids')
    return value


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
        case int() | float():
            return "a number"
        case str():
            return "a string" if value.strip() else "an empty string"
        case list():
            return "an array"
        case dict():
            return "an object"
    return type(value).__name__
