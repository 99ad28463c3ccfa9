import pytest
import torch

from model.data import pad_batch
from model.decoding import _beam_margin, beam_search, forced_attention, greedy_decode, next_token_logprobs
from model.vocab import Vocab
from tests.conftest import make_tiny_model


def collect_maps_step_by_step(model, src, max_steps=12, politeness=None):
    """Greedy decoding that records, at every step, the attention rows of the new position."""
    memory, enc = model.encode(src)
    ys = torch.tensor([[Vocab.bos_id]])
    produced, dec_rows, cross_rows = [], [], []
    for _ in range(max_steps):
        logits, dec, cross = model.decode(ys, memory, src, politeness)
        token = int(next_token_logprobs(logits[0, -1]).argmax())
        produced.append(token)
        dec_rows.append(torch.stack(dec)[:, 0, :, -1])  # (L, H, t)
        cross_rows.append(torch.stack(cross)[:, 0, :, -1])  # (L, H, S)
        if token == Vocab.eos_id:
            break
        ys = torch.cat([ys, torch.tensor([[token]])], dim=1)
    return produced, torch.stack(enc)[:, 0], dec_rows, cross_rows


@pytest.mark.parametrize("politeness_levels", [(), ("plain", "polite")])
def test_single_forced_pass_equals_maps_collected_during_greedy_decoding(politeness_levels):
    model = make_tiny_model(politeness_levels=politeness_levels).model
    politeness = torch.tensor([1]) if politeness_levels else None
    src = torch.tensor([[4, 9, 12, 7, Vocab.eos_id]])
    produced, enc, dec_rows, cross_rows = collect_maps_step_by_step(model, src, politeness=politeness)
    assert produced == greedy_decode(model, src, max_length=12, politeness=politeness)[0].ids
    maps, _ = forced_attention(model, src, produced, politeness)
    torch.testing.assert_close(maps["encoder"], enc, atol=1e-5, rtol=0)
    for t, (dec_row, cross_row) in enumerate(zip(dec_rows, cross_rows, strict=True)):
        torch.testing.assert_close(maps["decoder"][:, :, t, : t + 1], dec_row, atol=1e-5, rtol=0)
        torch.testing.assert_close(maps["cross"][:, :, t], cross_row, atol=1e-5, rtol=0)


def test_beam_of_one_equals_greedy(tiny_model):
    model = tiny_model.model
    for seed in range(5):
        torch.manual_seed(seed)
        src = torch.cat([torch.randint(4, model.cfg.src_vocab_size, (1, 6)), torch.tensor([[Vocab.eos_id]])], 1)
        assert beam_search(model, src, beam_size=1, max_length=15)[0][0].ids == greedy_decode(model, src, max_length=15)[0].ids


def test_beam_search_returns_sorted_n_best(tiny_model):
    src = torch.tensor([[4, 5, 6, Vocab.eos_id]])
    (hyps,) = beam_search(tiny_model.model, src, beam_size=4, max_length=10, n_best=3)
    assert 1 <= len(hyps) <= 3
    scores = [h.score for h in hyps]
    assert scores == sorted(scores, reverse=True)
    assert all(len(h.ids) <= 10 for h in hyps)


def test_beam_of_one_equals_greedy_under_a_politeness():
    model = make_tiny_model(politeness_levels=("plain", "polite")).model
    src = torch.tensor([[4, 5, 6, 7, Vocab.eos_id]])
    for politeness in (torch.tensor([0]), torch.tensor([1])):
        beam = beam_search(model, src, beam_size=1, max_length=15, politeness=politeness)[0][0].ids
        assert beam == greedy_decode(model, src, max_length=15, politeness=politeness)[0].ids


def test_batched_greedy_equals_one_at_a_time(tiny_model):
    model = tiny_model.model
    a = [4, 5, 6, 7, Vocab.eos_id]
    b = [8, 9, Vocab.eos_id]
    batch = torch.tensor([a, b + [Vocab.pad_id] * 2])
    together = greedy_decode(model, batch, max_length=10)
    assert together[0].ids == greedy_decode(model, torch.tensor([a]), max_length=10)[0].ids
    assert together[1].ids == greedy_decode(model, torch.tensor([b]), max_length=10)[0].ids


