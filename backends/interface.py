"""The one seam between attnscope and a translation model.

The service, the CLI and the page know a model only through `TranslationModel`: what it is and
what it can do comes from `describe()`, what it computes from `translate()` and `attention()`.
The built-in transformer (backends.builtin) and Hugging Face checkpoints (backends.huggingface)
are implementations; nothing outside an implementation imports its classes.

Attention maps are tensors (L, H, Tq, Tk) per kind, labelled as `KIND_AXES` says:

    encoder  rows source_tokens,  columns source_tokens
    decoder  rows target_tokens (the token produced at each position),
             columns decoder_input_tokens (the start token, then target_tokens[:-1]); causal
    cross    rows target_tokens,  columns source_tokens
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from torch import Tensor

AttentionKind = Literal["encoder", "decoder", "cross"]
ATTENTION_KINDS: tuple[AttentionKind, ...] = ("encoder", "decoder", "cross")
TokenAxis = Literal["source_tokens", "target_tokens", "decoder_input_tokens"]
Granularity = Literal["token", "word"]

# kind -> (rows, columns, causal)
KIND_AXES: dict[AttentionKind, tuple[TokenAxis, TokenAxis, bool]] = {
    "encoder": ("source_tokens", "source_tokens", False),
    "decoder": ("target_tokens", "decoder_input_tokens", True),
    "cross": ("target_tokens", "source_tokens", False),
}

# Called by an implementation once per decoding step (and between passes); it raises to stop the
# call (the runner's client went away, or its deadline passed). Implementations never catch it.
StopCheck = Callable[[], None]


def never_stop() -> None:
    """The StopCheck of a call nobody cancels (the CLIs, the tests)."""


class InputError(ValueError):
    """Input the model cannot take; the message says what to change."""


class ModelLoadError(ValueError):
    """A model that cannot be served (not a model, not an encoder-decoder, a missing part); one line saying why."""


# --- what a model says about itself -------------------------------------------------------------


@dataclass(frozen=True)
class Language:
    code: str  # BCP 47 ("en", "ja", "de"), or the model's own code ("eng_Latn") for multilingual models
    name: str  # "English"


# Names for the codes a model card or config gives; a code missing here is shown as it is.
LANGUAGE_NAMES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French", "hi": "Hindi", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip


def language(code: str) -> Language:
    """A Language from a code like "ja", "ja_XX" (mBART) or "jpn_Jpan" (NLLB: named by its code)."""
    return Language(code, LANGUAGE_NAMES.get(code.split("_")[0].lower(), code))


@dataclass(frozen=True)
class KindShape:
    """One attention kind of one model: how many layers and heads it has."""

    layers: int
    heads: int


@dataclass(frozen=True)
class HeadRef:
    """One attention head: `head` of `layer` of `kind`, counted from 0."""

    kind: AttentionKind
    layer: int
    head: int

    def __str__(self) -> str:
        return f"{self.kind} layer {self.layer}, head {self.head}"


@dataclass(frozen=True)
class Control:
    """A decoding control a model declares (the built-in politeness, a multilingual model's target language).

    A request sets it by name in `controls`; `values` are every accepted value, `default` among them.
    """

    name: str
    label: str  # for the page: "Politeness"
    values: tuple[str, ...]
    default: str
    help: str
    value_labels: dict[str, str] = field(default_factory=dict)  # value -> label shown in the page, when not the value


@dataclass(frozen=True)
class TokenConventions:
    subword_marker: str | None  # how the model's tokens mark word pieces ("▁", "Ġ", "</w>"); None for word-level models
    target_joiner: str  # "" when target text is written without spaces (Japanese), " " otherwise
    special_tokens: tuple[str, ...]  # the tokens shown flagged as special (<s>, </s>, <pad>, language codes ...)
    word_level: bool  # every token is a whole word: granularity "word" has nothing to merge


@dataclass(frozen=True)
class ModelLimits:
    max_source_tokens: int  # what the model's positions allow (the server may lower it)
    max_target_tokens: int


@dataclass(frozen=True)
class ModelDescription:
    name: str
    description: str
    family: str  # "attnscope-transformer", "marian", "bart", "t5", "m2m_100" ...
    source_language: Language
    target_language: Language
    kinds: dict[AttentionKind, KindShape]  # only the kinds the model has
    controls: tuple[Control, ...]
    tokens: TokenConventions
    limits: ModelLimits
    d_model: int
    parameters: int
    vocab_sizes: dict[str, int]  # {"source": …, "target": …}; one shared vocabulary gives the same number twice
    card: dict  # model card figures (test BLEU, training data, alignment by layer …), as stored next to the model
    examples: tuple[str, ...] = ()  # source sentences the page offers as examples
    target_example: str | None = None  # a target the model accepts as written, for the page's placeholder
    has_readings: bool = False  # target tokens carry Latin-letter readings
    # translate() and attention() take `ablate` (heads whose outputs are zeroed before the output projection)
    # and gate_gradients() answers; False: a non-empty `ablate` raises InputError, and so does gate_gradients()
    ablation: bool = False
    # the corpus head-importance table (`attnscope heads`, NAME.heads.json beside the model), when there is one
    head_importance: dict | None = None


# --- what a model computes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    text: str  # the surface form as shown (subword markers stripped; lowercased English for the built-in model)
    id: int
    unknown: bool  # not in the vocabulary: the model saw its unknown token
    special: bool  # <s>, </s>, language codes and the like
    reading: str | None = None  # Latin-letter reading of a target token, when the model has a readings table
    word_start: bool = True  # begins a new word (False for a continuation piece); what granularity "word" merges by


@dataclass
class Hypothesis:
    translation: str
    tokens: list[str]
    score: float  # log-probability, length-penalised for beam search


@dataclass
class Translation:
    source_tokens: list[Token]
    target_tokens: list[Token]
    translation: str
    score: float
    n_best: list[Hypothesis]  # best first
    controls: dict[str, str]  # the value each control was decoded with (an "auto" resolved to what was used)
    predictions: dict[str, dict[str, float]]  # control -> the model's own prediction (politeness: plain 0.42, polite 0.58)


@dataclass
class AttentionResult:
    source_tokens: list[Token]  # columns of encoder and cross maps
    target_tokens: list[Token]  # produced tokens: rows of decoder and cross maps
    decoder_input_tokens: list[Token]  # start token + target_tokens[:-1]: columns of the decoder map
    translation: str
    forced: bool
    score: float  # total log-probability of target_tokens
    maps: dict[AttentionKind, Tensor]  # kind -> (L, H, Tq, Tk), labelled as KIND_AXES says
    controls: dict[str, str]
    predictions: dict[str, dict[str, float]]


@runtime_checkable
class TranslationModel(Protocol):
    """Every servable model implements this; the service, CLI and page rely on nothing else."""

    def describe(self) -> ModelDescription: ...

    def source_tokens(self, text: str, controls: dict[str, str] | None = None) -> list[Token]:
        """The source as the model reads it (end token included) under these controls (a multilingual model's
        tokens depend on the language pair); InputError when it cannot."""
        ...

    def target_tokens(self, text: str, controls: dict[str, str] | None = None) -> list[Token]:
        """A user-given target as the model would produce it (end token included); InputError when it cannot."""
        ...

    def translate(
        self,
        texts: list[str],
        *,
        beam_size: int = 1,
        max_length: int | None = None,
        n_best: int = 1,
        controls: dict[str, str] | None = None,
        stop: StopCheck = never_stop,
        ablate: frozenset[HeadRef] = frozenset(),
    ) -> list[Translation]:
        """`ablate`: heads switched off (their outputs zeroed before the output projection), where
        describe().ablation says the model can; empty: the model as it is."""
        ...

    def attention(
        self,
        source: str,
        target: str | None = None,
        *,
        beam_size: int = 1,
        max_length: int | None = None,
        controls: dict[str, str] | None = None,
        stop: StopCheck = never_stop,
        ablate: frozenset[HeadRef] = frozenset(),
    ) -> AttentionResult:
        """Decode `source` (or force `target`), then collect every map in one teacher-forced pass; with
        `ablate`, both with those heads switched off."""
        ...

    def gate_gradients(
        self, sources: list[str], targets: list[str], *, controls: dict[str, str] | None = None
    ) -> dict[AttentionKind, Tensor]:
        """Per kind (L, H): Σ over the pairs of |∂L/∂ξ_h|, L a pair's mean token cross-entropy of its target
        under teacher forcing and ξ_h a gate of 1 on head h's output before the output projection (Michel
        et al. 2019's head importance, before the mean over pairs). Only where describe().ablation."""
        ...


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def check_ablation(description: ModelDescription, heads) -> tuple[HeadRef, ...]:
    """`heads` (HeadRefs) de-duplicated, in ATTENTION_KINDS order then by layer and head; InputError naming the
    valid range when one is not a head of the model, or when the model cannot switch heads off."""
    heads = set(heads)
    if heads and not description.ablation:
        raise InputError(f"model {description.name} cannot switch heads off: leave ablate empty")
    for ref in heads:
        shape = description.kinds.get(ref.kind)
        if shape is None:
            shapes = description.kinds.items()
            has = ", ".join(f"{kind} ({_count(s.layers, 'layer')} × {_count(s.heads, 'head')})" for kind, s in shapes)
            raise InputError(f"model {description.name} has no {ref.kind} attention; its heads: {has}")
        if not (0 <= ref.layer < shape.layers and 0 <= ref.head < shape.heads):
            raise InputError(
                f"{ref.kind} layer {ref.layer}, head {ref.head} is not a head of model {description.name}: "
                f"{ref.kind} layers are 0 to {shape.layers - 1}, heads 0 to {shape.heads - 1}"
            )
    return tuple(sorted(heads, key=lambda r: (ATTENTION_KINDS.index(r.kind), r.layer, r.head)))


def resolve_controls(description: ModelDescription, requested: dict[str, str] | None) -> dict[str, str]:
    """Every declared control with its value: the requested one, else the default. InputError names what is valid."""
    requested = dict(requested or {})
    declared = {control.name: control for control in description.controls}
    unknown = sorted(set(requested) - set(declared))
    if unknown:
        valid = ", ".join(declared) or "none"
        raise InputError(f"model {description.name} has no control {', '.join(map(repr, unknown))}; its controls: {valid}")
    values = {}
    for name, control in declared.items():
        value = requested.get(name, control.default)
        if value not in control.values:
            raise InputError(f"{control.label} {value!r} is not one of {', '.join(control.values)}")
        values[name] = value
    return values
