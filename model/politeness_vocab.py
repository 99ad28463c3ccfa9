"""Choose which source words the politeness classifier of a checkpoint reads.

    python -m model.politeness_vocab --data ../shared/data/small_parallel_enja [--checkpoint PATH] [--min-count K]

A word seen a handful of times in training is weak evidence for a register, yet its encoding can
sway the classifier: `example` (8 training sentences) pulls `this is an example .` to the plain
register although the corpus translates `this is a(n) … .` politely 5 times out of 7. Read as
<unk>, such a word leaves the decision to the rest of the sentence. Translation always reads every
word; only the register prediction changes.

Prints, for K = 1, 2, 4, … 128, how often the classifier reading only the source words seen at
least K times in training (K = 1: every word) predicts the register of the dev references, and
its log loss. With --min-count K, stores that choice in the checkpoint and brings its .json card
up to date: the choice with its dev and test figures, and dev and test BLEU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections import Counter
from pathlib import Path

import torch

from model.bleu import translation_bleu
from model.checkpoint import LoadedModel, load_checkpoint, save_checkpoint
from model.data import pad_batch, read_parallel
from model.politeness import target_politeness
from model.translator import Translator
from model.vocab import SPECIALS, Vocab

MIN_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128)


def classifier_vocab_size(src_vocab: Vocab, train_src: list[list[str]], min_count: int) -> int:
    """The config's politeness_vocab_size for words seen at least `min_count` times; 0 (every word) for 1.

    Source ids are sorted by training frequency, so those words are exactly the ids below the result.
    """
    if min_count <= 1:
        return 0
    counts = Counter(tok for sent in train_src for tok in sent)
    rare = (i for i, tok in enumerate(src_vocab.tokens) if i >= len(SPECIALS) and counts[tok] < min_count)
    return next(rare, len(src_vocab))


@torch.no_grad()
def classifier_scores(loaded: LoadedModel, src: list[list[str]], ref: list[list[str]]) -> dict[str, float]:
    """Accuracy and log loss of the politeness prediction against the references' registers."""
    model, levels = loaded.model, loaded.model.cfg.politeness_levels
    labels = torch.tensor([levels.index(target_politeness(r)) for r in ref])
    probs = []
    for start in range(0, len(src), 256):
        ids = pad_batch([loaded.src_vocab.encode(s) + [Vocab.eos_id] for s in src[start : start + 256]], Vocab.pad_id)
        memory, _ = model.encode(ids)
        probs.append(model.politeness_logits(memory, ids).softmax(-1))
    probs = torch.cat(probs)  # (N, P)
    chosen = probs.gather(1, labels[:, None]).squeeze(1)  # (N,) probability given to the reference's register
    accuracy = (probs.argmax(-1) == labels).float().mean().item()
    return {"accuracy": round(accuracy, 4), "log_loss": round(-chosen.clamp_min(1e-9).log().mean().item(), 4)}


def main(argv: list[str] | None = None) -> dict[int, dict[str, float]]:
    p = argparse.ArgumentParser(
        prog="python -m model.politeness_vocab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, help="folder with the train, dev and test .en/.ja files the model was trained on")
    p.add_argument("--checkpoint", default="model/checkpoints/en-ja.pt")
    p.add_argument("--min-count", type=int, metavar="K", help="store this choice in the checkpoint (1: every word)")
    args = p.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    loaded = load_checkpoint(args.checkpoint)
    if not loaded.model.cfg.politeness_levels:
        p.error(f"{args.checkpoint} was trained without politeness control: it has no classifier")
    train_src, _ = read_parallel(args.data, "train")
    dev_src, dev_ref = read_parallel(args.data, "dev")

    def use(min_count: int) -> int:
        """Set the classifier to read the words seen at least `min_count` times; returns how many words that is."""
        size = classifier_vocab_size(loaded.src_vocab, train_src, min_count)
        loaded.model.cfg = dataclasses.replace(loaded.model.cfg, politeness_vocab_size=size)
        return (size or len(loaded.src_vocab)) - len(SPECIALS)

    table = {}
    print("min count  words read  dev accuracy  dev log loss")
    for min_count in MIN_COUNTS:
        words = use(min_count)
        table[min_count] = classifier_scores(loaded, dev_src, dev_ref)
        print(f"{min_count:9d}  {words:10d}  {table[min_count]['accuracy']:12.1%}  {table[min_count]['log_loss']:12.4f}")
    if args.min_count is None:
        return table

    words = use(args.min_count)
    test_src, test_ref = read_parallel(args.data, "test")
    card_path = Path(args.checkpoint).with_suffix(".json")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    translator = Translator(loaded, "cpu")
    card["config"] = loaded.model.cfg.to_dict()
    card["politeness_classifier"] = {
        "min_count": args.min_count,
        "words_read": words,
        "dev": table.get(args.min_count) or classifier_scores(loaded, dev_src, dev_ref),
        "test": classifier_scores(loaded, test_src, test_ref),
    }
    card["dev_bleu"] = round(translation_bleu(translator, dev_src, dev_ref), 2)
    beam_sizes = {name: 1 if name == "greedy" else int(name.removeprefix("beam")) for name in card["test_bleu"]}
    card["test_bleu"] = {name: round(translation_bleu(translator, test_src, test_ref, n), 2) for name, n in beam_sizes.items()}
    loaded.metadata["dev_bleu"] = card["dev_bleu"]
    save_checkpoint(args.checkpoint, loaded.model, loaded.src_vocab, loaded.tgt_vocab, loaded.metadata)
    card["checkpoint_bytes"] = Path(args.checkpoint).stat().st_size
    card_path.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(
        f"stored min count {args.min_count}: dev accuracy {card['politeness_classifier']['dev']['accuracy']:.1%}, "
        f"test {card['politeness_classifier']['test']['accuracy']:.1%}; dev BLEU {card['dev_bleu']:.2f}; "
        + ", ".join(f"test BLEU {name} {score:.2f}" for name, score in card["test_bleu"].items())
    )
    return table


if __name__ == "__main__":
    main()
