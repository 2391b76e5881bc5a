"""driftloop.workers: the Celery app, its tasks, queues and schedules.

Tasks are thin wrappers: they take ids, open a session, call one service of
``driftloop.platform`` and commit. Nothing here is imported by the platform.
"""
