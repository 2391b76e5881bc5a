"""The classifier: base encoder → mean pooling → L2 normalisation → linear head.

All three training modes share this shape, which is what lets a candidate start from any
compatible champion and lets the label set grow without rebuilding anything:

- ``head``: the encoder is frozen; only the head is trained, on cached sentence embeddings;
- ``full``: the encoder is fine-tuned together with the head;
- ``lora``: low-rank adapters (peft) on the encoder's attention, plus the head.
"""

from collections.abc import Mapping
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import AutoModel, PreTrainedModel

from driftloop.platform.modeling.encoder import mean_pool


def new_head(dim: int, n_labels: int, seed: int) -> nn.Linear:
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(dim, n_labels)
    with torch.no_grad():
        head.weight.copy_(torch.randn(n_labels, dim, generator=generator) * 0.01)
        head.bias.zero_()
    return head


def grow_head(head: nn.Linear, n_labels: int, seed: int) -> nn.Linear:
    """The same head with rows for labels added since it was trained: old rows are kept as they
    are; new rows start small, with the mean old bias so new classes are not favoured or buried."""
    old = head.out_features
    if n_labels < old:
        raise ValueError(f"a head cannot shrink (from {old} to {n_labels} labels): labels are only ever appended")
    if n_labels == old:
        return head
    grown = new_head(head.in_features, n_labels, seed)
    with torch.no_grad():
        grown.weight[:old] = head.weight
        grown.bias[:old] = head.bias
        grown.bias[old:] = head.bias.mean()
    return grown


class EncoderClassifier(nn.Module):
    """Encoder (possibly with LoRA adapters) and head, trained end to end (``full`` / ``lora``)."""

    def __init__(self, encoder: PreTrainedModel | PeftModel, head: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # The same sentence embedding as the frozen encoder's, so a head trained on cached
        # embeddings fits a tuned encoder's output unchanged.
        return nn.functional.normalize(mean_pool(hidden, attention_mask), dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(input_ids, attention_mask))


def load_base_encoder(path: Path) -> PreTrainedModel:
    return AutoModel.from_pretrained(path)


def lora_config(rank: int = 8, alpha: int = 16, dropout: float = 0.1) -> LoraConfig:
    # Attention projections of BERT-style encoders; the head is trained in full beside them.
    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=["query", "value"], bias="none")


def with_lora(encoder: PreTrainedModel, config: LoraConfig) -> PeftModel:
    return get_peft_model(encoder, config)


def trainable_state(model: EncoderClassifier, mode: str) -> dict[str, torch.Tensor]:
    """What a ``full`` or ``lora`` artifact must store beyond the head: the whole encoder, or the
    adapters only (the base weights come from the encoder checkpoint)."""
    if mode == "full":
        return {k: v.detach().cpu().contiguous() for k, v in model.encoder.state_dict().items()}
    return {k: v.detach().cpu().contiguous() for k, v in model.encoder.state_dict().items() if "lora_" in k}


def load_trainable_state(model: EncoderClassifier, state: Mapping[str, torch.Tensor], mode: str) -> None:
    missing, unexpected = model.encoder.load_state_dict(dict(state), strict=False)
    if unexpected:
        raise ValueError(f"artifact has weights this {mode} model does not: {sorted(unexpected)[:5]}")
    if mode == "lora" and any("lora_" in k for k in missing):
        raise ValueError("artifact lacks LoRA adapter weights")
