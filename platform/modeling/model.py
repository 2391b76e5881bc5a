"""A trained text classifier in memory: predict, save as an artifact, load one back, and derive
the starting point of the next candidate from it."""

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from driftloop.platform.modeling.artifacts import Artifact, read_artifact, write_artifact
from driftloop.platform.modeling.choices import MODES
from driftloop.platform.modeling.classifier import (
    EncoderClassifier,
    grow_head,
    load_base_encoder,
    load_trainable_state,
    lora_config,
    new_head,
    trainable_state,
    with_lora,
)
from driftloop.platform.modeling.encoder import Encoder

FORMAT_VERSION = 1
_TOKENIZER_LOCK = threading.Lock()


@dataclass
class TextClassifier:
    mode: str
    labels: list[str]
    head: torch.nn.Linear
    encoder: Encoder  # the frozen base encoder: head-mode features, tokenizer for every mode
    network: EncoderClassifier | None = None  # ``full`` / ``lora``: the encoder being tuned, with the head
    max_length: int = 128

    @classmethod
    def fresh(cls, mode: str, labels: Sequence[str], encoder: Encoder, seed: int) -> "TextClassifier":
        _check_mode(mode)
        head = new_head(encoder.dim, len(labels), seed)
        return cls(mode, list(labels), head, encoder, _network(mode, encoder, head))

    def candidate(self, mode: str, labels: Sequence[str], seed: int) -> "TextClassifier":
        """A copy to keep training from: the same weights, the head grown to ``labels``.

        A ``head`` champion can seed any mode (its head sits on the base encoder's embeddings).
        A ``full`` / ``lora`` champion seeds only its own mode: its head expects its own tuned
        encoder, which a frozen-encoder head cannot reproduce."""
        _check_mode(mode)
        if self.labels != list(labels[: len(self.labels)]):
            raise ValueError("the new label set must extend the champion's, in the same order")
        if self.mode != "head" and mode != self.mode:
            raise ValueError(f"a {self.mode} model cannot seed a {mode} candidate")
        head = grow_head(copy.deepcopy(self.head), len(labels), seed)
        if self.network is not None and mode == self.mode:
            network = copy.deepcopy(self.network)
            network.head = head
        else:
            network = _network(mode, self.encoder, head)
        return TextClassifier(mode, list(labels), head, self.encoder, network, self.max_length)

    def parameters(self) -> list[torch.nn.Parameter]:
        if self.network is None:
            return list(self.head.parameters())
        return [p for p in self.network.parameters() if p.requires_grad]

    def logits(self, texts: Sequence[str], features: torch.Tensor | None) -> torch.Tensor:
        """Logits for a batch: from precomputed embeddings in ``head`` mode, from text otherwise."""
        if self.network is None:
            if features is None:
                features = torch.from_numpy(self.encoder.embed(list(texts)))
            return self.head(features.to(self.head.weight.device))
        with _TOKENIZER_LOCK:  # the Rust tokenizer refuses two threads at once (a batcher and a warm-up, say)
            tokens = tokenizer(str(self.encoder.path))(
                list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
        tokens = tokens.to(self.head.weight.device)
        return self.network(tokens["input_ids"], tokens["attention_mask"])

    def predict_proba(self, texts: Sequence[str], features: np.ndarray | None = None, batch_size: int = 256) -> np.ndarray:
        if features is None and self.network is None:
            features = self.encoder.embed(list(texts))
        self.train(False)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = None if features is None else torch.from_numpy(features[start : start + batch_size])
                out.append(torch.softmax(self.logits(texts[start : start + batch_size], batch).float(), dim=-1).cpu())
        if not out:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return torch.cat(out).numpy()

    def train(self, mode: bool = True) -> None:
        (self.network or self.head).train(mode)

    def to(self, device: torch.device) -> "TextClassifier":
        if self.network is not None:
            self.network.to(device)
        self.head.to(device)
        return self

    def save(self, root: Path, name: str, extra: dict[str, Any] | None = None) -> Artifact:
        weights = {"head": {"weight": self.head.weight, "bias": self.head.bias}}
        if self.network is not None:
            weights[self.mode] = trainable_state(self.network, self.mode)
        config = {
            "format": FORMAT_VERSION,
            "mode": self.mode,
            "labels": self.labels,
            "encoder_id": self.encoder.id,
            "tokenizer": str(self.encoder.path),
            "dim": self.encoder.dim,
            "max_length": self.max_length,
            "lora": lora_config().to_dict() if self.mode == "lora" else None,
            **(extra or {}),
        }
        return write_artifact(root, name, weights, _json_safe(config))

    @classmethod
    def load(cls, path: Path, sha256: str, encoder: Encoder) -> "TextClassifier":
        config, weights = read_artifact(path, sha256)
        if config["encoder_id"] != encoder.id:
            raise ValueError(
                f"model was trained on encoder {config['encoder_id']}, but {encoder.id} is configured "
                "(DRIFTLOOP_ENCODER_PATH): retrain, or point the setting back at that checkpoint"
            )
        head = torch.nn.Linear(config["dim"], len(config["labels"]))
        head.load_state_dict(weights["head"])
        network = _network(config["mode"], encoder, head)
        if network is not None:
            load_trainable_state(network, weights[config["mode"]], config["mode"])
        model = cls(config["mode"], config["labels"], head, encoder, network, config["max_length"])
        model.to(encoder.device)
        return model


@lru_cache(maxsize=4)
def tokenizer(path: str) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(path)


def _network(mode: str, encoder: Encoder, head: torch.nn.Linear) -> EncoderClassifier | None:
    if mode == "head":
        return None
    base = load_base_encoder(encoder.path)
    if mode == "lora":
        base = with_lora(base, lora_config())
    return EncoderClassifier(base, head).to(encoder.device)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown training mode {mode!r}: use one of {', '.join(MODES)}")


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_safe(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
