"""Politeness of a Japanese sentence: plain (だ・である) or polite (です・ます), its register.

English does not mark politeness, so without help a model picks the register from word
statistics, sentence by sentence: `this is a pen .` comes out polite, `this is an example .`
plain. A model trained with politeness control reads the register of each training target,
learns to produce either one on request, and learns to predict from the English source which
one the corpus's translators would have chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

POLITENESS_LEVELS = ("plain", "polite")
POLITENESS_LABELS = {"plain": "Plain (だ・である)", "polite": "Polite (です・ます)"}

# Polite verb endings as KyTea splits them in the corpus (です → で す, ました → ま し た).
POLITE_ENDINGS = (
    ("で", "す"),
    ("で", "し", "た"),
    ("で", "しょ", "う"),
    ("ま", "す"),
    ("ま", "し", "た"),
    ("ま", "せ", "ん"),
    ("ま", "しょ", "う"),
    ("くださ", "い"),
    ("下さ", "い"),
)


def target_politeness(tokens: Sequence[str]) -> str:
    """'polite' if any polite ending occurs in the corpus-tokenized Japanese sentence, else 'plain'."""
    for ending in POLITE_ENDINGS:
        n = len(ending)
        if any(tuple(tokens[i : i + n]) == ending for i in range(len(tokens) - n + 1)):
            return "polite"
    return "plain"
