import threading
import uuid
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest
from scipy.stats import chisquare
from sqlalchemy import Engine, delete, select, update

from driftloop.platform.ingestion.service import ingest
from driftloop.platform.modeling.replay import (
    STRATEGIES,
    BufferState,
    ClassBalancedReservoir,
    ReplayItem,
    ReplayStrategy,
    Reservoir,
    buffer_contents,
    class_quotas,
    sample_replay,
    update_buffer,
)
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Label, ReplayBuffer, Split, TextRecord
from driftloop.platform.store.models import ReplayItem as ReplayItemRow
from driftloop.platform.tasks import create_task, get_task

# --- helpers ----------------------------------------------------------------------------------


def stream(labels: Sequence[str], start: int = 0) -> list[ReplayItem]:
    return [ReplayItem(start + i, label) for i, label in enumerate(labels)]


def mixed_labels(n: int, shares: dict[str, float], seed: int = 1) -> list[str]:
    """``n`` labels in the given proportions, in a seeded random order."""
    labels = [label for label, share in shares.items() for _ in range(round(n * share))]
    np.random.default_rng(seed).shuffle(labels)
    return labels


def run_stream(
    strategy: ReplayStrategy, capacity: int, items: Sequence[ReplayItem], *, run: int = 0, batch: int = 100
) -> BufferState:
    """Offer ``items`` in batches, as successive training rounds would."""
    state = BufferState(capacity, [])
    for start in range(0, len(items), batch):
        state = strategy.offer(state, items[start : start + batch], np.random.default_rng([run, start]))
    return state


def class_counts(items: Sequence[ReplayItem]) -> Counter[str]:
    return Counter(item.label for item in items)


def inclusion_counts(strategy: ReplayStrategy, *, runs: int, length: int, capacity: int) -> np.ndarray:
    """How often each position of a ``length``-item stream ends up in the buffer over ``runs``
    seeded runs."""
    items = stream(["a"] * length)
    counts = np.zeros(length)
    for run in range(runs):
        for item in run_stream(strategy, capacity, items, run=run).items:
            counts[item.text_id] += 1
    return counts


def decile_p_value(counts: np.ndarray) -> float:
    """Chi-square p-value of "inclusions are spread evenly over the stream's deciles"."""
    return float(chisquare(counts.reshape(10, -1).sum(axis=1)).pvalue)


class KeepNewest(ReplayStrategy):
    """A sliding window: the recency-biased buffer the uniformity test must catch."""

    name = "newest"

    def offer(self, state: BufferState, new: Sequence[ReplayItem], rng: np.random.Generator) -> BufferState:
        return BufferState(state.capacity, [*state.items, *new][-state.capacity :], state.seen + len(new))


def task_id_of(engine: Engine, name: str) -> int:
    with session_scope(engine) as session:
        return get_task(session, name).id


def labelled(engine: Engine, task_name: str, labels: Sequence[str], *, split: Split = Split.train) -> list[ReplayItem]:
    """Store one text per label in ``task_name`` and label it; the items, in order."""
    prefix = uuid.uuid4().hex[:8]
    records = [{"text": f"text {prefix} {i}", "id": f"{prefix}-{i}"} for i in range(len(labels))]
    for _ in ingest(engine, task_name, enumerate(records), max_text_chars=1000, batch_size=500):
        pass
    with session_scope(engine) as session:
        task_id = get_task(session, task_name).id
        ids = dict(
            session.execute(
                select(TextRecord.external_id, TextRecord.id).where(
                    TextRecord.task_id == task_id, TextRecord.external_id.startswith(prefix)
                )
            ).all()
        )
        session.add_all(
            Label(task_id=task_id, text_id=ids[r["id"]], label=label, split=split)
            for r, label in zip(records, labels, strict=True)
        )
    return [ReplayItem(ids[r["id"]], label) for r, label in zip(records, labels, strict=True)]


def run_update(
    engine: Engine, task_id: int, strategy: str, capacity: int, new: Sequence[ReplayItem], seed: int = 0, offer_key: str | None = None
) -> BufferState:
    with session_scope(engine) as session:
        return update_buffer(session, task_id, strategy, capacity, new, seed=seed, offer_key=offer_key)


