"""JSON from producers, decoded so that one bad value costs its own record and nothing else.

Python's ``json`` fails a whole document on values that sit inside one record of it: an integer
of more than 4,300 digits (``ValueError``) and nesting deeper than the interpreter's recursion
limit (``RecursionError``). It also accepts ``NaN`` and ``Infinity``, which are not JSON and which
PostgreSQL's ``jsonb`` refuses. Here such numbers decode to :class:`Unrepresentable` values that
the record validator rejects with a reason, and a record nested too deep is rejected alone.
"""

import json
import math
import re

from driftloop.platform.errors import InvalidInput
from driftloop.platform.ingestion.records import MAX_META_DEPTH, Rejection, Unrepresentable

# Python's default limit for int <-> str conversion: larger integers could not even be written
# back out as JSON.
MAX_INT_DIGITS = 4300

# Tokens that matter for finding where each element of a top-level array ends: strings
# (skipped whole, so brackets inside them do not count) and the structural characters.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.DOTALL)


class MalformedBody(InvalidInput):
    """A request body that is not a JSON array of records at all: nothing of it can be taken."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _integer(digits: str) -> int | Unrepresentable:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        return Unrepresentable(f"an integer of {len(digits.lstrip('-'))} digits (the limit is {MAX_INT_DIGITS})")
    return int(digits)


def _float(literal: str) -> float | Unrepresentable:
    value = float(literal)
    return value if math.isfinite(value) else Unrepresentable(f"the number {literal[:24]}, out of range")


def _constant(name: str) -> Unrepresentable:
    return Unrepresentable(f"{name}, which is not a JSON number")


_DECODER = json.JSONDecoder(parse_int=_integer, parse_float=_float, parse_constant=_constant)

_TOO_DEEP = Rejection("too_deep", f'nested too deeply to decode ("meta" may be at most {MAX_META_DEPTH} levels deep)')


def decode(document: str) -> object:
    """One JSON value, or a :class:`Rejection` saying why it is not one driftloop can take."""
    try:
        return _DECODER.decode(document)
    except json.JSONDecodeError as error:
        return Rejection("invalid_json", f"invalid JSON: {error.msg} (column {error.colno})")
    except RecursionError:
        return _TOO_DEEP


def decode_array(body: bytes | bytearray) -> list[object]:
    """The elements of a JSON array (each a value or a :class:`Rejection`); raises
    :class:`MalformedBody` when the body is not a JSON array."""
    document = _document(body)
    try:
        value = _DECODER.decode(document)
    except json.JSONDecodeError as error:
        raise MalformedBody("invalid_json", f"the body is not valid JSON: {error}") from None
    except RecursionError:
        # Some element is nested too deep for the decoder: decode element by element so that only
        # that one is rejected.
        return _decode_elements(document)
    if not isinstance(value, list):
        raise MalformedBody("invalid_body", "the body must be a JSON array of records")
    return value


def decode_object(body: bytes | bytearray, what: str) -> dict[str, object]:
    """A JSON object body (``what`` names it in errors); raises :class:`MalformedBody` otherwise.
    Unrepresentable numbers inside it stay :class:`Unrepresentable` for the validator to name."""
    try:
        value = _DECODER.decode(_document(body))
    except json.JSONDecodeError as error:
        raise MalformedBody("invalid_json", f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise MalformedBody("too_deep", f"the body is nested too deeply to decode (a record's \"meta\" may be at most {MAX_META_DEPTH} levels deep)") from None
    if not isinstance(value, dict):
        raise MalformedBody("invalid_body", f"the body must be a JSON object: {what}")
    return value


def _document(body: bytes | bytearray) -> str:
    try:
        return body.decode(json.detect_encoding(body))
    except UnicodeDecodeError as error:
        raise MalformedBody("invalid_json", f"the body is not valid JSON: {error}") from None


def _decode_elements(document: str) -> list[object]:
    start = len(document) - len(document.lstrip())
    if not document.startswith("[", start):
        raise MalformedBody("invalid_body", "the body must be a JSON array of records")
    pieces: list[str] = []
    depth, piece_start, end = 0, start + 1, None
    for token in _STRUCTURE.finditer(document, start):
        mark = token.group()
        if mark == "[" or mark == "{":
            depth += 1
        elif mark == "]" or mark == "}":
            depth -= 1
        if (mark == "," and depth == 1) or depth == 0:
            pieces.append(document[piece_start : token.start()])
            piece_start = token.end()
        if depth == 0:
            end = token.end()
            break
    if end is None or document[end:].strip():
        raise MalformedBody("invalid_json", "the body is not valid JSON: unbalanced brackets or text after the array")
    if pieces == [""] or (len(pieces) == 1 and not pieces[0].strip()):
        return []  # an empty array
    return [_element(piece) for piece in pieces]


def _element(piece: str) -> object:
    try:
        return _DECODER.decode(piece)
    except json.JSONDecodeError as error:
        raise MalformedBody("invalid_json", f"the body is not valid JSON: {error.msg}") from None
    except RecursionError:
        return _TOO_DEEP
