"""The champion's probabilities for the unlabeled pool, stored as predictions.

Each text is scored once per model version: after a promotion the pool is re-scored by the
new champion, newest texts first, in batches, so a round never waits on texts nobody will pick.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, select

from driftloop.platform.modeling.embeddings import embed_texts
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.in_lists import in_list_chunks
from driftloop.platform.store.inserts import insert_unless_present
from driftloop.platform.store.models import ModelVersion, Prediction, TextRecord

BATCH = 2048


def champion_probabilities(
    engine: Engine,
    home: Path,
    task_id: int,
    version: ModelVersion,
    model: TextClassifier,
    text_ids: Sequence[int],
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Probabilities (len(text_ids), n labels of the version) for ``text_ids``, computing and
    storing only the ones this version has not scored yet. ``text_ids`` come newest first."""
    stored = _stored(engine, version.id, list(text_ids))
    missing = [t for t in text_ids if t not in stored]
    for start in range(0, len(missing), BATCH):
        batch = missing[start : start + BATCH]
        texts = _texts(engine, batch)
        features = embed_texts(engine, task_id, batch, model.encoder, home) if model.mode == "head" else None
        proba = model.predict_proba([texts[t] for t in batch], features)
        _store(engine, version, batch, proba, model.labels)
        stored.update(zip(batch, proba, strict=True))
        if progress is not None:
            progress(min(start + BATCH, len(missing)), len(missing))
    width = len(version.label_set)
    return np.array([stored[t] for t in text_ids], dtype=np.float32).reshape(len(text_ids), width)


def _stored(engine: Engine, version_id: int, text_ids: list[int]) -> dict[int, np.ndarray]:
    found: dict[int, np.ndarray] = {}
    with session_scope(engine) as session:
        for chunk in in_list_chunks(text_ids):
            rows = session.execute(
                select(Prediction.text_id, Prediction.probabilities).where(
                    Prediction.model_version_id == version_id, Prediction.text_id.in_(chunk)
                )
            )
            found.update({text_id: np.asarray(p, dtype=np.float32) for text_id, p in rows})
    return found


def _texts(engine: Engine, text_ids: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    with session_scope(engine) as session:
        for chunk in in_list_chunks(text_ids):
            found.update(dict(session.execute(select(TextRecord.id, TextRecord.text).where(TextRecord.id.in_(chunk))).all()))
    return found


def _store(engine: Engine, version: ModelVersion, text_ids: list[int], proba: np.ndarray, labels: list[str]) -> None:
    rows = [
        {
            "text_id": text_id,
            "model_version_id": version.id,
            "label": labels[int(p.argmax())],
            "probabilities": [round(float(x), 6) for x in p],
        }
        for text_id, p in zip(text_ids, proba, strict=True)
    ]
    with session_scope(engine) as session:
        # Two rounds may score the same version at once; whichever stores a text first wins,
        # and the other's row (the same model, so the same probabilities) is dropped.
        session.execute(insert_unless_present(session, Prediction), rows)