def contents(engine: Engine, task_id: int, strategy: str) -> list[ReplayItem]:
    with session_scope(engine) as session:
        return buffer_contents(session, task_id, strategy)


def item_rows(engine: Engine, task_id: int, strategy: str) -> list[ReplayItemRow]:
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(ReplayItemRow)
                .join(ReplayBuffer, ReplayBuffer.id == ReplayItemRow.buffer_id)
                .where(ReplayBuffer.task_id == task_id, ReplayBuffer.strategy == strategy)
                .order_by(ReplayItemRow.slot)
            )
        )


def stored_state(engine: Engine, task_id: int, strategy: str) -> dict:
    with session_scope(engine) as session:
        return session.scalars(
            select(ReplayBuffer.state).where(ReplayBuffer.task_id == task_id, ReplayBuffer.strategy == strategy)
        ).one()


# --- the math ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capacity", "available", "expected"),
    [
        (60, {"a": 900, "b": 90, "c": 60}, {"a": 20, "b": 20, "c": 20}),
        (60, {"a": 900, "b": 90, "c": 10}, {"a": 25, "b": 25, "c": 10}),  # c leaves 10 to the others
        (60, {"a": 900, "b": 12, "c": 10}, {"a": 38, "b": 12, "c": 10}),
        (61, {"a": 900, "b": 90, "c": 60}, {"a": 21, "b": 20, "c": 20}),  # the extra slot: most items
        (60, {"a": 5, "b": 3, "c": 0}, {"a": 5, "b": 3, "c": 0}),
        (0, {"a": 5}, {"a": 0}),
    ],
)
def test_class_quotas_share_equally_as_far_as_items_allow(capacity: int, available: dict, expected: dict) -> None:
    assert class_quotas(capacity, available) == expected


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategy_contract(name: str) -> None:
    """What every strategy promises, whatever its sampling."""
    strategy = STRATEGIES[name]
    assert strategy.name == name
    items = stream(mixed_labels(500, {"a": 0.7, "b": 0.3}))
    before = BufferState(50, list(items[:50]), seen=50, seen_per_class=dict(class_counts(items[:50])))

    after = strategy.offer(before, items[50:], np.random.default_rng(7))
    assert len(after.items) == 50
    assert len({item.text_id for item in after.items}) == 50
    assert (after.seen, after.seen_per_class) == (500, dict(class_counts(items)))
    assert before.items == items[:50] and before.seen == 50  # the input state is left alone
    assert strategy.offer(before, items[50:], np.random.default_rng(7)) == after  # same draws, same buffer

    again = strategy.offer(after, after.items[:10], np.random.default_rng(8))
    assert again.seen == 500 and again == strategy.offer(after, [], np.random.default_rng(8))
    assert len({item.text_id for item in again.items}) == len(again.items)

    smaller = BufferState(20, after.items, after.seen, after.seen_per_class)
    shrunk = strategy.offer(smaller, [], np.random.default_rng(9))
    assert len(shrunk.items) == 20 and set(shrunk.items) <= set(after.items)

    assert strategy.sample(after.items, 500, np.random.default_rng(0)) == after.items
    drawn = strategy.sample(after.items, 12, np.random.default_rng(0))
    assert len(set(drawn)) == 12 and set(drawn) <= set(after.items)


def test_an_item_offered_twice_in_one_batch_is_kept_and_counted_once() -> None:
    for strategy in STRATEGIES.values():
        state = strategy.offer(BufferState(10, []), stream(["a", "b"]) * 3, np.random.default_rng(0))
        assert (sorted(item.text_id for item in state.items), state.seen) == ([0, 1], 2)


