"""`driftloop loop run`: the loop in the foreground on the embedded default (no broker, no
Argilla: labels come by import), its trainings run by the command's own runner."""

import json
from pathlib import Path

from sqlalchemy import Engine, func, select

from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job, Label, Split
from tests.conftest import run_cli, store_env
from tests.learning_loop import Loop


def test_a_loop_pass_queues_a_training_and_the_next_round_and_the_run_waits_for_the_training(sqlite_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    loop = Loop(sqlite_engine, tmp_path, headlines[:300], encoder)
    loop.label(loop.headlines[:80])  # ~64 train labels (the eval split is stratified per class)
    env = store_env(sqlite_engine, tmp_path)

    ran = run_cli("loop", "run", loop.task, "--passes", "1", "--budget", "10", "--retrain-after", "50", env=env, timeout=300)

    output = ran.stdout.decode()
    assert ran.returncode == 0, output + ran.stderr.decode()
    with session_scope(sqlite_engine) as session:
        trains = session.scalar(select(func.count()).select_from(Label).where(Label.split == Split.train))
    assert trains > 50 and f"pass 1: {trains} new train labels: training job" in output
    assert "round 1: 10 picks, 0 pushed to Argilla" in output  # no Argilla configured: they wait in the outbox
    assert "version 1 promoted to champion" in output
    assert loop.champion_version() == 1
    with session_scope(sqlite_engine) as session:
        kinds = [j.kind for j in session.scalars(select(Job).order_by(Job.id))]
        [loop_job] = session.scalars(select(Job).where(Job.kind == "loop")).all()
        assert loop_job.result["new_labels"] == trains and json.dumps(loop_job.result)
    assert kinds == ["loop", "train"]  # in-process: the pool is not re-scored after the promotion (see DRIFTLOOP_POOL_REFRESH)
