"""The transformer's decoding step run by ONNX Runtime: the same network, less than half the time a step on the CPU.

A step at batch 1 is about 4 M multiply-adds spread over ~150 small operations, so eager PyTorch spends it
dispatching (about 16 µs an operation): 2.05 ms a step for the shipped model in bench/model_speed.py, 0.88 ms
here. Decoding was most of what a request cost (the maps come from one teacher-forced pass afterwards, which
stays in PyTorch), so this is where the time went.

StepGraph exports Seq2SeqTransformer's step (step_input, then each DecoderLayer.attend_step: the code
decode_step runs) once, when it is made, and is an EncoderDecoder (model.decoding) whose decode_step runs the
export; everything else is the network's own. The keys and values stay in the network's TransformerState, so
beam search selects rows and the cache grows exactly as it does in PyTorch. ONNX Runtime multiplies in its own
order, so a step's logits differ from PyTorch's by a few 1e-6, within 1e-5 (tests/model/test_step_graph.py); a
sentence decodes to the same tokens unless two candidates were that close (docs/reliability.md, "Startup and
determinism": 0 of 640 dev translations differ).
"""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from collections import OrderedDict

import numpy as np
import onnxruntime
import torch
from torch import Tensor, nn

from model.gates import HeadGates
from model.transformer import Seq2SeqTransformer, TransformerState

# The graphs exported last, by the digest of their network's configuration and weights (StepGraph._exported).
EXPORTS_KEPT = 4
_EXPORTS: OrderedDict[str, bytes] = OrderedDict()
_EXPORTS_LOCK = threading.Lock()


def exported_graphs() -> dict[str, bytes]:
    """The graphs this process has exported or been given, by digest: for a process that will load the same networks
    (app.workers' model processes), so that it need not export them again."""
    with _EXPORTS_LOCK:
        return dict(_EXPORTS)


def reuse_graphs(graphs: dict[str, bytes]) -> None:
    """Take `graphs` (exported_graphs() of another process) as this process's own exports."""
    with _EXPORTS_LOCK:
        _EXPORTS.update(graphs)
        while len(_EXPORTS) > EXPORTS_KEPT:
            _EXPORTS.popitem(last=False)


class _Step(nn.Module):
    """What the export traces: one decoding step with the state as plain inputs, and the keys and values of every
    position so far as outputs (the caller's cache holds them)."""

    def __init__(self, network: Seq2SeqTransformer):
        super().__init__()
        self.network = network

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


