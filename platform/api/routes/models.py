from fastapi import APIRouter
from pydantic import BaseModel

from driftloop.platform.api.auth import KeyCheckedRoute, require
from driftloop.platform.api.deps import ReadSessionDep, RowNumber, SessionDep, SettingsDep
from driftloop.platform.api.errors import declare
from driftloop.platform.modeling import registry
from driftloop.platform.modeling.freeze import gate_status

router = APIRouter(tags=["models"], route_class=KeyCheckedRoute)


class PromoteRequest(BaseModel):
    force_reason: str | None = None  # set to promote without a passed gate; recorded


class ModelPublic(BaseModel):
    version: int
    status: str
    mode: str
    parent: int | None
    labels: list[str]
    metrics: dict  # on the eval labels of its own round: versions' own metrics do not compare
    created_at: str
    promoted_at: str | None
    provisional: bool  # passed on cross-validation, or for lack of evidence on a superset candidate
    # the latest gate decision's figures, candidate and champion on the same eval labels: they compare
    comparable: registry.ComparableMetrics | None


class FailedRulePublic(BaseModel):
    rule: str
    slice: str
    value: float
    threshold: float
    detail: str


class RefusedRoundPublic(BaseModel):
    version: int
    decided_at: str
    failed: list[FailedRulePublic]


class FreezeNoticePublic(BaseModel):
    message: str
    rounds: list[RefusedRoundPublic]


class JudgedRulePublic(BaseModel):
    rule: str
    slice: str
    status: str  # pass | fail | undecided | notice
    weight: float  # the term's share of net_gain (1 for a rule that decides on its own)
    value: float
    low: float
    high: float
    threshold: float
    detail: str
    n: int | None


class LatestDecisionPublic(BaseModel):
    version: int  # the candidate judged
    decided_at: str
    passed: bool
    rules: list[JudgedRulePublic]


class GateStatusPublic(BaseModel):
    task: str
    champion: int | None
    provisional: bool
    last_promotion: str | None
    refused_in_a_row: int
    freeze_after: int
    notice: FreezeNoticePublic | None  # set once the gate refused freeze_after candidates in a row
    latest: LatestDecisionPublic | None  # the newest gate decision, every term with its weight and interval


@router.get("/v1/tasks/{task}/models", responses=declare(401, 403, 404, 422), dependencies=[require()])
def list_models(task: str, session: ReadSessionDep) -> list[ModelPublic]:
    return [ModelPublic(**vars(v)) for v in registry.list_versions(session, task)]


@router.post(
    "/v1/tasks/{task}/models/{version}/promote",
    responses=declare(400, 401, 403, 404, 409, 422),
    dependencies=[require("promote")],
)
def promote(task: str, version: RowNumber, session: SessionDep, settings: SettingsDep, body: PromoteRequest | None = None) -> ModelPublic:
    registry.promote(
        session, task, version, replay_capacity=settings.replay_capacity, force_reason=body.force_reason if body else None
    )
    promoted = next(v for v in registry.list_versions(session, task) if v.version == version)
    return ModelPublic(**vars(promoted))


@router.get("/v1/tasks/{task}/gate", responses=declare(401, 403, 404, 422), dependencies=[require()])
def read_gate(task: str, session: ReadSessionDep, settings: SettingsDep) -> GateStatusPublic:
    """The champion and the gate's recent refusals; ``notice`` says the served model stopped learning."""
    status = gate_status(session, task, settings.gate_freeze_after)
    return GateStatusPublic.model_validate(status, from_attributes=True)
