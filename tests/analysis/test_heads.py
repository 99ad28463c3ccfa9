"""`attnscope heads` (analysis.heads, analysis.scale) on tiny models and a 20-line corpus."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from analysis.heads import Study, loaded_model, map_statistics, pruning_order, read_corpus, run_study
from analysis.scale import InProcess, ProcessPool, RayCluster
from backends.interface import HeadRef, Token
from model.checkpoint import save_checkpoint
from tests.conftest import make_tiny_model, write_model_dir, write_tiny_corpus


@pytest.fixture
def study(tmp_path) -> Study:
    checkpoint = write_model_dir(tmp_path / "models")
    corpus = read_corpus(write_tiny_corpus(tmp_path / "corpus", lines=20))
    return Study(str(checkpoint), "tiny", corpus, shard_size=8)


@pytest.fixture
def small_study(tmp_path) -> Study:
    """A smaller model still (one layer a side, two heads: six heads in all), so three executors stay quick."""
    loaded = make_tiny_model(n_encoder_layers=1, n_decoder_layers=1, n_heads=2)
    checkpoint = tmp_path / "small.pt"
    save_checkpoint(checkpoint, loaded.model, loaded.src_vocab, loaded.tgt_vocab)
    corpus = read_corpus(write_tiny_corpus(tmp_path / "corpus", lines=20))
    return Study(str(checkpoint), "small", corpus, shard_size=10)


def token(text: str, special: bool = False) -> Token:
    return Token(text, 0, unknown=False, special=special)


def test_the_table_has_every_head_of_every_kind(study):
    with InProcess() as run:
        table = run_study(study, run)
    assert table["bleu"] >= 0 and table["data"] == {"corpus": "corpus", "split": "test", "sentences": 20}
    assert table["shards"] == {"count": 3, "size": 8, "threads": 1}
    heads = [(row["kind"], row["layer"], row["head"]) for row in table["heads"]]
    assert heads == [(kind, layer, head) for kind in ("encoder", "decoder", "cross") for layer in range(2) for head in range(4)]
    for row in table["heads"]:
        assert row["bleu_drop"] == pytest.approx(table["bleu"] - row["bleu"], abs=1e-3)
        assert row["importance"] > 0 and 0 < row["confidence"] <= 1 and row["entropy"] >= 0 and row["distance"] >= 0
        assert row["aer"] is None
        # normalised by the l2 norm of its layer
        layer = [r["importance"] for r in table["heads"] if (r["kind"], r["layer"]) == (row["kind"], row["layer"])]
        assert row["importance_normalized"] == pytest.approx(row["importance"] / sum(v * v for v in layer) ** 0.5, rel=1e-4)
    assert table["aer"]["available"] is False and table["pruning"] is None


def test_local_and_ray_runs_give_identical_json(small_study):
    """The same units, run in this process, in two local processes and as Ray tasks (Ray started here)."""
    with InProcess() as run:
        here = json.dumps(run_study(small_study, run, prune=True), sort_keys=True)
    with ProcessPool(2) as run:
        pool = json.dumps(run_study(small_study, run, prune=True), sort_keys=True)
    with RayCluster("local", workers=2) as run:
        ray = json.dumps(run_study(small_study, run, prune=True), sort_keys=True)
    assert pool == here
    assert ray == here
    steps = json.loads(here)["pruning"]["steps"]
    assert [step["removed"] for step in steps] == list(range(7))


def test_pruning_removes_the_least_important_head_first():
    rows = [
        {"kind": "encoder", "layer": 0, "head": 0, "importance_normalized": 0.9},
        {"kind": "encoder", "layer": 0, "head": 1, "importance_normalized": 0.1},
        {"kind": "cross", "layer": 0, "head": 0, "importance_normalized": 0.1},
        {"kind": "cross", "layer": 0, "head": 1, "importance_normalized": 0.5},
    ]
    expected = [HeadRef("encoder", 0, 1), HeadRef("cross", 0, 0), HeadRef("cross", 0, 1), HeadRef("encoder", 0, 0)]
    assert pruning_order(rows) == expected


def test_confidence_leaves_the_end_token_out_and_entropy_hides_the_specials():
    # one layer, one head; queries: a, </s>; keys: x, y, </s>
    weights = torch.tensor([[[[0.2, 0.2, 0.6], [0.1, 0.1, 0.8]]]], dtype=torch.float64)
    queries = [token("a"), token("</s>", special=True)]
    keys = [token("x"), token("y"), token("</s>", special=True)]
    stats = map_statistics(weights, queries, keys, cross=True)
    confidence, rows = stats["confidence"]
    assert rows == 1 and confidence.item() == pytest.approx(0.2)  # 0.6 on </s> does not count
    entropy, rows = stats["entropy"]
    assert rows == 1 and entropy.item() == pytest.approx(1.0)  # 0.2, 0.2 renormalised: one bit
    distance, _ = stats["distance"]
    assert distance.item() == pytest.approx(0.5)  # query 0 of 1 row against keys 0 and 1


def test_a_model_that_cannot_be_pruned_is_refused(study, monkeypatch):
    from analysis import heads

    model = heads.loaded_model(study.model_path, study.device)
    monkeypatch.setattr(type(model), "describe", lambda self: dataclasses.replace(self._description, ablation=False))
    with pytest.raises(ValueError, match="cannot switch heads off, so it cannot be pruned"), InProcess() as run:
        run_study(study, run, prune=True)


def test_gold_alignments_give_each_cross_head_its_aer(study, tmp_path):
    """A gold file whose links are cross layer 1, head 2's own argmax on the first lines gives that head AER 0, and
    every cross head the AER of its argmax links computed here from its map; the other kinds have none."""
    model = loaded_model(study.model_path, study.device)

    def one_token_a_word(source: str) -> bool:
        return [t.text for t in model.source_tokens(source) if not t.special] == source.split()

    kept = [i for i, source in enumerate(study.corpus.sources) if one_token_a_word(source)]  # not "do n't go !"
    corpus = dataclasses.replace(
        study.corpus,
        sources=tuple(study.corpus.sources[i] for i in kept),
        references=tuple(study.corpus.references[i] for i in kept),
    )
    study = dataclasses.replace(study, corpus=corpus)
    lines = 6
    argmax = {}  # (layer, head) -> per line, its argmax links (source word, target word), the end tokens left out
    for line in range(lines):
        source, reference = study.corpus.sources[line], study.corpus.references[line]
        result = model.attention(source, reference)
        words = len(source.split()), len(reference.split())
        cross = result.maps["cross"]  # (L, H, T, S): here the tiny model's tokens are the corpus's words, then </s>
        for layer in range(cross.size(0)):
            for head in range(cross.size(1)):
                rows = cross[layer, head, : words[1], : words[0]].argmax(-1).tolist()
                argmax.setdefault((layer, head), []).append({(i, j) for j, i in enumerate(rows)})
    gold = tmp_path / "gold.talp"
    gold.write_text("".join(" ".join(f"{i}-{j}" for i, j in sorted(links)) + "\n" for links in argmax[1, 2]))

    with InProcess() as run:
        table = run_study(dataclasses.replace(study, gold=str(gold)), run)

    assert table["aer"] == {"available": True, "gold": "gold.talp", "sentences": lines, "rule": "argmax per target token"}
    for row in table["heads"]:
        if row["kind"] != "cross":
            assert row["aer"] is None
            continue
        predicted, sure = argmax[row["layer"], row["head"]], argmax[1, 2]
        hits = sum(len(a & s) for a, s in zip(predicted, sure, strict=True))
        expected = 1 - 2 * hits / (sum(map(len, predicted)) + sum(map(len, sure)))  # sure = possible here
        assert row["aer"] == pytest.approx(expected, abs=1e-4)
    assert next(r for r in table["heads"] if (r["kind"], r["layer"], r["head"]) == ("cross", 1, 2))["aer"] == 0


def test_a_hugging_face_model_gets_the_same_table_through_the_interface(tmp_path):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    from tests.backends.conftest import write_tiny_hf_model

    directory = write_tiny_hf_model(tmp_path / "marian", "marian")
    corpus = read_corpus(write_tiny_corpus(tmp_path / "corpus", lines=4))
    with InProcess() as run:
        table = run_study(Study(str(directory), "marian", corpus, shard_size=4), run)
    shapes = {"encoder": (2, 4), "decoder": (1, 2), "cross": (1, 2)}
    assert table["kinds"] == {kind: {"layers": layers, "heads": heads} for kind, (layers, heads) in shapes.items()}
    assert len(table["heads"]) == 12 and all(row["importance"] is not None for row in table["heads"])
    assert table["bleu_method"] == "sacrebleu corpus BLEU on the translations, tokenize=13a"  # a subword model: its text
