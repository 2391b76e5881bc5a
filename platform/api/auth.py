"""The API's key check: each /v1 route declares the scope it needs (:func:`require`,
:func:`require_for_job`), or says why it takes no key (:func:`no_key`); :func:`check_routes` refuses
to build an application with a /v1 route that does neither, so a route added later cannot forget it.
The check comes before anything else of the request (:class:`KeyCheckedRoute`): without a key 401,
with a key that may not 403, and only then what the route makes of the path and the body.

A key comes as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; both are FastAPI security
schemes, so /openapi.json shows them and which operations need them. The service behind it is
:mod:`driftloop.platform.api_keys`."""

from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from driftloop.platform.api.deps import row_number
from driftloop.platform.api_keys import (
    KeyInfo,
    Scope,
    VerifiedKeys,
    needs_recording,
    permit,
    permit_job,
    record_use,
    verify,
)
from driftloop.platform.config import Settings
from driftloop.platform.errors import Unauthenticated
from driftloop.platform.store.engine import read_only

_HOW = "An API key made by `driftloop keys create` (dlk_…), with the scope the operation needs."
_bearer = HTTPBearer(auto_error=False, scheme_name="BearerKey", description=_HOW)
_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKeyHeader", description=_HOW)
_DECIDED = "driftloop.keys"  # where a request's scope keeps what its key checks decided


async def presented_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> str | None:
    """The key the request carries, in either header."""
    if bearer is not None and header is not None and bearer.credentials != header:
        raise Unauthenticated("the request carries two different keys (Authorization and X-API-Key): send one")
    return bearer.credentials if bearer is not None else header


class Guard:
    """The key check of one route: a dependency that answers the key, or None when auth is off."""

    # a key verified lately is enough to decide: the route's scope and task are in the request
    offline = True

    def __init__(self, scope: Scope | None, *, all_tasks: bool = False) -> None:
        self.scope = scope
        self.all_tasks = all_tasks

    async def __call__(self, request: Request, key: Annotated[str | None, Depends(presented_key)]) -> KeyInfo | None:
        # ``key`` puts the two schemes in the spec; on a /v1 route the key was checked before
        # the body was read (KeyCheckedRoute), and this finds that answer
        return await self.decide(request)

    async def decide(self, request: Request) -> KeyInfo | None:
        """The key the request acts with (None when auth is off); Unauthenticated (401) or
        Forbidden (403) when it may not. Decided once per request, the answer kept in its scope."""
        decided: dict[Guard, KeyInfo | None] = request.scope.setdefault(_DECIDED, {})
        if self in decided:
            return decided[self]
        decided[self] = await self._decide(request)
        return decided[self]

    async def _decide(self, request: Request) -> KeyInfo | None:
        settings: Settings = request.app.state.settings
        if not settings.auth:
            return None
        key = await presented_key(await _bearer(request), await _header(request))
        known: VerifiedKeys = request.app.state.verified_keys
        info = known.get(key) if self.offline else None
        if info is None:  # read from the store, off the event loop
            info = await run_in_threadpool(self._read, request, key)
        else:  # verified lately: the scope and the task are checked here, without the store
            permit(info, self.scope, request.path_params.get("task"), all_tasks=self.all_tasks)
        if needs_recording(info):
            # Before the route's own transaction, not after the response: on SQLite a write running
            # beside the route's read-then-write transaction would make that one fail ("locked").
            info = await run_in_threadpool(record_use, request.app.state.engine, info)
            known.update(key, info)
        return info

    def _read(self, request: Request, key: str | None) -> KeyInfo:
        with Session(read_only(request.app.state.engine)) as session:  # never committed
            info = verify(session, key)
            request.app.state.verified_keys.put(key, info)
            self.check(session, info, request)
        return info

    def check(self, session: Session, info: KeyInfo, request: Request) -> None:
        permit(info, self.scope, request.path_params.get("task"), all_tasks=self.all_tasks)

    def statuses(self, path: str) -> tuple[int, ...]:
        """What this check can answer on ``path``: 401, and 403 where a key can be refused."""
        return (401, 403) if self.scope is not None or self.all_tasks or "{task}" in path else (401,)


