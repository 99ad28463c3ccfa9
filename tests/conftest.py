"""Shared fixtures: a tiny random model, so tests that are not about the trained weights stay fast."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from model.checkpoint import LoadedModel, save_checkpoint
from model.rnn import AttentionRNN, RNNConfig
from model.transformer import ModelConfig, Seq2SeqTransformer
from model.translator import Translator
from model.vocab import Vocab

# Model processes (app.workers) take seconds to start and hold a copy of the models each: the apps the tests make
# run their batches in threads, but for tests/app/test_workers.py, which asks for processes.
os.environ.setdefault("ATTNSCOPE_MODEL_PROCESSES", "false")

REPO = Path(__file__).resolve().parents[1]
SHIPPED_CHECKPOINT = REPO / "model" / "checkpoints" / "en-ja.pt"

TINY_EN = "this is an example . i like tea ! do n't go ? he 's 'clock o the cat dog".split()
TINY_JA = "これ は 例 で す 。 私 お 茶 が 好き 行 く な ！ ？ 猫 犬 彼".split()


def make_tiny_model(seed: int = 0, **overrides) -> LoadedModel:
    torch.manual_seed(seed)
    src_vocab = Vocab.build([TINY_EN])
    tgt_vocab = Vocab.build([TINY_JA])
    cfg = ModelConfig(
        src_vocab_size=len(src_vocab),
        tgt_vocab_size=len(tgt_vocab),
        **{
            "d_model": 32,
            "n_heads": 4,
            "n_encoder_layers": 2,
            "n_decoder_layers": 2,
            "d_ff": 64,
            "dropout": 0.0,
            "max_positions": 64,
            **overrides,
        },
    )
    return LoadedModel(Seq2SeqTransformer(cfg).eval(), src_vocab, tgt_vocab, {})


def make_tiny_rnn(seed: int = 0, **overrides) -> LoadedModel:
    torch.manual_seed(seed)
    src_vocab = Vocab.build([TINY_EN])
    tgt_vocab = Vocab.build([TINY_JA])
    sizes = {"d_embed": 16, "d_encoder": 12, "d_decoder": 20, "d_attention": 10, "d_readout": 16, "dropout": 0.0}
    cfg = RNNConfig(src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab), **{**sizes, **overrides})
    return LoadedModel(AttentionRNN(cfg).eval(), src_vocab, tgt_vocab, {})


@pytest.fixture
def tiny_model() -> LoadedModel:
    return make_tiny_model()


@pytest.fixture
def tiny_translator(tiny_model) -> Translator:
    return Translator(tiny_model, "cpu")


def write_model_dir(
    directory: Path, name: str = "tiny", seed: int = 0, politeness_levels: tuple[str, ...] = (), arch: str = "transformer"
) -> Path:
    """A model folder like model/checkpoints/: NAME.pt plus its NAME.json card."""
    if arch == "rnn":
        loaded = make_tiny_rnn(seed)
    else:
        loaded = make_tiny_model(seed, politeness_levels=politeness_levels)
    path = directory / f"{name}.pt"
    save_checkpoint(path, loaded.model, loaded.src_vocab, loaded.tgt_vocab)
    card = {
        "name": name,
        "description": "tiny random model for tests",
        "source_language": "en",
        "target_language": "ja",
        "parameters": loaded.model.num_parameters(),
        "test_bleu": {"greedy": 0.0},
    }
    path.with_suffix(".json").write_text(json.dumps(card), encoding="utf-8")
    return path


@pytest.fixture
def tiny_model_dir(tmp_path) -> Path:
    write_model_dir(tmp_path)
    return tmp_path


TINY_PAIRS = [
    ("this is an example .", "これ は 例 で す 。"),
    ("i like tea !", "私 は お 茶 が 好き"),
    ("do n't go !", "行 く な ！"),
    ("the cat is the dog .", "猫 は 犬 で す 。"),
    ("he like the cat ?", "彼 は 猫 が 好き ？"),
]


def write_tiny_corpus(directory: Path, lines: int = 20, split: str = "test") -> Path:
    """A corpus folder like ../shared/data/small_parallel_enja with `lines` pairs of the tiny vocabulary in `split`."""
    directory.mkdir(parents=True, exist_ok=True)
    pairs = [TINY_PAIRS[i % len(TINY_PAIRS)] for i in range(lines)]
    (directory / f"{split}.en").write_text("".join(f"{en}\n" for en, _ in pairs), encoding="utf-8")
    (directory / f"{split}.ja").write_text("".join(f"{ja}\n" for _, ja in pairs), encoding="utf-8")
    return directory
