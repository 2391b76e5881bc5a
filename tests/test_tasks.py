import pytest
from sqlalchemy import Engine

from driftloop.platform import tasks
from driftloop.platform.errors import AlreadyExists, InvalidInput, NotFound
from driftloop.platform.store.engine import session_scope


def test_labels_keep_their_order_and_new_ones_are_appended(engine: Engine, task_name: str) -> None:
    with session_scope(engine) as session:
        tasks.add_labels(session, task_name, ["z", "b", "d"])
    with session_scope(engine) as session:
        task = tasks.get_task(session, task_name)
        assert tasks.label_names(task) == ["a", "b", "c", "z", "d"]
        assert [label.position for label in task.labels] == [0, 1, 2, 3, 4]


def test_creating_a_task_twice_is_refused(engine: Engine, task_name: str) -> None:
    with pytest.raises(AlreadyExists), session_scope(engine) as session:
        tasks.create_task(session, task_name, ["x"])


def test_ensure_task_creates_once_then_only_appends_missing_labels(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert tasks.ensure_task(session, "ensured", ["x", "y"]) is True
    with session_scope(engine) as session:
        assert tasks.ensure_task(session, "ensured", ["y", "z"]) is False
    with session_scope(engine) as session:
        assert tasks.label_names(tasks.get_task(session, "ensured")) == ["x", "y", "z"]


@pytest.mark.parametrize(
    ("name", "labels", "message"),
    [
        ("bad name", ["a"], "not valid"),
        ("", ["a"], "not valid"),
        ("ok", [], "at least one label"),
        ("ok", ["a", "a"], "given twice"),
        ("ok", ["a", " "], "empty"),
    ],
)
def test_invalid_tasks_are_refused_with_the_reason(engine: Engine, name: str, labels: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message), session_scope(engine) as session:
        tasks.create_task(session, name, labels)


def test_unknown_task_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound, match="task list"), session_scope(engine) as session:
        tasks.get_task(session, "no-such-task")


def test_list_counts_texts(engine: Engine, task_name: str) -> None:
    from driftloop.platform.ingestion.service import ingest

    list(ingest(engine, task_name, enumerate([{"text": "one"}, {"text": "two"}]), max_text_chars=100, batch_size=10))
    with session_scope(engine) as session:
        summary = next(t for t in tasks.list_tasks(session) if t.name == task_name)
    assert summary.texts == 2
    assert summary.labels == ["a", "b", "c"]
