"""`driftloop index status|rebuild`: the task's vector index after an encoder change, through the CLI."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from sqlalchemy import func, select

from driftloop.platform.config import Settings
from driftloop.platform.modeling.embeddings import read_vectors
from driftloop.platform.modeling.encoder import Encoder, default_encoder_path
from driftloop.platform.selection.faiss_index import FaissIndex
from driftloop.platform.selection.task_index import index_path
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Embedding
from driftloop.platform.tasks import get_task
from tests.conftest import run_cli, store_env
from tests.learning_loop import Loop


def retrained_encoder(folder: Path) -> Path:
    """A copy of the base encoder with slightly different weights: what a fine-tuned encoder
    looks like to the index (another checkpoint id, other vectors)."""
    shutil.copytree(default_encoder_path(Settings(encoder_path=None)), folder)
    weights = load_file(folder / "model.safetensors")
    rng = np.random.default_rng(0)
    changed = {name: (w + rng.normal(scale=0.02, size=w.shape).astype(w.dtype) if w.dtype == np.float32 else w) for name, w in weights.items()}
    save_file(changed, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def test_rebuild_indexes_every_text_for_the_new_encoder(sqlite_engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    loop = Loop(sqlite_engine, tmp_path / "home", headlines[:300], encoder)
    env = store_env(sqlite_engine, tmp_path / "home")
    with session_scope(sqlite_engine) as session:
        task_id = get_task(session, loop.task).id

    before = run_cli("index", "status", loop.task, env=env)
    assert before.returncode == 0, before.stderr.decode()
    assert "0 of 300 texts embedded, 0 in the index" in before.stdout.decode()

    # stderr is a pipe, as in CI logs: progress comes as lines (count, ETA, elapsed) every interval
    built = run_cli("index", "rebuild", loop.task, env={**env, "DRIFTLOOP_PROGRESS_SECONDS": "0.2"})
    assert built.returncode == 0, built.stderr.decode()
    assert f"rebuilt the index of {loop.task} for {encoder.id}: 300 vectors" in built.stdout.decode()
    lines = built.stderr.decode().splitlines()
    stage = f"embed {loop.task}"
    moving = [line for line in lines if re.fullmatch(rf"{stage}: \d+/300 \(\d+%\), .*ETA .*, \d+:\d\d:\d\d elapsed, .*", line)]
    assert moving, lines
    assert re.fullmatch(rf"{stage}: 300/300 \(100%\), done after \d+:\d\d:\d\d, .*", lines[-1]), lines

    new_folder = retrained_encoder(tmp_path / "retrained")
    new_env = {**env, "DRIFTLOOP_ENCODER_PATH": str(new_folder)}
    changed = run_cli("index", "status", loop.task, env=new_env).stdout.decode()
    new_id = Encoder.load(new_folder).id
    assert new_id != encoder.id
    assert f"encoder {new_id}: 0 of 300 texts embedded, 0 in the index" in changed
    assert f"indexes of other encoders, unused while this one is configured: {index_path(Path(), task_id, encoder.id).stem}" in changed

    rebuilt = run_cli("index", "rebuild", loop.task, env=new_env)
    assert rebuilt.returncode == 0, rebuilt.stderr.decode()
    assert "300 vectors" in rebuilt.stdout.decode()
    status = run_cli("index", "status", loop.task, "--json", env=new_env)
    assert status.returncode == 0, status.stderr.decode()
    assert json.loads(status.stdout) == {
        "task": loop.task,
        "encoder_id": new_id,
        "path": str(index_path(tmp_path / "home", task_id, new_id)),
        "texts": 300,
        "embedded": 300,
        "indexed": 300,
        "other_encoders": [index_path(Path(), task_id, encoder.id).stem],
    }
    with session_scope(sqlite_engine) as session:
        per_encoder = dict(
            session.execute(select(Embedding.encoder_id, func.count()).where(Embedding.task_id == task_id).group_by(Embedding.encoder_id)).all()
        )
    assert per_encoder == {encoder.id: 300, new_id: 300}
    # the new index holds the new encoder's vectors, not the old ones: searched with a text's new
    # vector it finds that text at similarity 1, with the old vector only at less
    home = tmp_path / "home"
    new_index = FaissIndex.load(index_path(home, task_id, new_id))
    with session_scope(sqlite_engine) as session:
        rows = session.execute(select(Embedding.text_id, Embedding.encoder_id, Embedding.vector_id).where(Embedding.task_id == task_id)).all()
    vector_of = {(text_id, encoder_id): vector_id for text_id, encoder_id, vector_id in rows}
    texts = sorted({text_id for text_id, _, _ in rows})[:20]
    new_ids = [vector_of[t, new_id] for t in texts]
    new_vectors = read_vectors(home, task_id, new_id, encoder.dim, new_ids)
    old_vectors = read_vectors(home, task_id, encoder.id, encoder.dim, [vector_of[t, encoder.id] for t in texts])
    similarity, found = new_index.search(new_vectors, 1)
    assert found[:, 0].tolist() == new_ids and np.all(similarity[:, 0] > 1 - 1e-5)
    similarity, _ = new_index.search(old_vectors, 1)
    assert np.all(similarity[:, 0] < 1 - 1e-4)

    missing = run_cli("index", "rebuild", "no-such-task", env=env)
    assert missing.returncode == 2 and "no-such-task" in missing.stderr.decode()
