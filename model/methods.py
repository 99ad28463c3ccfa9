"""The attribution methods of the built-in networks: which each has, and one teacher-forced pass computing them.

The transformer has all of backends.interface.METHODS. The RNN (model/rnn.py) has weights; norms, as
‖α_ij h_j‖ (its attention has no value or output projection: model/norms.additive_norms); and saliency, which
needs only the embeddings. ALTI+ is defined over transformer blocks (residual streams, heads, W_V and W_O) and
the RNN has none, so it does not declare alti.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field

import torch
from torch import Tensor

from backends.interface import DEFAULT_SALIENCY, AttentionKind, Contributions, Method, SaliencyOptions, StopCheck, never_stop
from model.alti import alti
from model.decoding import Encoded, EncoderDecoder, decoder_inputs, evaluating, forced_attention
from model.gates import HeadGates, layer_gates
from model.norms import additive_norms, norm_maps
from model.rnn import AttentionRNN
from model.saliency import saliency
from model.transformer import EncoderTrace, Seq2SeqTransformer


def methods_of(model: EncoderDecoder) -> tuple[Method, ...]:
    """What `model` computes; saliency only where Captum (the explain extra) is installed."""
    if isinstance(model, Seq2SeqTransformer):
        methods = ("weights", "norms", "alti", "saliency")
    elif isinstance(model, AttentionRNN):
        methods = ("weights", "norms", "saliency")
    else:
        methods = ("weights",)
    return tuple(m for m in methods if m != "saliency" or _captum_installed())


@functools.cache
def _captum_installed() -> bool:
    # Looked up once a process: every call checks its method against methods_of, and find_spec searches sys.path's
    # folders each time (about 70 us).
    return importlib.util.find_spec("captum") is not None


@dataclass
class MethodMaps:
    """What one method gives for a sentence pair, batch row 0, on the CPU (see AttentionResult)."""

    logp: Tensor  # (T,) log-probability of each produced token
    maps: dict[AttentionKind, Tensor] = field(default_factory=dict)  # (L, H, Tq, Tk)
    layer_maps: dict[AttentionKind, Tensor] = field(default_factory=dict)  # (L, Tq, Tk)
    residual_shares: dict[AttentionKind, Tensor] = field(default_factory=dict)  # (L, Tq)
    contributions: Contributions | None = None


def _token_logp(logits: Tensor, target_ids: list[int]) -> Tensor:
    produced = torch.tensor(target_ids, device=logits.device)[:, None]
    return logits[0].log_softmax(-1).gather(1, produced).squeeze(1).cpu()  # (T,)


def _attention_modules(model: Seq2SeqTransformer) -> dict[AttentionKind, list]:
    return {
        "encoder": [layer.self_attn for layer in model.encoder_layers],
        "decoder": [layer.self_attn for layer in model.decoder_layers],
        "cross": [layer.cross_attn for layer in model.decoder_layers],
    }


# The methods read from Seq2SeqTransformer.trace(), whose encoder part encode_for() prepares once.
TRACED: tuple[Method, ...] = ("norms", "alti")


def encode_for(
    model: EncoderDecoder, src: Tensor, method: Method, gates: HeadGates | None = None
) -> tuple[Encoded, EncoderTrace | None]:
    """One encoder pass (under `gates`) for decoding and for `method`: (what model.encode() returns, the
    encoder's trace where the method reads one, else None)."""
    with torch.no_grad():
        if method in TRACED and isinstance(model, Seq2SeqTransformer):
            encoder = model.trace_encoder(src, gates)
            return encoder.encoded, encoder
        return model.encode(src, gates), None


def _transformer_norms(
    model: Seq2SeqTransformer, src, tgt_in, politeness, target_ids, encoder: EncoderTrace | None, gates: HeadGates | None
):
    trace = model.trace(src, tgt_in, politeness, encoder, gates)
    sides = {"encoder": trace.encoder, "decoder": trace.decoder, "cross": trace.decoder}
    maps, layer_maps = {}, {}
    with torch.no_grad():
        for kind, modules in _attention_modules(model).items():
            blocks = [layer.blocks[kind] for layer in sides[kind]]
            per_layer = [norm_maps(b.weights, b.gated_values, m.out_proj) for b, m in zip(blocks, modules, strict=True)]
            maps[kind] = torch.stack([heads[0] for heads, _ in per_layer]).cpu()
            layer_maps[kind] = torch.stack([layer[0] for _, layer in per_layer]).cpu()
    return MethodMaps(_token_logp(trace.logits, target_ids), maps, layer_maps)


def _transformer_alti(
    model: Seq2SeqTransformer, src, tgt_in, politeness, target_ids, encoder: EncoderTrace | None, gates: HeadGates | None
):
    trace = model.trace(src, tgt_in, politeness, encoder, gates)
    with torch.no_grad():
        result = alti(model, trace)
    return MethodMaps(
        _token_logp(trace.logits, target_ids),
        layer_maps={"encoder": result.encoder[0].cpu(), "decoder": result.decoder[0].cpu(), "cross": result.cross[0].cpu()},
        residual_shares={"cross": result.cross_residual[0].cpu()},
        contributions=Contributions(result.source[0].cpu(), result.prefix[0].cpu(), normalised=True),
    )


def method_maps(
    model: EncoderDecoder,
    src: Tensor,
    target_ids: list[int],
    politeness: Tensor | None = None,
    encoded: Encoded | None = None,
    method: Method = "weights",
    saliency_options: SaliencyOptions = DEFAULT_SALIENCY,
    stop: StopCheck = never_stop,
    encoder: EncoderTrace | None = None,
    gates: HeadGates | None = None,
) -> MethodMaps:
    """One teacher-forced pass of `target_ids` computing `method` (one of methods_of(model)); arguments as
    model.decoding.forced_attention, whose maps method weights returns unchanged; `encoder` the encoder trace
    encode_for() made for this src (under the same gates), where the caller has one; every method runs
    with the heads of `gates` switched off."""
    if method not in methods_of(model):
        raise ValueError(f"{type(model).__name__} has no method {method!r}")
    evaluating(model)
    tgt_in = decoder_inputs(target_ids, src.device)  # (1, T)
    if method == "weights":
        maps, logp = forced_attention(model, src, target_ids, politeness, encoded, gates)
        return MethodMaps(logp, maps)
    if method == "saliency":
        _, logp = forced_attention(model, src, target_ids, politeness, encoded, gates)
        source, prefix = saliency(model, src, tgt_in, target_ids, politeness, saliency_options, stop, gates)
        return MethodMaps(logp, contributions=Contributions(source.cpu(), prefix.cpu(), normalised=False))
    if isinstance(model, AttentionRNN):  # norms
        maps, logp = forced_attention(model, src, target_ids, politeness, encoded, gates)
        with torch.no_grad():
            memory, _ = encoded or model.encode(src, gates)
        norms = additive_norms(maps["cross"], memory.cpu())  # (L = 1, H = 1, T, S): the layer axis stands in for the batch
        cross_gate = layer_gates(gates, "cross", 0)  # (1,): a switched-off head moves nothing, whatever its weights
        if cross_gate is not None:
            norms = norms * cross_gate.cpu().reshape(1, 1, 1, 1)
        return MethodMaps(logp, {"cross": norms}, {"cross": norms[:, 0]})
    if method == "norms":
        return _transformer_norms(model, src, tgt_in, politeness, target_ids, encoder, gates)
    return _transformer_alti(model, src, tgt_in, politeness, target_ids, encoder, gates)
