"""One Argilla dataset per task, provisioned idempotently through the SDK.

Argilla refuses to change the number of options of a published label question, and refuses new
questions on a published dataset. So when labels are added to a task, the task gets a new
dataset *generation* (``news``, ``news-v2``, …) whose question carries the whole label set;
records nobody has answered yet move there, answered ones stay where they are and are still
synced. The generations a task has had are kept in its ``settings["labeling"]``.
"""

from dataclasses import dataclass

import argilla as rg
from sqlalchemy.orm import Session

from driftloop.platform.errors import InvalidInput
from driftloop.platform.store.models import Task
from driftloop.platform.tasks import label_names

QUESTION = "label"
FIELD = "text"
VECTOR = "embedding"
METADATA_TERMS = ("strategy", "predicted_label", "source", "received_day")
METADATA_FLOATS = ("score",)
ROUND = "round"  # the selection round that picked the record's text
METADATA_INTEGERS = ("cluster", ROUND)


@dataclass(frozen=True)
class LabelingConfig:
    """A task's labeling switches, kept in ``task.settings["labeling"]``."""

    min_submitted: int = 1  # responses a record needs before it counts as labeled; ≥ 2 measures agreement
    suggestions: bool = True  # show the champion's prediction; off avoids anchoring annotators

    @classmethod
    def of(cls, task: Task) -> "LabelingConfig":
        stored = (task.settings or {}).get("labeling", {})
        return cls(min_submitted=int(stored.get("min_submitted", 1)), suggestions=bool(stored.get("suggestions", True)))


def configure(session: Session, task: Task, *, min_submitted: int | None = None, suggestions: bool | None = None) -> LabelingConfig:
    if min_submitted is not None and min_submitted < 1:
        raise InvalidInput(f"min_submitted must be at least 1, got {min_submitted}", field="min_submitted")
    current = LabelingConfig.of(task)
    updated = LabelingConfig(
        min_submitted=current.min_submitted if min_submitted is None else min_submitted,
        suggestions=current.suggestions if suggestions is None else suggestions,
    )
    _write(task, min_submitted=updated.min_submitted, suggestions=updated.suggestions)
    session.flush()
    return updated


def generations(task: Task) -> list[str]:
    """The task's dataset names, oldest first (empty before the first push)."""
    return list((task.settings or {}).get("labeling", {}).get("datasets", []))


def dataset_name(task: Task, generation: int) -> str:
    return task.name if generation == 1 else f"{task.name}-v{generation}"


def provision(client: rg.Argilla, session: Session, task: Task, *, workspace: str, dimensions: int) -> tuple[rg.Dataset, list[rg.Dataset]]:
    """The task's current dataset, created or brought up to date; and the older generations
    that still exist (their unanswered records must move to the current one)."""
    _ensure_workspace(client, workspace)
    config = LabelingConfig.of(task)
    labels = label_names(task)
    names = generations(task)
    older = [d for d in (client.datasets(name=n, workspace=workspace) for n in names[:-1]) if d is not None]
    current = client.datasets(name=names[-1], workspace=workspace) if names else None
    if current is not None and _question_labels(current) != labels:
        older.append(current)  # labels were added: the next generation carries them
        names.append(dataset_name(task, len(names) + 1))
        current = None
    elif not names:
        names.append(dataset_name(task, 1))
    if current is None:  # new, or gone from this Argilla (deleted, or a fresh server): create it
        current = _create(client, names[-1], workspace, labels, config, dimensions)
        _write(task, datasets=names)
        session.flush()
    _apply_distribution(current, config)
    return current, older


def settings_for(labels: list[str], config: LabelingConfig, dimensions: int) -> rg.Settings:
    return rg.Settings(
        fields=[rg.TextField(name=FIELD, title="Text", use_markdown=False)],
        questions=[rg.LabelQuestion(name=QUESTION, title="Label", labels=labels)],
        metadata=[
            *(rg.TermsMetadataProperty(name=name) for name in METADATA_TERMS),
            *(rg.FloatMetadataProperty(name=name) for name in METADATA_FLOATS),
            *(rg.IntegerMetadataProperty(name=name) for name in METADATA_INTEGERS),
        ],
        vectors=[rg.VectorField(name=VECTOR, dimensions=dimensions, title="Sentence embedding")],
        distribution=rg.TaskDistribution(min_submitted=config.min_submitted),
        guidelines="Pick the label that fits the text best. Discard a text that fits none of them.",
    )


def _create(client: rg.Argilla, name: str, workspace: str, labels: list[str], config: LabelingConfig, dimensions: int) -> rg.Dataset:
    dataset = rg.Dataset(name=name, workspace=workspace, settings=settings_for(labels, config, dimensions), client=client)
    return dataset.create()


def _question_labels(dataset: rg.Dataset) -> list[str]:
    return list(dataset.settings.questions[QUESTION].labels)


def _apply_distribution(dataset: rg.Dataset, config: LabelingConfig) -> None:
    if dataset.settings.distribution.min_submitted != config.min_submitted:
        # The server's background worker recomputes record statuses after this change.
        dataset.settings.distribution = rg.TaskDistribution(min_submitted=config.min_submitted)
        dataset.update()


def _ensure_workspace(client: rg.Argilla, name: str) -> None:
    if client.workspaces(name) is None:
        rg.Workspace(name=name, client=client).create()


def _write(task: Task, **values: object) -> None:
    # A new dict, not an in-place change: the JSON column only notices assignment.
    settings = dict(task.settings or {})
    settings["labeling"] = {**settings.get("labeling", {}), **values}
    task.settings = settings
