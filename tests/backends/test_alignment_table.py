"""backends.alignment_table through the model interface, on tiny random models and hand-made references."""

from __future__ import annotations

import pytest

from backends.alignment import (
    GoldAlignment,
    PharaohError,
    corpus_positions,
    head_map,
    links_of,
    shift_rows,
    to_corpus,
    weighted_links,
)
from backends.alignment_table import AlignmentRule, Reference, aer_tables, read_corpus
from backends.builtin import BuiltinModel
from backends.interface import InputError
from tests.conftest import write_model_dir

# 猫犬 is not a word of the tiny vocabulary: the model reads it as 猫 + 犬, both mapped back to corpus token 0.
ARGMAX = AlignmentRule()
CORPUS = [
    ("i like tea .".split(), "私 は お 茶 が 好き 。".split()),
    ("the cat dog".split(), "猫犬 が 好き".split()),
    ("do n't go !".split(), "行 く な ！".split()),
]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> BuiltinModel:
    return BuiltinModel.load(write_model_dir(tmp_path_factory.mktemp("tiny")), "cpu")


def model_links(model, line: int, layer: int, head, rule: AlignmentRule = ARGMAX) -> set:
    """What the table should count for one pair, worked out here from the model's own maps."""
    source, target = CORPUS[line]
    result = model.attention(" ".join(source), " ".join(target))
    cross = shift_rows(result.maps["cross"]) if rule.shift_att else result.maps["cross"]
    weighted = weighted_links(head_map(cross, layer, head), result.source_tokens, result.target_tokens, rule.threshold)
    return to_corpus(
        links_of(weighted), corpus_positions(result.source_tokens, source), corpus_positions(result.target_tokens, target)
    )


def score(table: dict, layer, head) -> dict:
    row = next(row for row in table["scores"] if (row["layer"], row["head"]) == (layer, head))
    return {k: v for k, v in row.items() if k not in ("layer", "head")}


def sure(links: set) -> GoldAlignment:
    return GoldAlignment(frozenset(links), frozenset(links))


def test_the_models_own_links_as_gold_score_zero_for_that_head_and_it_is_best(model):
    gold = [sure(model_links(model, line, 1, 2)) for line in range(3)]
    tables = aer_tables(model, CORPUS, [Reference("gold", "gold.talp", gold)], methods=["weights"])
    table = tables["gold"]["methods"]["weights"]
    assert tables["gold"]["sentences"] == 3
    assert score(table, 1, 2) == {"aer": 0.0, "precision": 1.0, "recall": 1.0}
    assert table["best"] == {"layer": 1, "head": 2, "aer": 0.0, "precision": 1.0, "recall": 1.0}
    read = [(row["layer"], row["head"]) for row in table["scores"]]
    assert read == [(layer, h) for layer in (0, 1) for h in (0, 1, 2, 3, "mean")]
    means = [score(table, layer, "mean")["aer"] for layer in (0, 1)]
    assert table["best_mean"]["aer"] == min(means) and table["best_mean"]["layer"] == means.index(min(means))


def test_possible_links_count_for_precision_only_and_aer_is_summed_over_the_corpus(model):
    # Gold: the model's links as possible, one sure link it cannot make (a source index it never links to
    # from that target: the same target token linked to every other source word too would be two links).
    predicted = [model_links(model, line, 0, "mean") for line in range(2)]
    missing = [(len(CORPUS[line][0]) - 1, 0) for line in range(2)]
    gold = [
        GoldAlignment(frozenset({missing[line]} - predicted[line]), frozenset(predicted[line] | {missing[line]}))
        for line in range(2)
    ]
    table = aer_tables(model, CORPUS, [Reference("gold", "gold.talp", gold)], methods=["weights"])["gold"]["methods"]["weights"]
    a = sum(len(p) for p in predicted)
    s = sum(len(g.sure) for g in gold)
    # |A∩S| = 0, |A∩P| = |A|: AER = 1 - |A| / (|A| + |S|)
    assert score(table, 0, "mean")["aer"] == pytest.approx(1 - a / (a + s), abs=1e-4)
    assert score(table, 0, "mean")["precision"] == 1.0


def test_shift_att_and_threshold_change_the_links_read(model):
    rule = AlignmentRule(threshold=0.3, shift_att=True)
    gold = [sure(model_links(model, line, 0, 1, rule)) for line in range(3)]
    tables = aer_tables(model, CORPUS, [Reference("gold", "g", gold)], rule=rule, methods=["weights"])
    assert tables["gold"]["rule"] == "every link over 0.3 of its row, Shift-Att (row t + 1)"
    assert score(tables["gold"]["methods"]["weights"], 0, 1)["aer"] == 0.0


