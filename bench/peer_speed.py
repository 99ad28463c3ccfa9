"""attnscope against the usual alternative, in one run, interleaved: time to a deliverable payload, and its bytes.

    python bench/peer_speed.py [--repeats 9] [--threads 1]

On a random Marian checkpoint of the built-in model's size (bench/hf_speed.py's), for sources of 10 and 40 corpus
tokens from test.en:
- peer: what a notebook user does with transformers and BertViz: `generate`, one forward with
  output_attentions=True, then BertViz's model_view(..., html_action="return"), whose HTML (every map and BertViz's
  script) is the payload; its bytes raw and gzipped (libdeflate level 1, as attnscope sends);
- attnscope: the body the service sends for the same checkpoint and sentence (HuggingFaceModel.attention, then
  app.shaping.attention and the runner's gzip_json), with "encoding" lists and base64;
- for reference, the built-in en-ja model (the same size, its own weights and vocabulary), base64.
Each is timed from the source text to the bytes ready to send; medians of the repeats, run in turn (the order
alternating), and each attnscope time and size as a ratio of the peer's. Random weights rarely produce </s>, so
both sides decode to the same max_length.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hf_speed import BUILTIN_SIZE, test_sources  # noqa: E402
from interleave import in_turn  # noqa: E402

from app import checks, shaping  # noqa: E402
from app.runner import gzip_json, gzipped  # noqa: E402
from app.schemas import AttentionRequest  # noqa: E402
from app.settings import Settings  # noqa: E402
from backends.builtin import BuiltinModel  # noqa: E402
from backends.huggingface import HuggingFaceModel  # noqa: E402
from backends.interface import never_stop  # noqa: E402
from tests.backends.conftest import CORPUS, write_tiny_hf_model  # noqa: E402

LENGTHS = (10, 40)


def peer(model, tokenizer, text: str, max_length: int) -> bytes:
    from bertviz import model_view

    with torch.inference_mode():
        encoded = tokenizer(text, return_tensors="pt")
        sequence = model.generate(**encoded, do_sample=False, max_new_tokens=max_length)
        output = model(**encoded, decoder_input_ids=sequence[:, :-1], output_attentions=True)
    html = model_view(
        encoder_attention=output.encoder_attentions,
        decoder_attention=output.decoder_attentions,
        cross_attention=output.cross_attentions,
        encoder_tokens=tokenizer.convert_ids_to_tokens(encoded.input_ids[0]),
        decoder_tokens=tokenizer.convert_ids_to_tokens(sequence[0, :-1]),
        html_action="return",
    )
    return html.data.encode()


def ours(model, name: str, text: str, max_length: int, encoding: str) -> bytes:
    request = AttentionRequest(source=text, max_length=max_length, encoding=encoding)
    call = checks.check_attention(model, request, Settings())
    return gzip_json(shaping.attention(model, name, call, never_stop))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"the corpus is not at {CORPUS}")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        directory = write_tiny_hf_model(Path(root) / "marian", "marian", lines=10_000, vocab_size=4000, **BUILTIN_SIZE)
        marian = HuggingFaceModel.load(directory, device="cpu")
        model = AutoModelForSeq2SeqLM.from_pretrained(directory, attn_implementation="eager").eval()
        tokenizer = AutoTokenizer.from_pretrained(directory)
    builtin = BuiltinModel.load(REPO / "model" / "checkpoints" / "en-ja.pt", "cpu")
    print(
        f"Marian {marian.describe().parameters:,} parameters (built-in en-ja {builtin.describe().parameters:,}); "
        f"torch threads {torch.get_num_threads()}; {args.repeats} repeats, interleaved; "
        f"load average {os.getloadavg()[0]:.1f} at the start"
    )
    print(f"{'words':>5} {'payload':<26} {'median ms':>9} {'x peer':>7} {'raw bytes':>10} {'gzip bytes':>10} {'x peer':>7}")
    for n_tokens in LENGTHS:
        text = test_sources(n_tokens, 1)[0]
        max_length = n_tokens + 10
        runs = {
            "peer: generate+BertViz HTML": partial(peer, model, tokenizer, text, max_length),
            "attnscope Marian, lists": partial(ours, marian, "marian", text, max_length, "lists"),
            "attnscope Marian, base64": partial(ours, marian, "marian", text, max_length, "base64"),
            "attnscope en-ja, base64": partial(ours, builtin, "en-ja", text, None, "base64"),
        }
        payloads = {name: run() for name, run in runs.items()}  # warm-up, and the payloads measured
        times: dict[str, list[float]] = {name: [] for name in runs}
        for repeat in range(args.repeats):
            for name in in_turn(runs, repeat):
                start = time.perf_counter()
                runs[name]()
                times[name].append((time.perf_counter() - start) * 1000)
        peer_name = next(iter(runs))
        peer_ms = statistics.median(times[peer_name])
        peer_raw = payloads[peer_name]
        peer_gzip = len(gzipped(peer_raw))  # compressed as attnscope compresses its answers
        for name, payload in payloads.items():
            ms = statistics.median(times[name])
            if name == peer_name:
                raw, wire = len(payload), peer_gzip
            else:  # attnscope's payload is the gzipped body it sends
                raw, wire = len(gzip.decompress(payload)), len(payload)
            print(f"{n_tokens:>5} {name:<26} {ms:>9.1f} {ms / peer_ms:>7.2f} {raw:>10} {wire:>10} {wire / peer_gzip:>7.3f}")
        print(f"{'':>5} (peer payload raw {len(peer_raw)} bytes)")


if __name__ == "__main__":
    main()
