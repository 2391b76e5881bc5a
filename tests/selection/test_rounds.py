"""Selection rounds against the store, the real encoder and a real champion (BBC headlines)."""

import json
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import func, select, update

from driftloop.platform.errors import InvalidInput
from driftloop.platform.modeling.embeddings import embed_texts
from driftloop.platform.selection.faiss_index import FaissIndex
from driftloop.platform.selection.rounds import SelectionRequest, run_selection
from driftloop.platform.selection.task_index import index_path, sync_index, text_ids_for
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Prediction, SelectionPick, SelectionRound, TextRecord
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import get_task
from tests.conftest import run_cli
from tests.learning_loop import Loop


def select_(loop: Loop, **options) -> object:  # type: ignore[no-untyped-def]
    return run_selection(loop.engine, loop.settings, SelectionRequest(task=loop.task, **options), encoder=loop.encoder)


def test_cold_start_picks_diverse_texts_without_a_champion(loop: Loop) -> None:
    result = select_(loop, budget=10, strategy="hybrid")
    assert len(result.picks) == 10 and result.model_version is None
    assert all("cold start" in p.reason for p in result.picks)
    assert result.score_name == "cosine to its cluster's centroid"  # what the cold start ranked by
    assert len({p.cluster for p in result.picks}) == 10  # one per k-means cluster
    with session_scope(loop.engine) as session:
        task_id = get_task(session, loop.task).id
    # the round kept the task's persisted FAISS index in step with what it embedded
    assert len(FaissIndex.load(index_path(loop.settings.home, task_id, loop.encoder.id))) == 900


def test_champion_scores_the_pool_and_no_text_is_picked_twice(loop: Loop) -> None:
    loop.label(loop.headlines[:300])
    loop.train()
    first = select_(loop, budget=20, strategy="hybrid", random_fraction=0.25)
    second = select_(loop, budget=20, strategy="margin")
    assert first.model_version == 1
    assert sum(p.is_random for p in first.picks) == 5 and all(p.reason == "random reserve" for p in first.picks if p.is_random)
    first_ids = {p.text_id for p in first.picks}
    assert not first_ids & {p.text_id for p in second.picks}
    labeled = {i for i, _, _ in loop.headlines[:300]}
    assert not labeled & {p.external_id for p in first.picks + second.picks}
    with session_scope(loop.engine) as session:
        scored = session.scalar(select(func.count()).select_from(Prediction))
        assert scored == 600  # the 600 unlabeled headlines, once for version 1
        assert session.scalar(select(func.count()).select_from(SelectionPick)) == 40
    # margin picks are the least sure: each is at least as uncertain as a typical pool text
    scores = [p.score for p in second.picks]
    assert scores == sorted(scores, reverse=True)
    # the score is 1 - margin and says so; the reason shows the margin itself, p1 - p2
    assert first.score_name == second.score_name == "uncertainty (1 - margin)"
    with session_scope(loop.engine) as session:
        probabilities = dict(session.execute(select(Prediction.text_id, Prediction.probabilities)).all())
    for pick in second.picks:
        p2, p1 = sorted(probabilities[pick.text_id])[-2:]
        assert pick.score == pytest.approx(1 - (p1 - p2), abs=1e-6)
        assert pick.reason == f"margin {p1 - p2:.3f}"
    assert all(p.reason.endswith(f"margin {1 - p.score:.3f}") for p in first.picks if not p.is_random)


def test_the_window_keeps_old_texts_out(loop: Loop) -> None:
    old = [i for i, _, _ in loop.headlines[:850]]
    with session_scope(loop.engine) as session:
        session.execute(
            update(TextRecord).where(TextRecord.external_id.in_(old)).values(received_at=utcnow() - timedelta(days=30))
        )
    result = select_(loop, budget=30, strategy="kcenter", window_days=7)
    assert len(result.picks) == 30 and result.pool_size == 50
    assert not {p.external_id for p in result.picks} & set(old)
    # the pool is the newest texts, at most DRIFTLOOP_SELECTION_MAX_POOL of them
    capped_settings = loop.settings.model_copy(update={"selection_max_pool": 10})
    capped = run_selection(loop.engine, capped_settings, SelectionRequest(task=loop.task, budget=5, strategy="random"), encoder=loop.encoder)
    recent = {i for i, _, _ in loop.headlines[850:]}
    assert capped.pool_size == 10 and {p.external_id for p in capped.picks} <= recent
    with session_scope(loop.engine) as session:
        session.execute(update(TextRecord).values(received_at=utcnow() - timedelta(days=30)))
    with pytest.raises(InvalidInput, match="no unlabeled, unpicked texts"):
        select_(loop, budget=5, window_days=7)


