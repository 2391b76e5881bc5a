from fastapi import APIRouter
from pydantic import BaseModel

from driftloop.platform.api.deps import RowNumber, SessionDep, SettingsDep
from driftloop.platform.api.errors import declare
from driftloop.platform.modeling import registry

router = APIRouter(tags=["models"])


class PromoteRequest(BaseModel):
    force_reason: str | None = None  # set to promote without a passed gate; recorded


class ModelPublic(BaseModel):
    version: int
    status: str
    mode: str
    parent: int | None
    labels: list[str]
    metrics: dict
    created_at: str
    promoted_at: str | None


@router.get("/v1/tasks/{task}/models", responses=declare(404, 422))
def list_models(task: str, session: SessionDep) -> list[ModelPublic]:
    return [ModelPublic(**vars(v)) for v in registry.list_versions(session, task)]


@router.post("/v1/tasks/{task}/models/{version}/promote", responses=declare(400, 404, 409, 422))
def promote(task: str, version: RowNumber, session: SessionDep, settings: SettingsDep, body: PromoteRequest | None = None) -> ModelPublic:
    registry.promote(
        session, task, version, replay_capacity=settings.replay_capacity, force_reason=body.force_reason if body else None
    )
    promoted = next(v for v in registry.list_versions(session, task) if v.version == version)
    return ModelPublic(**vars(promoted))
