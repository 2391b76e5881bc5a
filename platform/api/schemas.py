"""Request and response bodies, one family per resource."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from driftloop.platform.ingestion.service import IngestSummary, Outcome


class TaskCreate(BaseModel):
    name: str
    labels: list[str] = Field(min_length=1)


class LabelsAdd(BaseModel):
    labels: list[str] = Field(min_length=1)


class TaskPublic(BaseModel):
    name: str
    labels: list[str]
    created_at: datetime
    texts: int  # texts ingested into the task


class RecordIn(BaseModel):
    """One record of ``POST /v1/tasks/{task}/texts`` (documentation only: the route reads the
    body itself, so that a bad record is rejected alone instead of failing the request)."""

    text: str = Field(description="the text; NUL and lone surrogates are rejected")
    id: str | int | None = Field(None, description="your id; without one, the text's sha256 is its id")
    ts: datetime | None = Field(None, description="event time, ISO-8601; without a zone, UTC")
    meta: dict | None = Field(None, description="any JSON object, at most 32 levels deep")


RECORDS_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "array", "items": RecordIn.model_json_schema()}}},
    }
}


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
