"""The embedding cache, on SQLite and PostgreSQL, with the real encoder on CPU."""

import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from driftloop.platform.config import Settings
from driftloop.platform.errors import DriftloopError, NotFound
from driftloop.platform.ingestion.service import ingest
from driftloop.platform.modeling.embeddings import embed_texts, read_vectors, vector_file
from driftloop.platform.modeling.encoder import Encoder, load_encoder
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Embedding, TextRecord
from driftloop.platform.tasks import create_task, get_task

TEXTS = [f"text {i}: {'flu shots and fevers ' * (i % 5)}the end of line {i}" for i in range(60)]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder(Settings(encoder_path=None, device="cpu"))


class Counted:
    """Counts the texts that go through ``encoder.embed`` while the test runs."""

    def __init__(self, encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
        self.texts: list[str] = []
        embed = encoder.embed

        def counting(texts: Sequence[str], **options: object) -> np.ndarray:
            self.texts += texts
            return embed(texts, **options)  # type: ignore[arg-type]

        monkeypatch.setattr(encoder, "embed", counting)


@pytest.fixture
def counted(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> Counted:
    return Counted(encoder, monkeypatch)


def task_id_of(engine: Engine, task_name: str) -> int:
    with session_scope(engine) as session:
        return get_task(session, task_name).id


def store_texts(engine: Engine, task_name: str, texts: list[str]) -> list[int]:
    """Ingest ``texts``; return their text ids in the same order."""
    records = [{"text": text, "id": f"x{i}"} for i, text in enumerate(texts)]
    for _ in ingest(engine, task_name, enumerate(records), max_text_chars=10_000, batch_size=1_000):
        pass
    with session_scope(engine) as session:
        query = select(TextRecord.external_id, TextRecord.id).where(TextRecord.task_id == task_id_of(engine, task_name))
        ids = dict(session.execute(query).all())
    return [ids[f"x{i}"] for i in range(len(texts))]


def recorded(engine: Engine, task_id: int, encoder: Encoder) -> dict[int, int]:
    """text id -> vector id, as the embeddings table has it."""
    with session_scope(engine) as session:
        query = select(Embedding.text_id, Embedding.vector_id).where(
            Embedding.task_id == task_id, Embedding.encoder_id == encoder.id
        )
        return dict(session.execute(query).all())


def file_rows(home: Path, task_id: int, encoder: Encoder) -> np.ndarray:
    return np.fromfile(vector_file(home, task_id, encoder.id), dtype=np.float32).reshape(-1, encoder.dim)


def assert_rows_are_vector_ids(engine: Engine, home: Path, task_id: int, encoder: Encoder, texts: dict[int, str]) -> None:
    """Each of ``texts`` (text id -> text) recorded once, vector ids 0..n-1, and each text's
    vector in its own row of the file."""
    mapping = recorded(engine, task_id, encoder)
    assert sorted(mapping) == sorted(texts)
    assert sorted(mapping.values()) == list(range(len(texts)))
    rows = file_rows(home, task_id, encoder)
    assert len(rows) == len(texts)
    expected = encoder.embed([texts[text_id] for text_id in mapping])
    np.testing.assert_allclose(rows[list(mapping.values())], expected, atol=1e-5)


def test_second_call_reads_everything_from_the_cache(
    engine: Engine, task_name: str, encoder: Encoder, counted: Counted, tmp_path: Path
) -> None:
    task_id = task_id_of(engine, task_name)
    ids = store_texts(engine, task_name, TEXTS[:8])

    first = embed_texts(engine, task_id, ids, encoder, tmp_path)
    assert sorted(counted.texts) == sorted(TEXTS[:8])
    assert first.shape == (8, 384) and first.dtype == np.float32
    np.testing.assert_allclose(first, encoder.embed(TEXTS[:8]), atol=1e-5)

    counted.texts.clear()
    again = embed_texts(engine, task_id, ids, encoder, tmp_path)
    assert counted.texts == []
    np.testing.assert_array_equal(again, first)
    assert len(recorded(engine, task_id, encoder)) == 8
    assert vector_file(tmp_path, task_id, encoder.id).stat().st_size == 8 * 384 * 4


def test_only_uncached_texts_are_encoded_and_rows_follow_the_requested_ids(
    engine: Engine, task_name: str, encoder: Encoder, counted: Counted, tmp_path: Path
) -> None:
    task_id = task_id_of(engine, task_name)
    ids = store_texts(engine, task_name, TEXTS[:6])
    embed_texts(engine, task_id, ids[:3], encoder, tmp_path)

    counted.texts.clear()
    wanted = [ids[4], ids[0], ids[4], ids[2], ids[5], ids[0]]
    vectors = embed_texts(engine, task_id, wanted, encoder, tmp_path, batch_size=2)
    assert sorted(counted.texts) == sorted([TEXTS[4], TEXTS[5]])
    expected = encoder.embed([TEXTS[4], TEXTS[0], TEXTS[4], TEXTS[2], TEXTS[5], TEXTS[0]])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    assert_rows_are_vector_ids(engine, tmp_path, task_id, encoder, {ids[i]: TEXTS[i] for i in (0, 1, 2, 4, 5)})


def test_progress_counts_the_texts_encoded_by_the_call(
    engine: Engine, task_name: str, encoder: Encoder, tmp_path: Path
) -> None:
    task_id = task_id_of(engine, task_name)
    ids = store_texts(engine, task_name, TEXTS[:5])
    embed_texts(engine, task_id, ids[:2], encoder, tmp_path)
    calls: list[tuple[int, int]] = []
    embed_texts(engine, task_id, ids, encoder, tmp_path, batch_size=2, progress=lambda *call: calls.append(call))
    assert calls == [(0, 3), (2, 3), (3, 3)]


def test_no_ids_give_no_rows(engine: Engine, task_name: str, encoder: Encoder, tmp_path: Path) -> None:
    vectors = embed_texts(engine, task_id_of(engine, task_name), [], encoder, tmp_path)
    assert vectors.shape == (0, 384) and vectors.dtype == np.float32


def test_rows_of_an_append_that_crashed_before_its_commit_are_dropped(
    engine: Engine, task_name: str, encoder: Encoder, tmp_path: Path
) -> None:
    task_id = task_id_of(engine, task_name)
    ids = store_texts(engine, task_name, TEXTS[:5])
    before = embed_texts(engine, task_id, ids[:3], encoder, tmp_path)
    # What a crash between the append and the commit leaves: rows no embeddings row refers to
    # (here two and a half, as if the write itself was cut short).
    with vector_file(tmp_path, task_id, encoder.id).open("ab") as file:
        file.write(np.full((2, 384), 7.0, dtype=np.float32).tobytes() + b"\x01" * 600)

    after = embed_texts(engine, task_id, ids, encoder, tmp_path)
    np.testing.assert_array_equal(after[:3], before)
    np.testing.assert_allclose(after[3:], encoder.embed(TEXTS[3:5]), atol=1e-5)
    assert_rows_are_vector_ids(engine, tmp_path, task_id, encoder, dict(zip(ids, TEXTS, strict=False)))
    assert recorded(engine, task_id, encoder)[ids[3]] == 3


def test_unknown_ids_and_other_tasks_texts_are_not_found(
    engine: Engine, task_name: str, encoder: Encoder, counted: Counted, tmp_path: Path
) -> None:
    task_id = task_id_of(engine, task_name)
    ids = store_texts(engine, task_name, TEXTS[:2])
    other_name = f"t-{uuid.uuid4().hex[:10]}"
    with session_scope(engine) as session:
        create_task(session, other_name, ["a"])
    (other_id,) = store_texts(engine, other_name, ["a text of another task"])

    with pytest.raises(NotFound) as raised:
        embed_texts(engine, task_id, [ids[0], 987_654_321, other_id, ids[1]], encoder, tmp_path)
    assert raised.value.detail["text_ids"] == [987_654_321, other_id]
    assert f"ids 987654321, {other_id}" in raised.value.message
    assert counted.texts == [] and recorded(engine, task_id, encoder) == {}


def test_a_vector_file_lost_outside_driftloop_is_an_error_not_wrong_vectors(
    engine: Engine, task_name: str, encoder: Encoder, tmp_path: Path
) -> None:
    task_id = task_id_of(engine, task_name)
    ids = store_texts(engine, task_name, TEXTS[:3])
    embed_texts(engine, task_id, ids[:2], encoder, tmp_path)
    path = vector_file(tmp_path, task_id, encoder.id)
    path.write_bytes(path.read_bytes()[: 384 * 4])  # one of the two recorded rows is gone

    with pytest.raises(DriftloopError, match="holds only 1 rows, but the embeddings table refers to row 1"):
        embed_texts(engine, task_id, ids, encoder, tmp_path)  # appending would misnumber rows
    with pytest.raises(DriftloopError, match="holds only 1 rows, but the embeddings table refers to row 1"):
        read_vectors(tmp_path, task_id, encoder.id, encoder.dim, [0, 1])
    assert len(recorded(engine, task_id, encoder)) == 2


def test_read_vectors_returns_the_rows_asked_for(engine: Engine, task_name: str, encoder: Encoder, tmp_path: Path) -> None:
    task_id = task_id_of(engine, task_name)
    ids = store_texts(engine, task_name, TEXTS[:4])
    vectors = embed_texts(engine, task_id, ids, encoder, tmp_path)
    mapping = recorded(engine, task_id, encoder)
    rows = read_vectors(tmp_path, task_id, encoder.id, encoder.dim, [mapping[ids[3]], mapping[ids[1]], mapping[ids[3]]])
    np.testing.assert_array_equal(rows, vectors[[3, 1, 3]])


def test_concurrent_calls_with_overlapping_ids_record_each_text_once(
    engine: Engine, task_name: str, encoder: Encoder, tmp_path: Path
) -> None:
    task_id = task_id_of(engine, task_name)
    ids = store_texts(engine, task_name, TEXTS)
    # Each thread has texts of its own and shares a third with the other, so both encode at the
    # same time and then race to append.
    halves = [ids[:40], ids[20:]]
    start = threading.Barrier(len(halves))
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            start.wait()
            results[n] = embed_texts(engine, task_id, halves[n], encoder, tmp_path, batch_size=16)
        except BaseException as error:  # noqa: BLE001 - surfaced by the assert below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(halves))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []

    assert_rows_are_vector_ids(engine, tmp_path, task_id, encoder, dict(zip(ids, TEXTS, strict=True)))
    final = embed_texts(engine, task_id, ids, encoder, tmp_path)
    np.testing.assert_array_equal(results[0], final[:40])
    np.testing.assert_array_equal(results[1], final[20:])
