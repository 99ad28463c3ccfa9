import pytest

from model.politeness import target_politeness


@pytest.mark.parametrize(
    ("sentence", "politeness"),
    [
        ("これ は 例 で す 。", "polite"),
        ("昨日 学校 へ 行 き ま し た 。", "polite"),
        ("それ は 知 り ま せ ん 。", "polite"),
        ("窓 を 開け て くださ い 。", "polite"),
        ("これ は 例 で あ る 。", "plain"),
        ("彼 は 学生 だ 。", "plain"),
        ("昨日 学校 へ 行 っ た 。", "plain"),
        # で and す apart are not です: the ending must be whole and in order
        ("す で に 終わ っ た 。", "plain"),
        ("", "plain"),
    ],
)
def test_politeness_of_corpus_sentences(sentence, politeness):
    assert target_politeness(sentence.split()) == politeness
