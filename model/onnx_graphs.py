"""The transformer's inference passes run by ONNX Runtime on the CPU: its encoder, its teacher-forced decoder and
its decoding, the same network in half the time or less.

Eager PyTorch spends a pass at these sizes dispatching and in MKL's products of a few rows, which run at 30-40
GFLOP/s on this machine's AMD cores against 90 for a large product. In bench/model_speed.py a decoding step at
batch 1, about 150 small operations on ~4 M multiply-adds, took 3.1-3.6 ms in PyTorch and 1.3-1.5 ms here, the
encoder and forced pass of a 10-word sentence 11-15 ms against 4.7-6.2.

OnnxTransformer exports four parts of Seq2SeqTransformer, each when it is first run: encode(), decode() (the
forced pass, whose attention weights are the maps), the source's keys and values of start_decoding() and the step
(step_input, then each DecoderLayer.attend_step: the code decode_step runs); a part whose graph this process was
given (reuse_graphs) gets its session when the OnnxTransformer is made. It is an EncoderDecoder
(model.decoding) whose encode, decode, start_decoding and decode_step run the exports, so no product of a
translation or of its weights is left to MKL: in a thread where torch has run nothing yet, MKL splits a product by
the thread count it starts with, and a server's first request scored 6e-6 differently from its repeat;
the keys and values stay in the network's TransformerState, so beam search selects rows and the cache grows exactly
as it does in PyTorch. Heads switched off are gates the graphs take as inputs (1 for a head left on, which
multiplies its output exactly). ONNX Runtime multiplies in its own order, so logits and weights differ from
PyTorch's by a few 1e-6, within 1e-5 (tests/model/test_onnx_graphs.py); a sentence decodes to the same tokens
unless two candidates were that close (docs/reliability.md, "Startup and determinism"). With one thread ONNX
Runtime computes each row of a pass at PAD_MULTIPLE shapes the same way whatever the batch, as MKL does
(model.translator.Translator.batches_exactly). Traces and gradients (norms, ALTI+, saliency, gate gradients) come
from the network itself.
"""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
import weakref
from collections import OrderedDict

import numpy as np
import onnxruntime
import torch
from torch import Tensor, nn

from model.gates import HeadGates
from model.transformer import Seq2SeqTransformer, TransformerState

# The exports made last, by the digest of their network's configuration and weights (OnnxTransformer.key): each
# the graphs of the parts (PARTS) exported so far, by name. A server keeps one a built-in transformer (60 MB for
# the shipped one); a test suite builds dozens of tiny networks in one process, each part's export 0.05-0.4 s.
EXPORTS_KEPT = 16
_EXPORTS: OrderedDict[str, dict[str, bytes]] = OrderedDict()
_EXPORTS_LOCK = threading.Lock()
# The OnnxTransformers of this process: what exported_graphs() and prepare_sessions() prepare.
_LIVE: weakref.WeakSet[OnnxTransformer] = weakref.WeakSet()


def exported_graphs() -> dict[str, dict[str, bytes]]:
    """The graphs of every part of every network this process runs in ONNX Runtime (the parts not run yet exported
    now), by digest: for a process that will load the same networks (app.workers' model processes), so that it need
    not export them."""
    return {transformer.key: {part: transformer.graph(part) for part in PARTS} for transformer in list(_LIVE)}


def prepare_sessions() -> None:
    """Export and open every part of every network this process runs in ONNX Runtime: for a server, so that no
    first request exports one (the shipped model's parts take seconds)."""
    for transformer in list(_LIVE):
        for part in PARTS:
            transformer.session(part)


def reuse_graphs(graphs: dict[str, dict[str, bytes]]) -> None:
    """Take `graphs` (exported_graphs() of another process) as this process's own exports."""
    with _EXPORTS_LOCK:
        _EXPORTS.update(graphs)
        while len(_EXPORTS) > EXPORTS_KEPT:
            _EXPORTS.popitem(last=False)


