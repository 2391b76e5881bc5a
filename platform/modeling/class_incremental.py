"""Class-incremental bias of a linear head, and what corrects it.

When a round's new labels cover only some of the classes a model knows (a class mix that
shifts: a topic stops, another starts), the classes absent from them are learned from the
replayed sample alone. A head fitted on that mix favours the classes with fresh data: their
weight vectors grow longer and their logits larger, so an old class's examples drift to them
(Wu et al., "Large Scale Incremental Learning", CVPR 2019; Zhao et al., "Maintaining
Discrimination and Fairness in Class Incremental Learning", CVPR 2020). Both corrections below
are post-hoc rescalings of the "new" classes' rows of a linear head, so they are absorbed into
the head's weights: the model, its artifact and its serving path are unchanged.

- :func:`align_weights` (Weight Aligning, Zhao et al.): new rows scaled by
  ``γ = mean ‖w_old‖ / mean ‖w_new‖``.
- :func:`fit_bias_correction` and :func:`apply_bias_correction` (BiC, Wu et al.): new-class
  logits ``α·o + β``, ``α`` and ``β`` fitted by cross-entropy on a class-balanced held-out set,
  old-class logits unchanged.

Here "new" classes are those the round's new labels contain, "old" those only its replayed
rows contain (:func:`class_roles`); classes with no training row at all are left alone.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class ClassRoles:
    new: np.ndarray  # class indices present in the round's new labels
    old: np.ndarray  # class indices present only in its replayed rows

    @property
    def shifted(self) -> bool:
        """Whether the new labels leave out some class the training data holds: only then is
        there a bias between the two groups to correct."""
        return len(self.new) > 0 and len(self.old) > 0


def class_roles(y: np.ndarray, replayed: np.ndarray) -> ClassRoles:
    """New and old classes of a training set whose rows ``replayed`` marks (True: a replayed row)."""
    if len(y) != len(replayed):
        raise ValueError(f"replayed marks {len(replayed)} rows but there are {len(y)} labels")
    new = np.unique(y[~replayed])
    old = np.setdiff1d(np.unique(y[replayed]), new)
    return ClassRoles(new, old)


def align_weights(head: torch.nn.Linear, roles: ClassRoles) -> float:
    """Weight Aligning, in place: the new classes' weight rows rescaled so that their mean norm
    equals the old classes'. Biases are left as they are (as in Zhao et al.). Returns γ (1.0
    when there is nothing to align)."""
    if not roles.shifted:
        return 1.0
    with torch.no_grad():
        norms = head.weight.norm(dim=1)
        new, old = torch.from_numpy(roles.new), torch.from_numpy(roles.old)
        gamma = float(norms[old].mean() / norms[new].mean().clamp_min(1e-12))
        head.weight[new] *= gamma
    return gamma


def fit_bias_correction(
    logits: torch.Tensor, y: np.ndarray, roles: ClassRoles, steps: int = 100
) -> tuple[float, float]:
    """BiC's two parameters: new-class logits become ``α·o + β``; fitted by class-balanced
    cross-entropy on held-out ``logits`` / ``y`` (balanced by weighting each class by the inverse
    of its count, so a held-out set drawn from the round's mix serves). (1.0, 0.0) when there is
    nothing to correct or no held-out row of an old class to correct it with."""
    if not roles.shifted or len(y) == 0 or not np.isin(y, roles.old).any():
        return 1.0, 0.0
    target = torch.from_numpy(y).long()
    counts = np.bincount(y, minlength=logits.shape[1]).astype(np.float32)
    weight = torch.from_numpy(np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0).astype(np.float32))
    mask = torch.zeros(logits.shape[1], dtype=torch.bool)
    mask[torch.from_numpy(roles.new)] = True
    alpha = torch.ones((), requires_grad=True)
    beta = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([alpha, beta], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")
    logits = logits.detach().float()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        corrected = torch.where(mask, alpha * logits + beta, logits)
        loss = F.cross_entropy(corrected, target, weight=weight)
        loss.backward()
        return loss

    optimizer.step(closure)
    a, b = float(alpha.detach()), float(beta.detach())
    if not (np.isfinite(a) and np.isfinite(b)) or a <= 0:
        return 1.0, 0.0  # a degenerate fit (a reversed order of the new logits) corrects nothing
    return a, b


def apply_bias_correction(head: torch.nn.Linear, roles: ClassRoles, alpha: float, beta: float) -> None:
    """``α·(w·x + b) + β`` on the new classes' logits, folded into their rows of the head."""
    with torch.no_grad():
        new = torch.from_numpy(roles.new)
        head.weight[new] *= alpha
        head.bias[new] = alpha * head.bias[new] + beta


@dataclass(frozen=True)
class KeptRows:
    """The old classes' rows of a head as a round starts (the champion's), put back after every
    step: they were learned from every label of those classes while they arrived, where the
    replayed sample holds a few; the new classes' rows and biases learn around them."""

    index: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def of(cls, head: torch.nn.Linear, roles: ClassRoles) -> "KeptRows":
        index = torch.from_numpy(roles.old).to(head.weight.device)
        return cls(index, head.weight.detach()[index].clone(), head.bias.detach()[index].clone())

    def restore(self, head: torch.nn.Linear) -> None:
        with torch.no_grad():
            head.weight[self.index] = self.weight
            head.bias[self.index] = self.bias


def shift_aware_replay_size(n_new_per_class: dict[str, int], known: set[str], ratio: float) -> int:
    """How many examples to replay beside ``n_new_per_class`` new labels: ``ratio`` per new label,
    raised when the new labels leave out classes of ``known`` (the classes replay can offer) so
    that each left-out class can get as many replayed rows as a present class has new ones on
    average. Under a stable mix this is the plain ratio; under a class shift, the classes that
    only replay teaches are not learned from a handful of heavily weighted rows."""
    n_new = sum(n_new_per_class.values())
    present = [label for label, n in n_new_per_class.items() if n > 0]
    absent = known - set(present)
    planned = math.ceil(n_new * ratio)
    if not present or not absent:
        return planned
    return max(planned, math.ceil(n_new / len(present) * len(absent)))
