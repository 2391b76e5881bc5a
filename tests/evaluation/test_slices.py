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
        event_days = {}
        for window in windows:
            days = [int(t.split()[1]) for t in window.texts]  # "text <day>"
            event_days[window.name] = days
            first, last = (start + timedelta(days=d) for d in (days[0], days[-1]))
            assert window.name.endswith(f":{first:%Y-%m-%d}..{last:%Y-%m-%d}")
        spans = list(event_days.values())
        assert all(a[-1] < b[0] for a, b in zip(spans, spans[1:], strict=False)), "windows overlap or are out of order"

    # eval share per class is round(0.2 * n): the first 200 labels are 67/67/66 per class (13 each),
    # all 300 are 100 per class (20 each), so 39 are past and 21 recent.
    assert sum(len(w.text_ids) for w in windows) == 39
    assert all(max(days) < 200 for days in spans)
    assert len(slices["recent"].text_ids) == 21 and all(int(t.split()[1]) >= 200 for t in slices["recent"].texts)
    assert len(slices["all"].text_ids) == 60
    assert "gold" not in slices  # x299 was already labelled: refused as gold
    assert set(slices["all"].y_true.tolist()) == {0, 1, 2}
