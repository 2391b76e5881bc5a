"""Request and response bodies, one family per resource."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


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
