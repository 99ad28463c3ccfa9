import pytest
import torch

from model.translator import InputError, Translator
from tests.conftest import make_tiny_model

POLITENESS_LEVELS = ("plain", "polite")


@pytest.fixture
def politeness_translator() -> Translator:
    return Translator(make_tiny_model(politeness_levels=POLITENESS_LEVELS), "cpu")


def test_unknown_words_keep_their_surface_form(tiny_translator):
    tokens = tiny_translator.source_tokens("This is a Zebra.")
    assert [t.text for t in tokens] == ["this", "is", "a", "zebra", ".", "</s>"]
    assert [t.unknown for t in tokens] == [False, False, True, True, False, False]
    assert tokens[3].id == tiny_translator.src_vocab.unk_id
    assert tokens[-1].special and not tokens[0].special


def test_attention_labels_rows_by_produced_tokens(tiny_translator):
    result = tiny_translator.attention("this is an example .", max_length=8)
    n_src, n_tgt = len(result.source_tokens), len(result.target_tokens)
    assert result.maps["encoder"].shape[-2:] == (n_src, n_src)
    assert result.maps["cross"].shape[-2:] == (n_tgt, n_src)
    assert result.maps["decoder"].shape[-2:] == (n_tgt, n_tgt)
    assert result.decoder_input_tokens[0].text == "<s>"
    assert [t.text for t in result.decoder_input_tokens[1:]] == [t.text for t in result.target_tokens[:-1]]
    assert not result.forced


def test_forced_target_is_segmented_and_scored(tiny_translator):
    result = tiny_translator.attention("this is an example .", target="これは例です。")
    assert [t.text for t in result.target_tokens] == ["これ", "は", "例", "で", "す", "。", "</s>"]
    assert result.translation == "これは例です。"
    assert result.forced
    assert result.score < 0


def test_forced_target_with_unknown_characters_is_flagged(tiny_translator):
    result = tiny_translator.attention("the cat .", target="猫 魚")
    assert [(t.text, t.unknown) for t in result.target_tokens] == [("猫", False), ("魚", True), ("</s>", False)]


@pytest.mark.parametrize("source", ["", "   ", "\x00\x07"])
def test_empty_source_is_refused(tiny_translator, source):
    with pytest.raises(InputError, match="empty"):
        tiny_translator.attention(source)


def test_over_long_source_is_refused_with_the_limit(tiny_translator):
    limit = tiny_translator.config.max_positions - 1
    with pytest.raises(InputError, match=f"the source has {limit + 1} tokens; the limit is {limit}: shorten it"):
        tiny_translator.attention("word " * (limit + 1))
    with pytest.raises(InputError, match=f"the target has {limit + 1} tokens; the limit is {limit}"):
        tiny_translator.attention("word", target="猫 " * (limit + 1))


def test_batch_translation_keeps_input_order(tiny_translator):
    texts = ["this is an example .", "i like tea !", "the cat", "do n't go ?"]
    batch = tiny_translator.translate(texts, max_length=6)
    one_by_one = [tiny_translator.translate([t], max_length=6)[0] for t in texts]
    assert [r.translation for r in batch] == [r.translation for r in one_by_one]


def test_beam_translation_returns_n_best(tiny_translator):
    result = tiny_translator.translate(["i like tea !"], beam_size=3, n_best=3, max_length=6)[0]
    assert 1 <= len(result.n_best) <= 3
    assert result.n_best[0].translation == result.translation


def test_results_are_deterministic(tiny_translator):
    a = tiny_translator.attention("the dog", max_length=5)
    b = tiny_translator.attention("the dog", max_length=5)
    assert torch.equal(a.maps["cross"], b.maps["cross"])


def test_auto_politeness_is_the_predicted_one(politeness_translator):
    result = politeness_translator.attention("this is an example .", max_length=8)
    probabilities = result.predictions["politeness"]
    assert set(probabilities) == set(POLITENESS_LEVELS)
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert result.controls["politeness"] == max(probabilities, key=probabilities.get)


@pytest.mark.parametrize("politeness", POLITENESS_LEVELS)
def test_asked_politeness_is_used_whatever_the_prediction(politeness_translator, politeness):
    translated = politeness_translator.translate(["i like tea !", "the cat"], max_length=6, politeness=politeness)
    assert [t.controls for t in translated] == [{"politeness": politeness}] * 2
    assert politeness_translator.attention("the cat", max_length=6, politeness=politeness).controls == {"politeness": politeness}


def test_the_politeness_changes_the_decoder_but_not_the_encoder(politeness_translator):
    plain, polite = (
        politeness_translator.attention("this is an example .", target="これ は 例 で す 。", politeness=level)
        for level in POLITENESS_LEVELS
    )
    assert torch.equal(plain.maps["encoder"], polite.maps["encoder"])
    assert not torch.allclose(plain.maps["cross"], polite.maps["cross"])
    assert plain.score != polite.score


def test_unknown_politeness_is_refused_with_the_choices(politeness_translator):
    with pytest.raises(InputError, match="choose auto, plain, polite"):
        politeness_translator.translate(["the cat"], politeness="formal")


def test_model_without_politeness_control_takes_only_auto(tiny_translator):
    result = tiny_translator.translate(["the cat"], max_length=4)[0]
    assert result.controls == {} and result.predictions == {}
    with pytest.raises(InputError, match="no politeness control"):
        tiny_translator.attention("the cat", politeness="polite")


@pytest.mark.parametrize(("target", "level"), [("これ は 例 で す 。", "polite"), ("これ は 例 だ 。", "plain")])
def test_auto_scores_a_forced_target_under_its_own_politeness(politeness_translator, target, level):
    auto = politeness_translator.attention("this is an example .", target=target)
    asked = politeness_translator.attention("this is an example .", target=target, politeness=level)
    assert auto.controls == {"politeness": level}
    assert auto.score == asked.score
