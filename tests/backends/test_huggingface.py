"""backends.huggingface on tiny random checkpoints of four families, checked against transformers called directly."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch

from backends.interface import (
    ATTENTION_KINDS,
    AttentionQuery,
    InputError,
    KindShape,
    TranslationModel,
    never_stop,
    resolve_controls,
)
from backends.words import merge_words
from tests.backends.conftest import FAMILIES

transformers = pytest.importorskip("transformers", reason="the hf extra is not installed")

from backends.huggingface import HuggingFaceModel, ModelLoadError  # noqa: E402

SOURCE = "i can 't tell who will arrive first ."
TARGET = "誰 が 一番 に 着 く か 私 に は 分か り ま せ ん 。"
# what conftest.TINY_CONFIGS builds, written out: the adapter must read each kind's counts from the config
EXPECTED_KINDS = {
    "marian": {"encoder": KindShape(2, 4), "decoder": KindShape(1, 2), "cross": KindShape(1, 2)},
    "bart": {"encoder": KindShape(2, 2), "decoder": KindShape(2, 2), "cross": KindShape(2, 2)},
    "t5": {"encoder": KindShape(2, 2), "decoder": KindShape(3, 2), "cross": KindShape(3, 2)},
    "m2m_100": {"encoder": KindShape(2, 2), "decoder": KindShape(2, 2), "cross": KindShape(2, 2)},
    "nllb": {"encoder": KindShape(1, 2), "decoder": KindShape(2, 4), "cross": KindShape(2, 4)},
    "mbart50": {"encoder": KindShape(2, 2), "decoder": KindShape(2, 2), "cross": KindShape(2, 2)},
}
MARKERS = {"marian": "▁", "bart": "Ġ", "t5": "▁", "m2m_100": "▁", "nllb": "▁", "mbart50": "▁"}
MODEL_TYPES = {"nllb": "m2m_100", "mbart50": "mbart"}


@pytest.fixture(scope="session")
def models(tiny_hf_dirs) -> dict[str, HuggingFaceModel]:
    return {family: HuggingFaceModel.load(directory) for family, directory in tiny_hf_dirs.items()}


@pytest.fixture(scope="session")
def direct(tiny_hf_dirs) -> dict[str, tuple]:
    """The same checkpoints loaded with transformers alone: (model, tokenizer)."""
    loaded = {}
    for family, directory in tiny_hf_dirs.items():
        model = transformers.AutoModelForSeq2SeqLM.from_pretrained(directory, attn_implementation="eager").eval()
        loaded[family] = (model, transformers.AutoTokenizer.from_pretrained(directory))
    return loaded


def direct_generate_options(family: str, tokenizer) -> dict:
    options = dict(num_beams=1, do_sample=False, max_new_tokens=12)
    if family == "t5":
        options["use_cache"] = False  # transformers sizes generate's cache by the encoder's layer count (2 < 3 decoder layers)
    if family == "m2m_100":
        options["forced_bos_token_id"] = tokenizer.get_lang_id("ja")
    if family == "nllb":
        options["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids("jpn_Jpan")
    if family == "mbart50":
        options["forced_bos_token_id"] = tokenizer.lang_code_to_id["ja_XX"]
    return options


def test_is_a_translation_model(models):
    assert all(isinstance(model, TranslationModel) for model in models.values())


@pytest.mark.parametrize("family", FAMILIES)
def test_describe(models, family):
    description = models[family].describe()
    assert description.family == MODEL_TYPES.get(family, family)
    assert description.kinds == EXPECTED_KINDS[family]
    assert description.tokens.subword_marker == MARKERS[family]
    assert description.tokens.target_joiner == " " and not description.tokens.word_level
    assert "</s>" in description.tokens.special_tokens
    assert description.d_model == 32 and description.parameters > 0
    positions = 512 if family == "t5" else 64  # T5: relative positions, the documented cap
    added = 1 if family in ("marian", "t5") else 2  # </s>, and <s> or the language code
    assert description.limits.max_source_tokens == description.limits.max_target_tokens == positions - added


def test_languages_from_the_tokenizer_or_unknown(models):
    marian = models["marian"].describe()
    assert (marian.source_language.code, marian.target_language.code) == ("en", "ja")
    assert (marian.source_language.name, marian.target_language.name) == ("English", "Japanese")
    assert models["t5"].describe().source_language.code == "und"
    assert models["marian"].describe().controls == () and models["bart"].describe().controls == ()


@pytest.mark.parametrize("family", FAMILIES)
def test_map_shapes_rows_and_causality(models, family):
    result = models[family].attention(SOURCE, max_length=10)
    kinds = models[family].describe().kinds
    lengths = {
        "source_tokens": len(result.source_tokens),
        "target_tokens": len(result.target_tokens),
        "decoder_input_tokens": len(result.decoder_input_tokens),
    }
    axes = {
        "encoder": ("source_tokens", "source_tokens"),
        "decoder": ("target_tokens", "decoder_input_tokens"),
        "cross": ("target_tokens", "source_tokens"),
    }
    assert set(result.maps) == set(ATTENTION_KINDS)
    for kind, weights in result.maps.items():
        rows, columns = axes[kind]
        assert weights.shape == (kinds[kind].layers, kinds[kind].heads, lengths[rows], lengths[columns])
        assert weights.dtype == torch.float32 and weights.device.type == "cpu"
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    decoder = result.maps["decoder"]
    assert torch.all(decoder.triu(diagonal=1) == 0)
    assert len(result.decoder_input_tokens) == len(result.target_tokens)
    assert result.decoder_input_tokens[1:] == result.target_tokens[:-1]
    assert result.decoder_input_tokens[0].special and not result.forced


@pytest.mark.parametrize("family", FAMILIES)
def test_maps_equal_transformers_output_attentions(models, direct, family):
    result = models[family].attention(SOURCE, max_length=10)
    model, tokenizer = direct[family]
    encoded = tokenizer(SOURCE, return_tensors="pt")
    assert encoded.input_ids[0].tolist() == [token.id for token in result.source_tokens]
    decoder_input_ids = torch.tensor([[token.id for token in result.decoder_input_tokens]])
    assert decoder_input_ids[0, 0] == model.generation_config.decoder_start_token_id
    with torch.no_grad():
        output = model(**encoded, decoder_input_ids=decoder_input_ids, output_attentions=True)
    expected = {
        "encoder": output.encoder_attentions,
        "decoder": output.decoder_attentions,
        "cross": output.cross_attentions,
    }
    for kind, layers in expected.items():
        torch.testing.assert_close(result.maps[kind], torch.cat(layers), atol=1e-5, rtol=0)
    target_ids = torch.tensor([token.id for token in result.target_tokens])
    log_probs = output.logits[0].log_softmax(-1)[torch.arange(len(target_ids)), target_ids]
    assert result.score == pytest.approx(log_probs.sum().item(), abs=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_equals_generate(models, direct, family):
    model, tokenizer = direct[family]
    with torch.no_grad():
        sequence = model.generate(**tokenizer(SOURCE, return_tensors="pt"), **direct_generate_options(family, tokenizer))[0]
    produced = sequence[1:].tolist()
    if model.generation_config.eos_token_id in produced:
        produced = produced[: produced.index(model.generation_config.eos_token_id) + 1]
    translation = models[family].translate([SOURCE], max_length=12)[0]
    assert [token.id for token in translation.target_tokens] == produced
    assert translation.translation == models[family].attention(SOURCE, max_length=12).translation
    # the greedy score is the sum of the produced tokens' log-probabilities, as the teacher-forced pass scores them
    assert translation.score == pytest.approx(models[family].attention(SOURCE, max_length=12).score, abs=1e-4)


@pytest.mark.parametrize("family", ["marian", "t5"])
def test_beam_n_best_with_generate_scores(models, direct, family):
    model, tokenizer = direct[family]
    options = {**direct_generate_options(family, tokenizer), "num_beams": 3, "max_new_tokens": 8}
    with torch.no_grad():
        output = model.generate(
            **tokenizer(SOURCE, return_tensors="pt"),
            **options,
            num_return_sequences=2,
            return_dict_in_generate=True,
            output_scores=True,
        )
    translation = models[family].translate([SOURCE], beam_size=3, n_best=2, max_length=8)[0]
    assert [hypothesis.score for hypothesis in translation.n_best] == pytest.approx(output.sequences_scores.tolist(), abs=1e-5)
    assert translation.n_best[0].score >= translation.n_best[1].score
    assert translation.translation == translation.n_best[0].translation


def test_translate_batch_matches_one_at_a_time(models):
    sources = [SOURCE, "i like tea .", "many animals have been destroyed by men ."]
    together = models["bart"].translate(sources, max_length=8)
    alone = [models["bart"].translate([source], max_length=8)[0] for source in sources]
    assert [t.translation for t in together] == [t.translation for t in alone]
    assert [t.score for t in together] == pytest.approx([t.score for t in alone], abs=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_forced_target(models, direct, family):
    result = models[family].attention(SOURCE, TARGET)
    _, tokenizer = direct[family]
    expected_ids = tokenizer(text_target=TARGET).input_ids
    assert result.forced
    assert [token.id for token in result.target_tokens] == expected_ids
    assert result.target_tokens[-1].text == "</s>" and result.target_tokens[-1].special
    assert result.translation.replace(" ", "") == TARGET.replace(" ", "")
    assert result.maps["cross"].shape[-2:] == (len(expected_ids), len(result.source_tokens))


@pytest.mark.parametrize("family", FAMILIES)
def test_tokens_strip_markers_and_mark_word_starts(models, family):
    tokens = models[family].source_tokens(SOURCE)
    marker = MARKERS[family]
    assert not any(token.text.startswith(marker) and token.text != marker for token in tokens)
    assert any(not token.word_start for token in tokens)  # the tiny vocabularies split some words
    words = merge_words(models[family].attention(SOURCE, max_length=4), subword_marker=marker).source_tokens
    assert " ".join(word.text for word in words if not word.special) == SOURCE
    assert tokens[-1].special and tokens[-1].text == "</s>"


def test_unknown_token_is_flagged(models):
    # the Marian source vocabulary is English: a Japanese character becomes <unk>
    tokens = models["marian"].source_tokens("tea 鬱")
    unknown = [token for token in tokens if token.unknown]
    assert unknown and not any(token.special for token in unknown)  # a typed word: the service counts it
    assert "".join(token.text for token in unknown) == "鬱"  # shown as what was typed, not as <unk>
    assert not any(token.unknown for token in models["marian"].source_tokens("tea"))
    for family in ("marian", "t5"):
        (translated,) = models[family].translate(["tea 鬱"], max_length=3)
        attended = models[family].attention("tea 鬱", max_length=3)
        for typed in (translated.source_tokens, attended.source_tokens):
            assert "鬱" in "".join(token.text for token in typed if token.unknown), family


@pytest.mark.parametrize("family", ["marian", "t5"])
def test_word_granularity_on_a_real_result(models, family):
    result = models[family].attention(SOURCE, TARGET)
    merged = merge_words(result, subword_marker=MARKERS[family])
    assert len(merged.source_tokens) < len(result.source_tokens)
    for kind, weights in merged.maps.items():
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
        assert weights.shape[:2] == result.maps[kind].shape[:2]
    assert [word.text for word in merged.target_tokens][:-1] == TARGET.split()


class CountingStop:
    def __init__(self, raise_at: int | None = None):
        self.calls, self.raise_at = 0, raise_at

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == self.raise_at:
            raise TimeoutError("deadline passed")


@pytest.mark.parametrize("family", ["marian", "m2m_100"])
def test_stop_is_called_once_per_step_and_its_exception_ends_the_call(models, family):
    counting = CountingStop()
    translation = models[family].translate([SOURCE], max_length=9, stop=counting)[0]
    assert counting.calls == len(translation.target_tokens)  # one call per produced token
    counting = CountingStop()
    models[family].translate([SOURCE], beam_size=2, max_length=9, stop=counting)
    assert 1 <= counting.calls <= 9
    for call in (
        lambda stop: models[family].translate([SOURCE], max_length=9, stop=stop),
        lambda stop: models[family].translate([SOURCE], beam_size=2, max_length=9, stop=stop),
        lambda stop: models[family].attention(SOURCE, max_length=9, stop=stop),
    ):
        stopping = CountingStop(raise_at=3)
        with pytest.raises(TimeoutError):
            call(stopping)
        assert stopping.calls == 3
    stopping = CountingStop(raise_at=1)  # a forced target has no decoding steps: the stop between passes still runs
    with pytest.raises(TimeoutError):
        models[family].attention(SOURCE, TARGET, stop=stopping)


def test_input_errors(models):
    model = models["marian"]
    with pytest.raises(InputError, match="empty"):
        model.source_tokens("   ")
    with pytest.raises(InputError, match="empty"):
        model.attention(SOURCE, " ")
    with pytest.raises(InputError, match="the source has 64 tokens; the limit is 63"):
        model.attention(" ".join(["i"] * 64))
    assert len(model.source_tokens(" ".join(["i"] * 63))) == 64  # the longest source fits the 64 positions with </s>
    with pytest.raises(InputError, match=r"the target has \d+ tokens; the limit is 63"):
        model.target_tokens(" ".join(["私"] * 80))
    with pytest.raises(InputError, match="n_best"):
        model.translate([SOURCE], beam_size=2, n_best=3)
    with pytest.raises(InputError, match="no control"):
        model.translate([SOURCE], controls={"politeness": "plain"})


def test_multilingual_controls(models):
    model = models["m2m_100"]
    description = model.describe()
    controls = {control.name: control for control in description.controls}
    assert set(controls) == {"source_language", "target_language"}
    assert controls["target_language"].values == ("en", "ha", "is", "ja", "cs", "ru", "zh", "de")
    assert (controls["source_language"].default, controls["target_language"].default) == ("en", "ja")
    assert controls["target_language"].value_labels["de"] == "German" and "ha" not in controls["target_language"].value_labels
    assert description.target_language.name == "Japanese"
    assert "__ja__" in description.tokens.special_tokens
    with pytest.raises(InputError, match="'xx' is not one of en, ha, is, ja, cs, ru, zh, de"):
        resolve_controls(description, {"target_language": "xx"})
    with pytest.raises(InputError, match="is not one of"):
        model.attention(SOURCE, controls={"source_language": "xx"})
    result = model.attention(SOURCE, max_length=4, controls={"target_language": "de", "source_language": "ja"})
    assert result.target_tokens[0].text == "__de__" and result.target_tokens[0].special
    assert result.source_tokens[0].text == "__ja__"
    assert result.controls == {"source_language": "ja", "target_language": "de"}
    assert "__de__" not in result.translation
    forced = model.attention(SOURCE, TARGET, controls={"target_language": "zh"})
    assert forced.target_tokens[0].text == "__zh__"


@pytest.mark.parametrize(
    ("family", "count", "source", "target", "other", "other_name"),
    [("nllb", 202, "eng_Latn", "jpn_Jpan", "fra_Latn", "fra_Latn"), ("mbart50", 52, "en_XX", "ja_XX", "fr_XX", "French")],
)
def test_language_codes_that_are_language_tokens(models, family, count, source, target, other, other_name):
    description = models[family].describe()
    controls = {control.name: control for control in description.controls}
    assert len(controls["target_language"].values) == count and other in controls["target_language"].values
    assert (controls["source_language"].default, controls["target_language"].default) == (source, target)
    assert controls["target_language"].value_labels.get(other, other) == other_name
    assert description.source_language.code == source
    with pytest.raises(InputError, match=f"'ja' is not one of {controls['target_language'].values[0]}"):
        resolve_controls(description, {"target_language": "ja"})
    result = models[family].attention(SOURCE, max_length=3, controls={"target_language": other})
    assert result.target_tokens[0].text == other and result.source_tokens[0].text == source
    assert other not in result.translation


def test_card_file(tiny_hf_dirs, tmp_path):
    directory = shutil.copytree(tiny_hf_dirs["marian"], tmp_path / "opus-tiny")
    card = {
        "name": "tiny-en-ja",
        "description": "A tiny random Marian model",
        "source_language": {"code": "en", "name": "English"},
        "target_language": {"code": "ja", "name": "Japanese"},
        "target_joiner": "",
        "examples": ["i like tea ."],
        "target_example": "私 は お 茶 が 好き で す 。",
        "card": {"test_bleu": None},
    }
    (directory / "attnscope.json").write_text(json.dumps(card), encoding="utf-8")
    description = HuggingFaceModel.load(directory).describe()
    assert (description.name, description.description) == ("tiny-en-ja", "A tiny random Marian model")
    assert description.target_language.name == "Japanese" and description.tokens.target_joiner == ""
    assert description.examples == ("i like tea .",) and description.card == {"test_bleu": None}
    assert HuggingFaceModel.load(directory, name="other").describe().name == "other"
    (directory / "attnscope.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="attnscope.json"):
        HuggingFaceModel.load(directory)


def assert_refused(path, match: str) -> None:
    with pytest.raises(ModelLoadError, match=match) as refused:
        HuggingFaceModel.load(path)
    assert "\n" not in str(refused.value)


def test_refuses_a_folder_that_is_not_a_model(tmp_path):
    assert_refused(tmp_path, "no config.json")
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    assert_refused(tmp_path / "notes.txt", "not a directory")
    (tmp_path / "config.json").write_text("{broken", encoding="utf-8")
    assert_refused(tmp_path, "cannot read the model config")


def test_refuses_a_decoder_only_model(tmp_path, tiny_hf_dirs):
    transformers.GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=100).save_pretrained(tmp_path)
    shutil.copy(tiny_hf_dirs["bart"] / "tokenizer.json", tmp_path)
    assert_refused(tmp_path, "gpt2 is not an encoder-decoder model")


def test_refuses_a_model_without_tokenizer(tmp_path, tiny_hf_dirs):
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(tiny_hf_dirs["t5"] / name, tmp_path)
    assert_refused(tmp_path, "no tokenizer")


def test_refuses_without_the_hf_extra(monkeypatch, tiny_hf_dirs):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers now raises ImportError
    assert_refused(tiny_hf_dirs["marian"], r"pip install 'attnscope\[hf\]'")


def test_a_model_that_does_not_batch_answers_a_batch_one_call_at_a_time(models):
    model = models["marian"]
    assert not model.describe().batching  # the service never batches its requests; the interface's loop still works
    queries = [
        AttentionQuery("a small house", max_length=6),
        AttentionQuery("the old man"),
        AttentionQuery("a dog", target="ein Hund"),
    ]

    def hangs_up():
        raise RuntimeError("client gone")

    results = model.attention_batch(queries, [never_stop, hangs_up, never_stop])
    assert isinstance(results[1], RuntimeError)
    for query, result in zip([queries[0], queries[2]], [results[0], results[2]], strict=True):
        single = model.attention(query.source, query.target, max_length=query.max_length)
        assert (result.translation, result.score) == (single.translation, single.score)
        assert all(torch.equal(result.maps[kind], single.maps[kind]) for kind in single.maps)


NORMS_FAMILIES = ("marian", "bart", "m2m_100", "nllb", "mbart50")


def test_methods_are_declared_by_family(models):
    for family in NORMS_FAMILIES:
        assert models[family].describe().methods == ("weights", "norms")
    assert models["t5"].describe().methods == ("weights",)
    with pytest.raises(InputError, match="model .* has no method norms; its methods are weights"):
        models["t5"].attention(SOURCE, TARGET, method="norms")


@pytest.mark.parametrize("family", NORMS_FAMILIES)
def test_norms_equal_a_recomputation_from_the_value_vectors_the_model_made(models, direct, family):
    """Kobayashi et al. 2020 from the checkpoint itself: the value vectors each v_proj really computed (caught by
    forward hooks on the directly loaded model, whatever its LayerNorm order), through W_O^h head by head."""
    result = models[family].attention(SOURCE, TARGET, method="norms")
    model, _ = direct[family]
    values: dict[int, torch.Tensor] = {}
    attentions = {
        "encoder": [layer.self_attn for layer in model.get_encoder().layers],
        "decoder": [layer.self_attn for layer in model.get_decoder().layers],
        "cross": [layer.encoder_attn for layer in model.get_decoder().layers],
    }
    hooks = [
        attention.v_proj.register_forward_hook(lambda module, args, out: values.__setitem__(id(module), out[0]))
        for layers in attentions.values()
        for attention in layers
    ]
    source_ids = torch.tensor([[t.id for t in result.source_tokens]])
    decoder_ids = torch.tensor([[t.id for t in result.decoder_input_tokens]])
    try:
        with torch.no_grad():
            output = model(input_ids=source_ids, decoder_input_ids=decoder_ids, output_attentions=True)
    finally:
        for hook in hooks:
            hook.remove()
    weights = {"encoder": output.encoder_attentions, "decoder": output.decoder_attentions, "cross": output.cross_attentions}
    for kind, layers in attentions.items():
        for index, attention in enumerate(layers):
            alpha = weights[kind][index][0]  # (H, Tq, Tk)
            heads, d = alpha.size(0), attention.out_proj.weight.size(0)
            v = values[id(attention.v_proj)]  # (Tk, D)
            d_k = d // heads
            moved = torch.stack(
                [
                    alpha[h, :, :, None]
                    * (v[:, h * d_k : (h + 1) * d_k] @ attention.out_proj.weight[:, h * d_k : (h + 1) * d_k].T)
                    for h in range(heads)
                ]
            )  # (H, Tq, Tk, D)
            torch.testing.assert_close(result.maps[kind][index], moved.norm(dim=-1), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(result.layer_maps[kind][index], moved.sum(0).norm(dim=-1), atol=1e-5, rtol=1e-5)
