"""driftloop.labeling: the Argilla side of the loop (dataset schema, push, sync, aggregation,
and the embedded Argilla server launcher). It calls the platform; the platform never calls it.
"""

# Labeling's kinds of job (see :mod:`driftloop.labeling.jobs` and :mod:`driftloop.labeling.loop`), as import paths: registering them
# imports nothing heavy, so the API and CLI can do it as they start.
JOB_OPERATIONS = {"sync": "driftloop.labeling.jobs:run_sync_job", "loop": "driftloop.labeling.loop:run_loop_job"}


def register_jobs() -> None:
    """Let this process's job runner run labeling's kinds of job."""
    from driftloop.platform.jobs import register_operations

    register_operations(JOB_OPERATIONS)
