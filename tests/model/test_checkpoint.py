import pytest
import torch

from model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tests.conftest import make_tiny_model


@pytest.mark.parametrize("politeness_levels", [(), ("plain", "polite")])
def test_round_trip_gives_identical_logits(politeness_levels, tmp_path):
    tiny_model = make_tiny_model(politeness_levels=politeness_levels)
    model = tiny_model.model
    # fp16 storage: give the weights values that fp16 holds exactly, so the round trip is lossless
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, tiny_model.src_vocab, tiny_model.tgt_vocab, {"note": "x"})
    loaded = load_checkpoint(path)
    src, tgt_in = torch.tensor([[4, 5, 6, 3]]), torch.tensor([[2, 7, 8]])
    politeness = torch.tensor([1]) if politeness_levels else None
    assert torch.equal(model(src, tgt_in, politeness), loaded.model(src, tgt_in, politeness))
    assert loaded.model.cfg == model.cfg
    assert loaded.src_vocab.tokens == tiny_model.src_vocab.tokens
    assert loaded.tgt_vocab.tokens == tiny_model.tgt_vocab.tokens
    assert loaded.metadata == {"note": "x"}
    assert loaded.model.generator.weight is loaded.model.tgt_embed.tokens.weight


def test_weights_are_stored_in_half_precision(tiny_model, tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny_model.model, tiny_model.src_vocab, tiny_model.tgt_vocab)
    blob = torch.load(path, weights_only=True)
    assert {v.dtype for v in blob["state_dict"].values() if v.is_floating_point()} == {torch.float16}
    assert all(p.dtype == torch.float32 for p in load_checkpoint(path).model.parameters())


def test_missing_checkpoint_is_reported(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_truncated_checkpoint_is_reported(tiny_model, tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny_model.model, tiny_model.src_vocab, tiny_model.tgt_vocab)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(path)


def test_incompatible_config_is_reported(tiny_model, tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny_model.model, tiny_model.src_vocab, tiny_model.tgt_vocab)
    blob = torch.load(path, weights_only=True)
    blob["config"]["d_model"] = 64
    torch.save(blob, path)
    with pytest.raises(CheckpointError, match="incompatible"):
        load_checkpoint(path)
