from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from driftloop.platform.api.deps import EngineDep
from driftloop.platform.api.errors import declare, error_response

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=None, responses=declare(503))
def healthz(engine: EngineDep) -> dict[str, str] | Response:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
        return error_response(503, "store_unavailable", f"the store does not answer: {error.__class__.__name__}")
    return {"status": "ok", "store": engine.dialect.name}


@router.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
