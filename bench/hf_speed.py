"""HuggingFaceModel.attention against transformers alone, on a Marian model of the built-in model's size.

    python bench/hf_speed.py [--repeats 15] [--threads 1] [--beam 1]

Builds a random Marian checkpoint (d_model 256, 3 + 3 layers, 4 heads, ffn 1024; sentencepiece vocabularies
trained on the first 10,000 training lines), then for sources of 5, 10, 20 and 40 corpus tokens from test.en
times, interleaved, attnscope's `HuggingFaceModel.attention` (decode, then every map from one teacher-forced
pass) and the same work done with transformers directly (`model.generate`, then one forward with
output_attentions=True). Prints the medians and their ratio per length (target <= 1.1).
Random weights rarely produce </s>, so every decode runs to the same max_length on both sides.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interleave import in_turn  # noqa: E402

from backends.huggingface import HuggingFaceModel  # noqa: E402
from tests.backends.conftest import CORPUS, write_tiny_hf_model  # noqa: E402

BUILTIN_SIZE = dict(
    d_model=256,
    encoder_layers=3,
    decoder_layers=3,
    encoder_attention_heads=4,
    decoder_attention_heads=4,
    encoder_ffn_dim=1024,
    decoder_ffn_dim=1024,
    max_position_embeddings=256,
)
LENGTHS = (5, 10, 20, 40)
SENTENCES_PER_LENGTH = 3


def test_sources(n_tokens: int, count: int) -> list[str]:
    """`count` sources of exactly n_tokens corpus tokens, consecutive test.en lines run together."""
    with (CORPUS / "test.en").open(encoding="utf-8") as lines:
        words = [word for line in islice(lines, 200) for word in line.split()]
    return [" ".join(words[start : start + n_tokens]) for start in range(0, count * n_tokens, n_tokens)]


def transformers_alone(model, tokenizer, text: str, max_length: int, beam: int) -> dict:
    """What a script would write with transformers alone: generate, then one forward returning the attentions."""
    with torch.inference_mode():
        encoded = tokenizer(text, return_tensors="pt")
        sequence = model.generate(**encoded, num_beams=beam, do_sample=False, max_new_tokens=max_length)
        output = model(**encoded, decoder_input_ids=sequence[:, :-1], output_attentions=True)
    return {"encoder": output.encoder_attentions, "decoder": output.decoder_attentions, "cross": output.cross_attentions}


def time_length(ours, model, tokenizer, n_tokens: int, repeats: int, beam: int):
    """Median ms per sentence of (attnscope, transformers alone) on sources of n_tokens, and one attnscope result."""
    sources = test_sources(n_tokens, SENTENCES_PER_LENGTH)
    max_length = n_tokens + 10
    runs = {
        "attnscope": lambda text: ours.attention(text, beam_size=beam, max_length=max_length),
        "transformers": lambda text: transformers_alone(model, tokenizer, text, max_length, beam),
    }
    for text in sources:  # warm-up
        result = runs["attnscope"](text)
        runs["transformers"](text)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(repeats):
        for name in in_turn(runs, repeat):
            start = time.perf_counter()
            for text in sources:
                runs[name](text)
            times[name].append((time.perf_counter() - start) * 1000 / len(sources))
    return (statistics.median(times["attnscope"]), statistics.median(times["transformers"])), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--beam", type=int, default=1)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"the corpus is not at {CORPUS}")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        directory = write_tiny_hf_model(Path(root) / "marian", "marian", lines=10_000, vocab_size=4000, **BUILTIN_SIZE)
        ours = HuggingFaceModel.load(directory)
        # the same checkpoint, loaded by transformers alone
        model = AutoModelForSeq2SeqLM.from_pretrained(directory, attn_implementation="eager").eval()
        tokenizer = AutoTokenizer.from_pretrained(directory)
    description = ours.describe()
    print(
        f"Marian d_model {description.d_model}, {description.kinds['encoder'].layers}+{description.kinds['decoder'].layers} "
        f"layers, {description.kinds['encoder'].heads} heads, {description.parameters:,} parameters, "
        f"vocab {description.vocab_sizes['source']}; beam {args.beam}; torch threads {torch.get_num_threads()}; "
        f"{args.repeats} repeats x {SENTENCES_PER_LENGTH} sentences, interleaved"
    )
    print(f"{'words':>5} {'source pieces':>13} {'target pieces':>13} {'attnscope ms':>13} {'transformers ms':>16} {'ratio':>6}")
    for n_tokens in LENGTHS:
        (ours_ms, plain_ms), result = time_length(ours, model, tokenizer, n_tokens, args.repeats, args.beam)
        print(
            f"{n_tokens:>5} {len(result.source_tokens):>13} {len(result.target_tokens):>13} {ours_ms:>13.1f} "
            f"{plain_ms:>16.1f} {ours_ms / plain_ms:>6.3f}"
        )


if __name__ == "__main__":
    main()