def test_reservoir_keeps_every_item_with_equal_probability() -> None:
    runs, length, capacity = 400, 1000, 100
    frequency = inclusion_counts(Reservoir(), runs=runs, length=length, capacity=capacity) / runs
    assert frequency.mean() == pytest.approx(capacity / length)
    assert decile_p_value(frequency * runs) > 0.001
    # No recency bias: the first and the last hundred items are as likely to be kept (the mean of
    # 100 items over 400 runs has a standard deviation of about 0.0015).
    early, late = frequency[:100].mean(), frequency[-100:].mean()
    assert early == pytest.approx(0.1, abs=0.006) and late == pytest.approx(0.1, abs=0.006)
    assert abs(early - late) < 0.008


def test_the_uniformity_check_catches_a_recency_biased_buffer() -> None:
    counts = inclusion_counts(KeepNewest(), runs=50, length=1000, capacity=100)
    assert decile_p_value(counts) < 0.001


def test_reservoir_fills_before_it_replaces() -> None:
    state = Reservoir().offer(BufferState(100, []), stream(["a"] * 100), np.random.default_rng(0))
    assert [item.text_id for item in state.items] == list(range(100))


def test_reservoir_shrinks_uniformly() -> None:
    items = stream(["a"] * 100)
    counts = np.zeros(100)
    for run in range(300):
        state = Reservoir().offer(BufferState(10, items, seen=1000), [], np.random.default_rng(run))
        assert len(state.items) == 10 and len(set(state.items)) == 10
        for item in state.items:
            counts[item.text_id] += 1
    assert decile_p_value(counts) > 0.001


IMBALANCED = {"a": 0.90, "b": 0.09, "c": 0.01}


@pytest.mark.parametrize("run", range(10))
def test_balanced_gives_each_class_an_equal_share(run: int) -> None:
    items = stream(mixed_labels(6000, IMBALANCED, seed=run))  # 5400 a, 540 b, 60 c
    counts = class_counts(run_stream(ClassBalancedReservoir(), 60, items, run=run, batch=500).items)
    assert sum(counts.values()) == 60
    assert all(abs(counts[label] - 20) <= 1 for label in "abc"), counts


@pytest.mark.parametrize("run", range(10))
def test_balanced_keeps_all_of_a_class_smaller_than_its_share(run: int) -> None:
    items = stream(mixed_labels(1000, IMBALANCED, seed=run))  # only 10 c: under the share of 20
    state = run_stream(ClassBalancedReservoir(), 60, items, run=run)
    assert {item for item in state.items if item.label == "c"} == {item for item in items if item.label == "c"}
    counts = class_counts(state.items)
    assert counts["c"] == 10 and abs(counts["a"] - 25) <= 1 and abs(counts["b"] - 25) <= 1, counts


def test_a_class_that_appears_later_gets_its_share() -> None:
    old = stream(mixed_labels(1000, {"a": 0.9, "b": 0.1}))
    state = run_stream(ClassBalancedReservoir(), 60, old)
    assert class_counts(state.items) == {"a": 30, "b": 30}

    later = stream(mixed_labels(1000, {"a": 0.85, "b": 0.1, "c": 0.05}, seed=2), start=1000)
    for start in range(0, 1000, 100):
        state = ClassBalancedReservoir().offer(state, later[start : start + 100], np.random.default_rng([5, start]))
    counts = class_counts(state.items)
    assert sum(counts.values()) == 60 and all(abs(counts[label] - 20) <= 1 for label in "abc"), counts


def test_reservoir_on_the_same_stream_keeps_the_imbalance() -> None:
    items = stream(mixed_labels(6000, IMBALANCED))
    reservoir = class_counts(run_stream(Reservoir(), 300, items, batch=500).items)
    balanced = class_counts(run_stream(ClassBalancedReservoir(), 300, items, batch=500).items)
    assert 0.85 <= reservoir["a"] / 300 <= 0.95 and reservoir["c"] <= 10
    assert balanced["a"] <= 121 and balanced["c"] == 60  # c has 60 items, under its share of 100


