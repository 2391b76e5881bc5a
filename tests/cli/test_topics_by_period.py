"""Issue 22, end to end as users run it: BBC News topics arriving by period through `driftloop
ingest`, `label import` and `train` (real processes, the default gate and settings). The round
after a new topic arrives promotes its candidate, and the served model's accuracy on that topic,
on headlines nobody labelled, rises."""

import json
from pathlib import Path

import numpy as np

from driftloop.platform.modeling import registry
from driftloop.platform.modeling.rounds import load_version
from driftloop.platform.store.engine import make_engine, session_scope
from driftloop.platform.tasks import get_task
from tests.conftest import run_cli

TOPICS = ["business", "entertainment", "politics", "sports", "tech"]


def served_accuracy(home: Path, encoder, rows: list[tuple[str, str, str]]) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{home / 'driftloop.db'}")
    try:
        with session_scope(engine) as session:
            champion = registry.champion(session, get_task(session, "news").id)
            model = load_version(champion, encoder)
            version = champion.version
    finally:
        engine.dispose()
    predicted = model.predict_proba([text for _, text, _ in rows]).argmax(axis=1)
    return version, float(np.mean(np.array(model.labels)[predicted] == np.array([topic for *_, topic in rows])))


def test_each_new_topic_is_served_the_round_after_it_arrives(tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    env = {"DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": "", "COLUMNS": "200"}
    by_topic = {topic: [h for h in headlines if h[2] == topic] for topic in TOPICS}
    unlabelled = {topic: rows[-40:] for topic, rows in by_topic.items()}  # judged on, never labelled
    assert run_cli("task", "create", "news", "--labels", ",".join(TOPICS), env=env).returncode == 0
    texts = "\n".join(json.dumps({"id": i, "text": t}) for i, t, _ in headlines).encode()
    assert run_cli("ingest", "news", "-", env=env, stdin=texts).returncode == 0

    def label_and_train(batch: list[tuple[str, str, str]]) -> str:
        answers = "\n".join(json.dumps({"id": i, "label": topic}) for i, _, topic in batch).encode()
        assert run_cli("label", "import", "news", "-", env=env, stdin=answers).returncode == 0
        trained = run_cli("train", "news", env=env)
        assert trained.returncode == 0, trained.stderr.decode()
        return trained.stdout.decode()

    # period 1: three topics
    first = label_and_train([row for topic in ("business", "politics", "sports") for row in by_topic[topic][:50]])
    assert "gate passed: version 1 promoted" in first, first
    _, tech_before = served_accuracy(tmp_path, encoder, unlabelled["tech"])
    assert tech_before == 0.0  # never taught tech

    # period 2: tech arrives, beside a few of the old topics
    period2 = by_topic["tech"][:45] + [row for topic in ("business", "politics", "sports") for row in by_topic[topic][50:60]]
    second = label_and_train(period2)
    assert "gate passed: version 2 promoted" in second, second
    assert "current_traffic" in second and "weight" in second
    version, tech_after = served_accuracy(tmp_path, encoder, unlabelled["tech"])
    assert version == 2 and tech_after >= 0.6, tech_after
    _, old_after = served_accuracy(tmp_path, encoder, [r for t in ("business", "politics", "sports") for r in unlabelled[t]])
    assert old_after >= 0.7, old_after  # replay kept what it knew

    # period 3: entertainment arrives and tech goes quiet
    period3 = by_topic["entertainment"][:45] + [row for topic in ("business", "sports") for row in by_topic[topic][60:70]]
    third = label_and_train(period3)
    assert "gate passed: version 3 promoted" in third, third
    version, entertainment = served_accuracy(tmp_path, encoder, unlabelled["entertainment"])
    assert version == 3 and entertainment >= 0.6, entertainment
