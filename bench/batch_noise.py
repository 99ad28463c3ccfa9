"""How far a sentence decoded in a batch drifts from the same sentence alone, and how often a close call sends it back.

    python bench/batch_noise.py [--checkpoint model/checkpoints/en-ja.pt] [--sentences 1000] [--batch 16]

Batched decoding (model.translator.Translator.attention_batch) pads the encoded sources and runs other matrix
shapes, so its log-probabilities round differently from a sentence's own. For dev sentences in batches of --batch
it prints:
- the largest difference of any finite log-probability, batch against alone, at every step of the sentence's own
  greedy tokens fed to both (teacher-forced through the incremental decoder, as decoding runs it);
- the share of sentences whose closest call (Hypothesis.margin) is under NEAR_TIE, greedy and beam 4: those are
  decoded again alone;
- that batched attention_batch gave every sentence the tokens, score and map bytes attention() gives it alone;
- what ONNX Runtime (model.onnx_graphs: the translator's encoder, start of decoding and steps on the CPU) changes
  against the network's own passes in PyTorch: the largest log-probability difference, and the translations that
  differ.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backends.interface import AttentionQuery  # noqa: E402
from model.data import pad_batch  # noqa: E402
from model.decoding import beam_search, greedy_decode, next_token_logprobs  # noqa: E402
from model.translator import NEAR_TIE, Translator  # noqa: E402
from model.vocab import Vocab  # noqa: E402

DEV = REPO.parent / "shared" / "data" / "small_parallel_enja" / "dev.en"


@torch.inference_mode()
def step_logprobs(model, srcs: list[torch.Tensor], targets: list[list[int]], politeness) -> torch.Tensor:
    """Feed each sentence its own tokens through the incremental decoder of `model` (an EncoderDecoder), all in one
    padded batch -> log-probabilities (B, T, V) of every step (rows past a sentence's end: garbage, masked by the
    caller)."""
    src = pad_batch([s[0].tolist() for s in srcs], Vocab.pad_id)
    memories = [model.encode(s)[0][0] for s in srcs]
    memory = memories[0].new_zeros(len(srcs), src.size(1), memories[0].size(-1))
    for row, m in enumerate(memories):
        memory[row, : m.size(0)] = m
    state = model.start_decoding(memory, src)
    steps = max(map(len, targets))
    inputs = torch.full((len(srcs), steps), Vocab.pad_id)
    inputs[:, 0] = Vocab.bos_id
    for row, ids in enumerate(targets):
        inputs[row, 1 : len(ids)] = torch.tensor(ids[:-1])
    return torch.stack([next_token_logprobs(model.decode_step(inputs[:, t], state, politeness)) for t in range(steps)], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(REPO / "model" / "checkpoints" / "en-ja.pt"))
    parser.add_argument("--sentences", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    translator = Translator.from_checkpoint(args.checkpoint, "cpu")
    lines = DEV.read_text(encoding="utf-8").splitlines()[: args.sentences]
    worst, close_greedy, close_beam, differ = 0.0, 0, 0, 0
    engines, engines_differ = 0.0, 0
    started = time.perf_counter()
    for start in range(0, len(lines), args.batch):
        chunk = lines[start : start + args.batch]
        srcs = [translator._src_tensor(translator.source_tokens(line)) for line in chunk]
        encoded = [translator._encode(s) for s in srcs]
        ids = [translator._politeness_ids(e, s, "auto")[0] for e, s in zip(encoded, srcs, strict=True)]
        politeness = torch.cat(ids) if ids[0] is not None else None
        calls = list(zip(srcs, ids, encoded, strict=True))
        alone = [greedy_decode(translator.inference, s, None, p, e)[0] for s, p, e in calls]
        beams = [beam_search(translator.inference, s, 4, None, politeness=p, encoded=e)[0][0] for s, p, e in calls]
        close_greedy += sum(h.margin < NEAR_TIE for h in alone)
        close_beam += sum(h.margin < NEAR_TIE for h in beams)
        # the same sentences encoded and decoded in PyTorch, where the translator runs ONNX Runtime (model.onnx_graphs)
        with torch.inference_mode():
            on_network = [(s, p, translator.model.encode(s)) for s, p, _ in calls]
        in_pytorch = [greedy_decode(translator.model, s, None, p, e)[0] for s, p, e in on_network]
        beams_in_pytorch = [beam_search(translator.model, s, 4, None, politeness=p, encoded=e)[0][0] for s, p, e in on_network]
        engines_differ += sum(a.ids != b.ids for a, b in zip(alone, in_pytorch, strict=True))
        engines_differ += sum(a.ids != b.ids for a, b in zip(beams, beams_in_pytorch, strict=True))
        together = step_logprobs(translator.inference, srcs, [h.ids for h in alone], politeness)
        for row, (s, h) in enumerate(zip(srcs, alone, strict=True)):
            rows = None if politeness is None else politeness[row : row + 1]
            own = step_logprobs(translator.inference, [s], [h.ids], rows)[0]
            pytorch = step_logprobs(translator.model, [s], [h.ids], rows)[0]
            finite = torch.isfinite(own)
            worst = max(worst, float((together[row, : len(h.ids)][finite] - own[finite]).abs().max()))
            engines = max(engines, float((pytorch[finite] - own[finite]).abs().max()))
        queries = [AttentionQuery(line, beam_size=1 + 3 * (start // args.batch % 2)) for line in chunk]
        for query, result in zip(queries, translator.attention_batch(queries, [lambda: None] * len(chunk)), strict=True):
            single = translator.attention(query.source, beam_size=query.beam_size)
            same = result.translation == single.translation and result.score == single.score
            differ += not (same and all(torch.equal(result.maps[k], single.maps[k]) for k in single.maps))
    print(f"{len(lines)} dev sentences in batches of {args.batch}, {time.perf_counter() - started:.0f} s")
    print(f"largest |log p batched - log p alone| over every step and token: {worst:.2e} (NEAR_TIE {NEAR_TIE:g})")
    print(f"closest call under NEAR_TIE (decoded again alone): greedy {close_greedy}, beam 4 {close_beam} of {len(lines)}")
    print(f"attention_batch answers that differ from attention() alone: {differ} (target 0)")
    print(f"encoded and decoded in ONNX Runtime against PyTorch: largest |log p difference| {engines:.2e}, alone;")
    print(f"  translations that differ, greedy and beam 4: {engines_differ} of {2 * len(lines)}")


if __name__ == "__main__":
    main()