class StepGraph:
    """`network` (a Seq2SeqTransformer on the CPU, in eval mode, whose weights no longer change) as an
    EncoderDecoder whose decode_step runs in ONNX Runtime with `threads` threads."""

    def __init__(self, network: Seq2SeqTransformer, threads: int = 1):
        self.network = network.eval()
        self.training = False
        cfg = network.cfg
        self._layers, self._heads = cfg.n_decoder_layers, cfg.n_heads
        self._inputs = ["last_ids", "position", "src_mask", "self_gates", "cross_gates"]
        for i in range(self._layers):
            self._inputs += [f"past_keys_{i}", f"past_values_{i}", f"source_keys_{i}", f"source_values_{i}"]
        if cfg.politeness_levels:
            self._inputs.append("politeness")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy threads between steps
        self._session = onnxruntime.InferenceSession(self._exported(), options, providers=["CPUExecutionProvider"])

    def _exported(self) -> bytes:
        """The graph of this network: exported once for each configuration and weights (a digest of them), so a
        process that builds the same network again (a test suite, a model loaded twice) reuses the export."""
        digest = hashlib.blake2b(repr(self.network.cfg).encode(), digest_size=16)
        for name, tensor in self.network.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().view(np.uint8))
        key = digest.hexdigest()
        with _EXPORTS_LOCK:
            if key in _EXPORTS:
                _EXPORTS.move_to_end(key)
                return _EXPORTS[key]
        graph = self._export()
        with _EXPORTS_LOCK:
            _EXPORTS[key] = graph
            while len(_EXPORTS) > EXPORTS_KEPT:
                _EXPORTS.popitem(last=False)
        return graph

    def _export(self) -> bytes:
        cfg = self.network.cfg
        b, s, t, d_k = 2, 3, 2, cfg.d_model // cfg.n_heads  # example sizes: every one of them is an axis
        example: dict[str, Tensor] = {
            "last_ids": torch.ones(b, dtype=torch.long),
            "position": torch.tensor(t),
            "src_mask": torch.ones(b, 1, 1, s, dtype=torch.bool),
            "self_gates": torch.ones(b, self._layers, self._heads),
            "cross_gates": torch.ones(b, self._layers, self._heads),
        }
        axes = {"last_ids": {0: "batch"}, "logits": {0: "batch"}, "src_mask": {0: "batch", 3: "source"}}
        axes |= {"self_gates": {0: "batch"}, "cross_gates": {0: "batch"}}
        for i in range(self._layers):
            example |= {
                f"past_keys_{i}": torch.zeros(b, self._heads, t, d_k),
                f"past_values_{i}": torch.zeros(b, self._heads, t, d_k),
            }
            example |= {
                f"source_keys_{i}": torch.zeros(b, self._heads, s, d_k),
                f"source_values_{i}": torch.zeros(b, self._heads, s, d_k),
            }
            axes |= {f"past_keys_{i}": {0: "batch", 2: "past"}, f"past_values_{i}": {0: "batch", 2: "past"}}
            axes |= {f"keys_{i}": {0: "batch", 2: "positions"}, f"values_{i}": {0: "batch", 2: "positions"}}
            axes |= {f"source_keys_{i}": {0: "batch", 2: "source"}, f"source_values_{i}": {0: "batch", 2: "source"}}
        if cfg.politeness_levels:
            example["politeness"] = torch.zeros(b, dtype=torch.long)
            axes["politeness"] = {0: "batch"}
        outputs = ["logits"] + [f"{what}_{i}" for i in range(self._layers) for what in ("keys", "values")]
        graph = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            # torch.onnx's TorchScript exporter, which torch 2.13 marks deprecated: the dynamo one (tried) needs
            # onnxscript and 13 s to export the shipped model for a graph 0.05 ms a step faster; this one, 0.5 s.
            warnings.simplefilter("ignore", DeprecationWarning)
            # the scale 1/√d_k becomes a constant of the graph, which is what it is
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                _Step(self.network).eval(),  # the exporter puts the module back in the mode it had: eval, not train
                tuple(example[name] for name in self._inputs),
                graph,
                input_names=self._inputs,
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        return graph.getvalue()

    def eval(self) -> StepGraph:
        return self

    def encode(self, src: Tensor, gates: HeadGates | None = None) -> tuple[Tensor, list[Tensor]]:
        return self.network.encode(src, gates)

    def decode(
        self, tgt_in: Tensor, memory: Tensor, src: Tensor, politeness: Tensor | None = None, gates: HeadGates | None = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        return self.network.decode(tgt_in, memory, src, politeness, gates)

    def start_decoding(self, memory: Tensor, src: Tensor, gates: HeadGates | None = None) -> TransformerState:
        return self.network.start_decoding(memory, src, gates)

    def _gates(self, gates: Tensor | None, b: int) -> np.ndarray:
        """A kind's gates, None, (L, H) or (B, L, H) -> (B, L, H) (a gate of 1 leaves a head's output as it is)."""
        if gates is None:
            return np.ones((b, self._layers, self._heads), dtype=np.float32)
        return np.ascontiguousarray(np.broadcast_to(gates.numpy(), (b, self._layers, self._heads)))

    def decode_step(self, last_ids: Tensor, state: TransformerState, politeness: Tensor | None = None) -> Tensor:
        """Seq2SeqTransformer.decode_step, in ONNX Runtime: last_ids (B,) -> logits (B, V); advances `state`."""
        self.network.check_politeness_ids(politeness)  # before ONNX Runtime says an input is missing
        b = last_ids.size(0)
        first = state.layers[0]
        gates = state.gates or HeadGates()
        feed = {
            "last_ids": last_ids.numpy(),
            "position": np.array(state.position, dtype=np.int64),
            "src_mask": np.ones((b, 1, 1, first.cross_k.size(2)), dtype=bool)
            if first.src_mask is None
            else first.src_mask.numpy(),
            "self_gates": self._gates(gates.decoder, b),
            "cross_gates": self._gates(gates.cross, b),
        }
        for i, cache in enumerate(state.layers):
            feed |= {f"past_keys_{i}": cache.self_k.numpy(), f"past_values_{i}": cache.self_v.numpy()}
            feed |= {f"source_keys_{i}": cache.cross_k.numpy(), f"source_values_{i}": cache.cross_v.numpy()}
        if politeness is not None:
            feed["politeness"] = politeness.numpy()
        logits, *caches = self._session.run(None, feed)
        for i, cache in enumerate(state.layers):
            cache.hold(torch.from_numpy(caches[2 * i]), torch.from_numpy(caches[2 * i + 1]))
        return torch.from_numpy(logits)  # (B, V)
