"""Recovery from work that died without a word: jobs whose process is gone are marked failed
(with their training runs), then what those trainings left on disk is removed.

Called by whoever looks next: `driftloop jobs reap` for everything, and every training round
for its own task before it starts.
"""

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine

from driftloop.platform.config import Settings
from driftloop.platform.jobs import LostJob, reap_lost_jobs
from driftloop.platform.modeling.registry import SweptArtifact, sweep_orphan_artifacts
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import get_task


@dataclass(frozen=True)
class RecoveryReport:
    lost_jobs: list[LostJob]
    artifacts: list[SweptArtifact]

    def to_dict(self) -> dict[str, Any]:
        return {"lost_jobs": [asdict(j) for j in self.lost_jobs], "artifacts": [asdict(a) for a in self.artifacts]}


def recover(engine: Engine, settings: Settings, task: str | None = None) -> RecoveryReport:
    """Reap the lost jobs, then sweep the orphan artifacts (of one task, or all)."""
    # BEGIN IMMEDIATE on SQLite: it reads the jobs, then writes, while live jobs write heartbeats.
    with session_scope(engine) as session:
        task_id = get_task(session, task).id if task is not None else None
        lost = reap_lost_jobs(session, lost_after=settings.job_lost_after_seconds, task_id=task_id)
    # after the reaping: the runs of the jobs just reaped no longer count as running
    return RecoveryReport(lost, sweep_orphan_artifacts(engine, settings.storage, task))
