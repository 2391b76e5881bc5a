"""Request and response bodies, one family per resource."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from driftloop.platform.evaluation.gate import Policy
from driftloop.platform.ingestion.service import IngestSummary, Outcome


class TaskCreate(BaseModel):
    name: str
    labels: list[str] = Field(min_length=1)


class LabelsAdd(BaseModel):
    labels: list[str] = Field(min_length=1)


_GATE_POLICY = (
    "the gate's policy: current promotes the candidate that is best for today's traffic, forgetting of the past a "
    "bounded cost (hard caps on the gold set and on classes still in recent traffic); strict refuses any candidate "
    "that loses on any past slice or the gold set beyond the tolerance"
)
_HALF_LIFE = "how much a label stands for today's traffic halves with every this many labels that arrived after it"
_EVAL_FRACTION = "share of each class's new labels held out for eval; labels that have a split keep it"
_STORE_PREDICTIONS = "whether prediction requests that do not say (?store=) keep their texts"


class TaskSettingsPublic(BaseModel):
    """A task's settings as they apply: its own where it set one, else the default."""

    gate: Policy = Field(description=_GATE_POLICY)
    half_life_labels: int = Field(description=_HALF_LIFE)
    eval_fraction: float = Field(description=_EVAL_FRACTION)
    store_predictions: bool = Field(description=_STORE_PREDICTIONS)
    defaults: list[str] = Field(
        description="the settings the task has not set: they follow the defaults (the gate's, DRIFTLOOP_EVAL_FRACTION, "
        "DRIFTLOOP_PREDICT_STORE) and change with them"
    )


class TaskSettingsUpdate(BaseModel):
    """The settings to change (at least one); those left out, or null, stay as they are."""

    model_config = ConfigDict(extra="forbid")

    gate: Policy | None = Field(None, description=_GATE_POLICY)
    half_life_labels: int | None = Field(None, ge=1, strict=True, description=_HALF_LIFE)
    eval_fraction: float | None = Field(None, ge=0.0, lt=1.0, strict=True, description=_EVAL_FRACTION)
    store_predictions: bool | None = Field(None, strict=True, description=_STORE_PREDICTIONS)


class TaskPublic(BaseModel):
    name: str
    labels: list[str]
    created_at: datetime
    texts: int  # texts ingested into the task
    settings: TaskSettingsPublic


class RecordIn(BaseModel):
    """One record of ``POST /v1/tasks/{task}/texts`` (documentation only: the route reads the
    body itself, so that a bad record is rejected alone instead of failing the request)."""

    text: str = Field(description="the text; NUL and lone surrogates are rejected")
    id: str | int | None = Field(
        None,
        description="your id: a string or an integer (taken as its decimal string: 17 and \"17\" are one id); a float, "
        "boolean or other value rejects the record; at most 256 characters; without one, the text's sha256 is its id",
    )
    ts: datetime | None = Field(None, description="event time, ISO-8601; without a zone, UTC")
    meta: dict | None = Field(None, description="any JSON object, at most 32 levels deep")


class PredictBody(BaseModel):
    """The body of ``POST /v1/tasks/{task}/predict``: either ``texts`` or ``records`` (limits as
    for ingest: count, characters, bytes). Documentation only, as :class:`RecordIn`."""

    texts: list[str] | None = Field(None, description="The texts to classify, in order.")
    records: list[RecordIn] | None = Field(None, description="Records as for ingest (text, id, ts, meta), in order.")


# The bodies routes read themselves: FastAPI knows them from no parameter, so it would leave them
# out of the spec's components. create_app adds them (self_read_schemas), and the routes' request
# bodies refer to them there.
_SELF_READ = (RecordIn, PredictBody)
_REF = "#/components/schemas/{model}"


def self_read_schemas() -> dict[str, Any]:
    """The components of the bodies routes read themselves, by name."""
    _, top = models_json_schema([(model, "validation") for model in _SELF_READ], ref_template=_REF)
    return top["$defs"]


def _request_body(schema: dict[str, Any]) -> dict[str, Any]:
    """An operation's ``openapi_extra`` for a JSON body the route reads itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


RECORDS_BODY = _request_body({"type": "array", "items": {"$ref": _REF.format(model=RecordIn.__name__)}})
PREDICT_BODY = _request_body({"$ref": _REF.format(model=PredictBody.__name__)})


class RecordResult(BaseModel):
    index: int
    status: Literal["stored", "duplicate", "conflict", "rejected"]
    id: str | None = None
    error: str | None = None
    reason: str | None = None


class IngestResponse(BaseModel):
    stored: int
    duplicates: int
    rejected: int
    conflicts: int = Field(description="records whose id the task holds (or the request gave earlier) with another text")
    results: list[RecordResult]

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> "IngestResponse":
        """What ingest made of a request's records, counted and one by one."""
        summary = IngestSummary()
        summary.count(outcomes)
        return cls(
            stored=summary.ingested,
            duplicates=summary.duplicates,
            rejected=summary.rejected,
            conflicts=summary.conflicts,
            results=[RecordResult(index=o.position, status=o.status.value, id=o.external_id, error=o.code, reason=o.reason) for o in outcomes],
        )
