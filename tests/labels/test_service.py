import json
import re
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine, select

from driftloop.platform.ingestion.service import ingest
from driftloop.platform.labels.service import Answer, LabelStatus, import_labels, record_answers
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Annotation, AnnotationStatus, Label, Split, Task, TextRecord
from driftloop.platform.tasks import get_task
from tests.conftest import run_cli, store_env


def add_texts(engine: Engine, task: str, n: int) -> None:
    list(ingest(engine, task, enumerate({"id": f"x{i}", "text": f"text {i}"} for i in range(n)), max_text_chars=100, batch_size=500))


def labels_of(engine: Engine, task: str) -> dict[str, tuple[str, Split]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(TextRecord.external_id, Label.label, Label.split)
            .join(Label, Label.text_id == TextRecord.id)
            .join(Task, Task.id == Label.task_id)
            .where(Task.name == task)
        )
        return {external_id: (label, split) for external_id, label, split in rows}


def run_import(engine: Engine, task: str, records: list[object], gold: bool = False) -> list[LabelStatus]:
    batches = import_labels(engine, task, enumerate(records), gold=gold, default_annotator="ops", eval_fraction=0.2)
    return [o.status for batch in batches for o in batch]


def test_split_is_stratified_per_class_and_deterministic(engine: Engine, task_name: str) -> None:
    add_texts(engine, task_name, 150)
    records = [{"id": f"x{i}", "label": "a" if i < 100 else "b"} for i in range(150)]
    assert run_import(engine, task_name, records) == [LabelStatus.labelled] * 150
    splits = Counter((label, split) for label, split in labels_of(engine, task_name).values())
    assert splits == {("a", Split.train): 80, ("a", Split.eval): 20, ("b", Split.train): 40, ("b", Split.eval): 10}


def test_split_never_changes_when_the_label_does(engine: Engine, task_name: str) -> None:
    add_texts(engine, task_name, 10)
    run_import(engine, task_name, [{"id": f"x{i}", "label": "a"} for i in range(10)])
    before = labels_of(engine, task_name)
    statuses = run_import(engine, task_name, [{"id": f"x{i}", "label": "b"} for i in range(10)])
    assert statuses == [LabelStatus.labelled] * 10  # same annotator "ops" changed their answer
    after = labels_of(engine, task_name)
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in before.items()}
    assert {v[0] for v in after.values()} == {"b"}
    assert run_import(engine, task_name, [{"id": "x0", "label": "b"}]) == [LabelStatus.unchanged]


def test_majority_of_annotators_decides_and_a_tie_keeps_the_label(engine: Engine, task_name: str) -> None:
    add_texts(engine, task_name, 1)
    run_import(engine, task_name, [{"id": "x0", "label": "a", "annotator": "ann1"}])
    assert run_import(engine, task_name, [{"id": "x0", "label": "b", "annotator": "ann2"}]) == [LabelStatus.unchanged]
    assert labels_of(engine, task_name)["x0"][0] == "a"  # tied 1:1, label kept
    assert run_import(engine, task_name, [{"id": "x0", "label": "b", "annotator": "ann3"}]) == [LabelStatus.labelled]
    assert labels_of(engine, task_name)["x0"][0] == "b"
    with session_scope(engine) as session:
        label = session.scalar(select(Label).join(Task).where(Task.name == task_name))
        assert (label.n_annotations, round(label.agreement, 2)) == (3, 0.67)


def test_gold_is_held_out_and_wins_over_annotators(engine: Engine, task_name: str) -> None:
    add_texts(engine, task_name, 3)
    run_import(engine, task_name, [{"id": "x0", "label": "a"}])
    statuses = run_import(engine, task_name, [{"id": "x0", "label": "b"}, {"id": "x1", "label": "c"}], gold=True)
    assert statuses == [LabelStatus.rejected, LabelStatus.labelled]
    assert labels_of(engine, task_name)["x1"] == ("c", Split.gold)

    with session_scope(engine) as session:
        task = get_task(session, task_name)
        text_id = session.scalar(select(TextRecord.id).where(TextRecord.task_id == task.id, TextRecord.external_id == "x1"))
        changed = record_answers(session, task, [Answer(text_id, "ann", "a")], eval_fraction=0.2)
    assert changed == set()
    assert labels_of(engine, task_name)["x1"] == ("c", Split.gold)


def test_a_first_label_waits_for_enough_answers_and_discards_do_not_vote(engine: Engine, task_name: str) -> None:
    add_texts(engine, task_name, 1)
    with session_scope(engine) as session:
        task = get_task(session, task_name)
        text_id = session.scalar(select(TextRecord.id).where(TextRecord.task_id == task.id))
        assert record_answers(session, task, [Answer(text_id, "ann", "a")], eval_fraction=0.2, min_answers=2) == set()
        skip = Answer(text_id, "bob", None, AnnotationStatus.discarded)
        assert record_answers(session, task, [skip], eval_fraction=0.2, min_answers=2) == set()
        assert record_answers(session, task, [Answer(text_id, "cy", "a")], eval_fraction=0.2, min_answers=2) == {text_id}
        # the same answers again change nothing
        assert record_answers(session, task, [Answer(text_id, "cy", "a")], eval_fraction=0.2, min_answers=2) == set()
        statuses = dict(session.execute(select(Annotation.annotator, Annotation.status).where(Annotation.text_id == text_id)).all())
    assert statuses == {"ann": AnnotationStatus.submitted, "bob": AnnotationStatus.discarded, "cy": AnnotationStatus.submitted}
    assert labels_of(engine, task_name)["x0"][0] == "a"


