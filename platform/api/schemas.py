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
    texts: int | None = None


class RecordResult(BaseModel):
    index: int
    status: Literal["stored", "duplicate", "rejected"]
    id: str | None = None
    error: str | None = None
    reason: str | None = None


class IngestResponse(BaseModel):
    stored: int
    duplicates: int
    rejected: int
    results: list[RecordResult]