def test_batched_beam_search_equals_one_at_a_time():
    model = make_tiny_model(politeness_levels=("plain", "polite")).model
    sentences = [[4, 5, 6, 7, 8, Vocab.eos_id], [9, 10, Vocab.eos_id], [11, 12, 13, Vocab.eos_id]]
    batch = pad_batch(sentences, Vocab.pad_id)
    politeness = torch.tensor([0, 1, 1])
    together = beam_search(model, batch, beam_size=3, max_length=12, n_best=3, politeness=politeness)
    for i, sentence in enumerate(sentences):
        alone = beam_search(
            model, torch.tensor([sentence]), beam_size=3, max_length=12, n_best=3, politeness=politeness[i : i + 1]
        )
        assert [h.ids for h in together[i]] == [h.ids for h in alone[0]]
        assert [h.score for h in together[i]] == pytest.approx([h.score for h in alone[0]], abs=1e-5)


def test_max_length_guard_cuts_decoding(tiny_model):
    hyp = greedy_decode(tiny_model.model, torch.tensor([[4, 5, Vocab.eos_id]]), max_length=2)[0]
    assert len(hyp.ids) <= 2


def test_padding_unknown_and_bos_are_never_produced():
    logits = torch.zeros(2, 6)
    logits[:, [Vocab.pad_id, Vocab.unk_id, Vocab.bos_id]] = 100
    logprobs = next_token_logprobs(logits)
    assert set(logprobs.argmax(-1).tolist()) <= {Vocab.eos_id, 4, 5}
    torch.testing.assert_close(logprobs.exp().sum(-1), torch.ones(2))


def test_a_greedy_margin_is_the_closest_gap_between_the_pick_and_the_runner_up(tiny_model):
    model = tiny_model.model
    src = torch.tensor([[4, 5, 6, 7, Vocab.eos_id]])
    hyp = greedy_decode(model, src, max_length=8)[0]
    with torch.inference_mode():
        memory, _ = model.encode(src)
        logits, _, _ = model.decode(torch.tensor([[Vocab.bos_id, *hyp.ids[:-1]]]), memory, src)
    best_two = next_token_logprobs(logits[0]).topk(2, -1).values  # (T, 2) at every step of the hypothesis
    assert hyp.margin == pytest.approx(float((best_two[:, 0] - best_two[:, 1]).min()), abs=1e-5)


def test_a_beam_margin_counts_only_the_gaps_that_decide_a_step():
    eos, k, vocab = Vocab.eos_id, 2, 100
    token = [10, 11, 12, 13, 14]  # flat indices of candidates that are not </s>
    # Kept: the first two non-</s> candidates; their own order does not matter, the gap to the third does.
    assert _beam_margin([-1.0, -1.0, -2.0, -3.0, -4.0], token, k, vocab) == pytest.approx(1.0)
    # A </s> ranked within the top K is taken: its gap to the candidate ranked K decides, here 0.01.
    ranked = [-1.0, -1.5, -1.51, -3.0, -4.0]
    assert _beam_margin(ranked, [10, eos, 11, 12, 13], k, vocab) == pytest.approx(0.01)
    # The same </s> ranked K is not taken; it comes up past the candidate above it by 0.01.
    assert _beam_margin([-1.0, -1.5, -1.51, -3.0, -4.0], [10, 11, eos, 12, 13], k, vocab) == pytest.approx(0.01)


def test_decoding_a_model_left_in_training_mode_runs_it_without_dropout():
    """Decoding switches a model in training mode to eval (dropout off), as it always did; one already in eval
    mode is left as it is rather than walked again."""
    model = make_tiny_model(dropout=0.5).model
    src = torch.tensor([[4, 5, 6, 7, Vocab.eos_id]])
    model.eval()
    expected = greedy_decode(model, src, max_length=10)[0]
    model.train()
    again = greedy_decode(model, src, max_length=10)[0]
    assert not model.training and (again.ids, again.score) == (expected.ids, expected.score)
    model.train()
    maps, _ = forced_attention(model, src, expected.ids)
    assert not model.training and maps["cross"].shape[2] == len(expected.ids)