def test_two_references_over_different_lines_share_one_run(model):
    gold = [sure(model_links(model, 1, 0, 0))]
    silver = [sure(set()), sure(model_links(model, 1, 0, 0)), sure({(0, 0)})]
    references = [Reference("gold", "g", gold, start=1), Reference("silver", "s", silver)]
    tables = aer_tables(model, CORPUS, references, methods=["weights"])
    assert (tables["gold"]["sentences"], tables["silver"]["sentences"]) == (1, 3)
    assert score(tables["gold"]["methods"]["weights"], 0, 0)["aer"] == 0.0
    limited = aer_tables(model, CORPUS, [Reference("silver", "s", silver)], lines=[2], methods=["weights"])
    assert limited["silver"]["sentences"] == 1


def test_refusals_name_what_to_fix(model, tmp_path):
    with pytest.raises(PharaohError, match="s line 2: link 9-0 is outside the pair"):
        aer_tables(model, CORPUS, [Reference("silver", "s", [sure(set()), sure({(9, 0)})])])
    with pytest.raises(InputError, match="has no method attention; its methods: weights, norms, alti, saliency"):
        aer_tables(model, CORPUS, [Reference("gold", "g", [sure(set())])], methods=["attention"])
    with pytest.raises(InputError, match="covers corpus line 4 but the corpus has 3 lines"):
        aer_tables(model, CORPUS, [Reference("gold", "g", [sure(set())] * 4)])
    with pytest.raises(InputError, match="the corpus cannot be read"):
        read_corpus(tmp_path, "test", model.describe())


def test_read_corpus_takes_the_files_of_the_models_languages(model, tmp_path):
    (tmp_path / "test.en").write_text("i like tea .\nthe cat\n", encoding="utf-8")
    (tmp_path / "test.ja").write_text("私 は お 茶 が 好き 。\n猫\n", encoding="utf-8")
    assert read_corpus(tmp_path, "test", model.describe())[1] == (["the", "cat"], ["猫"])


@pytest.mark.parametrize("family", ["marian", "mbart50"])
def test_subword_pieces_map_back_to_the_corpus_words(tiny_hf_dirs, family):
    from backends.huggingface import HuggingFaceModel

    model = HuggingFaceModel.load(tiny_hf_dirs[family], "cpu")
    source, target = "he is no less kind than his sister .".split(), "彼 は お 姉 さん に 劣 ら ず 親切 だ 。".split()
    result = model.attention(" ".join(source), " ".join(target))
    marker = model.describe().tokens.subword_marker
    for tokens, words in ((result.source_tokens, source), (result.target_tokens, target)):
        positions = corpus_positions(tokens, words, marker)
        assert all(not position for token, position in zip(tokens, positions, strict=True) if token.special)
        spelled = ["" for _ in words]
        for token, position in zip(tokens, positions, strict=True):
            if position and token.text != marker:
                spelled[position[0]] += token.text
        assert spelled == words
    gold = [sure({(0, 0), (1, 1)})]
    tables = aer_tables(model, [(source, target)], [Reference("gold", "g", gold)], methods=["weights"])
    assert 0 <= tables["gold"]["methods"]["weights"]["best"]["aer"] <= 1


def test_every_method_is_read_from_each_map_it_has(model):
    from backends.interface import SaliencyOptions

    gold = [sure(model_links(model, line, 0, "mean")) for line in range(3)]
    tables = aer_tables(model, CORPUS, [Reference("gold", "g", gold)], saliency=SaliencyOptions("input_x_gradient", None))
    methods = tables["gold"]["methods"]
    assert list(methods) == ["weights", "norms", "alti", "saliency"]
    read = {method: {(row["layer"], row["head"]) for row in table["scores"]} for method, table in methods.items()}
    heads = {(layer, head) for layer in (0, 1) for head in (0, 1, 2, 3, "mean")}
    assert read["weights"] == heads
    assert read["norms"] == heads | {(0, "layer"), (1, "layer")}
    assert read["alti"] == {(0, "layer"), (1, "layer"), (None, "contributions")}
    assert read["saliency"] == {(None, "contributions")}
    assert "best_mean" not in methods["alti"] and methods["weights"]["best"]["aer"] == 0.0
