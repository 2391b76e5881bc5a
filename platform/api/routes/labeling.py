"""Labeling over HTTP: a sync as a job (202), and Argilla's webhook deliveries: verified, then a
sync of the task they concern, after the reply."""

from fastapi import APIRouter, BackgroundTasks, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from driftloop.platform.api.auth import KeyCheckedRoute, no_key, require
from driftloop.platform.api.deps import EngineDep, SettingsDep
from driftloop.platform.api.errors import declare
from driftloop.platform.api.routes.jobs import JobAccepted, accepted

router = APIRouter(tags=["labeling"], route_class=KeyCheckedRoute)


class WebhookAccepted(BaseModel):
    event: str
    task: str | None  # None: the event is about a dataset no task owns, and is ignored


@router.post(
    "/v1/labeling/webhook",
    status_code=202,
    responses=declare(401, 409, 422, 503),
    # Argilla cannot send our keys: each delivery is signed with the webhook's secret, checked instead
    dependencies=[no_key("signed by Argilla with the webhook's secret")],
)
async def receive_webhook(request: Request, engine: EngineDep, settings: SettingsDep, background: BackgroundTasks) -> WebhookAccepted:
    from driftloop.labeling import webhooks

    body = await request.body()
    # Off the event loop: recording the delivery may wait for SQLite's write lock (e.g. behind an ingest batch).
    delivery = await run_in_threadpool(webhooks.accept, engine, settings, body, request.headers)
    if delivery.task is not None:
        background.add_task(_runner(request, engine, settings).request, delivery.task)
    return WebhookAccepted(event=str(delivery.event.get("type")), task=delivery.task)


@router.post(
    "/v1/tasks/{task}/sync",
    status_code=202,
    responses=declare(401, 403, 404, 422),
    dependencies=[require("label")],
)
def sync(task: str, engine: EngineDep, settings: SettingsDep, response: Response) -> JobAccepted:
    """Queue a sync: pending picks pushed to Argilla, then every answer read back as annotations and
    labels; follow it at ``url``. The job fails, saying why, when Argilla cannot be reached (the
    pushes stay pending)."""
    from driftloop.labeling.jobs import submit_sync

    return accepted(submit_sync(engine, settings, task), response)


def _runner(request: Request, engine, settings):  # type: ignore[no-untyped-def]
    """One coalescing sync runner per application: bursts of deliveries become one sync."""
    from driftloop.labeling.connection import connect
    from driftloop.labeling.sync import sync
    from driftloop.labeling.webhooks import CoalescingRunner

    if getattr(request.app.state, "sync_runner", None) is None:
        request.app.state.sync_runner = CoalescingRunner(lambda task: sync(engine, settings, task, lambda: connect(settings)))
    return request.app.state.sync_runner
