"""Train / eval assignment at arrival: stratified by class, deterministic, and never revisited.

Within each class, the k-th label to arrive goes to eval exactly when that keeps the class's
eval count at ``round(k * fraction)``, so every class is split in the same proportion from its
first labels on, with no randomness to reproduce.
"""

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.platform.store.models import Label, Split


class SplitAssigner:
    """Counts a task's train / eval labels per class once, then assigns new labels in memory."""

    def __init__(self, session: Session, task_id: int, eval_fraction: float) -> None:
        if not 0.0 <= eval_fraction < 1.0:
            raise ValueError(f"eval fraction must be in [0, 1), got {eval_fraction}")
        self.eval_fraction = eval_fraction
        rows = session.execute(
            select(Label.label, Label.split, func.count())
            .where(Label.task_id == task_id, Label.split.in_([Split.train, Split.eval]))
            .group_by(Label.label, Label.split)
        )
        self._seen: Counter[str] = Counter()
        self._eval: Counter[str] = Counter()
        for label, split, count in rows:
            self._seen[label] += count
            if split == Split.eval:
                self._eval[label] += count

    def assign(self, label: str) -> Split:
        self._seen[label] += 1
        if self._eval[label] < round(self._seen[label] * self.eval_fraction):
            self._eval[label] += 1
            return Split.eval
        return Split.train