def test_settings_tune_the_round_and_are_recorded_with_it(loop: Loop) -> None:
    loop.label(loop.headlines[:300])
    loop.train()
    tuned = loop.settings.model_copy(update={"selection_duplicate_threshold": 0.9, "selection_hybrid_within_cluster": "uncertain"})
    result = run_selection(loop.engine, tuned, SelectionRequest(task=loop.task, budget=10), encoder=loop.encoder)
    with session_scope(loop.engine) as session:
        params = session.get(SelectionRound, result.round_id).params
        scores = dict(session.execute(select(SelectionPick.text_id, SelectionPick.score).where(SelectionPick.round_id == result.round_id)).all())
    assert params["duplicate_threshold"] == 0.9 and params["within_cluster"] == "uncertain"
    # "uncertain" is Cluster-Margin: the first picks are their clusters' most uncertain candidates,
    # so the batch is far more uncertain than the default's central picks would be
    central = run_selection(loop.engine, loop.settings, SelectionRequest(task=loop.task, budget=10), encoder=loop.encoder)
    assert np.mean(list(scores.values())) > np.mean([p.score for p in central.picks])


def test_task_index_survives_a_restart_and_follows_incremental_adds(loop: Loop) -> None:
    with session_scope(loop.engine) as session:
        task_id = get_task(session, loop.task).id
        text_ids = list(session.scalars(select(TextRecord.id).where(TextRecord.task_id == task_id).order_by(TextRecord.id)))
    home, encoder = loop.settings.home, loop.encoder
    first = embed_texts(loop.engine, task_id, text_ids[:100], encoder, home)
    assert len(sync_index(loop.engine, home, task_id, encoder)) == 100
    embed_texts(loop.engine, task_id, text_ids[100:150], encoder, home)
    assert len(sync_index(loop.engine, home, task_id, encoder)) == 150

    reopened = FaissIndex.load(index_path(home, task_id, encoder.id))  # a new process would do this
    assert len(reopened) == 150
    _, ids = reopened.search(first[7:8], 1)
    assert text_ids_for(loop.engine, task_id, encoder.id, ids[0]) == {int(ids[0][0]): text_ids[7]}


def test_cli_prints_the_picks(loop: Loop) -> None:
    env = {"DRIFTLOOP_HOME": str(loop.settings.home), "DRIFTLOOP_DATABASE_URL": str(loop.engine.url), "COLUMNS": "200"}
    result = run_cli("select", loop.task, "--budget", "5", "--strategy", "kmeans", env=env)
    assert result.returncode == 0, result.stderr.decode()
    output = result.stdout.decode()
    assert "5 picks by kmeans from a pool of 900, no champion (cold start)" in output
    assert "cosine to its cluster's centroid" in output  # the score column says what it holds
    with session_scope(loop.engine) as session:
        picked = session.scalars(
            select(TextRecord.external_id).join(SelectionPick, SelectionPick.text_id == TextRecord.id)
        ).all()
    assert len(picked) == 5 and all(external_id in output for external_id in picked)

    # --json: the round and its picks in one document on stdout; the outbox notice goes to stderr
    as_json = run_cli("select", loop.task, "--budget", "3", "--strategy", "random", "--seed", "1", "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr.decode()
    round_ = json.loads(as_json.stdout)
    assert (round_["strategy"], round_["pool_size"], round_["model_version"], round_["push"]) == ("random", 895, None, None)
    assert [p["rank"] for p in round_["picks"]] == [0, 1, 2]
    with session_scope(loop.engine) as session:
        recorded = {
            external_id: text
            for external_id, text in session.execute(
                select(TextRecord.external_id, TextRecord.text)
                .join(SelectionPick, SelectionPick.text_id == TextRecord.id)
                .where(SelectionPick.round_id == round_["round_id"])
            )
        }
    assert {p["external_id"]: p["text"] for p in round_["picks"]} == recorded
    # what the table shows of each pick: #, id, score, cluster, reason, text
    assert all({"rank", "external_id", "score", "cluster", "reason", "text"} <= set(p) and p["reason"] for p in round_["picks"])
    assert "no Argilla configured" in as_json.stderr.decode()

    bad = run_cli("select", loop.task, "--budget", "5", "--strategy", "telepathy", env=env)
    assert bad.returncode == 2 and "unknown" in bad.stderr.decode()
