"""Predictions for applications: the task's champion, as this process serves it.

The body is read here under ingest's byte limit, then checked by the prediction service, so a
bad text is refused by its index (``texts[3]``) rather than by a schema error about the body.
"""

import asyncio
import time
import uuid

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from driftloop.platform.api.auth import KeyCheckedRoute, require
from driftloop.platform.api.bodies import read_json
from driftloop.platform.api.deps import (
    EngineDep,
    PredictionStoreDep,
    ReadSessionDep,
    ServedModelsDep,
    SettingsDep,
)
from driftloop.platform.api.errors import declare
from driftloop.platform.api.metrics import PREDICT_SECONDS, PREDICTED
from driftloop.platform.api.routes.models import ModelPublic
from driftloop.platform.api.schemas import PREDICT_BODY, IngestResponse
from driftloop.platform.errors import InvalidInput
from driftloop.platform.evaluation.decisions import decision_on
from driftloop.platform.ingestion.decoding import decode_object
from driftloop.platform.modeling import registry
from driftloop.platform.selection.pool import submit_score
from driftloop.platform.serving import predictions as service
from driftloop.platform.serving.champions import NoChampion
from driftloop.platform.tasks import get_task

router = APIRouter(tags=["predictions"], route_class=KeyCheckedRoute)


class PredictionPublic(BaseModel):
    label: str
    probabilities: dict[str, float]  # in the task's label order


class PredictResponse(BaseModel):
    task: str
    model_version: int
    request_id: str
    predictions: list[PredictionPublic]  # one per text, in order
    stored: IngestResponse | None = Field(None, description="With store: what ingest made of each text.")


class ServedModelPublic(ModelPublic):
    gate_verdict: str | None  # the decision that let it become champion: "pass" (the gate, or an override), or "fail"
    served_here: int | None  # the version this API process predicts with now (it follows within DRIFTLOOP_SERVE_CHECK_SECONDS)
    load_error: str | None  # why a newer champion could not be loaded here, if it could not


@router.post(
    "/v1/tasks/{task}/predict",
    responses=declare(400, 401, 403, 404, 409, 413, 415, 422, 503),
    openapi_extra=PREDICT_BODY,
    dependencies=[require("predict")],
)
async def predict_texts(
    task: str,
    request: Request,
    response: Response,
    models: ServedModelsDep,
    writes: PredictionStoreDep,
    settings: SettingsDep,
    engine: EngineDep,
    store: bool | None = Query(
        None, description="Keep the texts in the stream with their predictions (default: the task's setting, else DRIFTLOOP_PREDICT_STORE)."
    ),
) -> PredictResponse:
    """The champion's label and probabilities for each text, in order. With ``store`` the texts
    enter the stream (source ``predict``, idempotent like ingest) with their predictions, committed
    before the answer. 409 ``no_champion`` while the task has no promoted model; 503 ``overloaded``
    with ``Retry-After`` when the model's queue is full."""
    started = time.perf_counter()
    body = decode_object(await read_json(request, settings.ingest_max_request_bytes), 'give {"texts": [...]} or {"records": [...]}')
    unknown = sorted(set(body) - {"texts", "records"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}: give \"texts\" or \"records\"", field=unknown[0])
    checked = service.check_request(_list(body, "texts"), _list(body, "records"), settings)
    if models.loaded(task):
        served, rows = service.submit(models, task, checked)
    else:  # the task's first request here loads its model: not on the event loop
        served, rows = await run_in_threadpool(service.submit, models, task, checked)
    result = service.predictions(served, await asyncio.wrap_future(rows))
    stored = None
    keep = store if store is not None else models.stores_predictions(task)
    if keep:
        outcomes = await asyncio.wrap_future(writes.submit(checked, result, served.version_id))  # committed with its group
        stored = IngestResponse.of(outcomes)
        if stored.stored and settings.refreshes_pool:
            await run_in_threadpool(submit_score, engine, settings, task)
    response.headers["X-Model-Version"] = str(result.version)
    predictions = [
        PredictionPublic(label=result.labels[int(row.argmax())], probabilities={label: round(float(p), 6) for label, p in zip(result.labels, row, strict=True)})
        for row in result.probabilities
    ]
    PREDICTED.labels(task=task).inc(len(predictions))
    PREDICT_SECONDS.labels(task=task).observe(time.perf_counter() - started)
    return PredictResponse(task=task, model_version=result.version, request_id=uuid.uuid4().hex, predictions=predictions, stored=stored)


@router.get("/v1/tasks/{task}/model", responses=declare(401, 403, 404, 409, 422, 503), dependencies=[require("predict")])
def read_served_model(task: str, session: ReadSessionDep, models: ServedModelsDep) -> ServedModelPublic:
    """The champion: its metrics and the gate's verdict, and the version this process serves."""
    champion = registry.champion(session, get_task(session, task).id)
    if champion is None:
        raise NoChampion(f"task {task} has no promoted model yet", task=task)
    info = next(v for v in registry.list_versions(session, task) if v.version == champion.version)
    decision = decision_on(session, champion)
    served = models.current(task)
    return ServedModelPublic(
        **vars(info),
        gate_verdict=decision.verdict.value if decision else None,
        served_here=served.version,
        load_error=models.load_error(task),
    )


def _list(body: dict[str, object], name: str) -> list[object] | None:
    value = body.get(name)
    if value is not None and not isinstance(value, list):
        raise InvalidInput(f'"{name}" must be a list', field=name)
    return value
