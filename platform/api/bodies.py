"""Request bodies read by the routes themselves, under a byte limit checked as the bytes arrive
(a declared Content-Length over the limit is refused before reading any)."""

from fastapi import Request

from driftloop.platform.api.errors import ApiError


async def read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(len(body), max_bytes)
    return bytes(body)


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the body has {size} bytes, over the limit of {limit}", limit=limit)