def test_cli_rejects_bad_lines_with_their_numbers(engine: Engine, task_name: str, tmp_path: Path) -> None:
    add_texts(engine, task_name, 2)
    lines = [
        json.dumps({"id": "x0", "label": "a"}),
        json.dumps({"id": "nope", "label": "a"}),
        json.dumps({"id": "x1", "label": "zebra"}),
        "[1]",
        json.dumps({"id": "x1"}),
        json.dumps({"id": 5, "label": "a", "annotator": ""}),
    ]
    result = run_cli("label", "import", task_name, "-", env=store_env(engine, tmp_path), stdin="\n".join(lines).encode())
    assert result.returncode == 3, result.stderr.decode()
    assert result.stdout.decode().strip() == "labelled 1, unchanged 0, rejected 5"
    # a hint names driftloop as the shell runs it (`.venv/bin/driftloop` off PATH): compared as `driftloop`
    assert [re.sub(r"`\S*driftloop ", "`driftloop ", line) for line in result.stderr.decode().strip().splitlines()] == [
        f"line 2: no text with id 'nope' in task {task_name}",
        "line 3: label 'zebra' is not one of the task's labels (a, b, c): add it with `driftloop task add-labels`",
        "line 4: expected a JSON object",
        'line 5: missing or empty "label"',
        'line 6: "annotator" must be a non-empty string',
    ]
    gold = run_cli("label", "import", task_name, "-", "--split", "gold", env=store_env(engine, tmp_path), stdin=b'{"id": "x1", "label": "b"}\n')
    assert gold.returncode == 0 and gold.stdout.decode().strip() == "labelled 1, unchanged 0, rejected 0"


def test_ids_and_annotators_the_store_cannot_hold_are_rejected_alone(engine: Engine, task_name: str) -> None:
    add_texts(engine, task_name, 2)
    records = [
        {"id": "x0", "label": "a"},
        {"id": "x\u0000", "label": "a"},  # PostgreSQL used to fail the whole batch on the lookup
        {"id": "x1", "label": "a", "annotator": "ann\u0000"},
        {"id": "x1", "label": "a", "annotator": "ann\ud800"},
        {"id": "x1", "label": "a", "annotator": "a" * 201},
        {"id": "x1", "label": "b"},
    ]
    outcomes = [o for batch in import_labels(engine, task_name, enumerate(records), gold=False, default_annotator="ops", eval_fraction=0.2) for o in batch]
    assert [o.status for o in outcomes] == [LabelStatus.labelled] + [LabelStatus.rejected] * 4 + [LabelStatus.labelled]
    assert "NUL character" in outcomes[1].reason and "lone surrogate" in outcomes[3].reason
    assert "over the limit of 200" in outcomes[4].reason
    assert {k: label for k, (label, _) in labels_of(engine, task_name).items()} == {"x0": "a", "x1": "b"}


def test_ids_follow_ingest_s_rule_integers_as_their_decimal_string_nothing_else(engine: Engine, task_name: str) -> None:
    list(ingest(engine, task_name, enumerate([{"id": 17, "text": "seventeen"}, {"id": "content", "text": "words"}]), max_text_chars=100, batch_size=10))
    records = [{"id": 17, "label": "a"}, {"id": "17", "label": "b"}, {"id": 17.0, "label": "a"}, {"id": True, "label": "a"}, {"id": "", "label": "a"}]
    outcomes = [o for batch in import_labels(engine, task_name, enumerate(records), gold=False, default_annotator="ops", eval_fraction=0.2) for o in batch]
    assert [o.status for o in outcomes] == [LabelStatus.labelled, LabelStatus.labelled] + [LabelStatus.rejected] * 3
    assert [o.reason for o in outcomes[2:]] == [
        '"id" must be a string or an integer, got a float',
        '"id" must be a string or an integer, got a boolean',
        '"id" is empty: give a non-empty string or an integer',
    ]
    assert labels_of(engine, task_name)["17"][0] == "b"  # 17 and "17" are one text


def test_the_task_s_own_eval_fraction_splits_its_labels_whatever_the_default(engine: Engine, task_name: str) -> None:
    from driftloop.platform.tasks import create_task, update_settings

    halves = f"{task_name}-halves"
    with session_scope(engine) as session:
        create_task(session, halves, ["a", "b"])
        update_settings(session, task_name, eval_fraction=0.0)
        update_settings(session, halves, eval_fraction=0.5)
    for task in (task_name, halves):
        add_texts(engine, task, 50)
    run_import(engine, task_name, [{"id": f"x{i}", "label": "ab"[i % 2]} for i in range(50)])  # the default: 0.2
    assert Counter(split for _, split in labels_of(engine, task_name).values()) == {Split.train: 50}

    with session_scope(engine) as session:  # the path of `driftloop sync` and of the demo's simulated annotators
        task = get_task(session, halves)
        ids = session.scalars(select(TextRecord.id).where(TextRecord.task_id == task.id).order_by(TextRecord.id)).all()
        record_answers(session, task, [Answer(text_id, "ann", "ab"[i % 2]) for i, text_id in enumerate(ids)], eval_fraction=0.2)
    splits = Counter(labels_of(engine, halves).values())
    assert splits[("a", Split.eval)] == splits[("b", Split.eval)] == 12  # round(25 * 0.5) of each class's 25
    assert splits[("a", Split.train)] == splits[("b", Split.train)] == 13
