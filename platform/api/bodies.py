"""Request bodies read by the routes themselves (ingest's records, predict's texts), alike: JSON
only (415 otherwise, before reading any of it), under a byte limit checked as the bytes arrive (a
declared Content-Length over the limit is refused before reading any)."""

from fastapi import Request

from driftloop.platform.api.errors import ApiError

_JSON = "application/json"


async def read_json(request: Request, max_bytes: int) -> bytes:
    """The body of a request that must be JSON, as bytes, to decode (``ingestion.decoding``)."""
    content_type = request.headers.get("content-type")
    if not _is_json(content_type):
        # as FastAPI's own routes, which read no body of another type (nor of none) as JSON
        got = f"Content-Type {content_type[:80]!r}" if content_type else "no Content-Type"
        raise ApiError(415, "unsupported_media_type", f"the body must be JSON, sent with Content-Type: {_JSON} (got {got})")
    declared = _declared_size(request)
    if declared is not None and declared > max_bytes:
        raise _too_large(declared, max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(len(body), max_bytes)
    return bytes(body)


def _declared_size(request: Request) -> int | None:
    declared = request.headers.get("content-length", "")
    # str.isdigit alone takes "²", and int() refuses 4,301 digits: neither is a size to compare (the
    # bytes read are counted anyway)
    return int(declared) if declared.isascii() and declared.isdigit() and len(declared) <= 20 else None


def _is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/<anything>+json``, with any parameters (charset)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == _JSON or (media.startswith("application/") and media.endswith("+json"))


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the body has {size} bytes, over the limit of {limit}", limit=limit)
