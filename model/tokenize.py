"""Turn what people type into the corpus's tokenization.

The corpus (small_parallel_enja) is lowercased, Stanford-tokenized English (`don 't`, `o 'clock`,
quotes as `''`) and KyTea-segmented Japanese. Users type `Don't go!` or `これは例です。`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container

_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "`": "'", "´": "'"})
_ENGLISH_TOKEN = re.compile(
    r"""
      \.\.\.                          # ellipsis
    | ''                              # the corpus's quote mark
    | (?:[a-z]\.){2,}                 # u.s. p.m. o.k.
    | (?:mr|mrs|ms|dr|st|jr)\.(?=\s|$)
    | \d+(?:[.,]\d+)*                 # 1,000 and 3.5
    | [^\W_]+(?:-[^\W_]+)*            # words, hyphenated words
    | '[^\W_]+                        # clitics: 't 's 'll 'clock
    | \S                              # any other single character
    """,
    re.VERBOSE,
)
# Characters with no meaning to the model (controls, format marks, surrogates) are dropped.
_DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}


# ASCII and its full-width form: ! and ！, 5 and ５.
_FULL_WIDTH = {chr(code): chr(code + 0xFEE0) for code in range(0x21, 0x7F)}


def _drop_meaningless(text: str) -> str:
    return "".join(
        " " if ch.isspace() else ch for ch in text if unicodedata.category(ch) not in _DROPPED_CATEGORIES or ch.isspace()
    )


def _clean(text: str) -> str:
    return _drop_meaningless(unicodedata.normalize("NFKC", text))


def _clean_japanese(text: str, vocabulary: Container[str]) -> str:
    """As _clean, but in the corpus's forms: its Japanese writes ！, ？ and ５ full-width, which NFKC would turn
    into ! ? 5, words the model does not know. A character the vocabulary has as typed is kept; any other is
    NFKC-normalised, and ASCII becomes its full-width form where only that is in the vocabulary."""

    def corpus_form(ch: str) -> str:
        if ch in vocabulary:
            return ch
        normal = unicodedata.normalize("NFKC", ch)
        return "".join(_FULL_WIDTH[c] if c not in vocabulary and _FULL_WIDTH.get(c, "") in vocabulary else c for c in normal)

    return _drop_meaningless("".join(corpus_form(ch) for ch in text))


def tokenize_english(text: str) -> list[str]:
    """`Don't go!` -> ['don', "'t", 'go', '!'];  `This is an example.` -> [..., 'example', '.']."""
    text = _clean(text).translate(_QUOTES).lower().replace('"', " '' ")
    return _ENGLISH_TOKEN.findall(text)


def segment_japanese(text: str, vocabulary: Container[str], max_word_length: int = 16) -> list[str]:
    """Split Japanese into vocabulary words.

    Spaces separate chunks; a chunk in the vocabulary is one word, any other chunk is segmented
    like plain text. So `これ は 例 です 。` reads です as で す, as the vocabulary has it, instead
    of as one unknown word. Plain text is segmented greedily by the longest vocabulary word at each
    position; characters no word covers stay together as one token (which reaches the model as
    <unk>), so `this` or a stray tag is one unknown word, not one per letter.
    """
    tokens: list[str] = []
    for chunk in _clean_japanese(text, vocabulary).split():
        tokens.extend([chunk] if chunk in vocabulary else _longest_match(chunk, vocabulary, max_word_length))
    return tokens


def _longest_match(text: str, vocabulary: Container[str], max_word_length: int) -> list[str]:
    tokens: list[str] = []
    uncovered = ""
    i = 0
    while i < len(text):
        word = next((text[i:j] for j in range(min(len(text), i + max_word_length), i, -1) if text[i:j] in vocabulary), None)
        if word is None:
            uncovered += text[i]
            i += 1
            continue
        if uncovered:
            tokens.append(uncovered)
            uncovered = ""
        tokens.append(word)
        i += len(word)
    if uncovered:
        tokens.append(uncovered)
    return tokens
