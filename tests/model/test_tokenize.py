import pytest

from model.tokenize import segment_japanese, tokenize_english


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("This is an example.", "this is an example ."),
        ("this is an example .", "this is an example ."),
        ("Don't go!", "don 't go !"),
        ("I CAN'T tell who'll arrive first?", "i can 't tell who 'll arrive first ?"),
        ("It's nine o'clock.", "it 's nine o 'clock ."),
        ('He said, "Stop."', "he said , '' stop . ''"),
        ("He said, “Stop.” ", "he said , '' stop . ''"),
        ("I’m here…", "i 'm here ..."),
        ("Wait... what?", "wait ... what ?"),
        ("Mr. Smith paid 1,000 dollars in the U.S.", "mr. smith paid 1,000 dollars in the u.s."),
        ("a part-time job", "a part-time job"),
        ("  tabs\tand\nnewlines  ", "tabs and newlines"),
        ("ＦＵＬＬＷＩＤＴＨ text", "fullwidth text"),
        ("nul\x00 and bell\x07 go", "nul and bell go"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_english_is_normalised_into_the_corpus_tokenization(text, tokens):
    assert tokenize_english(text) == tokens.split()


def test_unknown_scripts_and_emoji_survive_as_tokens():
    assert tokenize_english("I love 🍣 and שלום") == ["i", "love", "🍣", "and", "שלום"]


VOCAB = {"これ", "は", "例", "で", "す", "。", "例え", "私"}


def test_plain_japanese_is_segmented_by_longest_match():
    assert segment_japanese("これは例です。", VOCAB) == ["これ", "は", "例", "で", "す", "。"]
    assert segment_japanese("例えば", VOCAB) == ["例え", "ば"]


def test_characters_no_word_covers_fall_back_to_single_characters():
    assert segment_japanese("私猫", VOCAB) == ["私", "猫"]


def test_spaced_japanese_keeps_vocabulary_words_and_segments_the_other_chunks():
    # です is not in the vocabulary, で and す are: the chunk is segmented as plain text would be.
    assert segment_japanese(" これ は  例 です ", VOCAB) == ["これ", "は", "例", "で", "す"]
    assert segment_japanese("これ は 例え 。", VOCAB) == ["これ", "は", "例え", "。"]
    assert segment_japanese("これは 例", VOCAB) == ["これ", "は", "例"]


def test_characters_no_word_covers_stay_together_as_one_token():
    assert segment_japanese("猫 です", VOCAB) == ["猫", "で", "す"]
    assert segment_japanese("this is a pen", VOCAB) == ["this", "is", "a", "pen"]
    assert segment_japanese("象牙です", VOCAB) == ["象牙", "で", "す"]
    assert segment_japanese("これ<b>は", VOCAB) == ["これ", "<b>", "は"]


def test_japanese_keeps_the_corpus_full_width_forms():
    vocabulary = VOCAB | {"！", "５", "行", "く", "な"}
    assert segment_japanese("行 く な ！", vocabulary) == ["行", "く", "な", "！"]  # NFKC would make it "!"
    assert segment_japanese("行くな!", vocabulary) == ["行", "く", "な", "！"]  # typed half-width, read as the corpus writes it
    assert segment_japanese("５", vocabulary) == ["５"] and segment_japanese("5", vocabulary) == ["５"]
    assert segment_japanese("ｺﾚ", {"コレ"}) == ["コレ"]  # half-width katakana still normalised
    assert segment_japanese("これ\u200bは", VOCAB) == ["これ", "は"]  # format marks still dropped
