from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from driftloop.platform.evaluation.slices import eval_slices
from driftloop.platform.ingestion.service import ingest
from driftloop.platform.labels.service import import_labels
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Label
from driftloop.platform.tasks import get_task


def test_slices_follow_the_fixed_splits_and_time(engine: Engine, task_name: str) -> None:
    start = datetime(2014, 1, 1, tzinfo=UTC)
    records = [{"id": f"x{i}", "text": f"text {i}", "ts": (start + timedelta(days=i)).isoformat()} for i in range(300)]
    list(ingest(engine, task_name, enumerate(records), max_text_chars=100, batch_size=500))
    answers = [{"id": f"x{i}", "label": "abc"[i % 3]} for i in range(300)]
    list(import_labels(engine, task_name, enumerate(answers[:200]), gold=False, default_annotator="a", eval_fraction=0.2))
    with session_scope(engine) as session:
        cutoff = max(session.scalars(select(Label.created_at)))
    list(import_labels(engine, task_name, enumerate(answers[200:]), gold=False, default_annotator="a", eval_fraction=0.2))
    list(import_labels(engine, task_name, enumerate([{"id": "x299", "label": "c"}]), gold=True, default_annotator="o", eval_fraction=0.2))

    with session_scope(engine) as session:
        task_id = get_task(session, task_name).id

        def past_windows(min_window: int) -> list:  # type: ignore[type-arg]
            found = eval_slices(session, task_id, ["a", "b", "c"], cutoff, past_windows=3, min_window=min_window)
            return [s for s in found if s.kind == "past"]

        slices = {s.name: s for s in eval_slices(session, task_id, ["a", "b", "c"], cutoff, past_windows=3)}
        assert [len(past_windows(m)) for m in (1, 13, 15, 30)] == [3, 3, 2, 1]
        windows = past_windows(13)
        # labels arrived in the texts' order here, so arrival order and event time agree
        spans = [[int(t.split()[1]) for t in window.texts] for window in windows]  # "text <day>"
        assert [w.name for w in windows] == ["past1:labels 1-13", "past2:labels 14-26", "past3:labels 27-39"]
        assert all(a[-1] < b[0] for a, b in zip(spans, spans[1:], strict=False)), "windows overlap or are out of order"

    # eval share per class is round(0.2 * n): the first 200 labels are 67/67/66 per class (13 each),
    # all 300 are 100 per class (20 each), so 39 are past and 21 recent.
    assert sum(len(w.text_ids) for w in windows) == 39
    assert all(max(days) < 200 for days in spans)
    assert len(slices["recent"].text_ids) == 21 and all(int(t.split()[1]) >= 200 for t in slices["recent"].texts)
    assert len(slices["all"].text_ids) == 60
    assert "gold" not in slices  # x299 was already labelled: refused as gold
    assert set(slices["all"].y_true.tolist()) == {0, 1, 2}


def test_past_windows_follow_label_arrival_even_when_texts_share_one_event_time(engine: Engine, task_name: str) -> None:
    """A backlog ingested at once: every text has the same event time, and the labels arrive in
    an order unrelated to the texts'. What the champion learned first is what arrived first."""
    same_day = datetime(2024, 5, 1, tzinfo=UTC).isoformat()
    records = [{"id": f"x{i}", "text": f"text {i}", "ts": same_day} for i in range(200)]
    list(ingest(engine, task_name, enumerate(records), max_text_chars=100, batch_size=500))
    arrival = [*range(199, 99, -1), *range(0, 100)]  # the later texts are labelled first
    answers = [{"id": f"x{i}", "label": "abc"[i % 3]} for i in arrival]
    for batch in (answers[:100], answers[100:150]):
        list(import_labels(engine, task_name, enumerate(batch), gold=False, default_annotator="a", eval_fraction=0.5))
    with session_scope(engine) as session:
        cutoff = max(session.scalars(select(Label.created_at)))
    list(import_labels(engine, task_name, enumerate(answers[150:]), gold=False, default_annotator="a", eval_fraction=0.5))

    with session_scope(engine) as session:
        task_id = get_task(session, task_name).id
        slices = eval_slices(session, task_id, ["a", "b", "c"], cutoff, past_windows=3, min_window=20)
        evals = session.execute(
            select(Label.text_id, Label.created_at).where(Label.task_id == task_id, Label.split == "eval").order_by(Label.created_at, Label.id)
        ).all()
    past = [s for s in slices if s.kind == "past"]
    n_past = sum(1 for _, created in evals if created <= cutoff)
    assert [s.name for s in past] == [f"past1:labels 1-{n_past // 3 + (n_past % 3 > 0)}", *[s.name for s in past[1:]]]
    assert len(past) == 3 and all(len(s.text_ids) >= 20 for s in past)
    in_order = [text_id for window in past for text_id in window.text_ids]
    assert in_order == [text_id for text_id, _ in evals[:n_past]]
    texts = [int(t.split()[1]) for window in past for t in window.texts]
    first_batch = set(range(100, 200))
    assert set(texts[:20]) <= first_batch, "the first window holds the labels that arrived first"
    assert [s.name.split(":")[1] for s in past][-1].endswith(f"-{n_past}")
    recent = next(s for s in slices if s.kind == "recent")
    assert {int(t.split()[1]) for t in recent.texts} <= set(range(50, 100))