class JobGuard(Guard):
    """The check of a job's routes: the task (and, to cancel, the scope) come from the job."""

    def __init__(self, *, cancel: bool) -> None:
        super().__init__(None)
        self.cancel = cancel

    offline = False  # the job's task (and kind) are in the store

    def check(self, session: Session, info: KeyInfo, request: Request) -> None:
        job_id = row_number(request.path_params.get("job_id", ""))
        if job_id is not None:  # None: not a job id, which the route's own validation answers (422)
            permit_job(session, info, job_id, cancel=self.cancel)

    def statuses(self, path: str) -> tuple[int, ...]:
        return (401, 403, 404)  # 404: a job of another task than a bound key's


class KeyCheckedRoute(APIRoute):
    """A route whose key checks run before FastAPI reads its body. FastAPI parses a JSON body before
    it resolves any dependency, so a malformed body would answer 422 to a request without a key (and
    tell a stranger what the route takes); here the checks come first, then the route as FastAPI
    runs it, whose own dependency on the check finds the answer already decided. Every /v1 route is
    one (:func:`check_routes`): give a router ``route_class=KeyCheckedRoute``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        guards = [call for call in _calls(self.dependant) if isinstance(call, Guard)]
        if not guards:
            return handle

        async def checked(request: Request) -> Response:
            for guard in guards:
                await guard.decide(request)
            return await handle(request)

        return checked


class NoKey:
    """A /v1 route that takes no key, and why (it proves its caller some other way)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __call__(self) -> None:
        return None


def require(scope: str | None = None, *, all_tasks: bool = False) -> Any:
    """A route's dependency on a key with ``scope`` (None: any valid key) that is allowed on the
    route's ``{task}``; ``all_tasks``: the route concerns every task, which a key bound to one task
    may not do. Use it in ``dependencies=[…]``, or as a parameter's default to get the key."""
    # Scope(): a misspelt scope fails when the route is defined, not by refusing every key
    return Depends(Guard(Scope(scope) if scope is not None else None, all_tasks=all_tasks))


def require_for_job(*, cancel: bool = False) -> Any:
    """A job route's dependency: any key allowed on the job's task; to cancel, ``admin`` or the
    scope that starts that kind of job."""
    return Depends(JobGuard(cancel=cancel))


def no_key(reason: str) -> Any:
    return Depends(NoKey(reason))


def check_routes(routers: Iterable[APIRouter]) -> dict[tuple[str, str], Guard | NoKey]:
    """Each route's key check, by (method, path). Refuses (a programming error) a /v1 route with no
    key check, one that is not a :class:`KeyCheckedRoute`, or one that does not declare in the
    OpenAPI spec the statuses its check can answer."""
    found: dict[tuple[str, str], Guard | NoKey] = {}
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            where = f"{'|'.join(sorted(route.methods))} {route.path}"
            checks = [call for call in _calls(route.dependant) if isinstance(call, Guard | NoKey)]
            if route.path.startswith("/v1/") and not checks:
                raise RuntimeError(f"{where} has no key check: give it dependencies=[auth.require(scope)] or auth.no_key(reason)")
            if route.path.startswith("/v1/") and not isinstance(route, KeyCheckedRoute):
                raise RuntimeError(f"{where} would read its body before checking the key: give its router route_class=auth.KeyCheckedRoute")
            for check in checks:
                undeclared = [s for s in (check.statuses(route.path) if isinstance(check, Guard) else ()) if s not in route.responses]
                if undeclared:
                    raise RuntimeError(f"{where} can answer {undeclared} for its key check: add them to responses=declare(…)")
                found.update({(method, route.path): check for method in route.methods})
    return found


def _calls(dependant: Dependant) -> list[Any]:
    return [call for dep in dependant.dependencies for call in (dep.call, *_calls(dep))]