def test_balanced_is_uniform_within_a_class() -> None:
    items = stream(mixed_labels(1000, IMBALANCED))
    a_positions = [item.text_id for item in items if item.label == "a"]
    counts: Counter[int] = Counter()
    for run in range(200):
        counts.update(item.text_id for item in run_stream(ClassBalancedReservoir(), 60, items, run=run).items)
    by_a_position = np.array([counts[text_id] for text_id in a_positions])
    assert decile_p_value(by_a_position) > 0.001
    assert abs(by_a_position[:180].mean() - by_a_position[-180:].mean()) < 0.15 * by_a_position.mean()


def test_balanced_shrinks_to_a_balanced_subset() -> None:
    items = stream(mixed_labels(300, {"a": 0.5, "b": 0.3, "c": 0.2}))
    state = BufferState(30, items, seen=300, seen_per_class=dict(class_counts(items)))
    shrunk = ClassBalancedReservoir().offer(state, [], np.random.default_rng(0))
    assert class_counts(shrunk.items) == {"a": 10, "b": 10, "c": 10} and set(shrunk.items) <= set(items)

    few_c = stream(["a"] * 50 + ["b"] * 30 + ["c"] * 2)
    shrunk = ClassBalancedReservoir().offer(BufferState(30, few_c, seen=82), [], np.random.default_rng(0))
    assert class_counts(shrunk.items) == {"a": 14, "b": 14, "c": 2}


def test_balanced_sample_is_stratified_by_class() -> None:
    items = stream(["a"] * 70 + ["b"] * 25 + ["c"] * 5)
    drawn = ClassBalancedReservoir().sample(items, 30, np.random.default_rng(0))
    assert class_counts(drawn) == {"a": 13, "b": 12, "c": 5}
    assert len(set(drawn)) == 30
    uniform = Reservoir().sample(items, 30, np.random.default_rng(0))
    assert class_counts(uniform)["a"] > 13


# --- persistence ------------------------------------------------------------------------------


def test_unknown_strategy_names_the_known_ones(engine: Engine, task_name: str) -> None:
    task_id = task_id_of(engine, task_name)
    with session_scope(engine) as session:
        for call in (
            lambda: update_buffer(session, task_id, "fifo", 10, []),
            lambda: buffer_contents(session, task_id, "fifo"),
            lambda: sample_replay(session, task_id, "fifo", 5),
        ):
            with pytest.raises(ValueError, match="unknown replay strategy 'fifo'; known: none, reservoir, balanced"):
                call()


@pytest.mark.parametrize("strategy", ["reservoir", "balanced"])
def test_updates_persist_across_sessions_within_capacity(engine: Engine, task_name: str, strategy: str) -> None:
    task_id = task_id_of(engine, task_name)
    items = labelled(engine, task_name, mixed_labels(60, {"a": 0.5, "b": 0.3, "c": 0.2}))

    state = run_update(engine, task_id, strategy, 20, items[:30])
    assert len(state.items) == 20 and state.seen == 30
    first = contents(engine, task_id, strategy)
    assert first == state.items and set(first) <= set(items[:30])

    state = run_update(engine, task_id, strategy, 20, items[30:])
    second = contents(engine, task_id, strategy)
    assert second == state.items and len(second) == 20 and set(second) <= set(items)
    assert set(second) & set(items[30:]), "the second round's items can enter the buffer"
    assert [row.slot for row in item_rows(engine, task_id, strategy)] == list(range(20))
    assert stored_state(engine, task_id, strategy) == {"seen": 60, "seen_per_class": dict(class_counts(items)), "offers": []}