def forget_graphs() -> None:
    """Drop every export this process keeps (its sessions need none of them)."""
    with _EXPORTS_LOCK:
        _EXPORTS.clear()


class _Part(nn.Module):
    """A part of `network` as the export traces it."""

    def __init__(self, network: Seq2SeqTransformer):
        super().__init__()
        self.network = network


class _Encoder(_Part):
    """What the export traces of encode(): the gates a plain input."""

    def forward(self, src: Tensor, gates: Tensor) -> tuple[Tensor, ...]:
        """src (B, S), gates (B, L, H) -> (memory (B, S, D), then per layer the self-attention weights (B, H, S, S))."""
        memory, weights = self.network.encode(src, HeadGates(encoder=gates))
        return memory, *weights


class _Decoder(_Part):
    """What the export traces of decode(), the teacher-forced pass: the gates plain inputs."""

    def forward(
        self, tgt_in: Tensor, memory: Tensor, src: Tensor, self_gates: Tensor, cross_gates: Tensor, *politeness: Tensor
    ) -> tuple[Tensor, ...]:
        """tgt_in (B, T), memory (B, S, D), src (B, S), self_gates and cross_gates (B, L, H), then politeness (B,) for a
        model with the control -> (logits (B, T, V), then per layer the self-attention weights (B, H, T, T), then per
        layer the cross-attention weights (B, H, T, S))."""
        gates = HeadGates(decoder=self_gates, cross=cross_gates)
        logits, own, cross = self.network.decode(tgt_in, memory, src, politeness[0] if politeness else None, gates)
        return logits, *own, *cross


class _Start(_Part):
    """What the export traces of start_decoding(): the cross-attention keys and values of the source."""

    def forward(self, memory: Tensor) -> tuple[Tensor, ...]:
        """memory (B, S, D) -> per decoder layer the source keys, then values (B, H, S, d_k)."""
        return tuple(t for layer in self.network.decoder_layers for t in layer.cross_attn.keys_values(memory))


class _Step(_Part):
    """What the export traces: one decoding step with the state as plain inputs, and the keys and values of every
    position so far as outputs (the caller's cache holds them)."""

    def forward(
        self, last_ids: Tensor, position: Tensor, src_mask: Tensor, self_gates: Tensor, cross_gates: Tensor, *rest: Tensor
    ) -> tuple[Tensor, ...]:
        """last_ids (B,), position 0-d, src_mask (B, 1, 1, S), self_gates and cross_gates (B, L, H), then per layer
        past keys, past values (B, H, t, d_k), source keys, source values (B, H, S, d_k), then politeness (B,) for a
        model with the control -> (logits (B, V), then per layer the keys and values of every position so far,
        this one included (B, H, t + 1, d_k): the concatenation attention needs anyway, which the caller keeps)."""
        network = self.network
        politeness = rest[-1] if network.cfg.politeness_levels else None
        y = network.step_input(last_ids, position, politeness)  # (B, 1, D)
        caches: list[Tensor] = []
        for i, layer in enumerate(network.decoder_layers):
            past_k, past_v, cross_k, cross_v = rest[4 * i : 4 * i + 4]
            h = layer.self_attn_norm(y)
            k, v = layer.self_attn.keys_values(h)  # (B, H, 1, d_k) each
            own = (torch.cat([past_k, k], 2), torch.cat([past_v, v], 2))  # (B, H, t + 1, d_k) each
            caches += own
            y = layer.attend_step(y, h, own, (cross_k, cross_v), src_mask, self_gates[:, i], cross_gates[:, i])
        return network.logits(y)[:, 0], *caches


# The parts exported of a network: its encoder, its teacher-forced decoder, the start of decoding (the source's keys
# and values), its decoding step.
PARTS = ("encoder", "decoder", "start", "step")


