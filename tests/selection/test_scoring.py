"""The champion's stored probabilities when two rounds score the same version at once."""

import threading
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, func, select

from driftloop.platform.modeling import registry
from driftloop.platform.modeling.embeddings import embed_texts
from driftloop.platform.modeling.rounds import load_version
from driftloop.platform.selection.scoring import champion_probabilities
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Prediction, TextRecord
from driftloop.platform.tasks import get_task
from tests.learning_loop import Loop


def test_two_rounds_scoring_one_version_at_once_both_get_the_probabilities(postgresql_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    loop = Loop(postgresql_engine, tmp_path, headlines, encoder)
    loop.label(loop.headlines[:300])
    loop.train()
    with session_scope(postgresql_engine) as session:
        task_id = get_task(session, loop.task).id
        champion = registry.champion(session, task_id)
        pool = list(session.scalars(select(TextRecord.id).where(TextRecord.task_id == task_id).order_by(TextRecord.id.desc())))
        session.expunge(champion)
    embed_texts(postgresql_engine, task_id, pool, encoder, loop.settings.home)  # the race under test is the scoring's
    model = load_version(champion, encoder)

    # Both read "nothing stored yet" before either stores: the interleaving that used to end in
    # a unique-key violation for the slower one.
    barrier = threading.Barrier(2)
    results: dict[int, np.ndarray | BaseException] = {}

    def score(caller: int) -> None:
        barrier.wait()
        try:
            results[caller] = champion_probabilities(postgresql_engine, loop.settings.home, task_id, champion, model, pool)
        except BaseException as error:  # noqa: BLE001 - the test reports whatever the thread raised
            results[caller] = error

    threads = [threading.Thread(target=score, args=(caller,)) for caller in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(r, np.ndarray) for r in results.values()), results
    np.testing.assert_allclose(results[1], results[2], atol=1e-6)
    assert results[1].shape == (len(pool), len(model.labels))
    with session_scope(postgresql_engine) as session:
        stored = session.scalar(select(func.count()).select_from(Prediction).where(Prediction.model_version_id == champion.id))
    assert stored == len(pool)  # one row per text, whoever wrote it
