"""The FastAPI application: ``create_app()`` wires settings, the store and the routes."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from driftloop.labeling import register_jobs
from driftloop.platform.api import auth, errors, schemas
from driftloop.platform.api.errors import declare
from driftloop.platform.api.routes import health, jobs, labeling, models, predictions, rounds, schedules, tasks, texts
from driftloop.platform.api_keys import VerifiedKeys, refuse_open_exposure
from driftloop.platform.config import Settings, get_settings
from driftloop.platform.serving.champions import ServedModels
from driftloop.platform.serving.predictions import PredictionStore
from driftloop.platform.store.engine import get_engine
from driftloop.platform.store.schema import ensure_current


def create_app(settings: Settings | None = None, *, run_schedules: bool = False) -> FastAPI:
    """The API. With ``run_schedules`` and no broker configured, the stored schedules fire in a
    thread of this process and its own runner runs their jobs (``driftloop serve``: the embedded
    default needs no Redis); with a broker, ``driftloop beat`` fires them. That runner then also
    runs, as the app starts, the queued jobs no live process owns (handed back by the previous
    server as it stopped), and as the app stops lets its running job finish within
    ``DRIFTLOOP_STOP_GRACE_SECONDS`` or hands it back."""
    settings = settings or get_settings()
    refuse_open_exposure(settings)
    engine = get_engine(settings)
    ensure_current(engine, auto_upgrade=settings.is_embedded_store, settings=settings)
    # /docs loads Swagger UI from files shipped in fastapi-offline, not from a CDN: the API runs on
    # machines without internet, and its docs must render there. No /redoc: ReDoc fetches its
    # logo from its vendor's CDN whatever its options, and /docs shows the same spec.
    app = FastAPIOffline(title="driftloop", version="0.1.0", redoc_url=None, lifespan=_lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.served_models = ServedModels(engine, settings)
    app.state.prediction_store = PredictionStore(engine, settings)
    app.state.verified_keys = VerifiedKeys(settings.auth_cache_seconds)
    app.state.run_schedules = run_schedules and not settings.broker_url
    errors.install(app)
    register_jobs()  # the API is an edge: it wires labeling's jobs (sync) into its runner
    routers = [module.router for module in (health, tasks, texts, predictions, models, rounds, jobs, schedules, labeling)]
    app.state.key_checks = auth.check_routes(routers)
    for router in routers:
        app.include_router(router)
    if settings.metrics_auth:
        app.include_router(health.metrics_router, dependencies=[auth.require()], responses=declare(401))
    else:
        app.include_router(health.metrics_router)
    app.openapi = _with_self_read_bodies(app)  # type: ignore[method-assign]
    return app


def _with_self_read_bodies(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with the schemas of the bodies routes read themselves among the components,
    so that the refs to them resolve within the document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in schemas.self_read_schemas().items():
                if components.get(name, schema) != schema:
                    raise RuntimeError(f"two schemas named {name} in the spec: rename one")
                components[name] = schema
        return app.openapi_schema  # type: ignore[return-value]  # set by generate()

    return openapi


def serve_app() -> FastAPI:
    """``driftloop serve``'s application: the API, and the schedules when no broker is configured."""
    return create_app(run_schedules=True)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    try:
        if app.state.run_schedules:
            async with _jobs_here(app), _schedules(app):  # the scheduler stops first, then the runner
                yield
        else:
            yield
    finally:
        app.state.served_models.close()
        app.state.prediction_store.close()


@asynccontextmanager
async def _jobs_here(app: FastAPI) -> AsyncIterator[None]:
    from driftloop.platform import jobs

    engine, settings, say = app.state.engine, app.state.settings, logging.getLogger("uvicorn.error").info
    taken = await asyncio.to_thread(jobs.run_orphans, engine, settings)
    if taken:
        say(f"running {len(taken)} queued job(s) that no live process owned: {', '.join(map(str, taken))}")
    try:
        yield
    finally:
        # uvicorn ends the process as soon as the app has stopped: what is not finished or handed back by then is lost
        await asyncio.to_thread(jobs.stop_runner, engine, settings.stop_grace_seconds, say)


@asynccontextmanager
async def _schedules(app: FastAPI) -> AsyncIterator[None]:
    from driftloop.platform.scheduler import Background

    # its lines go to the server's own log, beside uvicorn's
    background = Background(app.state.engine, app.state.settings, say=logging.getLogger("uvicorn.error").info)
    background.start()
    try:
        yield
    finally:
        background.stop()
