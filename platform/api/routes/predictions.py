"""Predictions for applications: the task's champion, as this process serves it."""

import uuid

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from driftloop.platform.api.auth import require
from driftloop.platform.api.deps import ServedModelsDep, SessionDep, SettingsDep
from driftloop.platform.api.errors import declare
from driftloop.platform.api.routes.models import ModelPublic
from driftloop.platform.evaluation.decisions import decision_on
from driftloop.platform.modeling import registry
from driftloop.platform.serving import NoChampion, predict
from driftloop.platform.tasks import get_task

router = APIRouter(tags=["predictions"])


class PredictRequest(BaseModel):
    texts: list[str] = Field(..., description="The texts to classify, in order (limits as for ingest).")


class PredictionPublic(BaseModel):
    label: str
    probabilities: dict[str, float]  # in the task's label order


class PredictResponse(BaseModel):
    task: str
    model_version: int
    request_id: str
    predictions: list[PredictionPublic]  # one per text, in order


class ServedModelPublic(ModelPublic):
    gate_verdict: str | None  # the decision that let it become champion: "pass" (the gate, or an override), or "fail"
    served_here: int | None  # the version this API process predicts with now (it follows within DRIFTLOOP_SERVE_CHECK_SECONDS)
    load_error: str | None  # why a newer champion could not be loaded here, if it could not


@router.post(
    "/v1/tasks/{task}/predict",
    responses=declare(400, 401, 403, 404, 409, 422),
    dependencies=[require("predict")],
)
def predict_texts(task: str, body: PredictRequest, models: ServedModelsDep, settings: SettingsDep, response: Response) -> PredictResponse:
    """The champion's label and probabilities for each text. 409 ``no_champion`` while the task has
    no promoted model."""
    result = predict(models, settings, task, body.texts)
    response.headers["X-Model-Version"] = str(result.version)
    predictions = [
        PredictionPublic(label=result.labels[int(row.argmax())], probabilities={label: round(float(p), 6) for label, p in zip(result.labels, row, strict=True)})
        for row in result.probabilities
    ]
    return PredictResponse(task=task, model_version=result.version, request_id=uuid.uuid4().hex, predictions=predictions)


@router.get("/v1/tasks/{task}/model", responses=declare(401, 403, 404, 409, 422), dependencies=[require("predict")])
def read_served_model(task: str, session: SessionDep, models: ServedModelsDep) -> ServedModelPublic:
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