def test_same_seed_and_history_give_the_same_buffer(engine: Engine, task_name: str) -> None:
    labels = mixed_labels(80, {"a": 0.6, "b": 0.4})
    names = [task_name, f"{task_name}-2", f"{task_name}-3"]
    for name in names[1:]:
        with session_scope(engine) as session:
            create_task(session, name, ["a", "b"])
    runs = []
    for name, seed in zip(names, [3, 3, 4], strict=True):
        task_id = task_id_of(engine, name)
        items = labelled(engine, name, labels)
        for start in (0, 40):
            run_update(engine, task_id, "reservoir", 15, items[start : start + 40], seed=seed)
        # Texts differ between tasks; compare their positions in the stream.
        position = {item.text_id: i for i, item in enumerate(items)}
        runs.append([position[item.text_id] for item in contents(engine, task_id, "reservoir")])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_labels_are_read_from_the_labels_table(engine: Engine, task_name: str) -> None:
    task_id = task_id_of(engine, task_name)
    items = labelled(engine, task_name, ["a"] * 10)
    run_update(engine, task_id, "reservoir", 10, items)
    changed, removed = items[2], items[5]
    with session_scope(engine) as session:
        session.execute(update_label(changed.text_id, "b"))
        session.execute(delete(Label).where(Label.text_id == removed.text_id))

    now = contents(engine, task_id, "reservoir")
    assert ReplayItem(changed.text_id, "b") in now
    assert removed.text_id not in {item.text_id for item in now} and len(now) == 9

    # The next update forgets the unlabelled item's row and keeps the slots dense.
    run_update(engine, task_id, "reservoir", 10, [])
    rows = item_rows(engine, task_id, "reservoir")
    assert [row.slot for row in rows] == list(range(9)) and removed.text_id not in {row.text_id for row in rows}


def update_label(text_id: int, label: str):  # type: ignore[no-untyped-def]
    return update(Label).where(Label.text_id == text_id).values(label=label)


def test_offered_items_take_their_train_label_from_the_store(engine: Engine, task_name: str) -> None:
    task_id = task_id_of(engine, task_name)
    train = labelled(engine, task_name, ["a"] * 3)
    held_out = labelled(engine, task_name, ["b"] * 3, split=Split.eval)
    mislabelled = [ReplayItem(item.text_id, "c") for item in train]
    state = run_update(engine, task_id, "reservoir", 10, [*mislabelled, *held_out])
    # Eval labels never train; the caller's label is not trusted over the store's.
    assert contents(engine, task_id, "reservoir") == train
    assert (state.seen, state.seen_per_class) == (3, {"a": 3})


def test_none_keeps_no_buffer(engine: Engine, task_name: str) -> None:
    task_id = task_id_of(engine, task_name)
    items = labelled(engine, task_name, ["a", "b", "c"])
    assert run_update(engine, task_id, "none", 10, items).items == []
    assert contents(engine, task_id, "none") == []
    with session_scope(engine) as session:
        assert sample_replay(session, task_id, "none", 5) == []
        assert session.scalar(select(ReplayBuffer.id).where(ReplayBuffer.task_id == task_id)) is None


@pytest.mark.parametrize("strategy", ["reservoir", "balanced"])
def test_sample_replay(engine: Engine, task_name: str, strategy: str) -> None:
    task_id = task_id_of(engine, task_name)
    items = labelled(engine, task_name, ["a"] * 40 + ["b"] * 15 + ["c"] * 5)
    run_update(engine, task_id, strategy, 60, items)

    def draw(n: int, seed: int) -> list[ReplayItem]:
        with session_scope(engine) as session:
            return sample_replay(session, task_id, strategy, n, seed=seed)

    drawn = draw(21, seed=1)
    assert len(drawn) == 21 and len(set(drawn)) == 21 and set(drawn) <= set(items)
    assert draw(21, seed=1) == drawn
    assert draw(21, seed=2) != drawn
    everything = draw(100, seed=1)
    assert len(everything) == 60 and set(everything) == set(items)
    if strategy == "balanced":
        assert class_counts(drawn) == {"a": 8, "b": 8, "c": 5}


def test_reoffering_stored_items_does_not_duplicate_them(engine: Engine, task_name: str) -> None:
    task_id = task_id_of(engine, task_name)
    items = labelled(engine, task_name, ["a", "b"] * 10)
    run_update(engine, task_id, "balanced", 30, items[:12])
    state = run_update(engine, task_id, "balanced", 30, items)
    rows = item_rows(engine, task_id, "balanced")
    assert sorted(row.text_id for row in rows) == sorted(item.text_id for item in items)
    assert state.seen == 20 and stored_state(engine, task_id, "balanced")["seen"] == 20


