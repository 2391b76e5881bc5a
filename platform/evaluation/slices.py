"""Evaluation slices from the store's fixed splits.

- ``recent``: eval labels that arrived after the champion's training data was cut off;
- ``past<k>:labels <from>-<to>``: the older eval labels (those that arrived up to the cutoff),
  cut into windows of equal size in the order the labels arrived (``Label.created_at``, then
  ``Label.id``), so forgetting of anything learned earlier shows up on its own. Arrival order,
  not the texts' event time: a backlog ingested in one go has event times that say nothing
  about what the model learned first. ``<from>-<to>`` number the past eval labels from 1;
- ``gold``: the gold set ops imported;
- ``all``: every eval label (gold excluded).
With no champion everything is ``recent``, and only ``all`` decides (see the gate).

Every label also has a *recency weight*, how much of today's traffic it stands for: it halves
with every ``half_life_labels`` labels (train or eval, gold aside) that arrived after it, the
fading factor of prequential evaluation (Gama et al. 2013) counted in labels rather than days,
so that a task labelled in bursts is weighed by what it learned in between, not by the calendar.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.platform.store.models import Label, Split, TextRecord


@dataclass(frozen=True)
class SliceSpec:
    name: str
    kind: str
    text_ids: list[int]
    texts: list[str]
    y_true: np.ndarray
    weights: np.ndarray | None = None  # recency, see the module docstring; None: every label counts once


def eval_slices(
    session: Session,
    task_id: int,
    labels: list[str],
    cutoff: datetime | None,
    past_windows: int = 3,
    min_window: int = 1,
) -> list[SliceSpec]:
    """The task's eval slices. Past labels are cut into at most ``past_windows`` windows, and
    into fewer when that keeps each at ``min_window`` examples or more: a window too small for
    the gate to judge would hide forgetting instead of showing it."""
    index = {label: i for i, label in enumerate(labels)}
    rows = session.execute(
        select(Label.text_id, Label.label, Label.split, Label.created_at, TextRecord.text)
        .join(TextRecord, TextRecord.id == Label.text_id)
        .where(Label.task_id == task_id, Label.split.in_([Split.eval, Split.gold]))
        .order_by(Label.created_at, Label.id)
    ).all()
    evals = [r for r in rows if r.split == Split.eval]
    recent = [r for r in evals if cutoff is None or r.created_at > cutoff]
    past = [r for r in evals if cutoff is not None and r.created_at <= cutoff]
    slices = [_spec("recent", "recent", recent, index)]
    n_windows = max(1, min(past_windows, len(past) // max(min_window, 1)))
    windows = np.array_split(np.arange(len(past)), n_windows) if past else []
    for number, window in enumerate(windows, start=1):
        members = [past[i] for i in window]
        slices.append(_spec(f"past{number}:labels {window[0] + 1}-{window[-1] + 1}", "past", members, index))
    slices.append(_spec("gold", "gold", [r for r in rows if r.split == Split.gold], index))
    slices.append(_spec("all", "all", evals, index))
    return [s for s in slices if s.text_ids]


def _spec(name: str, kind: str, rows: list, index: dict[str, int]) -> SliceSpec:  # type: ignore[type-arg]
    return SliceSpec(
        name,
        kind,
        [r.text_id for r in rows],
        [r.text for r in rows],
        np.array([index[r.label] for r in rows], dtype=np.int64),
    )


def arrival_order(session: Session, task_id: int) -> list[tuple[int, str]]:
    """The task's train and eval labels as (text id, label), oldest first."""
    return [
        (row.text_id, row.label)
        for row in session.execute(
            select(Label.text_id, Label.label)
            .where(Label.task_id == task_id, Label.split != Split.gold)
            .order_by(Label.created_at, Label.id)
        )
    ]


def recency_weights(order: Sequence[tuple[int, str]], half_life_labels: int) -> dict[int, float]:
    """0.5 ** (labels that arrived after it / half-life), by text id of ``order``'s labels."""
    last = len(order) - 1
    return {text_id: 0.5 ** ((last - rank) / half_life_labels) for rank, (text_id, _) in enumerate(order)}


def weighted(spec: SliceSpec, weights: Mapping[int, float]) -> SliceSpec:
    """``spec`` with its labels' recency weights; a text without one (gold) weighs 1."""
    return replace(spec, weights=np.array([weights.get(t, 1.0) for t in spec.text_ids], dtype=float))


def traffic_classes(order: Sequence[tuple[int, str]], unseen: Sequence[str], half_life_labels: int) -> set[str]:
    """The classes seen in recent traffic: among the labels the champion has not seen
    (``unseen``), and among the newest ``half_life_labels`` whatever their number, so a rare
    class does not count as gone because a short round happened to miss it."""
    return set(unseen) | {label for _, label in order[-half_life_labels:]}
