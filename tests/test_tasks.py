import re

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


def test_settings_are_the_task_s_own_where_set_and_the_defaults_elsewhere(engine: Engine, task_name: str) -> None:
    from driftloop.platform.config import Settings
    from driftloop.platform.evaluation.gate import GateRules

    defaults = Settings(eval_fraction=0.3, predict_store=False)
    with session_scope(engine) as session:
        task = tasks.get_task(session, task_name)
        task.settings = {"gate": {"min_slice_size": 10}, "labeling": {"min_submitted": 2}}
    with session_scope(engine) as session:
        assert tasks.task_settings(tasks.get_task(session, task_name), defaults) == tasks.TaskSettings(
            gate="current", half_life_labels=200, eval_fraction=0.3, store_predictions=False,
            defaults=["gate", "half_life_labels", "eval_fraction", "store_predictions"],
        )  # fmt: skip
        tasks.update_settings(session, task_name, gate_policy="strict", eval_fraction=0)
    with session_scope(engine) as session:
        tasks.update_settings(session, task_name, half_life_labels=50, store_predictions=True)
    with session_scope(engine) as session:
        task = tasks.get_task(session, task_name)
        assert tasks.task_settings(task, defaults) == tasks.TaskSettings(
            gate="strict", half_life_labels=50, eval_fraction=0.0, store_predictions=True, defaults=[]
        )
        # where the training round reads its gate rules; what was set before stays
        rules = GateRules.from_dict(task.settings.get("gate"))
        assert (rules.policy, rules.half_life_labels, rules.min_slice_size) == ("strict", 50, 10)
        assert task.settings["labeling"] == {"min_submitted": 2}
        assert tasks.eval_fraction_of(task, 0.3) == 0.0 and tasks.stores_predictions(task, False) is True


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"gate_policy": "lax"}, "gate policy 'lax' is not one of current, strict"),
        ({"gate_policy": "strict", "half_life_labels": 0}, "half_life_labels must be an integer >= 1"),
        ({"half_life_labels": 2.5}, "half_life_labels must be an integer >= 1"),
        ({"eval_fraction": 1.0}, "eval_fraction must be a number from 0 up to, not including, 1"),
        ({"gate_policy": "strict", "eval_fraction": -0.1}, "eval_fraction must be"),
        ({"eval_fraction": float("nan")}, "eval_fraction must be"),
        ({"eval_fraction": True}, "eval_fraction must be"),
        ({"store_predictions": "yes"}, "store_predictions must be true or false"),
        ({}, "nothing to change"),
    ],
)
def test_invalid_settings_are_refused_naming_the_setting_and_nothing_changes(
    engine: Engine, task_name: str, change: dict, says: str
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(says)), session_scope(engine) as session:
        tasks.update_settings(session, task_name, **change)
    with session_scope(engine) as session:
        assert tasks.get_task(session, task_name).settings == {}


def test_settings_of_an_unknown_task_are_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound, match="no task named 'nope'"), session_scope(engine) as session:
        tasks.update_settings(session, "nope", gate_policy="strict")
