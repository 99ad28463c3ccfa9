import math

import pytest
import torch

import model.translator as translator_module
from backends.interface import AttentionQuery, never_stop
from model.translator import InputError, Translator
from tests.conftest import make_tiny_model, make_tiny_rnn

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


# --- attention_batch: a batch answers each call as attention() answers it alone ------------------------------------


@pytest.fixture
def one_torch_thread():
    """Tiny models lose more to handing work between threads than they gain (as in tests/backends/conftest.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


BATCH_SOURCES = ["this is an example .", "i like tea !", "the cat and the dog", "do n't go ?", "he 's the cat . the dog"]


def batch_queries(beam_size: int, politeness: bool) -> list[AttentionQuery]:
    """Mixed lengths and limits, one forced target among them, and (with politeness control) mixed registers."""
    levels = ["auto", "plain", "polite"]
    queries = [
        AttentionQuery(
            source, beam_size=beam_size, max_length=5 + 3 * i, controls={"politeness": levels[i % 3] if politeness else "auto"}
        )
        for i, source in enumerate(BATCH_SOURCES)
    ]
    return queries + [AttentionQuery("i like tea !", target="私 は お 茶 が 好き", beam_size=beam_size)]


def alone(translator: Translator, query: AttentionQuery, stop=never_stop):
    politeness = (query.controls or {}).get("politeness", "auto")
    return translator.attention(query.source, query.target, query.beam_size, query.max_length, politeness, stop)


def assert_same(batched, single) -> None:
    assert (batched.translation, batched.score, batched.forced) == (single.translation, single.score, single.forced)
    assert [t.id for t in batched.target_tokens] == [t.id for t in single.target_tokens]
    assert (batched.controls, batched.predictions) == (single.controls, single.predictions)
    assert batched.maps.keys() == single.maps.keys()
    for kind in single.maps:  # the same bytes, not merely close: each map comes from the call's own forced pass
        assert torch.equal(batched.maps[kind], single.maps[kind]), kind


def counting_alone_decodes(translator: Translator, monkeypatch) -> list:
    decoded_alone = []
    real = translator._decode_alone

    def spy(call):
        decoded_alone.append(call)
        return real(call)

    monkeypatch.setattr(translator, "_decode_alone", spy)
    return decoded_alone


@pytest.mark.parametrize("arch", ["transformer", "politeness", "rnn"])
@pytest.mark.parametrize("beam_size", [1, 3])
@pytest.mark.usefixtures("one_torch_thread")
def test_a_batch_answers_every_call_as_it_is_answered_alone(arch, beam_size, monkeypatch):
    loaded = {"transformer": make_tiny_model, "rnn": make_tiny_rnn}.get(arch)
    translator = Translator(loaded() if loaded else make_tiny_model(1, politeness_levels=POLITENESS_LEVELS), "cpu")
    queries = batch_queries(beam_size, politeness=arch == "politeness")
    decoded_alone = counting_alone_decodes(translator, monkeypatch)
    results = translator.attention_batch(queries, [never_stop] * len(queries))
    free = len(BATCH_SOURCES)
    assert len(decoded_alone) < free  # most were decoded in the batch, not again alone
    for query, result in zip(queries, results, strict=True):
        assert_same(result, alone(translator, query))


def counting_passes(translator: Translator, monkeypatch) -> tuple[list[int], list[tuple[int, int]]]:
    """The rows of every encoder pass, and (rows, decoder positions) of every forced pass of several calls."""
    encoder_rows, forced_shapes = [], []
    real_encode, real_forced = translator.inference.encode, translator_module.forced_attention_batch

    def encode(src, gates=None):
        encoder_rows.append(src.size(0))
        return real_encode(src, gates)

    def forced(model, src, targets, *args):
        forced_shapes.append((src.size(0), args[-1]))
        return real_forced(model, src, targets, *args)

    monkeypatch.setattr(translator.inference, "encode", encode)
    monkeypatch.setattr(translator_module, "forced_attention_batch", forced)
    return encoder_rows, forced_shapes


# Sources of two padded length classes (up to 8 tokens with </s>, and 9 to 16), free and forced, greedy and beam.
LENGTH_CLASSES = [
    AttentionQuery("the cat"),
    AttentionQuery("i like tea ! the dog and the cat ."),
    AttentionQuery("do n't go ?"),
    AttentionQuery("he 's the cat . the dog and the cat", beam_size=3),
    AttentionQuery("i like tea !", target="私 は お 茶 が 好き"),
    AttentionQuery("the dog and the cat . i like tea !", target="私 は お 茶 が 好き"),
]


@pytest.mark.usefixtures("one_torch_thread")
def test_a_batch_shares_its_encoder_and_forced_passes_by_padded_length(tiny_translator, monkeypatch):
    assert tiny_translator.batches_exactly
    encoder_rows, forced_shapes = counting_passes(tiny_translator, monkeypatch)
    results = tiny_translator.attention_batch(LENGTH_CLASSES, [never_stop] * len(LENGTH_CLASSES))
    assert sorted(encoder_rows) == [3, 3]  # one pass per class of padded source length
    assert sum(rows for rows, _ in forced_shapes) == len(LENGTH_CLASSES) > len(forced_shapes)
    assert all(positions % translator_module.PAD_MULTIPLE == 0 for _, positions in forced_shapes)
    for query, result in zip(LENGTH_CLASSES, results, strict=True):
        single = alone(tiny_translator, query)
        assert_same(result, single)
        assert [len(t) for t in (single.target_tokens, single.source_tokens)] == list(single.maps["cross"].shape[2:])
        for kind, weights in single.maps.items():  # the padding never shows: each row sums to 1 over the tokens
            assert torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-5), kind


def test_with_several_torch_threads_each_call_runs_its_own_passes(tiny_translator, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert not tiny_translator.batches_exactly  # several threads split a product by its shape
        encoder_rows, forced_shapes = counting_passes(tiny_translator, monkeypatch)
        results = tiny_translator.attention_batch(LENGTH_CLASSES, [never_stop] * len(LENGTH_CLASSES))
        assert encoder_rows == [1] * len(LENGTH_CLASSES) and forced_shapes == []
        for query, result in zip(LENGTH_CLASSES, results, strict=True):
            assert_same(result, alone(tiny_translator, query))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_call_stopped_mid_batch_gets_its_exception_and_the_others_go_on(tiny_translator):
    queries = batch_queries(1, politeness=False)
    calls = [0] * len(queries)

    def stop_of(i):
        def stop():
            calls[i] += 1
            if i == 1 and calls[i] > 3:  # its client hangs up at its third decoding step
                raise RuntimeError("client gone")

        return stop

    results = tiny_translator.attention_batch(queries, [stop_of(i) for i in range(len(queries))])
    assert isinstance(results[1], RuntimeError) and calls[1] == 4  # never called again once it raised
    assert calls[4] > 6  # the longest went on decoding after it left
    for i, (query, result) in enumerate(zip(queries, results, strict=True)):
        if i != 1:
            assert_same(result, alone(tiny_translator, query))


@pytest.mark.usefixtures("one_torch_thread")
def test_refused_input_in_a_batch_is_that_call_s_answer(tiny_translator):
    queries = [AttentionQuery("this is an example ."), AttentionQuery("   "), AttentionQuery("i like tea !")]
    results = tiny_translator.attention_batch(queries, [never_stop] * 3)
    assert isinstance(results[1], InputError) and "source is empty" in str(results[1])
    assert_same(results[0], alone(tiny_translator, queries[0]))
    assert_same(results[2], alone(tiny_translator, queries[2]))


@pytest.mark.parametrize("beam_size", [1, 3])
@pytest.mark.usefixtures("one_torch_thread")
def test_a_close_call_in_the_batch_is_decoded_again_alone(tiny_translator, monkeypatch, beam_size):
    # Every choice counts as close when NEAR_TIE is infinite: each free call is then decoded again alone.
    monkeypatch.setattr(translator_module, "NEAR_TIE", math.inf)
    decoded_alone = counting_alone_decodes(tiny_translator, monkeypatch)
    queries = batch_queries(beam_size, politeness=False)
    results = tiny_translator.attention_batch(queries, [never_stop] * len(queries))
    assert sorted(call.source_tokens[0].text for call in decoded_alone) == sorted(s.split()[0] for s in BATCH_SOURCES)
    for query, result in zip(queries, results, strict=True):
        assert_same(result, alone(tiny_translator, query))
