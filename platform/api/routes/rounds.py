"""Training and selection rounds over HTTP: slow work, so each answers 202 with its job at once
(``Location: /v1/jobs/{id}``) and a runner does the work (see :func:`driftloop.platform.jobs.submit`).
The job row is committed before the answer: a 202 always names a job that exists."""

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from driftloop.platform.api.auth import KeyCheckedRoute, require
from driftloop.platform.api.deps import EngineDep, SettingsDep
from driftloop.platform.api.errors import declare
from driftloop.platform.api.routes.jobs import JobAccepted, accepted

router = APIRouter(tags=["rounds"], route_class=KeyCheckedRoute)


class TrainRequest(BaseModel):
    mode: Literal["head", "full", "lora"] = "head"
    replay: Literal["none", "reservoir", "balanced"] = "reservoir"
    distill: float = Field(0.0, ge=0.0, le=100.0, description="Weight of distillation from the champion (LwF); 0 = off.")
    epochs: int | None = Field(None, ge=1, le=10_000)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    promote: bool = True


class SelectRequest(BaseModel):
    budget: int = Field(..., ge=1, le=100_000)
    strategy: Literal["random", "least-confidence", "margin", "entropy", "kmeans", "kcenter", "hybrid"] = "hybrid"
    window_days: float | None = Field(None, gt=0, le=36_500)
    random_fraction: float = Field(0.0, ge=0.0, le=1.0)
    seed: int = Field(0, ge=0, le=2**31 - 1)


@router.post(
    "/v1/tasks/{task}/train",
    status_code=202,
    responses=declare(400, 401, 403, 404, 422),
    dependencies=[require("train")],
)
def train(task: str, engine: EngineDep, settings: SettingsDep, response: Response, body: TrainRequest | None = None) -> JobAccepted:
    """Queue a training round (train → gate → promote if it passed); follow it at ``url``."""
    from driftloop.platform.modeling.round_requests import RoundRequest, TrainingConfig, submit_train

    body = body or TrainRequest()
    request = RoundRequest(
        task=task,
        mode=body.mode,
        replay=body.replay,
        replay_ratio=settings.replay_ratio,
        replay_capacity=settings.replay_capacity,
        training=TrainingConfig(epochs=body.epochs, distill_weight=body.distill, seed=body.seed),
        promote=body.promote,
    )
    return accepted(submit_train(engine, settings, request), response)


@router.post(
    "/v1/tasks/{task}/select",
    status_code=202,
    responses=declare(400, 401, 403, 404, 422),
    dependencies=[require("label")],
)
def select(task: str, body: SelectRequest, engine: EngineDep, settings: SettingsDep, response: Response) -> JobAccepted:
    """Queue a selection round (pick ``budget`` texts worth labeling); follow it at ``url``."""
    from driftloop.platform.selection.round_requests import SelectionRequest, submit_selection

    request = SelectionRequest(task=task, **body.model_dump())
    return accepted(submit_selection(engine, settings, request), response)


@router.post(
    "/v1/tasks/{task}/index/rebuild",
    status_code=202,
    responses=declare(401, 403, 404, 422),
    dependencies=[require("label")],
)
def rebuild_index(task: str, engine: EngineDep, settings: SettingsDep, response: Response) -> JobAccepted:
    """Queue a rebuild of the task's vector index: every text embedded with the configured encoder
    (after an encoder change), then the index built afresh; follow it at ``url``."""
    from driftloop.platform.selection.task_index import submit_rebuild

    return accepted(submit_rebuild(engine, settings, task), response)

