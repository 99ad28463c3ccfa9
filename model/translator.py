"""The built-in transformer's translator: raw text in, translations and labelled attention maps out.

It returns the model interface's result types (backends.interface); backends.builtin serves it
through that interface, and the model CLIs (translate, evaluate, train) call it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from backends.interface import (
    DEFAULT_SALIENCY,
    AttentionKind,
    AttentionQuery,
    AttentionResult,
    HeadExplanation,
    HeadRef,
    InputError,
    Method,
    SaliencyOptions,
    StopCheck,
    Token,
    Translation,
    never_stop,
)
from backends.interface import Hypothesis as NBestEntry
from model.checkpoint import LoadedModel, load_checkpoint
from model.data import pad_batch
from model.decoding import Encoded, EncoderDecoder, Hypothesis, beam_search, decoder_inputs, forced_attention_batch, greedy_decode
from model.explanation import explain_head
from model.gates import HeadGates
from model.methods import MethodMaps, encode_for, method_maps, methods_of
from model.onnx_graphs import OnnxTransformer
from model.politeness import target_politeness
from model.tokenize import segment_japanese, tokenize_english
from model.transformer import EncoderTrace, Seq2SeqTransformer
from model.vocab import BOS, EOS, Vocab

POLITENESS = "politeness"  # the control's name in Translation.controls and .predictions
GRADIENT_BATCH = 32  # pairs per backward pass of gate_gradients

# Decoded in a batch, a sentence's log-probabilities differ from its own alone by rounding (padding, other matrix
# shapes): at most 1.1e-5 over 320 dev sentences of the shipped model in batches of 16 (bench/batch_noise.py).
# A choice won by a margin wider than NEAR_TIE is the one decoding alone makes; a sentence with a closer call is
# decoded again alone (there: 1 in 320 greedy, 5 in 320 at beam 4).
NEAR_TIE = 1e-3

# Where batches are exact (Translator.batches_exactly), a source and a forced pass's decoder inputs are padded to a
# multiple of this many positions: a sentence runs at the same shapes alone as in any batch of its length class,
# and every matrix product has at least this many rows (MKL computed a row differently below 4; ONNX Runtime, which
# runs these passes on the CPU now, is checked at these shapes: tests/model/test_onnx_graphs.py).
PAD_MULTIPLE = 8

# The methods whose encoder and forced passes a batch shares where batches are exact: their maps are the weights the
# passes return. The others read traces or gradients of one sentence, and run alone at the sentence's own length.
SHARED_PASS_METHODS = frozenset({"weights"})


def padded_length(length: int) -> int:
    return -(-length // PAD_MULTIPLE) * PAD_MULTIPLE


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def join_japanese(tokens: list[str]) -> str:
    return "".join(t for t in tokens if t not in (EOS, BOS))


@dataclass
class _Prepared:
    """One attention call made ready to decode: its tokens and settings (_parse), then its encoding (_prepare_all)."""

    source_tokens: list[Token]
    src: torch.Tensor  # (1, S), padded to PAD_MULTIPLE where the call shares passes
    forced_tokens: list[Token] | None
    beam_size: int
    max_length: int | None
    politeness_name: str  # "auto" or a level: what _politeness_ids makes the ids of
    stop: StopCheck
    method: Method
    saliency: SaliencyOptions
    ablate: frozenset[HeadRef]  # the heads switched off: calls batch together only with the same set
    gates: HeadGates | None  # their gates (model.gates); None: every head on
    shares_passes: bool  # padded (PAD_MULTIPLE): its encoder and forced passes may run in a batch, exactly
    encoded: Encoded | None = None  # its source encoded (alone, or in a batch of its padded length)
    encoder: EncoderTrace | None = None  # the encoder's trace, where the method reads one (model.methods.encode_for)
    politeness_ids: torch.Tensor | None = None  # (1,), or None without politeness control
    probabilities: dict[str, float] = field(default_factory=dict)


def _batch_order(key: tuple[int, frozenset[HeadRef]]) -> tuple:
    """Batches in a fixed order: by beam size, then by the heads switched off."""
    beam_size, ablate = key
    return beam_size, sorted((ref.kind, ref.layer, ref.head) for ref in ablate)


@dataclass
class TranslationPair:
    """A source and the target of its teacher-forced pass (forced, or decoded first), ready to run."""

    source_tokens: list[Token]
    src: torch.Tensor  # (1, S)
    target_tokens: list[Token]
    target_ids: list[int]
    politeness: torch.Tensor | None  # (1,) the politeness id decoded with, for a model with the control
    probabilities: dict[str, float]  # the politeness the model predicted from the source
    encoded: Encoded
    encoder: EncoderTrace | None  # the encoder's trace, where the method reads one (model.methods.encode_for)
    gates: HeadGates | None  # the heads switched off for both passes; None: none
    forced: bool
    shares_passes: bool  # padded (PAD_MULTIPLE): its forced pass may run in a batch, exactly


class Translator:
    def __init__(self, loaded: LoadedModel, device: torch.device | str = "cpu"):
        self.device = resolve_device(str(device))
        self.model = loaded.model.to(self.device).eval()
        # What the passes that return only weights and logits run on (encoding, decoding, the forced pass of the
        # weights): on the CPU the transformer's go through ONNX Runtime (model.onnx_graphs), with the threads torch
        # has now (the server sets them first); anything else runs in PyTorch. Traces and gradients (the other
        # methods, gate gradients) come from self.model, the network itself.
        on_cpu_transformer = isinstance(self.model, Seq2SeqTransformer) and self.device.type == "cpu"
        self.inference: EncoderDecoder = (
            OnnxTransformer(self.model, torch.get_num_threads()) if on_cpu_transformer else self.model
        )
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

    def _src_tensor(self, tokens: list[Token], padded: bool = False) -> torch.Tensor:
        """(1, S) ids; padded: S rounded up to PAD_MULTIPLE with pad ids."""
        ids = [t.id for t in tokens]
        if padded:
            ids += [Vocab.pad_id] * (padded_length(len(ids)) - len(ids))
        return torch.tensor([ids], device=self.device)

    @property
    def batches_exactly(self) -> bool:
        """Whether a batch's encoder and forced passes give each of its sentences the bytes it gets alone, when every
        sentence runs padded to PAD_MULTIPLE: on the CPU with one torch thread (the server's default: one per model
        call) the passes run in ONNX Runtime with one thread (self.inference), which computes each row of a pass at
        those shapes the same way whatever the number of rows. The RNN's bidirectional encoder reads padding, and
        several threads split a product by its shape, so there each sentence runs alone."""
        return isinstance(self.model, Seq2SeqTransformer) and self.device.type == "cpu" and torch.get_num_threads() == 1

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
        return self.inference.encode(src, gates)

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
        max_length: int | None | list[int | None],
        n_best: int,
        politeness: torch.Tensor | None,
        stop: StopCheck | list[StopCheck],
        gates: HeadGates | None = None,
    ) -> list[list[Hypothesis] | Exception]:
        """src: (B, S) -> per sentence, its best hypotheses, best first (one for greedy), or, with a stop check per
        sentence, the exception that dropped it."""
        if beam_size <= 1:
            greedy = greedy_decode(self.inference, src, max_length, politeness, encoded, stop, gates)
            return [h if isinstance(h, Exception) else [h] for h in greedy]
        return beam_search(
            self.inference, src, beam_size, max_length, n_best=n_best, politeness=politeness, encoded=encoded, stop=stop,
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
        method: Method = "weights",
        saliency: SaliencyOptions = DEFAULT_SALIENCY,
        ablate: frozenset[HeadRef] = frozenset(),
    ) -> AttentionResult:
        """Translate `source` (or force `target`) and return every map of `method` for that pair
        (model.methods; `saliency` says how method saliency attributes); stop is called before every
        pass and decoding step, and raises to end the call; with `ablate`, both decoding and the forced
        pass run with those heads switched off.

        With politeness "auto", a decoded translation takes the politeness predicted from the source;
        a forced target is scored under its own (これは例です。 is polite whatever the prediction).
        """
        query = AttentionQuery(source, target, beam_size, max_length, {POLITENESS: politeness}, method, saliency, ablate)
        result = self.attention_batch([query], [stop])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def attention_batch(self, queries: list[AttentionQuery], stops: list[StopCheck]) -> list[AttentionResult | Exception]:
        """attention() of several calls, each with its own stop check; a call that is stopped or refused gets its
        exception in its place. Every call gets the bytes attention() gives it alone.

        Free translations of one beam size are decoded together, each sentence leaving the batch at its own end; a
        sentence whose decoding made a call closer than NEAR_TIE is decoded again alone, so its tokens are those it
        gets alone too. Where batches are exact (batches_exactly), the calls of a method in SHARED_PASS_METHODS
        also share their encoder passes (by padded source length) and forced passes (by padded source and target
        lengths); any other call runs its own.
        """
        results: list[AttentionResult | Exception | None] = [None] * len(queries)
        prepared: dict[int, _Prepared] = {}
        for i, outcome in enumerate(self._prepare_all(queries, stops, self.batches_exactly)):
            if isinstance(outcome, Exception):  # refused input, or stopped before its encoder pass
                results[i] = outcome
            else:
                prepared[i] = outcome
        decoded: dict[int, list[int]] = {}
        free = [i for i, call in prepared.items() if call.forced_tokens is None]
        # one batch per beam size and set of heads switched off (the gates are the batch's)
        for batch in sorted({(prepared[i].beam_size, prepared[i].ablate) for i in free}, key=_batch_order):
            group = [i for i in free if (prepared[i].beam_size, prepared[i].ablate) == batch]
            for i, outcome in zip(group, self._decode_together([prepared[i] for i in group]), strict=True):
                if isinstance(outcome, Exception):
                    results[i] = outcome
                else:
                    decoded[i] = outcome
        pairs: dict[int, TranslationPair] = {}
        for i, call in prepared.items():
            if results[i] is None:
                try:
                    pairs[i] = self._paired(call, decoded.get(i))
                except Exception as exc:  # stopped before its forced pass
                    results[i] = exc
        shapes: dict[tuple, list[int]] = {}  # the calls whose forced passes share a batch, by shape and heads off
        for i, pair in pairs.items():
            if pair.shares_passes:
                shapes.setdefault((pair.src.size(1), padded_length(len(pair.target_ids)), prepared[i].ablate), []).append(i)
            else:
                try:
                    results[i] = self._maps(pair, prepared[i].method, prepared[i].saliency, prepared[i].stop)
                except Exception as exc:  # stopped during its forced pass
                    results[i] = exc
        for (_, target_length, _), group in shapes.items():
            together = self._weights_together([pairs[i] for i in group], target_length)
            for i, result in zip(group, together, strict=True):
                results[i] = result
        return results

    def _prepare_all(self, queries: list[AttentionQuery], stops: list[StopCheck], exact: bool) -> list[_Prepared | Exception]:
        """Each call made ready to decode, or the exception that refused or stopped it. With `exact` (batches_exactly),
        the calls of SHARED_PASS_METHODS are padded and encoded together by padded source length and heads switched
        off (each sentence's encoding is then the bytes it gets alone); any other call is encoded alone."""
        parsed: list[_Prepared | Exception] = []
        for query, stop in zip(queries, stops, strict=True):
            try:
                parsed.append(self._parse(query, stop, exact and query.method in SHARED_PASS_METHODS))
            except Exception as exc:
                parsed.append(exc)
        groups: dict[tuple, list[int]] = {}
        for i, call in enumerate(parsed):
            if not isinstance(call, Exception):
                groups.setdefault((call.src.size(1), call.ablate) if call.shares_passes else ("alone", i), []).append(i)
        for members in groups.values():
            live = []
            for i in members:
                try:
                    parsed[i].stop()
                    live.append(i)
                except Exception as exc:  # stopped before its encoder pass
                    parsed[i] = exc
            if not live:
                continue
            calls = [parsed[i] for i in live]
            if calls[0].shares_passes:
                memory, weights = self._encode(torch.cat([call.src for call in calls]), calls[0].gates)
                encodings = [((memory[r : r + 1], [w[r : r + 1] for w in weights]), None) for r in range(len(calls))]
            else:
                encodings = [encode_for(self._passes(calls[0].method), calls[0].src, calls[0].method, calls[0].gates)]
            for i, call, (encoded, encoder) in zip(live, calls, encodings, strict=True):
                # one row at a time: the politeness head's product of one row is what it computes alone
                ids, probs = self._politeness_ids(encoded, call.src, call.politeness_name)
                parsed[i] = replace(call, encoded=encoded, encoder=encoder, politeness_ids=ids, probabilities=probs[0])
        return parsed

    def _parse(self, query: AttentionQuery, stop: StopCheck, shares_passes: bool) -> _Prepared:
        """The call's tokens and settings, checked, not yet encoded."""
        if query.method not in methods_of(self.model):
            methods = ", ".join(methods_of(self.model))
            raise InputError(f"this model has no method {query.method!r}; its methods are {methods}")
        politeness = (query.controls or {}).get(POLITENESS, "auto")
        self.check_politeness(politeness)
        src_tokens = self._fitting(self.source_tokens(query.source), "source")
        forced_tokens = None if query.target is None else self._fitting(self.target_tokens(query.target), "target")
        if forced_tokens is not None and politeness == "auto" and self.config.politeness_levels:
            politeness = target_politeness([t.text for t in forced_tokens])
        return _Prepared(
            src_tokens,
            self._src_tensor(src_tokens, shares_passes),
            forced_tokens,
            query.beam_size,
            query.max_length,
            politeness,
            stop,
            query.method,
            query.saliency,
            frozenset(query.ablate),
            self._gates(query.ablate),
            shares_passes,
        )

    def _decode_alone(self, call: _Prepared) -> list[int] | Exception:
        try:
            hyps = self._hypotheses(
                call.src, call.encoded, call.beam_size, call.max_length, 1, call.politeness_ids, call.stop, call.gates
            )
        except Exception as exc:  # stopped
            return exc
        return hyps[0][0].ids

    def _decode_together(self, calls: list[_Prepared]) -> list[list[int] | Exception]:
        """The produced ids of each call (decoded with the same beam size), or the exception that stopped it."""
        if len(calls) == 1:
            return [self._decode_alone(calls[0])]
        src = pad_batch([call.src[0].tolist() for call in calls], Vocab.pad_id).to(self.device)  # (B, S)
        memories = [call.encoded[0][0] for call in calls]  # (S_i, D) each, as encoded alone
        memory = memories[0].new_zeros(len(calls), src.size(1), memories[0].size(-1))  # (B, S, D)
        for row, encoded in enumerate(memories):
            memory[row, : encoded.size(0)] = encoded
        politeness = None if calls[0].politeness_ids is None else torch.cat([call.politeness_ids for call in calls])
        hyps = self._hypotheses(
            src,
            (memory, []),
            calls[0].beam_size,
            [call.max_length for call in calls],
            1,
            politeness,
            [call.stop for call in calls],
            calls[0].gates,
        )
        outcomes: list[list[int] | Exception] = []
        for call, outcome in zip(calls, hyps, strict=True):
            if isinstance(outcome, Exception):
                outcomes.append(outcome)
            elif outcome[0].margin < NEAR_TIE:  # a close call: made as decoding alone makes it
                outcomes.append(self._decode_alone(call))
            else:
                outcomes.append(outcome[0].ids)
        return outcomes

    def _pair(
        self,
        source: str,
        target: str | None,
        beam_size: int,
        max_length: int | None,
        politeness: str,
        stop: StopCheck,
        method: Method = "weights",
        ablate: frozenset[HeadRef] = frozenset(),
    ) -> TranslationPair:
        """The source and the target of one teacher-forced pass: `target` forced, or the translation decoded alone
        (with the heads of `ablate` switched off).

        With politeness "auto", a decoded translation takes the politeness predicted from the source;
        a forced target is scored under its own (これは例です。 is polite whatever the prediction).
        """
        query = AttentionQuery(source, target, beam_size, max_length, {POLITENESS: politeness}, method, ablate=ablate)
        call = self._prepare_all([query], [stop], exact=False)[0]
        if isinstance(call, Exception):
            raise call
        decoded = None
        if call.forced_tokens is None:
            decoded = self._decode_alone(call)
            if isinstance(decoded, Exception):
                raise decoded
        return self._paired(call, decoded)

    def _paired(self, call: _Prepared, target_ids: list[int] | None) -> TranslationPair:
        """The call's source and the target of its teacher-forced pass: its produced ids, or its forced target."""
        if target_ids is None:
            tgt_tokens = call.forced_tokens
            target_ids = [t.id for t in tgt_tokens]
        else:
            tgt_tokens = self._tokens(self.tgt_vocab.decode(target_ids), self.tgt_vocab)
        call.stop()
        return TranslationPair(
            call.source_tokens,
            call.src,
            tgt_tokens,
            target_ids,
            call.politeness_ids,
            call.probabilities,
            call.encoded,
            call.encoder,
            call.gates,
            call.forced_tokens is not None,
            call.shares_passes,
        )

    def _decoder_inputs(self, pair: TranslationPair) -> list[Token]:
        return self._tokens([BOS], self.tgt_vocab) + pair.target_tokens[:-1]

    def _passes(self, method: Method) -> EncoderDecoder:
        """What the passes of `method` run on: the maps of SHARED_PASS_METHODS are the weights the passes return
        (self.inference), the others read traces or gradients of the network itself."""
        return self.inference if method in SHARED_PASS_METHODS else self.model

    def _maps(self, pair: TranslationPair, method: Method, saliency: SaliencyOptions, stop: StopCheck) -> AttentionResult:
        """Every map of `method` in one teacher-forced pass over the pair."""
        computed = method_maps(
            self._passes(method),
            pair.src,
            pair.target_ids,
            pair.politeness,
            pair.encoded,
            method,
            saliency,
            stop,
            pair.encoder,
            pair.gates,
        )
        return self._result(pair, method, computed)

    def _weights_together(self, pairs: list[TranslationPair], target_length: int) -> list[AttentionResult]:
        """The weights of pairs of one padded source length, in one forced pass with decoder inputs of
        `target_length` (PAD_MULTIPLE) positions: a pair's rows are the bytes its own pass at these shapes gives."""
        first = pairs[0]
        memory = torch.cat([pair.encoded[0] for pair in pairs])  # (B, S, D)
        encoder_weights = [torch.cat(layer) for layer in zip(*(pair.encoded[1] for pair in pairs), strict=True)]
        politeness = None if first.politeness is None else torch.cat([pair.politeness for pair in pairs])
        passes = forced_attention_batch(
            self.inference,
            torch.cat([pair.src for pair in pairs]),
            [pair.target_ids for pair in pairs],
            politeness,
            (memory, encoder_weights),
            first.gates,
            target_length,
        )
        return [self._result(pair, "weights", MethodMaps(logp, maps)) for pair, (maps, logp) in zip(pairs, passes, strict=True)]

    def _result(self, pair: TranslationPair, method: Method, computed: MethodMaps) -> AttentionResult:
        return AttentionResult(
            source_tokens=pair.source_tokens,
            target_tokens=pair.target_tokens,
            decoder_input_tokens=self._decoder_inputs(pair),
            translation=join_japanese([t.text for t in pair.target_tokens]),
            forced=pair.forced,
            score=float(computed.logp.sum()),
            maps=computed.maps,
            controls=self._politeness_used(pair.politeness, 0),
            predictions=self._predictions(pair.probabilities),
            method=method,
            layer_maps=computed.layer_maps,
            residual_shares=computed.residual_shares,
            contributions=computed.contributions,
        )

    def explain(
        self,
        source: str,
        target: str | None,
        kind: AttentionKind,
        layer: int,
        head: int,
        query: int,
        beam_size: int = 1,
        max_length: int | None = None,
        politeness: str = "auto",
        stop: StopCheck = never_stop,
        ablate: frozenset[HeadRef] = frozenset(),
    ) -> HeadExplanation:
        """How `head` of `layer` computed the `kind` attention row of `query` for this pair: the same pass as
        attention() (with the heads of `ablate` switched off), traced (Seq2SeqTransformer.trace). InputError
        when the query is past its axis."""
        if not isinstance(self.model, Seq2SeqTransformer):
            raise InputError("this model's attention is not made of queries, keys and values: it cannot be explained")
        pair = self._pair(source, target, beam_size, max_length, politeness, stop, ablate=frozenset(ablate))
        rows = pair.source_tokens if kind == "encoder" else pair.target_tokens
        if not 0 <= query < len(rows):
            axis = "source" if kind == "encoder" else "translation"
            raise InputError(
                f"query {query} out of range: the {axis} has {len(rows)} tokens, so valid queries are 0 to {len(rows) - 1}"
            )
        trace = self.model.trace(pair.src, decoder_inputs(pair.target_ids, self.device), pair.politeness, gates=pair.gates)
        return explain_head(
            self.model,
            trace,
            kind,
            layer,
            head,
            query,
            source_tokens=pair.source_tokens,
            target_tokens=pair.target_tokens,
            decoder_input_tokens=self._decoder_inputs(pair),
            translation=join_japanese([t.text for t in pair.target_tokens]),
            forced=pair.forced,
            controls=self._politeness_used(pair.politeness, 0),
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
