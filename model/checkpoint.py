"""Saving and loading a model with its config and vocabularies in one file."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn

from model.rnn import AttentionRNN, RNNConfig
from model.transformer import ModelConfig, Seq2SeqTransformer
from model.vocab import Vocab

FORMAT_VERSION = 1
# Each architecture a checkpoint may hold: its config dataclass and network. A checkpoint without
# "arch" predates the RNN and holds a transformer.
ARCHITECTURES: dict[str, tuple[type, type[nn.Module]]] = {
    "transformer": (ModelConfig, Seq2SeqTransformer),
    "rnn": (RNNConfig, AttentionRNN),
}


def architecture(model: nn.Module) -> str:
    return next(name for name, (_, network) in ARCHITECTURES.items() if isinstance(model, network))


def build_model(cfg: ModelConfig | RNNConfig) -> Seq2SeqTransformer | AttentionRNN:
    return next(network for config, network in ARCHITECTURES.values() if isinstance(cfg, config))(cfg)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, truncated, or of another format."""


@dataclass
class LoadedModel:
    model: Seq2SeqTransformer | AttentionRNN
    src_vocab: Vocab
    tgt_vocab: Vocab
    metadata: dict


def save_checkpoint(
    path: str | Path, model: Seq2SeqTransformer | AttentionRNN, src_vocab: Vocab, tgt_vocab: Vocab, metadata: dict | None = None
) -> None:
    """Weights are stored in fp16 (half the size); they are loaded back as fp32."""
    state = {k: v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.cpu() for k, v in model.state_dict().items()}
    for key in model.tied_weights:
        state.pop(key)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(
        {
            "format_version": FORMAT_VERSION,
            "arch": architecture(model),
            "config": model.cfg.to_dict(),
            "src_vocab": src_vocab.tokens,
            "tgt_vocab": tgt_vocab.tokens,
            "state_dict": state,
            "metadata": metadata or {},
        },
        tmp,
    )
    tmp.replace(path)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise CheckpointError(f"checkpoint {path} cannot be read (truncated or not a checkpoint): {exc}") from None
    if not isinstance(blob, dict) or blob.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not an attnscope checkpoint of format {FORMAT_VERSION}")
    arch = blob.get("arch", "transformer")
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"checkpoint {path} holds a {arch!r} model; this version knows {', '.join(ARCHITECTURES)}")
    config_class, network = ARCHITECTURES[arch]
    known = {f.name for f in fields(config_class)}
    unknown = set(blob["config"]) - known
    if unknown:
        raise CheckpointError(f"checkpoint {path} has config fields this version does not know: {sorted(unknown)}")
    try:
        cfg = config_class(**blob["config"])
        src_vocab, tgt_vocab = Vocab(blob["src_vocab"]), Vocab(blob["tgt_vocab"])
        if (len(src_vocab), len(tgt_vocab)) != (cfg.src_vocab_size, cfg.tgt_vocab_size):
            raise ValueError("vocabulary sizes do not match the config")
        model = network(cfg)
        state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if k not in model.tied_weights]
        if missing or unexpected:
            raise ValueError(f"weights do not fit the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} is incompatible: {exc}") from None
    model.to(device).eval()
    return LoadedModel(model, src_vocab, tgt_vocab, blob.get("metadata", {}))
