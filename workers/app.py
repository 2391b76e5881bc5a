"""The Celery app of driftloop's workers, configured from Settings (``DRIFTLOOP_*``).

``celery -A driftloop.workers.app`` (Flower, inspect) and ``driftloop worker`` use it. Two
queues: ``default`` (selection, sync, index rebuilds: minutes, CPU) and ``train`` (training,
gating, promotion: hours on a GPU; one worker per GPU, concurrency 1). The platform sends
tasks by name (``driftloop.<kind>``) and queue (:func:`driftloop.platform.jobs.queue_of`)
without importing this package; the tasks themselves are in :mod:`driftloop.workers.tasks`.
"""

from celery import Celery
from kombu import Queue

from driftloop.platform.config import Settings, get_settings
from driftloop.platform.errors import Unavailable
from driftloop.platform.jobs import DEFAULT_QUEUE, TRAIN_QUEUE
from driftloop.workers.tasks import register_tasks

QUEUES = (DEFAULT_QUEUE, TRAIN_QUEUE)


def create_celery(settings: Settings) -> Celery:
    if not settings.broker_url:
        raise Unavailable(
            "DRIFTLOOP_BROKER_URL is not set: workers need a broker (redis://… or amqp://…). Without one, "
            "`driftloop serve` runs the jobs itself"
        )
    app = Celery("driftloop", broker=settings.broker_url, backend=_result_backend(settings.broker_url), set_as_current=False)
    app.conf.update(
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue=DEFAULT_QUEUE,
        # Acknowledged when the task ends, not when it starts: a worker that dies mid-training
        # leaves its message unacknowledged, and the broker delivers it again.
        task_acks_late=True,
        # ...and when a worker's child process is killed (kill -9, the OOM killer), the message
        # goes back to the queue instead of being acknowledged as done. A task that kills its
        # worker every time stops after DRIFTLOOP_JOB_MAX_ATTEMPTS starts (counted on the job row).
        task_reject_on_worker_lost=True,
        # One message at a time per process: a training holds its process for hours, and a
        # prefetched task would wait behind it while another worker idles.
        worker_prefetch_multiplier=1,
        # A task is asked to stop (SoftTimeLimitExceeded, its job fails with it) before its
        # process is killed; a full fine-tune on a GPU takes hours, hence the large defaults.
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        # Redis delivers an unacknowledged message again after this long: it must outlast the
        # hard time limit, or a training still running would be started a second time.
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
        result_backend_transport_options={"visibility_timeout": settings.visibility_timeout},
        # torch's allocator caches, CUDA contexts and tokenizers grow: a process is replaced once it
        # holds too much; the task count is only a backstop, as a new process loads torch and the
        # encoder again (seconds: at 20 tasks it cost short jobs 250 ms each, bench/RESULTS.md)
        worker_max_tasks_per_child=settings.worker_max_tasks_per_child,
        worker_max_memory_per_child=settings.worker_max_memory_per_child_mb * 1024,  # KiB
        # The job row is the result ops read; the backend keeps a small copy for Flower.
        result_expires=24 * 3600,
        task_track_started=True,
        worker_send_task_events=True,  # Flower
        task_send_sent_event=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
    )
    register_tasks(app)
    return app


def _result_backend(broker_url: str) -> str:
    # Redis stores results in itself; RabbitMQ has no result store of its own: results travel back as messages.
    return broker_url if broker_url.startswith(("redis://", "rediss://")) else "rpc://"


app = create_celery(get_settings()) if get_settings().broker_url else None
