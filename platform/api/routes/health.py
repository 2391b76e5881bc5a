import os

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text

from driftloop.platform.api.deps import EngineDep
from driftloop.platform.api.errors import declare, error_response
from driftloop.platform.api.metrics import JobsCollector
from driftloop.platform.store.engine import read_only

router = APIRouter(tags=["operations"])
# apart, so that the app can ask for a key here (DRIFTLOOP_METRICS_AUTH) and not for /healthz
metrics_router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=None, responses=declare(503))
def healthz(engine: EngineDep) -> dict[str, str] | Response:
    try:
        with read_only(engine).connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
        return error_response(503, "store_unavailable", f"the store does not answer: {error.__class__.__name__}")
    return {"status": "ok", "store": engine.dialect.name}


@metrics_router.get("/metrics")
def metrics(engine: EngineDep) -> Response:
    # the API processes' counters, then the jobs read from the store (a registry per scrape: the
    # collector holds this app's engine, and several apps may live in one process)
    jobs = CollectorRegistry(auto_describe=False)
    jobs.register(JobsCollector(engine))
    return Response(generate_latest(_counters()) + generate_latest(jobs), media_type=CONTENT_TYPE_LATEST)


def _counters() -> CollectorRegistry:
    """This process's registry; with several API processes (``serve --workers N``), theirs summed
    from the files they share (prometheus_client's multiprocess mode, set up by ``serve``)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    shared = CollectorRegistry()
    multiprocess.MultiProcessCollector(shared)
    return shared
