"""The model-facing service: raw text in, translations and labelled attention maps out.

This is what the web service and the CLIs call; it knows nothing of HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from model.checkpoint import LoadedModel, load_checkpoint
from model.data import pad_batch
from model.decoding import AttentionMaps, Hypothesis, beam_search, forced_attention, greedy_decode
from model.tokenize import segment_japanese, tokenize_english
from model.vocab import BOS, EOS, Vocab


class InputError(ValueError):
    """Input the model cannot take; the message says what to change."""


@dataclass(frozen=True)
class Token:
    text: str  # the surface form as typed (lowercased English), even when the model sees <unk>
    id: int
    unknown: bool
    special: bool


@dataclass
class Translation:
    source_tokens: list[Token]
    target_tokens: list[Token]
    translation: str
    score: float
    n_best: list[tuple[str, list[str], float]]  # (translation, tokens, score), best first


@dataclass
class AttentionResult:
    source_tokens: list[Token]  # columns of encoder and cross maps (ends with </s>)
    target_tokens: list[Token]  # produced tokens: rows of decoder and cross maps (ends with </s>)
    decoder_input_tokens: list[Token]  # <s> + target_tokens[:-1]: columns of the decoder map
    translation: str
    forced: bool
    score: float  # total log-probability of target_tokens
    maps: AttentionMaps


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def join_japanese(tokens: list[str]) -> str:
    return "".join(t for t in tokens if t not in (EOS, BOS))


class Translator:
    def __init__(self, loaded: LoadedModel, device: torch.device | str = "cpu"):
        self.device = resolve_device(str(device))
        self.model = loaded.model.to(self.device).eval()
        self.src_vocab = loaded.src_vocab
        self.tgt_vocab = loaded.tgt_vocab
        self.metadata = loaded.metadata

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> Translator:
        return cls(load_checkpoint(path), device)

    @property
    def config(self):
        return self.model.cfg

    def _tokens(self, words: list[str], vocab: Vocab) -> list[Token]:
        return [Token(w, vocab.index.get(w, vocab.unk_id), unknown=w not in vocab, special=vocab.is_special(w)) for w in words]

    def source_tokens(self, text: str) -> list[Token]:
        """Tokenize raw or corpus-tokenized English; appends </s> as the model was trained."""
        words = tokenize_english(text)
        if not words:
            raise InputError("the source is empty: type an English sentence")
        limit = self.config.max_positions
        if len(words) + 1 > limit:
            raise InputError(f"the source has {len(words)} tokens; this model takes at most {limit - 1}")
        return self._tokens([*words, EOS], self.src_vocab)

    def target_tokens(self, text: str) -> list[Token]:
        """Space-separated Japanese words, or plain Japanese text segmented over the vocabulary; appends </s>."""
        words = [w for w in segment_japanese(text, self.tgt_vocab) if w != EOS]
        if not words:
            raise InputError("the target is empty: type a Japanese translation or leave it out")
        limit = self.config.max_positions
        if len(words) + 1 > limit:
            raise InputError(f"the target has {len(words)} tokens; this model takes at most {limit - 1}")
        return self._tokens([*words, EOS], self.tgt_vocab)

    def _src_tensor(self, tokens: list[Token]) -> torch.Tensor:
        return torch.tensor([[t.id for t in tokens]], device=self.device)

    def _hypotheses(self, src: torch.Tensor, beam_size: int, max_length: int | None, n_best: int) -> list[Hypothesis]:
        if beam_size <= 1:
            return greedy_decode(self.model, src, max_length)
        return beam_search(self.model, src, beam_size, max_length, n_best=n_best)

    def translate(
        self, texts: list[str], beam_size: int = 1, max_length: int | None = None, n_best: int = 1
    ) -> list[Translation]:
        """Translate many sentences; greedy decoding runs in length-sorted batches."""
        sources = [self.source_tokens(t) for t in texts]
        best: list[list[Hypothesis]] = [[] for _ in texts]
        if beam_size <= 1:
            order = sorted(range(len(texts)), key=lambda i: len(sources[i]))
            for start in range(0, len(order), 64):
                chunk = order[start : start + 64]
                src = pad_batch([[t.id for t in sources[i]] for i in chunk], Vocab.pad_id).to(self.device)
                for i, hyp in zip(chunk, greedy_decode(self.model, src, max_length), strict=True):
                    best[i] = [hyp]
        else:
            for i, tokens in enumerate(sources):
                best[i] = beam_search(self.model, self._src_tensor(tokens), beam_size, max_length, n_best=max(1, n_best))
        results = []
        for tokens, hyps in zip(sources, best, strict=True):
            n_best_list = [(join_japanese(w := self.tgt_vocab.decode(h.ids)), w, h.score) for h in hyps]
            top = hyps[0]
            results.append(
                Translation(
                    tokens,
                    self._tokens(self.tgt_vocab.decode(top.ids), self.tgt_vocab),
                    n_best_list[0][0],
                    top.score,
                    n_best_list,
                )
            )
        return results

    def attention(
        self, source: str, target: str | None = None, beam_size: int = 1, max_length: int | None = None
    ) -> AttentionResult:
        """Translate `source` (or force `target`) and return every attention map of that pair."""
        src_tokens = self.source_tokens(source)
        src = self._src_tensor(src_tokens)
        if target is None:
            target_ids = self._hypotheses(src, beam_size, max_length, n_best=1)[0].ids
            tgt_tokens = self._tokens(self.tgt_vocab.decode(target_ids), self.tgt_vocab)
        else:
            tgt_tokens = self.target_tokens(target)
            target_ids = [t.id for t in tgt_tokens]
        maps, logp = forced_attention(self.model, src, target_ids)
        decoder_inputs = self._tokens([BOS], self.tgt_vocab) + tgt_tokens[:-1]
        return AttentionResult(
            source_tokens=src_tokens,
            target_tokens=tgt_tokens,
            decoder_input_tokens=decoder_inputs,
            translation=join_japanese([t.text for t in tgt_tokens]),
            forced=target is not None,
            score=float(logp.sum()),
            maps=maps,
        )
