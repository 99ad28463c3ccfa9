"""Corpus BLEU as reported throughout attnscope: sacrebleu over the corpus's own tokenization."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sacrebleu

if TYPE_CHECKING:
    from model.translator import Translator


def corpus_bleu(hypotheses: list[list[str]], references: list[list[str]]) -> float:
    """Both sides are token lists; scored with tokenize="none" on the space-joined tokens."""
    hyp = [" ".join(h) for h in hypotheses]
    ref = [" ".join(r) for r in references]
    return sacrebleu.corpus_bleu(hyp, [ref], tokenize="none").score


def translation_bleu(
    translator: Translator, src: list[list[str]], ref: list[list[str]], beam_size: int = 1, politeness: str = "auto"
) -> float:
    """Translate corpus-tokenized sources and score the output against the references."""
    hyps = translator.translate([" ".join(s) for s in src], beam_size=beam_size, politeness=politeness)
    return corpus_bleu([[t.text for t in h.target_tokens if not t.special] for h in hyps], ref)
