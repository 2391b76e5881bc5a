"""Head models of two tasks share the encoder's forward pass: requests for both, made together,
go through the encoder once, and each task's answers are its own model's."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from driftloop.platform.modeling import registry
from driftloop.platform.modeling.rounds import load_version
from driftloop.platform.serving.champions import ServedModels
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import get_task
from tests.learning_loop import Loop

TEXTS = ["shares fell sharply as the bank cut its forecast", "the striker scored twice in the final", "a new phone with a folding screen"]


def _own(loop: Loop, texts: list[str]) -> np.ndarray:
    with session_scope(loop.engine) as session:
        return load_version(registry.champion(session, get_task(session, loop.task).id), loop.encoder).predict_proba(texts)


def test_two_tasks_head_models_share_one_encoder_pass(sqlite_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    first, second = Loop(sqlite_engine, tmp_path, headlines, encoder), Loop(sqlite_engine, tmp_path, headlines, encoder)
    first.label(first.headlines[:150])
    second.label(second.headlines[200:400])
    assert first.train().promoted and second.train().promoted
    settings = first.settings.model_copy(update={"serve_max_wait_ms": 300.0})
    models = ServedModels(sqlite_engine, settings)
    try:
        a, b = models.current(first.task), models.current(second.task)
        assert a.batcher is b.batcher and a.model is not b.model

        passes: list[int] = []
        embed = a.model.encoder.embed

        def counted(texts, **options):  # type: ignore[no-untyped-def]
            passes.append(len(texts))
            return embed(texts, **options)

        a.model.encoder.embed = counted  # type: ignore[method-assign]
        try:
            requests = [(first.task, TEXTS[:2]), (second.task, TEXTS), (first.task, TEXTS[2:]), (second.task, TEXTS[:1])]
            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(lambda r: models.submit(*r)[1].result(timeout=30), requests))
        finally:
            del a.model.encoder.embed
        assert passes == [7]  # one encoder pass for the four requests of two tasks
        for (task, texts), answer in zip(requests, answers, strict=True):
            own = _own(first if task == first.task else second, texts)
            assert np.allclose(answer, own, atol=1e-5)
    finally:
        models.close()
