import pytest
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.data import pad_batch
from model.decoding import beam_search, forced_attention, greedy_decode, next_token_logprobs
from model.rnn import RNNConfig
from model.vocab import Vocab
from tests.conftest import make_tiny_rnn

SRC = torch.tensor([[4, 9, 12, 7, Vocab.eos_id]])


def greedy_rows_step_by_step(model, src, max_steps=12):
    """Greedy decoding one step at a time, recording each step's attention row as the step computes it."""
    memory, _ = model.encode(src)
    state = model.start_decoding(memory, src)
    last, produced, rows = torch.tensor([Vocab.bos_id]), [], []
    for _ in range(max_steps):
        embedded = model.tgt_embed(last)
        context, alpha = model.recur(embedded, state)
        token = int(next_token_logprobs(model.output(state.hidden, embedded, context)[0]).argmax())
        produced.append(token)
        rows.append(alpha[0])
        if token == Vocab.eos_id:
            break
        last = torch.tensor([token])
    return produced, rows


@pytest.mark.parametrize("score", ["additive", "general"])
def test_single_forced_pass_equals_the_attention_of_each_greedy_step(score):
    model = make_tiny_rnn(score=score).model
    produced, rows = greedy_rows_step_by_step(model, SRC)
    assert produced == greedy_decode(model, SRC, max_length=12)[0].ids
    maps, _ = forced_attention(model, SRC, produced)
    assert set(maps) == {"cross"}  # no self-attention on either side
    assert maps["cross"].shape == (1, 1, len(produced), SRC.size(1))
    torch.testing.assert_close(maps["cross"][0, 0], torch.stack(rows), atol=1e-6, rtol=0)


def test_incremental_steps_equal_the_teacher_forced_pass():
    model = make_tiny_rnn().model
    tgt_in = torch.tensor([[Vocab.bos_id, 5, 8, 6]])
    memory, _ = model.encode(SRC)
    whole, _, _ = model.decode(tgt_in, memory, SRC)
    state = model.start_decoding(memory, SRC)
    for t in range(tgt_in.size(1)):
        torch.testing.assert_close(model.decode_step(tgt_in[:, t], state), whole[:, t], atol=1e-5, rtol=1e-5)


def test_padding_gets_no_attention_and_does_not_change_a_sentence():
    model = make_tiny_rnn().model
    short, long = [4, 5, Vocab.eos_id], [6, 7, 8, 9, Vocab.eos_id]
    batch = pad_batch([short, long], Vocab.pad_id)
    tgt_in = torch.tensor([[Vocab.bos_id, 5], [Vocab.bos_id, 6]])
    memory, _ = model.encode(batch)
    logits, _, (cross,) = model.decode(tgt_in, memory, batch)
    assert (cross[0, 0, :, len(short) :] == 0).all()
    torch.testing.assert_close(cross.sum(-1), torch.ones(2, 1, 2))
    alone, _ = model.encode(torch.tensor([short]))
    alone_logits, _, _ = model.decode(tgt_in[:1], alone, torch.tensor([short]))
    torch.testing.assert_close(logits[:1], alone_logits, atol=1e-5, rtol=1e-5)


def test_beam_of_one_equals_greedy_and_beams_keep_their_states():
    model = make_tiny_rnn().model
    assert beam_search(model, SRC, beam_size=1, max_length=10)[0][0].ids == greedy_decode(model, SRC, max_length=10)[0].ids
    (hyps,) = beam_search(model, SRC, beam_size=3, max_length=10, n_best=3)
    scores = [h.score for h in hyps]
    assert scores == sorted(scores, reverse=True)


def test_checkpoint_round_trip_keeps_the_architecture_and_the_tied_output(tmp_path):
    tiny = make_tiny_rnn(score="general")
    path = tmp_path / "rnn.pt"
    save_checkpoint(path, tiny.model, tiny.src_vocab, tiny.tgt_vocab)
    loaded = load_checkpoint(path).model
    assert isinstance(loaded.cfg, RNNConfig) and loaded.cfg.score == "general"
    assert loaded.generator.weight is loaded.tgt_embed.weight
    tgt_in = torch.tensor([[Vocab.bos_id, 5, 8]])
    expected = tiny.model(SRC, tgt_in)
    torch.testing.assert_close(loaded(SRC, tgt_in), expected, atol=2e-2, rtol=2e-2)  # weights stored in fp16


def test_the_rnn_has_no_politeness_control():
    with pytest.raises(ValueError, match="no politeness control"):
        RNNConfig(src_vocab_size=10, tgt_vocab_size=10, politeness_levels=("plain", "polite"))
    with pytest.raises(ValueError, match="unknown score 'dot'"):
        RNNConfig(src_vocab_size=10, tgt_vocab_size=10, score="dot")
