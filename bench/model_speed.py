"""Milliseconds for translate + all attention maps on CPU, by source length, against the machine's floor.

    python bench/model_speed.py [--checkpoint model/checkpoints/en-ja.pt] [--repeats 20] [--beam 1]

For sources of 5, 10, 20 and 40 tokens it times the model interface's attention() (decode, then the
one teacher-forced pass that collects every map), as the service calls it, and prints the median
and p90 of repeated runs, then the physical-limit line of each size: the FLOPs of the call (counted by
torch.utils.flop_counter over every matrix product it runs), the large-GEMM peak measured here
(2048 x 2048 float32 products, best of several, with the same thread count), the floor those give
(FLOPs / peak) and the ratio of the measured median to that floor; and its memory side: the bytes of weights the
call reads (every parameter each operation reads, counted by a dispatch mode over the same call; activations
left out, so a lower bound), the read bandwidth measured here (summing a 256 MiB float32 tensor, best of several,
the same thread count), the floor those give and the ratio to it. Then the encoder and forced pass of a 10-word
sentence, and a decoding step at batch 1 and 16, in PyTorch and in ONNX Runtime (model.onnx_graphs: what the
service runs them in on the CPU), interleaved. Last, what batching gives: 16 distinct dev-like 10-word sentences
one attention() call after another against one attention_batch call (as the server batches concurrent requests),
interleaved, in ms per sentence.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interleave import in_turn  # noqa: E402

from backends.discovery import load_model  # noqa: E402
from backends.interface import AttentionQuery, never_stop  # noqa: E402

WORDS = "the old man said that he would like to read this interesting book about japanese history again".split()


def sentence(n_tokens: int) -> str:
    """n_tokens tokens in all (the last one a full stop), made of ordinary training-vocabulary words."""
    words = (WORDS * (n_tokens // len(WORDS) + 1))[: n_tokens - 1]
    return " ".join(words) + " ."


def gemm_peak(size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the best of `repeats` float32 size x size x size matrix products."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def read_bandwidth(mib: int = 256, repeats: int = 5) -> float:
    """Bytes/s of the best of `repeats` sums of a `mib` MiB float32 tensor: the rate weights stream in from memory."""
    data = torch.ones(mib * 2**20 // 4)
    data.sum()  # warm-up
    return data.nbytes / min(_timed(data.sum) for _ in range(repeats))


class WeightReads(TorchDispatchMode):
    """Counts the bytes of `parameters` the operations under it read: a whole tensor for most operations, only
    the rows looked up for an embedding, nothing for a view (it reads no data)."""

    def __init__(self, parameters):
        super().__init__()
        self.storages = {p.untyped_storage().data_ptr() for p in parameters}
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            if func is torch.ops.aten.embedding.default:
                weight, indices = args[0], args[1]
                if weight.untyped_storage().data_ptr() in self.storages:
                    self.bytes += indices.numel() * weight.shape[1] * weight.element_size()
            else:
                for arg in (*args, *(kwargs or {}).values()):
                    if isinstance(arg, torch.Tensor) and arg.untyped_storage().data_ptr() in self.storages:
                        self.bytes += _distinct_bytes(arg)
        return func(*args, **(kwargs or {}))


def _distinct_bytes(tensor: torch.Tensor) -> int:
    """The bytes a tensor's elements occupy, a broadcast dimension (stride 0) counted once."""
    distinct = math.prod(size for size, stride in zip(tensor.shape, tensor.stride(), strict=True) if stride != 0)
    return distinct * tensor.element_size()


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


@contextmanager
def in_pytorch(translator):
    """The translator's passes in PyTorch for a while, instead of ONNX Runtime (model.onnx_graphs)."""
    inference, translator.inference = translator.inference, translator.model
    try:
        yield
    finally:
        translator.inference = inference


def flops(model, text: str, beam: int) -> int:
    # torch's counter sees no product ONNX Runtime runs, so it counts the call run in PyTorch: the same products
    with in_pytorch(model.translator), FlopCounterMode(display=False) as counter:
        model.attention(text, beam_size=beam)
    return counter.get_total_flops()


def weight_bytes(model, text: str, beam: int) -> int:
    # counted, as the FLOPs are, on the call run in PyTorch: ONNX Runtime's passes read the same weights (its copy)
    network = model.translator.model
    with in_pytorch(model.translator), WeightReads([*network.parameters(), *network.buffers()]) as reads:
        model.attention(text, beam_size=beam)
    return reads.bytes


def floor_table(medians: dict[int, float], heading: str, unit: str, work_of, rate: float) -> None:
    """One side of the physical limit, by source length: the call's work (work_of(n), printed in millions of `unit`),
    the floor it gives at `rate` a second, the measured median ms and its ratio to that floor."""
    print(heading)
    print(f"{'source tokens':>13} {unit:>13} {'floor ms':>9} {'median ms':>10} {'x floor':>8}")
    for n, median in medians.items():
        work = work_of(n)
        floor = work / rate * 1000
        print(f"{n:>13} {work / 1e6:>13.0f} {floor:>9.2f} {median:>10.1f} {median / floor:>8.1f}")


