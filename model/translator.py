"""The built-in transformer's translator: raw text in, translations and labelled attention maps out.

It returns the model interface's result types (backends.interface); backends.builtin serves it
through that interface, and the model CLIs (translate, evaluate, train) call it directly.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from backends.interface import AttentionResult, HeadRef, InputError, StopCheck, Token, Translation, never_stop
from backends.interface import Hypothesis as NBestEntry
from model.checkpoint import LoadedModel, load_checkpoint
from model.data import pad_batch
from model.decoding import Encoded, Hypothesis, beam_search, forced_attention, greedy_decode
from model.gates import HeadGates
from model.politeness import target_politeness
from model.tokenize import segment_japanese, tokenize_english
from model.vocab import BOS, EOS, Vocab

POLITENESS = "politeness"  # the control's name in Translation.controls and .predictions
GRADIENT_BATCH = 32  # pairs per backward pass of gate_gradients


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
            raise InputError("the source is empty: type a sentence in English")
        return self._tokens([*words, EOS], self.src_vocab)

    def target_tokens(self, text: str) -> list[Token]:
        """Space-separated Japanese words, or plain Japanese text segmented over the vocabulary; appends </s>."""
        words = [w for w in segment_japanese(text, self.tgt_vocab) if w != EOS]
        if not words:
            raise InputError("the target is empty: type a Japanese translation or leave it out")
        return self._tokens([*words, EOS], self.tgt_vocab)

    def _fitting(self, tokens: list[Token], what: str) -> list[Token]:
        """`tokens` (</s> included) when the position table holds them; InputError otherwise."""
        limit = self.config.max_positions - 1
        if len(tokens) - 1 > limit:
            raise InputError(f"the {what} has {len(tokens) - 1} tokens; the limit is {limit}: shorten it")
        return tokens

    def _src_tensor(self, tokens: list[Token]) -> torch.Tensor:
        return torch.tensor([[t.id for t in tokens]], device=self.device)

    def check_politeness(self, politeness: str) -> None:
        """'auto' lets the model predict the politeness from the source; a name asks for that one."""
        names = self.config.politeness_levels
        if politeness == "auto" or politeness in names:
            return
        if not names:
            raise InputError(f"this model has no politeness control: leave politeness at auto, not {politeness!r}")
        raise InputError(f"unknown politeness {politeness!r}: choose auto, {', '.join(names)}")

    def _gates(self, ablate: frozenset[HeadRef]) -> HeadGates | None:
        """The gates that switch `ablate` off; None (the ungated network) when it is empty."""
        return HeadGates.switching_off(ablate, self.model.attention_shapes, self.device)

    @torch.no_grad()
    def _encode(self, src: torch.Tensor, gates: HeadGates | None = None) -> Encoded:
        """One encoder pass, shared by the politeness prediction, decoding and the forced pass."""
        return self.model.encode(src, gates)

    @torch.no_grad()
    def _politeness_ids(
        self, encoded: Encoded, src: torch.Tensor, politeness: str
    ) -> tuple[torch.Tensor | None, list[dict[str, float]]]:
        """src: (B, S) -> (politeness ids (B,) or None without politeness control, predicted probabilities)."""
        names = self.config.politeness_levels
        if not names:
            return None, [{} for _ in range(src.size(0))]
        memory, _ = encoded
        probs = self.model.politeness_logits(memory, src).softmax(-1)  # (B, P)
        if politeness == "auto":
            ids = probs.argmax(-1)
        else:
            ids = torch.full((src.size(0),), names.index(politeness), dtype=torch.long, device=src.device)
        return ids, [dict(zip(names, row, strict=True)) for row in probs.tolist()]

    def _politeness_used(self, ids: torch.Tensor | None, i: int) -> dict[str, str]:
        return {} if ids is None else {POLITENESS: self.config.politeness_levels[int(ids[i])]}

    @staticmethod
    def _predictions(probabilities: dict[str, float]) -> dict[str, dict[str, float]]:
        return {POLITENESS: probabilities} if probabilities else {}

    def _hypotheses(
        self,
        src: torch.Tensor,
        encoded: Encoded,
        beam_size: int,
        max_length: int | None,
        n_best: int,
        politeness: torch.Tensor | None,
        stop: StopCheck,
        gates: HeadGates | None = None,
    ) -> list[list[Hypothesis]]:
        """src: (B, S) -> per sentence, its best hypotheses, best first (one for greedy)."""
        if beam_size <= 1:
            return [[h] for h in greedy_decode(self.model, src, max_length, politeness, encoded, stop, gates)]
        return beam_search(
            self.model, src, beam_size, max_length, n_best=n_best, politeness=politeness, encoded=encoded, stop=stop,
            gates=gates,
        )  # fmt: skip

    def translate(
        self,
        texts: list[str],
        beam_size: int = 1,
        max_length: int | None = None,
        n_best: int = 1,
        politeness: str = "auto",
        stop: StopCheck = never_stop,
        ablate: frozenset[HeadRef] = frozenset(),
    ) -> list[Translation]:
        """Translate many sentences, decoded in length-sorted batches (beam search included); stop is
        called before every pass and decoding step, and raises to end the call; `ablate`: heads switched off."""
        self.check_politeness(politeness)
        gates = self._gates(ablate)
        sources = [self._fitting(self.source_tokens(t), "source") for t in texts]
        best: list[list[Hypothesis]] = [[] for _ in texts]
        chosen: list[tuple[dict[str, str], dict[str, float]]] = [({}, {}) for _ in texts]
        order = sorted(range(len(texts)), key=lambda i: len(sources[i]))
        # A beam takes beam_size decoder rows per sentence; this keeps a batch near 64 rows.
        batch_size = max(1, 64 // max(1, beam_size))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            src = pad_batch([[t.id for t in sources[i]] for i in chunk], Vocab.pad_id).to(self.device)
            stop()
            encoded = self._encode(src, gates)
            ids, probs = self._politeness_ids(encoded, src, politeness)
            hyps = self._hypotheses(src, encoded, beam_size, max_length, max(1, n_best), ids, stop, gates)
            for row, i in enumerate(chunk):
                best[i] = hyps[row]
                chosen[i] = (self._politeness_used(ids, row), probs[row])
        results = []
        for tokens, hyps, (used, probs) in zip(sources, best, chosen, strict=True):
            n_best_list = [NBestEntry(join_japanese(w := self.tgt_vocab.decode(h.ids)), w, h.score) for h in hyps]
            top = hyps[0]
            results.append(
                Translation(
                    source_tokens=tokens,
                    target_tokens=self._tokens(self.tgt_vocab.decode(top.ids), self.tgt_vocab),
                    translation=n_best_list[0].translation,
                    score=top.score,
                    n_best=n_best_list,
                    controls=used,
                    predictions=self._predictions(probs),
                )
            )
        return results

    def attention(
        self,
        source: str,
        target: str | None = None,
        beam_size: int = 1,
        max_length: int | None = None,
        politeness: str = "auto",
        stop: StopCheck = never_stop,
        ablate: frozenset[HeadRef] = frozenset(),
    ) -> AttentionResult:
        """Translate `source` (or force `target`) and return every attention map of that pair; stop is
        called before every pass and decoding step, and raises to end the call; with `ablate`, both
        decoding and the forced pass run with those heads switched off.

        With politeness "auto", a decoded translation takes the politeness predicted from the source;
        a forced target is scored under its own (これは例です。 is polite whatever the prediction).
        """
        self.check_politeness(politeness)
        src_tokens = self._fitting(self.source_tokens(source), "source")
        src = self._src_tensor(src_tokens)
        forced_tokens = None if target is None else self._fitting(self.target_tokens(target), "target")
        if forced_tokens is not None and politeness == "auto" and self.config.politeness_levels:
            politeness = target_politeness([t.text for t in forced_tokens])
        stop()
        gates = self._gates(ablate)
        encoded = self._encode(src, gates)
        ids, probs = self._politeness_ids(encoded, src, politeness)
        if forced_tokens is None:
            target_ids = self._hypotheses(src, encoded, beam_size, max_length, 1, ids, stop, gates)[0][0].ids
            tgt_tokens = self._tokens(self.tgt_vocab.decode(target_ids), self.tgt_vocab)
        else:
            tgt_tokens = forced_tokens
            target_ids = [t.id for t in tgt_tokens]
        stop()
        maps, logp = forced_attention(self.model, src, target_ids, ids, encoded, gates)
        decoder_inputs = self._tokens([BOS], self.tgt_vocab) + tgt_tokens[:-1]
        return AttentionResult(
            source_tokens=src_tokens,
            target_tokens=tgt_tokens,
            decoder_input_tokens=decoder_inputs,
            translation=join_japanese([t.text for t in tgt_tokens]),
            forced=target is not None,
            score=float(logp.sum()),
            maps=maps,
            controls=self._politeness_used(ids, 0),
            predictions=self._predictions(probs[0]),
        )

    def gate_gradients(self, sources: list[str], targets: list[str], politeness: str = "auto") -> dict[str, torch.Tensor]:
        """Per kind (L, H): Σ over the pairs of |∂L/∂ξ_h| (backends.interface.TranslationModel.gate_gradients).

        Every pair has gates of its own, (B, L, H), so one backward pass of the summed losses gives each pair's
        gradient. With politeness "auto" a target is scored under its own politeness, as a forced target is.
        """
        self.check_politeness(politeness)
        if len(sources) != len(targets):
            raise InputError(f"{len(sources)} sources but {len(targets)} targets: give one target per source")
        sums = {kind: torch.zeros(layers, heads) for kind, (layers, heads) in self.model.attention_shapes.items()}
        for start in range(0, len(sources), GRADIENT_BATCH):
            pairs = list(zip(sources[start : start + GRADIENT_BATCH], targets[start : start + GRADIENT_BATCH], strict=True))
            for kind, grads in self._batch_gate_gradients(pairs, politeness).items():
                sums[kind] += grads
        return sums

    def _batch_gate_gradients(self, pairs: list[tuple[str, str]], politeness: str) -> dict[str, torch.Tensor]:
        src_tokens = [self._fitting(self.source_tokens(s), "source") for s, _ in pairs]
        tgt_tokens = [self._fitting(self.target_tokens(t), "target") for _, t in pairs]
        src = pad_batch([[t.id for t in tokens] for tokens in src_tokens], Vocab.pad_id).to(self.device)  # (B, S)
        tgt_out = pad_batch([[t.id for t in tokens] for tokens in tgt_tokens], Vocab.pad_id).to(self.device)  # (B, T)
        tgt_in = pad_batch([[Vocab.bos_id, *(t.id for t in tokens[:-1])] for tokens in tgt_tokens], Vocab.pad_id).to(self.device)
        names = self.config.politeness_levels
        politeness_ids = None
        if names:
            own = [target_politeness([t.text for t in tokens]) for tokens in tgt_tokens]
            levels = own if politeness == "auto" else [politeness] * len(pairs)
            politeness_ids = torch.tensor([names.index(level) for level in levels], device=self.device)
        shapes = self.model.attention_shapes
        ones = {
            kind: torch.ones(len(pairs), layers, heads, device=self.device, requires_grad=True)
            for kind, (layers, heads) in shapes.items()
        }
        gates = HeadGates(**ones)
        with torch.enable_grad():
            memory, _ = self.model.encode(src, gates)
            logits, _, _ = self.model.decode(tgt_in, memory, src, politeness_ids, gates)
            nll = F.cross_entropy(logits.transpose(1, 2), tgt_out, ignore_index=Vocab.pad_id, reduction="none")  # (B, T)
            per_pair = nll.sum(1) / (tgt_out != Vocab.pad_id).sum(1)  # (B,)
            grads = torch.autograd.grad(per_pair.sum(), list(ones.values()))  # not the weights' .grad: nothing is left behind
        return {kind: grad.abs().sum(0).cpu() for kind, grad in zip(ones, grads, strict=True)}
