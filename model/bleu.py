"""Corpus BLEU as reported throughout attnscope: sacrebleu over the corpus's own tokenization."""

from __future__ import annotations

import sacrebleu


def corpus_bleu(hypotheses: list[list[str]], references: list[list[str]]) -> float:
    """Both sides are token lists; scored with tokenize="none" on the space-joined tokens."""
    hyp = [" ".join(h) for h in hypotheses]
    ref = [" ".join(r) for r in references]
    return sacrebleu.corpus_bleu(hyp, [ref], tokenize="none").score
