"""Every error leaves the API as JSON ``{"error": code, "detail": message, ...}``, and every
operation declares in the OpenAPI spec each error status it can answer (:func:`declare`)."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from driftloop.platform.errors import DriftloopError

log = logging.getLogger(__name__)


class Problem(BaseModel):
    loc: list[str | int] = Field(description="where in the request: ['body', 'labels', 0], ['path', 'job_id'], ...")
    msg: str


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx answer. Besides ``error`` and ``detail``, an error may carry
    fields that locate it (``problems`` for a request that does not match the schema, ``index``
    and ``limit`` for too many records, ``task``, ``version``...)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="stable machine-readable code, e.g. not_found, invalid_request")
    detail: str = Field(description="what went wrong, for people")
    problems: list[Problem] | None = None


_DESCRIPTIONS = {
    400: "The body could not be read",
    401: "No valid API key (or, for the webhook, no valid signature)",
    403: "The API key lacks the scope the operation needs, or is for another task",
    404: "No such task, model version or job",
    409: "Conflicts with the current state",
    413: "Too large: send less in one request",
    415: "The body is not sent as JSON (Content-Type: application/json)",
    422: "The request does not match the schema, or a value in it is invalid",
    503: "A service the request needs does not answer",
}


def declare(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry of an operation that can answer these error statuses."""
    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses}


class ApiError(DriftloopError):
    """An error only the HTTP layer knows about (request size, body shape)."""

    def __init__(self, status: int, code: str, message: str, **detail: object) -> None:
        super().__init__(message, **detail)
        self.status = status
        self.code = code


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    return JSONResponse(_encodable({"error": code, "detail": message, **extra}), status_code=status, headers=headers)


def _encodable(value: object) -> object:
    """``value`` with every string made writable as UTF-8: an error may echo what the client
    sent (a task name, a key), and a lone surrogate in it must not turn a 4xx into a 500."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    return value


def install(app: FastAPI) -> None:
    @app.exception_handler(DriftloopError)
    async def _domain(_: Request, error: DriftloopError) -> JSONResponse:
        # Each error carries its own status (platform/errors.py): nothing here imports the code that
        # raised it, so the API's error mapping loads no torch.
        return error_response(error.status, error.code, error.message, error.headers or None, **error.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]
        return error_response(422, "invalid_request", "the request does not match the schema", problems=problems)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, error: HTTPException) -> JSONResponse:
        code = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return error_response(error.status_code, code, str(error.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=error)
        return error_response(500, "internal", "internal error; see the server log")

