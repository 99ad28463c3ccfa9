import json

import pytest
import torch

from model import train
from model.checkpoint import load_checkpoint
from model.rnn import AttentionRNN
from model.transformer import Seq2SeqTransformer
from model.vocab import Vocab

PAIRS = [
    ("the cat .", "猫 。"),
    ("the dog .", "犬 。"),
    ("a cat runs .", "猫 が 走 る 。"),
    ("a dog runs .", "犬 が 走 る 。"),
    ("i like the cat .", "私 は 猫 が 好き 。"),
    ("i like the dog .", "私 は 犬 が 好き 。"),
] * 8
# A model small enough to train in seconds.
TINY_SHAPE = "--d-model 32 --heads 2 --encoder-layers 1 --decoder-layers 1 --ffn 64".split()
# Its training options when the run itself is not what a test checks.
TINY_RUN = [*TINY_SHAPE, *"--threads 1 --batch-tokens 64 --average-last 0 --beam 2 --min-freq 1".split()]


def write_corpus(folder):
    for split, pairs in (("train", PAIRS), ("dev", PAIRS[:6]), ("test", PAIRS[:6])):
        (folder / f"{split}.en").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
        (folder / f"{split}.ja").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")


def test_a_few_training_steps_lower_the_loss_and_write_checkpoint_and_card(tmp_path, capsys):
    write_corpus(tmp_path)
    out = tmp_path / "out" / "m.pt"
    card = train.main(
        [
            "--data",
            str(tmp_path),
            "--out",
            str(out),
            "--epochs",
            "6",
            "--batch-tokens",
            "64",
            "--warmup",
            "5",
            "--lr",
            "3e-3",
            *TINY_SHAPE,
            "--min-freq",
            "1",
            "--average-last",
            "2",
            "--beam",
            "2",
            "--threads",
            "1",
        ]
    )
    history = card["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.5
    assert json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))["test_bleu"] == card["test_bleu"]
    loaded = load_checkpoint(out)
    assert loaded.metadata["corpus"].startswith("small_parallel_enja")
    assert loaded.model.cfg.d_model == 32
    assert "dev BLEU" in capsys.readouterr().out


@pytest.mark.parametrize("score", ["additive", "general"])
def test_the_rnn_trains_through_the_same_loop(tmp_path, score):
    write_corpus(tmp_path)
    out = tmp_path / "rnn.pt"
    rnn_shape = "--embed 16 --encoder-hidden 12 --decoder-hidden 20 --attention-hidden 10".split()
    card = train.main(
        ["--data", str(tmp_path), "--out", str(out), "--epochs", "4", "--arch", "rnn", "--score", score, "--lr", "3e-3"]
        + ["--warmup", "5", *rnn_shape, *TINY_RUN[len(TINY_SHAPE) :]]
    )
    assert card["history"][-1]["train_loss"] < card["history"][0]["train_loss"]
    assert card["description"].startswith(f"English→Japanese RNN encoder-decoder with {score} attention")
    loaded = load_checkpoint(out).model
    assert isinstance(loaded, AttentionRNN) and loaded.cfg.score == score


def test_the_rnn_refuses_politeness_control(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--data", str(tmp_path), "--arch", "rnn", "--politeness-control"])
    assert "the RNN model has none" in capsys.readouterr().err


def test_learning_rate_warms_up_then_decays_to_zero():
    lrs = [train.lr_at(s, 1.0, 10, 100) for s in range(101)]
    assert lrs[9] == 1.0 and lrs[0] < lrs[5] < lrs[9]
    assert lrs[50] > lrs[90] > lrs[100] == 0.0


def test_averaging_state_dicts():
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(2)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(2)}
    avg = train.average_state_dicts([a, b])
    assert torch.equal(avg["w"], torch.tensor([2.0, 4.0])) and avg["n"] == 2


def test_training_continues_from_a_checkpoint_without_learning_unk(tmp_path):
    write_corpus(tmp_path)
    tiny = [
        *TINY_SHAPE,
        "--threads",
        "1",
        "--batch-tokens",
        "64",
        "--warmup",
        "2",
        "--average-last",
        "0",
        "--beam",
        "2",
    ]
    first = tmp_path / "first.pt"
    train.main(["--data", str(tmp_path), "--out", str(first), "--epochs", "1", "--min-freq", "9", *tiny])
    second = tmp_path / "second.pt"
    card = train.main(
        [
            "--data",
            str(tmp_path),
            "--out",
            str(second),
            "--epochs",
            "1",
            "--init-from",
            str(first),
            "--skip-unk-targets",
            *tiny,
            "--d-model",
            "64",  # argparse keeps the last value, so this overrides the tiny shape's 32
        ]
    )
    assert load_checkpoint(second).model.cfg == load_checkpoint(first).model.cfg  # shape comes from the checkpoint
    assert card["initialized_from"]["epoch"] == 1
    assert card["train_args"]["skip_unk_targets"]


def train_then_continue(tmp_path, *continue_args: str) -> tuple[Seq2SeqTransformer, Seq2SeqTransformer, dict]:
    """Train a tiny model one epoch, then one more from its checkpoint with `continue_args`:
    (first model, second model, second card)."""
    write_corpus(tmp_path)
    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    train.main(["--data", str(tmp_path), "--out", str(first), "--epochs", "1", *TINY_RUN])
    card = train.main(
        ["--data", str(tmp_path), "--out", str(second), "--epochs", "1", "--init-from", str(first), *continue_args, *TINY_RUN]
    )
    return load_checkpoint(first).model, load_checkpoint(second).model, card


def test_politeness_control_is_added_to_a_checkpoint_without_it(tmp_path, capsys):
    before, after, card = train_then_continue(tmp_path, "--politeness-control", "--source-word-dropout", "0.1")
    assert before.cfg.politeness_levels == () and after.cfg.politeness_levels == ("plain", "polite")
    assert after.politeness_embedding.num_embeddings == 2
    assert 0.0 <= card["history"][0]["dev_politeness_accuracy"] <= 1.0
    assert "dev politeness accuracy" in capsys.readouterr().out


def test_dropout_may_change_when_starting_from_a_checkpoint(tmp_path):
    before, after, _ = train_then_continue(tmp_path, "--dropout", "0.3")
    assert before.cfg.dropout == 0.1 and after.cfg.dropout == 0.3
    assert after.encoder_layers[0].dropout.p == 0.3


def test_source_word_dropout_replaces_words_but_not_padding_or_the_end_mark():
    src = torch.tensor([[7, 8, 9, Vocab.eos_id], [7, Vocab.eos_id, Vocab.pad_id, Vocab.pad_id]])
    assert torch.equal(train.drop_source_words(src, 0.0), src)
    unk = Vocab.unk_id
    expected = torch.tensor([[unk, unk, unk, Vocab.eos_id], [unk, Vocab.eos_id, Vocab.pad_id, Vocab.pad_id]])
    assert torch.equal(train.drop_source_words(src, 1.0), expected)
    torch.manual_seed(0)
    dropped = train.drop_source_words(torch.full((200, 50), 7), 0.25)
    assert 0.2 < (dropped == unk).float().mean() < 0.3
