"""Replay buffers: a bounded memory of a task's past labelled examples, so that each new model
trains on the labels that arrived since the last one plus a sample of older ones, and does not
forget them.

Strategies (picked by name, one buffer per task and strategy):

- ``reservoir``: a uniform sample of every label ever offered (Vitter's Algorithm R).
- ``balanced``: a class-balanced reservoir (Chrysakis & Moens, "Online continual learning from
  imbalanced data", ICML 2020): every class seen so far gets an equal share of the capacity, a
  class with fewer items than its share keeps all of them and leaves the rest to the others,
  and within its share each class is a reservoir over its own stream.
- ``none``: no buffer; sampling returns nothing.

The math is in plain functions over lists (:func:`reservoir_offer`, :func:`class_quotas`,
:func:`class_balanced_offer`); the strategies hold no state, everything they need is in the
:class:`BufferState` loaded from SQL. A buffer is one ``replay_buffers`` row (capacity, and
``state`` = how many items, and of which class, were ever offered) and one ``replay_items`` row
per item (its slot is its position). Labels are not copied into the buffer: they are read from
``labels`` each time, so a corrected label is what trains, and an item whose train label is gone
drops out. Only train labels count, both when offered and when read: eval and gold labels never
reach training.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, TypeVar

import numpy as np
from sqlalchemy import Select, delete, insert, select
from sqlalchemy.orm import Session

from driftloop.platform.store.in_lists import in_list_chunks
from driftloop.platform.store.inserts import insert_unless_present
from driftloop.platform.store.models import Label, ReplayBuffer, Split
from driftloop.platform.store.models import ReplayItem as ReplayItemRow
from driftloop.platform.store.types import utcnow

NONE = "none"

# Updates and samples draw from separate streams, so sampling never replays an update's draws.
_UPDATE_STREAM = 0
_SAMPLE_STREAM = 1

T = TypeVar("T")


@dataclass(frozen=True)
class ReplayItem:
    text_id: int
    label: str


@dataclass
class BufferState:
    capacity: int
    items: list[ReplayItem]  # current contents; the index is the item's slot
    seen: int = 0  # items ever offered
    seen_per_class: dict[str, int] = field(default_factory=dict)


# --- the math, on plain data ----------------------------------------------------------------


def fresh_items(items: Sequence[ReplayItem], new: Iterable[ReplayItem]) -> list[ReplayItem]:
    """``new`` without the texts already in ``items`` or repeated in ``new`` itself: offering a
    text twice must neither duplicate it nor count it twice as seen."""
    present = {item.text_id for item in items}
    fresh = []
    for item in new:
        if item.text_id not in present:
            present.add(item.text_id)
            fresh.append(item)
    return fresh


def count_classes(seen_per_class: Mapping[str, int], items: Iterable[ReplayItem]) -> dict[str, int]:
    counts = dict(seen_per_class)
    for item in items:
        counts[item.label] = counts.get(item.label, 0) + 1
    return counts


def subsample(items: Sequence[T], k: int, rng: np.random.Generator) -> list[T]:
    """``k`` of ``items`` uniformly without replacement, in their original order. A uniform
    subsample of a uniform sample is still uniform, which is why shrinking is safe."""
    if k >= len(items):
        return list(items)
    keep = np.sort(rng.choice(len(items), size=k, replace=False))
    return [items[i] for i in keep]


def reservoir_offer(
    items: Sequence[T], capacity: int, seen: int, new: Sequence[T], rng: np.random.Generator
) -> list[T]:
    """Algorithm R, continued: ``items`` is a uniform sample of the ``seen`` items streamed so
    far; the result is a uniform sample of at most ``capacity`` of those plus ``new``.

    The stream's item number ``i`` (0-based) replaces slot ``j ~ U{0..i}`` when ``j < capacity``,
    so each of the ``i + 1`` items is in the buffer with probability ``capacity / (i + 1)``.
    """
    kept = subsample(items, capacity, rng)
    # One draw per new item, made up front: draws for items that only fill free slots are unused.
    draws = rng.integers(0, np.arange(seen + 1, seen + len(new) + 1)) if new else []
    for item, j in zip(new, draws, strict=True):
        if len(kept) < capacity:
            kept.append(item)
        elif j < capacity:
            kept[j] = item
    return kept


def class_quotas(capacity: int, available: Mapping[str, int]) -> dict[str, int]:
    """Split ``capacity`` slots between classes as equally as their ``available`` items allow
    (water-filling): a class with fewer items than an equal share gets all of them, and what it
    leaves is shared again among the others. Slots that do not divide evenly go one each to the
    classes with the most items (then by name), so the result is deterministic.
    """
    quotas = {label: 0 for label in available}
    open_classes = sorted((label for label, n in available.items() if n > 0), key=lambda c: (-available[c], c))
    remaining = max(capacity, 0)
    while remaining > 0 and open_classes:
        share, extra = divmod(remaining, len(open_classes))
        capped = [c for c in open_classes if available[c] <= share]
        if not capped:
            for rank, label in enumerate(open_classes):
                quotas[label] = share + (1 if rank < extra else 0)
            break
        for label in capped:
            quotas[label] = available[label]
            remaining -= available[label]
        open_classes = [c for c in open_classes if c not in capped]
    return quotas


def class_balanced_offer(
    items: Sequence[ReplayItem],
    capacity: int,
    seen_per_class: Mapping[str, int],
    new: Sequence[ReplayItem],
    rng: np.random.Generator,
) -> list[ReplayItem]:
    """Class-balancing reservoir sampling (CBRS) over ``new``, with ``seen_per_class`` counting
    what was offered before.

    While there is room, every item is kept. Once full, an item of a class holding fewer than
    its quota (see :func:`class_quotas` over the classes' stream counts) takes a random slot
    of the class furthest over its quota; that is how a new class gets its share from the
    largest ones. An item of a class already at its quota is a reservoir step within its class:
    the class's ``n``-th item replaces a random one of its ``m`` items with probability ``m / n``.
    """
    kept = _shrink_balanced(items, capacity, rng)
    members: dict[str, list[int]] = {}
    for slot, item in enumerate(kept):
        members.setdefault(item.label, []).append(slot)
    counts = dict(seen_per_class)
    for item in new:
        counts[item.label] = counts.get(item.label, 0) + 1
        mine = members.setdefault(item.label, [])
        if len(kept) < capacity:
            mine.append(len(kept))
            kept.append(item)
            continue
        # A class cannot have been offered fewer items than it holds (a corrected label can
        # move an item into a class with no count yet).
        available = {label: max(counts.get(label, 0), len(members.get(label, ()))) for label in counts | members}
        quotas = class_quotas(capacity, available)
        if len(mine) < quotas[item.label]:
            # Full, and this class is under quota, so some class is over it.
            victim = min(members, key=lambda c: (quotas[c] - len(members[c]), -len(members[c]), c))
            slot = _pop_random(members[victim], rng)
            kept[slot] = item
            mine.append(slot)
        else:
            j = int(rng.integers(counts[item.label]))
            if j < len(mine):
                kept[mine[j]] = item
    return kept


def stratified_sample(items: Sequence[ReplayItem], n: int, rng: np.random.Generator) -> list[ReplayItem]:
    """``n`` of ``items`` without replacement, as equally many per class as the classes allow;
    uniform within each class. Returned in the items' order."""
    if n >= len(items):
        return list(items)
    members: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        members.setdefault(item.label, []).append(index)
    quotas = class_quotas(n, {label: len(indexes) for label, indexes in members.items()})
    chosen = [i for label in sorted(members) for i in subsample(members[label], quotas[label], rng)]
    return [items[i] for i in sorted(chosen)]


def _shrink_balanced(items: Sequence[ReplayItem], capacity: int, rng: np.random.Generator) -> list[ReplayItem]:
    """At most ``capacity`` of ``items``, as balanced by class as they allow, uniform within a
    class; order kept."""
    if len(items) <= capacity:
        return list(items)
    members: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        members.setdefault(item.label, []).append(index)
    quotas = class_quotas(capacity, {label: len(indexes) for label, indexes in members.items()})
    keep = sorted(i for label in sorted(members) for i in subsample(members[label], quotas[label], rng))
    return [items[i] for i in keep]


def _pop_random(slots: list[int], rng: np.random.Generator) -> int:
    """Remove and return a uniformly chosen element (swap with the last: O(1))."""
    at = int(rng.integers(len(slots)))
    slot = slots[at]
    slots[at] = slots[-1]
    slots.pop()
    return slot


# --- strategies -----------------------------------------------------------------------------


class ReplayStrategy(ABC):
    """How a buffer takes in new items, and how a training set is drawn from it."""

    name: ClassVar[str]

    @abstractmethod
    def offer(self, state: BufferState, new: Sequence[ReplayItem], rng: np.random.Generator) -> BufferState:
        """The state after offering ``new`` (``state`` is not modified). The buffer first
        shrinks to ``state.capacity`` if it holds more; texts already in it are ignored."""

    def sample(self, items: Sequence[ReplayItem], n: int, rng: np.random.Generator) -> list[ReplayItem]:
        """``n`` items uniformly without replacement (all of them if ``n`` is not smaller)."""
        return subsample(items, n, rng)


class Reservoir(ReplayStrategy):
    name = "reservoir"

    def offer(self, state: BufferState, new: Sequence[ReplayItem], rng: np.random.Generator) -> BufferState:
        fresh = fresh_items(state.items, new)
        items = reservoir_offer(state.items, state.capacity, state.seen, fresh, rng)
        return BufferState(state.capacity, items, state.seen + len(fresh), count_classes(state.seen_per_class, fresh))


class ClassBalancedReservoir(ReplayStrategy):
    name = "balanced"

    def offer(self, state: BufferState, new: Sequence[ReplayItem], rng: np.random.Generator) -> BufferState:
        fresh = fresh_items(state.items, new)
        items = class_balanced_offer(state.items, state.capacity, state.seen_per_class, fresh, rng)
        return BufferState(state.capacity, items, state.seen + len(fresh), count_classes(state.seen_per_class, fresh))

    def sample(self, items: Sequence[ReplayItem], n: int, rng: np.random.Generator) -> list[ReplayItem]:
        return stratified_sample(items, n, rng)


STRATEGIES: dict[str, ReplayStrategy] = {s.name: s for s in (Reservoir(), ClassBalancedReservoir())}


def strategy_for(name: str) -> ReplayStrategy | None:
    """The strategy called ``name``; ``None`` for ``none``."""
    if name == NONE:
        return None
    if name not in STRATEGIES:
        raise ValueError(f"unknown replay strategy {name!r}; known: {', '.join([NONE, *STRATEGIES])}")
    return STRATEGIES[name]


# --- persistence ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _StoredItem:
    slot: int
    text_id: int
    added_at: datetime
    label: str | None  # None: the text has no train label in this task (any more)


def update_buffer(
    session: Session,
    task_id: int,
    strategy: str,
    capacity: int,
    new: Sequence[ReplayItem],
    *,
    seed: int = 0,
    offer_key: str | None = None,
) -> BufferState:
    """Offer ``new`` to the task's buffer for ``strategy`` (created on first use) and return
    its state. Runs in the caller's transaction and does not commit.

    ``offer_key`` names the offer so that making it again changes nothing: the buffer keeps the
    keys it has taken. Texts already in the buffer are ignored anyway, but one evicted since
    would come back and count as seen twice, which biases the reservoir towards that offer.

    Each offered text takes its train label from ``labels``; texts without one are ignored.
    The buffer row is locked first, so concurrent updates of one buffer take turns (on SQLite
    every writing unit holds the database's write lock from its first statement). The update's randomness comes from
    ``(seed, items seen so far)``: the same history gives the same buffer.
    """
    chosen = strategy_for(strategy)
    if capacity < 0:
        raise ValueError(f"capacity must be >= 0, got {capacity}")
    if chosen is None:
        return BufferState(capacity=0, items=[])
    buffer = _lock_buffer(session, task_id, strategy, capacity)
    stored = _stored_items(session, buffer.id, task_id)
    before = BufferState(
        capacity=capacity,
        items=[ReplayItem(s.text_id, s.label) for s in stored if s.label is not None],
        seen=int(buffer.state.get("seen", 0)),
        seen_per_class={k: int(v) for k, v in buffer.state.get("seen_per_class", {}).items()},
    )
    offers = list(buffer.state.get("offers", []))
    if offer_key is not None:
        if offer_key in offers:
            return before
        offers.append(offer_key)
    after = chosen.offer(before, _with_train_labels(session, task_id, new), _rng(seed, before.seen, _UPDATE_STREAM))
    after.items = _assign_slots({s.text_id: s.slot for s in stored}, after.items)
    _write_items(session, buffer.id, stored, after.items)
    buffer.capacity = capacity
    buffer.state = {"seen": after.seen, "seen_per_class": after.seen_per_class, "offers": offers}
    buffer.updated_at = utcnow()
    session.flush()
    return after


def buffer_contents(session: Session, task_id: int, strategy: str) -> list[ReplayItem]:
    """The buffer's items in slot order, each with its current train label."""
    if strategy_for(strategy) is None:
        return []
    buffer_id = session.scalar(_buffer_query(task_id, strategy).with_only_columns(ReplayBuffer.id))
    if buffer_id is None:
        return []
    return [ReplayItem(s.text_id, s.label) for s in _stored_items(session, buffer_id, task_id) if s.label is not None]


def sample_replay(session: Session, task_id: int, strategy: str, n: int, *, seed: int = 0) -> list[ReplayItem]:
    """``n`` items of the buffer without replacement (all of them if it holds no more):
    uniformly, or for ``balanced`` stratified by class. Seeded by ``(seed, items seen)``, so a
    buffer that has moved on gives a fresh sample."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    chosen = strategy_for(strategy)
    if chosen is None:
        return []
    buffer = session.scalar(_buffer_query(task_id, strategy))
    if buffer is None:
        return []
    items = [ReplayItem(s.text_id, s.label) for s in _stored_items(session, buffer.id, task_id) if s.label is not None]
    return chosen.sample(items, n, _rng(seed, int(buffer.state.get("seen", 0)), _SAMPLE_STREAM))


def _rng(seed: int, seen: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, seen, stream]))


def _buffer_query(task_id: int, strategy: str) -> Select[tuple[ReplayBuffer]]:
    return select(ReplayBuffer).where(ReplayBuffer.task_id == task_id, ReplayBuffer.strategy == strategy)


def _lock_buffer(session: Session, task_id: int, strategy: str, capacity: int) -> ReplayBuffer:
    """The buffer row, created if missing, locked until the transaction ends.

    Insert-if-absent comes first so that two first updates cannot both create the row, and so
    that on SQLite the transaction holds the write lock before it reads the buffer.
    """
    values = {"task_id": task_id, "strategy": strategy, "capacity": capacity, "state": {}, "updated_at": utcnow()}
    session.execute(insert_unless_present(session, ReplayBuffer).values(values))
    # populate_existing: a copy of the row already in the session must not hide the latest one.
    query = _buffer_query(task_id, strategy).with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).one()


def _stored_items(session: Session, buffer_id: int, task_id: int) -> list[_StoredItem]:
    """Every row of the buffer in slot order, with the text's train label if it has one. Only
    train labels count: eval and gold labels must never reach training."""
    rows = session.execute(
        select(ReplayItemRow.slot, ReplayItemRow.text_id, ReplayItemRow.added_at, Label.label)
        .outerjoin(
            Label,
            (Label.text_id == ReplayItemRow.text_id) & (Label.task_id == task_id) & (Label.split == Split.train),
        )
        .where(ReplayItemRow.buffer_id == buffer_id)
        .order_by(ReplayItemRow.slot)
    )
    return [_StoredItem(*row) for row in rows]


def _with_train_labels(session: Session, task_id: int, new: Sequence[ReplayItem]) -> list[ReplayItem]:
    """``new`` with each text's stored train label; texts without one are left out, so that
    they neither take a slot nor count as seen."""
    text_ids = list({item.text_id for item in new})
    labels: dict[int, str] = {}
    for chunk in in_list_chunks(text_ids):
        labels.update(
            session.execute(
                select(Label.text_id, Label.label).where(
                    Label.text_id.in_(chunk), Label.task_id == task_id, Label.split == Split.train
                )
            ).all()
        )
    return [ReplayItem(item.text_id, labels[item.text_id]) for item in new if item.text_id in labels]


def _assign_slots(previous: Mapping[int, int], items: Sequence[ReplayItem]) -> list[ReplayItem]:
    """``items`` ordered so that index = slot, slots 0..len-1, with every item that was already
    stored left in its old slot when that slot still exists: only new and displaced items move."""
    placed: list[ReplayItem | None] = [None] * len(items)
    movers = []
    for item in items:
        slot = previous.get(item.text_id)
        if slot is not None and slot < len(placed) and placed[slot] is None:
            placed[slot] = item
        else:
            movers.append(item)
    free = (slot for slot, item in enumerate(placed) if item is None)
    for item, slot in zip(movers, free, strict=False):
        placed[slot] = item
    return [item for item in placed if item is not None]


def _write_items(session: Session, buffer_id: int, stored: Sequence[_StoredItem], items: Sequence[ReplayItem]) -> None:
    """Delete the rows whose (text, slot) pair is gone and insert the new pairs; rows that did
    not change are not touched. A moved item keeps its ``added_at``."""
    old = {s.text_id: s for s in stored}
    new = {item.text_id: slot for slot, item in enumerate(items)}
    gone = [s.text_id for s in stored if new.get(s.text_id) != s.slot]
    now = utcnow()
    added = [
        {
            "buffer_id": buffer_id,
            "text_id": text_id,
            "slot": slot,
            "added_at": old[text_id].added_at if text_id in old else now,
        }
        for text_id, slot in new.items()
        if text_id not in old or old[text_id].slot != slot
    ]
    # Deletes first: a moved item's old row holds its text id, and a replaced item's its slot.
    for chunk in in_list_chunks(gone):
        session.execute(
            delete(ReplayItemRow).where(ReplayItemRow.buffer_id == buffer_id, ReplayItemRow.text_id.in_(chunk)),
            execution_options={"synchronize_session": False},
        )
    if added:
        session.execute(insert(ReplayItemRow), added)