class OnnxTransformer:
    """`network` (a Seq2SeqTransformer on the CPU, in eval mode, whose weights no longer change) as an
    EncoderDecoder whose encode, decode and decode_step run in ONNX Runtime with `threads` threads."""

    def __init__(self, network: Seq2SeqTransformer, threads: int = 1):
        self.network = network.eval()
        self.training = False
        self._shapes = network.attention_shapes  # kind -> (layers, heads)
        self._politeness = bool(network.cfg.politeness_levels)
        self._options = onnxruntime.SessionOptions()
        self._options.intra_op_num_threads = threads
        self._options.inter_op_num_threads = 1
        self._options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy threads between passes
        self.key = self._digest()
        self._sessions: dict[str, onnxruntime.InferenceSession] = {}
        self._lock = threading.Lock()  # two requests' threads may run a part first at once: one exports it
        with _EXPORTS_LOCK:
            given = [part for part in PARTS if part in _EXPORTS.get(self.key, {})]
        for part in given:  # a model process's parts, made while it loads rather than in its first requests
            self.session(part)
        _LIVE.add(self)

    def _digest(self) -> str:
        """Of this network's configuration and weights: a process that builds the same network again (a test suite,
        a model loaded twice) reuses its exports."""
        digest = hashlib.blake2b(repr(self.network.cfg).encode(), digest_size=16)
        for name, tensor in self.network.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().view(np.uint8))
        return digest.hexdigest()

    def graph(self, part: str) -> bytes:
        """The ONNX graph of `part` (one of PARTS), exported the first time any network of these weights needs it."""
        with _EXPORTS_LOCK:
            graphs = _EXPORTS.setdefault(self.key, {})
            _EXPORTS.move_to_end(self.key)
            if part in graphs:
                return graphs[part]
        graph = getattr(self, f"_export_{part}")()
        with _EXPORTS_LOCK:
            _EXPORTS.setdefault(self.key, {})[part] = graph
            while len(_EXPORTS) > EXPORTS_KEPT:
                _EXPORTS.popitem(last=False)
        return graph

    def session(self, part: str) -> onnxruntime.InferenceSession:
        """The ONNX Runtime session of `part` (one of PARTS), made, and the part exported, when first asked for."""
        session = self._sessions.get(part)
        if session is None:
            with self._lock:
                if part not in self._sessions:
                    graph = self.graph(part)
                    self._sessions[part] = onnxruntime.InferenceSession(graph, self._options, providers=["CPUExecutionProvider"])
                session = self._sessions[part]
        return session

    def _export(self, module: nn.Module, example: dict[str, Tensor], outputs: list[str], axes: dict) -> bytes:
        graph = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            # torch.onnx's TorchScript exporter, which torch 2.13 marks deprecated: the dynamo one (tried) needs
            # onnxscript and 13 s to export the shipped model's step for a graph 0.05 ms a step faster; this one, 0.5 s.
            warnings.simplefilter("ignore", DeprecationWarning)
            # the scale 1/√d_k becomes a constant of the graph, which is what it is
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                module.eval(),  # the exporter puts the module back in the mode it had: eval, not train
                tuple(example.values()),
                graph,
                input_names=list(example),
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        return graph.getvalue()

    # Example sizes of the exports: every one of them is an axis, so no two are equal and none is 1.
    _B, _S, _T = 2, 5, 3

    def _export_encoder(self) -> bytes:
        b, s = self._B, self._S
        layers, heads = self._shapes["encoder"]
        example = {"src": torch.full((b, s), 4, dtype=torch.long), "gates": torch.ones(b, layers, heads)}
        outputs = ["memory"] + [f"weights_{i}" for i in range(layers)]
        axes = {"src": {0: "batch", 1: "source"}, "gates": {0: "batch"}, "memory": {0: "batch", 1: "source"}}
        axes |= {f"weights_{i}": {0: "batch", 2: "source", 3: "source"} for i in range(layers)}
        return self._export(_Encoder(self.network), example, outputs, axes)

    def _export_decoder(self) -> bytes:
        b, s, t = self._B, self._S, self._T
        layers, heads = self._shapes["decoder"]
        example = {
            "tgt_in": torch.full((b, t), 4, dtype=torch.long),
            "memory": torch.zeros(b, s, self.network.cfg.d_model),
            "src": torch.full((b, s), 4, dtype=torch.long),
            "self_gates": torch.ones(b, layers, heads),
            "cross_gates": torch.ones(b, layers, heads),
        }
        axes = {"tgt_in": {0: "batch", 1: "target"}, "memory": {0: "batch", 1: "source"}, "src": {0: "batch", 1: "source"}}
        axes |= {"self_gates": {0: "batch"}, "cross_gates": {0: "batch"}, "logits": {0: "batch", 1: "target"}}
        if self._politeness:
            example["politeness"] = torch.zeros(b, dtype=torch.long)
            axes["politeness"] = {0: "batch"}
        outputs = ["logits"] + [f"self_{i}" for i in range(layers)] + [f"cross_{i}" for i in range(layers)]
        axes |= {f"self_{i}": {0: "batch", 2: "target", 3: "target"} for i in range(layers)}
        axes |= {f"cross_{i}": {0: "batch", 2: "target", 3: "source"} for i in range(layers)}
        return self._export(_Decoder(self.network), example, outputs, axes)

    def _export_start(self) -> bytes:
        layers = self._shapes["decoder"][0]
        example = {"memory": torch.zeros(self._B, self._S, self.network.cfg.d_model)}
        outputs = [f"source_{what}_{i}" for i in range(layers) for what in ("keys", "values")]
        axes = {"memory": {0: "batch", 1: "source"}} | {name: {0: "batch", 2: "source"} for name in outputs}
        return self._export(_Start(self.network), example, outputs, axes)

    def _export_step(self) -> bytes:
        b, s, t = self._B, self._S, self._T
        layers, heads = self._shapes["decoder"]
        d_k = self.network.cfg.d_model // heads
        example: dict[str, Tensor] = {
            "last_ids": torch.ones(b, dtype=torch.long),
            "position": torch.tensor(t),
            "src_mask": torch.ones(b, 1, 1, s, dtype=torch.bool),
            "self_gates": torch.ones(b, layers, heads),
            "cross_gates": torch.ones(b, layers, heads),
        }
        axes = {"last_ids": {0: "batch"}, "logits": {0: "batch"}, "src_mask": {0: "batch", 3: "source"}}
        axes |= {"self_gates": {0: "batch"}, "cross_gates": {0: "batch"}}
        for i in range(layers):
            example |= {f"past_keys_{i}": torch.zeros(b, heads, t, d_k), f"past_values_{i}": torch.zeros(b, heads, t, d_k)}
            example |= {f"source_keys_{i}": torch.zeros(b, heads, s, d_k), f"source_values_{i}": torch.zeros(b, heads, s, d_k)}
            axes |= {f"past_keys_{i}": {0: "batch", 2: "past"}, f"past_values_{i}": {0: "batch", 2: "past"}}
            axes |= {f"keys_{i}": {0: "batch", 2: "positions"}, f"values_{i}": {0: "batch", 2: "positions"}}
            axes |= {f"source_keys_{i}": {0: "batch", 2: "source"}, f"source_values_{i}": {0: "batch", 2: "source"}}
        if self._politeness:
            example["politeness"] = torch.zeros(b, dtype=torch.long)
            axes["politeness"] = {0: "batch"}
        outputs = ["logits"] + [f"{what}_{i}" for i in range(layers) for what in ("keys", "values")]
        return self._export(_Step(self.network), example, outputs, axes)

    def eval(self) -> OnnxTransformer:
        return self

    def _gates(self, gates: HeadGates | None, kind: str, b: int) -> np.ndarray:
        """A kind's gates, None, (L, H) or (B, L, H) -> (B, L, H) (a gate of 1 leaves a head's output as it is)."""
        layers, heads = self._shapes[kind]
        kind_gates = None if gates is None else getattr(gates, kind)
        if kind_gates is None:
            return np.ones((b, layers, heads), dtype=np.float32)
        return np.ascontiguousarray(np.broadcast_to(kind_gates.numpy(), (b, layers, heads)))

    def encode(self, src: Tensor, gates: HeadGates | None = None) -> tuple[Tensor, list[Tensor]]:
        """Seq2SeqTransformer.encode, in ONNX Runtime: src (B, S) -> (memory (B, S, D), [(B, H, S, S)] a layer)."""
        feed = {"src": src.numpy(), "gates": self._gates(gates, "encoder", src.size(0))}
        memory, *weights = self.session("encoder").run(None, feed)
        return torch.from_numpy(memory), [torch.from_numpy(w) for w in weights]

    def decode(
        self, tgt_in: Tensor, memory: Tensor, src: Tensor, politeness: Tensor | None = None, gates: HeadGates | None = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Seq2SeqTransformer.decode, in ONNX Runtime -> (logits (B, T, V), [(B, H, T, T)] and [(B, H, T, S)] a layer)."""
        self.network.check_politeness_ids(politeness)  # before ONNX Runtime says an input is missing
        b = tgt_in.size(0)
        feed = {
            "tgt_in": tgt_in.numpy(),
            "memory": np.ascontiguousarray(memory.numpy()),
            "src": src.numpy(),
            "self_gates": self._gates(gates, "decoder", b),
            "cross_gates": self._gates(gates, "cross", b),
        }
        if politeness is not None:
            feed["politeness"] = politeness.numpy()
        logits, *weights = self.session("decoder").run(None, feed)
        layers = self._shapes["decoder"][0]
        own, cross = weights[:layers], weights[layers:]
        return torch.from_numpy(logits), [torch.from_numpy(w) for w in own], [torch.from_numpy(w) for w in cross]

    def start_decoding(self, memory: Tensor, src: Tensor, gates: HeadGates | None = None) -> TransformerState:
        """Seq2SeqTransformer.start_decoding, the source's keys and values computed in ONNX Runtime."""
        outputs = self.session("start").run(None, {"memory": np.ascontiguousarray(memory.numpy())})
        keys_values = [torch.from_numpy(t) for t in outputs]
        return self.network.decoding_state(list(zip(keys_values[::2], keys_values[1::2], strict=True)), src, gates)

    def decode_step(self, last_ids: Tensor, state: TransformerState, politeness: Tensor | None = None) -> Tensor:
        """Seq2SeqTransformer.decode_step, in ONNX Runtime: last_ids (B,) -> logits (B, V); advances `state`."""
        self.network.check_politeness_ids(politeness)  # before ONNX Runtime says an input is missing
        b = last_ids.size(0)
        first = state.layers[0]
        feed = {
            "last_ids": last_ids.numpy(),
            "position": np.array(state.position, dtype=np.int64),
            "src_mask": np.ones((b, 1, 1, first.cross_k.size(2)), dtype=bool)
            if first.src_mask is None
            else first.src_mask.numpy(),
            "self_gates": self._gates(state.gates, "decoder", b),
            "cross_gates": self._gates(state.gates, "cross", b),
        }
        for i, cache in enumerate(state.layers):
            feed |= {f"past_keys_{i}": cache.self_k.numpy(), f"past_values_{i}": cache.self_v.numpy()}
            feed |= {f"source_keys_{i}": cache.cross_k.numpy(), f"source_values_{i}": cache.cross_v.numpy()}
        if politeness is not None:
            feed["politeness"] = politeness.numpy()
        logits, *caches = self.session("step").run(None, feed)
        for i, cache in enumerate(state.layers):
            cache.hold(torch.from_numpy(caches[2 * i]), torch.from_numpy(caches[2 * i + 1]))
        return torch.from_numpy(logits)  # (B, V)
