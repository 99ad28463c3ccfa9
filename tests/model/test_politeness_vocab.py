import json

import pytest

from model import politeness_vocab, train
from model.checkpoint import load_checkpoint
from model.vocab import SPECIALS, Vocab
from tests.model.test_train import TINY_RUN, write_corpus


def test_the_classifier_vocabulary_holds_the_words_seen_at_least_min_count_times():
    corpus = [["a", "a", "b"], ["a", "b", "c"], ["d"]]
    vocab = Vocab.build(corpus)  # a:3, b:2, then c and d once, after the specials
    size = politeness_vocab.classifier_vocab_size
    assert size(vocab, corpus, 1) == 0  # every word
    assert size(vocab, corpus, 2) == len(SPECIALS) + 2  # a, b
    assert size(vocab, corpus, 3) == len(SPECIALS) + 1  # a
    assert size(vocab, corpus, 4) == len(SPECIALS)  # none


def tiny_checkpoint(tmp_path, *extra: str):
    write_corpus(tmp_path)
    out = tmp_path / "m.pt"
    train.main(["--data", str(tmp_path), "--out", str(out), "--epochs", "1", *TINY_RUN, *extra])
    return out


def test_the_table_leaves_the_checkpoint_alone_and_min_count_stores_the_choice(tmp_path, capsys):
    checkpoint = tiny_checkpoint(tmp_path, "--politeness-control")
    before = checkpoint.read_bytes()
    capsys.readouterr()
    table = politeness_vocab.main(["--data", str(tmp_path), "--checkpoint", str(checkpoint)])
    assert sorted(table) == list(politeness_vocab.MIN_COUNTS) and all(0 <= t["accuracy"] <= 1 for t in table.values())
    assert checkpoint.read_bytes() == before
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("min count") and len(printed) == 1 + len(politeness_vocab.MIN_COUNTS)

    politeness_vocab.main(["--data", str(tmp_path), "--checkpoint", str(checkpoint), "--min-count", "20"])
    # In the tiny corpus "." is seen 48 times, "the" 32, "cat" and "dog" 24, the other words 16.
    assert load_checkpoint(checkpoint).model.cfg.politeness_vocab_size == len(SPECIALS) + 4
    card = json.loads(checkpoint.with_suffix(".json").read_text(encoding="utf-8"))
    assert card["config"]["politeness_vocab_size"] == len(SPECIALS) + 4
    assert card["politeness_classifier"]["min_count"] == 20 and card["politeness_classifier"]["words_read"] == 4
    assert set(card["test_bleu"]) == {"greedy", "beam2"} and card["checkpoint_bytes"] == checkpoint.stat().st_size
    assert "stored min count 20" in capsys.readouterr().out


def test_a_model_without_politeness_control_is_refused(tmp_path, capsys):
    checkpoint = tiny_checkpoint(tmp_path)
    with pytest.raises(SystemExit) as refused:
        politeness_vocab.main(["--data", str(tmp_path), "--checkpoint", str(checkpoint)])
    assert refused.value.code == 2 and "without politeness control" in capsys.readouterr().err