@pytest.mark.parametrize("strategy", ["reservoir", "balanced"])
def test_an_offer_made_again_under_its_key_changes_nothing(engine: Engine, task_name: str, strategy: str) -> None:
    task_id = task_id_of(engine, task_name)
    items = labelled(engine, task_name, ["a", "b"] * 20)
    first = run_update(engine, task_id, strategy, 8, items, offer_key="version-7")
    again = run_update(engine, task_id, strategy, 8, items, offer_key="version-7")
    assert again.seen == first.seen == 40 and again.items == first.items == contents(engine, task_id, strategy)
    assert stored_state(engine, task_id, strategy)["offers"] == ["version-7"]
    # without the key, the 32 evicted items come back as if new: what the key prevents
    unkeyed = run_update(engine, task_id, strategy, 8, items)
    assert unkeyed.seen == 72


def test_an_update_rewrites_only_the_items_that_changed(engine: Engine, task_name: str) -> None:
    task_id = task_id_of(engine, task_name)
    items = labelled(engine, task_name, ["a"] * 40)
    run_update(engine, task_id, "reservoir", 30, items[:30])
    before = {row.text_id: row.id for row in item_rows(engine, task_id, "reservoir")}
    run_update(engine, task_id, "reservoir", 30, items[30:])
    after = {row.text_id: row.id for row in item_rows(engine, task_id, "reservoir")}
    survivors = before.keys() & after.keys()
    assert 20 <= len(survivors) < 30
    assert all(before[text_id] == after[text_id] for text_id in survivors)


def test_a_smaller_capacity_shrinks_the_stored_buffer(engine: Engine, task_name: str) -> None:
    task_id = task_id_of(engine, task_name)
    items = labelled(engine, task_name, ["a"] * 20 + ["b"] * 10 + ["c"] * 10)
    run_update(engine, task_id, "balanced", 40, items)
    run_update(engine, task_id, "balanced", 12, [])
    now = contents(engine, task_id, "balanced")
    assert class_counts(now) == {"a": 4, "b": 4, "c": 4} and set(now) <= set(items)
    assert [row.slot for row in item_rows(engine, task_id, "balanced")] == list(range(12))


class Paused(Reservoir):
    """A reservoir whose first update once armed holds its transaction open in the middle
    (after the buffer was read, before it is written) until released."""

    name = "paused"

    def __init__(self) -> None:
        self.armed = False
        self.entered = 0
        self.reading = threading.Event()
        self.release = threading.Event()

    def offer(self, state: BufferState, new: Sequence[ReplayItem], rng: np.random.Generator) -> BufferState:
        if self.armed:
            self.entered += 1
            if self.entered == 1:
                self.reading.set()
                assert self.release.wait(30)
        return super().offer(state, new, rng)


@pytest.mark.parametrize("row_exists", [True, False])
def test_concurrent_updates_of_one_buffer_take_turns(
    engine: Engine, task_name: str, row_exists: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    paused = Paused()
    monkeypatch.setitem(STRATEGIES, paused.name, paused)
    task_id = task_id_of(engine, task_name)
    items = labelled(engine, task_name, ["a", "b"] * 25)
    if row_exists:
        run_update(engine, task_id, "paused", 10, items[:10])
    paused.armed = True
    errors: list[BaseException] = []

    def update_in_thread(new: Sequence[ReplayItem]) -> threading.Thread:
        def target() -> None:
            try:
                run_update(engine, task_id, "paused", 10, new)
            except BaseException as error:  # noqa: BLE001 - the test reports it
                errors.append(error)

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    first = update_in_thread(items[10:30])
    assert paused.reading.wait(30)
    second = update_in_thread(items[30:])
    try:
        # The second update must wait for the first to commit, not read the state it is changing.
        second.join(0.5)
        waited = second.is_alive() and paused.entered == 1
    finally:
        paused.release.set()
        first.join(60)
        second.join(60)
    assert waited
    assert not errors and paused.entered == 2
    assert stored_state(engine, task_id, "paused")["seen"] == (50 if row_exists else 40)
    assert len(item_rows(engine, task_id, "paused")) == 10
