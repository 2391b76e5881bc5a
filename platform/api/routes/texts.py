"""``POST /v1/tasks/{task}/texts``: the production stream's HTTP way in.

The body is read and parsed here rather than by a pydantic model so that one bad record is
rejected alone (with its index and reason) instead of failing the whole request.
"""

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from driftloop.platform.api.auth import KeyCheckedRoute, require
from driftloop.platform.api.bodies import read_json
from driftloop.platform.api.deps import EngineDep, SettingsDep
from driftloop.platform.api.errors import declare
from driftloop.platform.api.metrics import INGESTED
from driftloop.platform.api.schemas import RECORDS_BODY, IngestResponse
from driftloop.platform.ingestion.decoding import decode_array
from driftloop.platform.ingestion.records import check_count
from driftloop.platform.ingestion.service import ingest
from driftloop.platform.selection.pool import submit_score

router = APIRouter(prefix="/v1/tasks", tags=["texts"], route_class=KeyCheckedRoute)


@router.post(
    "/{task}/texts",
    responses=declare(401, 403, 404, 413, 415, 422),
    openapi_extra=RECORDS_BODY,
    dependencies=[require("ingest")],
)
async def post_texts(task: str, request: Request, engine: EngineDep, settings: SettingsDep) -> IngestResponse:
    records = await _read_records(request, settings.ingest_max_request_bytes, settings.ingest_max_records_per_request)
    batches = await run_in_threadpool(
        lambda: list(
            ingest(
                engine,
                task,
                enumerate(records),
                max_text_chars=settings.ingest_max_text_chars,
                batch_size=max(len(records), 1),
            )
        )
    )
    outcomes = [outcome for batch in batches for outcome in batch]
    answer = IngestResponse.of(outcomes)
    for outcome in outcomes:
        INGESTED.labels(task=task, status=outcome.status.value).inc()
    if answer.stored and settings.refreshes_pool:
        # after the texts are committed; a broker that is down leaves the job queued, sent when it is back
        await run_in_threadpool(submit_score, engine, settings, task)
    return answer


async def _read_records(request: Request, max_bytes: int, max_records: int) -> list[object]:
    records = decode_array(await read_json(request, max_bytes))
    check_count(len(records), max_records)
    return records
