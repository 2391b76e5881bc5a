"""The sweep of orphan artifacts, on both backends: it removes what dead trainings left and
nothing else."""

from pathlib import Path

from sqlalchemy import Engine

from driftloop.platform.modeling.registry import artifact_folder, run_artifact_name, sweep_orphan_artifacts
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import JobState, ModelStatus, ModelVersion, TrainingRun
from driftloop.platform.tasks import get_task


def test_sweep_removes_only_what_dead_trainings_left(engine: Engine, task_name: str, tmp_path: Path) -> None:
    folder = artifact_folder(tmp_path, task_name)
    folder.mkdir(parents=True)

    def artifact(name: str) -> Path:
        path = folder / name
        path.mkdir()
        (path / "config.json").write_text("{}")
        return path

    with session_scope(engine) as session:
        task_id = get_task(session, task_name).id
        runs = {}
        for key, state in [("dead", "failed"), ("live", "running"), ("registered", "succeeded"), ("dead_tmp", "failed"), ("live_tmp", "running")]:
            run = TrainingRun(task_id=task_id, mode="head", replay="none", params={}, state=JobState(state))
            session.add(run)
            session.flush()
            runs[key] = run.id
        dead, live, registered = (artifact(run_artifact_name(runs[k])) for k in ("dead", "live", "registered"))
        dead_tmp = artifact(f".tmp-{run_artifact_name(runs['dead_tmp'])}-0123abcd")
        live_tmp = artifact(f".tmp-{run_artifact_name(runs['live_tmp'])}-4567ef01")
        session.add(
            ModelVersion(
                task_id=task_id, version=1, training_run_id=runs["registered"], mode="head", artifact_uri=registered.resolve().as_uri(),
                sha256="0" * 64, label_set=["a"], metrics={}, status=ModelStatus.candidate,
            )
        )
    unknown = artifact(run_artifact_name(10**9))  # this store has no such run: another store's, maybe
    in_the_way = folder / run_artifact_name(runs["dead"] + 10**6)
    in_the_way.write_text("a file, not an artifact")
    other = artifact("notes")

    swept = sweep_orphan_artifacts(engine, tmp_path, task_name)

    assert {(Path(s.path).name, s.action) for s in swept} == {(dead.name, "removed"), (dead_tmp.name, "removed"), (unknown.name, "left")}
    removed = {Path(s.path).name: s.reason for s in swept if s.action == "removed"}
    assert removed[dead.name] == f"artifact that no model version points at, of training run {runs['dead']} (failed)"
    assert removed[dead_tmp.name] == f"half-written artifact, of training run {runs['dead_tmp']} (failed)"
    assert sorted(p.name for p in folder.iterdir()) == sorted([live.name, registered.name, live_tmp.name, unknown.name, in_the_way.name, other.name])
    assert sweep_orphan_artifacts(engine, tmp_path) == [s for s in swept if s.action == "left"]
