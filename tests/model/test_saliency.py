import pytest
import torch

from backends.interface import SaliencyOptions
from model.methods import method_maps
from model.saliency import attributions
from model.vocab import Vocab
from tests.conftest import make_tiny_model, make_tiny_rnn

SOURCE = [5, 6, 7, 8, Vocab.eos_id]
TARGET = [9, 10, 11, Vocab.eos_id]
TGT_IN = [Vocab.bos_id, *TARGET[:-1]]


def _log_probs(model, source_vectors, target_vectors, politeness=None):
    src, tgt_in = torch.tensor([SOURCE]), torch.tensor([TGT_IN])
    logits = model.logits_from_token_vectors(src, tgt_in, source_vectors[None], target_vectors[None], politeness)
    return logits[0].log_softmax(-1)[torch.arange(len(TARGET)), TARGET]  # (T,)


@pytest.mark.parametrize("make", [make_tiny_model, lambda: make_tiny_model(politeness_levels=("plain", "polite")), make_tiny_rnn])
def test_integrated_gradients_are_complete(make):
    """Σ attributions of row t ≈ f_t(x) − f_t(baseline): the log-probability of produced token t with the token
    embeddings, minus with zero embeddings (the baseline)."""
    model = make().model
    politeness = torch.tensor([1]) if getattr(model.cfg, "politeness_levels", ()) else None
    src, tgt_in = torch.tensor([SOURCE]), torch.tensor([TGT_IN])
    source, prefix = attributions(model, src, tgt_in, TARGET, politeness, SaliencyOptions("integrated_gradients", 64))
    assert source.shape[:2] == (len(TARGET), len(SOURCE)) and prefix.shape[:2] == (len(TARGET), len(TARGET))
    with torch.no_grad():
        source_vectors, target_vectors = (v[0] for v in model.token_vectors(src, tgt_in))
        gain = _log_probs(model, source_vectors, target_vectors, politeness) - _log_probs(
            model, torch.zeros_like(source_vectors), torch.zeros_like(target_vectors), politeness
        )
    total = source.sum((1, 2)) + prefix.sum((1, 2))
    scale = gain.abs().max()
    assert scale > 0.01  # tiny random models: gains of 0.04 (the RNN) to 3 nats
    assert ((total - gain).abs() <= 0.02 * scale).all(), (total, gain)


def test_input_x_gradient_is_the_input_times_the_gradient(tiny_model):
    model = tiny_model.model
    src, tgt_in = torch.tensor([SOURCE]), torch.tensor([TGT_IN])
    source, prefix = attributions(model, src, tgt_in, TARGET, options=SaliencyOptions("input_x_gradient", None))
    source_vectors, target_vectors = (v[0].detach().requires_grad_() for v in model.token_vectors(src, tgt_in))
    t = 2
    _log_probs(model, source_vectors, target_vectors)[t].backward()
    torch.testing.assert_close(source[t], source_vectors * source_vectors.grad)
    torch.testing.assert_close(prefix[t], target_vectors * target_vectors.grad)


def test_saliency_rows_are_l2_norms_and_causal(tiny_model):
    model = tiny_model.model
    options = SaliencyOptions("integrated_gradients", 8)
    result = method_maps(model, torch.tensor([SOURCE]), TARGET, method="saliency", saliency_options=options)
    source, prefix = attributions(model, torch.tensor([SOURCE]), torch.tensor([TGT_IN]), TARGET, options=options)
    torch.testing.assert_close(result.contributions.source, source.norm(dim=-1))
    torch.testing.assert_close(result.contributions.prefix, prefix.norm(dim=-1))
    assert not result.contributions.normalised
    assert (result.contributions.prefix[torch.ones(4, 4, dtype=torch.bool).triu(1)] == 0).all()
    assert (result.contributions.prefix.diagonal() > 0).all() and (result.contributions.source > 0).all()
    assert result.maps == {} and result.layer_maps == {}


def test_a_stop_check_ends_saliency(tiny_model):
    class Stopped(Exception):
        pass

    def stop():
        raise Stopped

    with pytest.raises(Stopped):
        method_maps(tiny_model.model, torch.tensor([SOURCE]), TARGET, method="saliency", stop=stop)