def engine_times(translator, work, repeats: int) -> dict[str, float]:
    """Median ms of work(model) with the translator's network in PyTorch and with its ONNX Runtime passes, in turns."""
    engines = {"PyTorch": translator.model, "ONNX Runtime": translator.inference}
    times: dict[str, list[float]] = {name: [] for name in engines}
    with torch.inference_mode():
        for repeat in range(repeats):
            for name in in_turn(engines, repeat):
                times[name].append(_timed(lambda: work(engines[name])) * 1000)  # noqa: B023
    return {name: statistics.median(values) for name, values in times.items()}


def forced_pass_times(translator, source: int, target: int, repeats: int) -> dict[str, float]:
    """Median ms of the encoder pass then the teacher-forced pass of one sentence (`source` and `target` positions, as
    the translator pads them), in PyTorch and in ONNX Runtime, interleaved."""
    network = translator.model
    src = torch.tensor([[4 + j % 50 for j in range(source - 1)] + [3]])  # (1, S) ids
    tgt_in = torch.tensor([[1] + [4 + j % 50 for j in range(target - 1)]])  # (1, T)
    politeness = torch.zeros(1, dtype=torch.long) if network.cfg.politeness_levels else None

    def passes(model) -> None:
        memory, _ = model.encode(src)
        model.decode(tgt_in, memory, src, politeness)

    return engine_times(translator, passes, repeats)


def step_times(translator, batch: int, steps: int, repeats: int) -> dict[str, float]:
    """Median ms a decoding step, at `batch` rows from the start for `steps` steps, in PyTorch and in ONNX Runtime,
    interleaved."""
    network = translator.model
    src = torch.tensor([[4 + (row + j) % 50 for j in range(10)] + [3] for row in range(batch)])  # (B, 11) ids
    politeness = torch.zeros(batch, dtype=torch.long) if network.cfg.politeness_levels else None
    memory, _ = network.encode(src)
    tokens = torch.randint(4, network.cfg.tgt_vocab_size, (batch, steps))

    def decode(decoder) -> None:
        state = decoder.start_decoding(memory, src)
        for t in range(steps):
            decoder.decode_step(tokens[:, t], state, politeness)

    return {name: ms / steps for name, ms in engine_times(translator, decode, repeats).items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="model/checkpoints/en-ja.pt")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    _, model = load_model(args.checkpoint, "cpu")
    print(
        f"checkpoint {args.checkpoint}, beam {args.beam}, {torch.get_num_threads()} threads, {args.repeats} repeats, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'source tokens':>13} {'target tokens':>13} {'median ms':>10} {'p90 ms':>8}")
    medians = {}
    for n in (5, 10, 20, 40):
        text = sentence(n)
        model.attention(text, beam_size=args.beam)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = model.attention(text, beam_size=args.beam)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        medians[n] = statistics.median(times)
        print(f"{len(result.source_tokens) - 1:>13} {len(result.target_tokens):>13} {medians[n]:>10.1f} {p90:>8.1f}")

    threads = torch.get_num_threads()
    peak, bandwidth = gemm_peak(), read_bandwidth()
    floor_table(
        medians, f"\nphysical limit: large-GEMM peak {peak / 1e9:.1f} GFLOP/s ({threads} threads, 2048^3 float32)",
        "MFLOP", lambda n: flops(model, sentence(n), args.beam), peak,
    )  # fmt: skip
    floor_table(
        medians, f"\nmemory side: read bandwidth {bandwidth / 1e9:.1f} GB/s ({threads} threads, 256 MiB float32 sum)",
        "MB of weights", lambda n: weight_bytes(model, sentence(n), args.beam), bandwidth,
    )  # fmt: skip

    passes = forced_pass_times(model.translator, 16, 16, max(5, args.repeats))
    print("\nencoder and forced pass of a 10-word source and a 13-token target (16 positions each, as padded), ms, "
          f"interleaved: PyTorch {passes['PyTorch']:.2f}, ONNX Runtime {passes['ONNX Runtime']:.2f}"
          f" ({passes['PyTorch'] / passes['ONNX Runtime']:.1f}x)")  # fmt: skip
    print("\ndecoding step, ms (13 steps from the start, 10-word sources), interleaved:")
    for rows in (1, 16):
        step = step_times(model.translator, rows, 13, max(5, args.repeats))
        print(f"  batch {rows:>2}: PyTorch {step['PyTorch']:.2f}, ONNX Runtime {step['ONNX Runtime']:.2f}"
              f" ({step['PyTorch'] / step['ONNX Runtime']:.1f}x)")  # fmt: skip

    batch = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(9)) + " ." for i in range(16)]
    runs = {
        "one by one": lambda: [model.attention(text, beam_size=args.beam) for text in batch],
        "one batch": lambda: model.attention_batch([AttentionQuery(t, beam_size=args.beam) for t in batch], [never_stop] * 16),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(max(3, args.repeats // 3)):
        for name in in_turn(runs, repeat):
            times[name].append(_timed(runs[name]) * 1000 / len(batch))
    alone, together = (statistics.median(times[name]) for name in runs)
    print(f"\n16 distinct 10-word sentences, ms per sentence: one by one {alone:.1f}, in one batch {together:.1f}"
          f" ({alone / together:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
