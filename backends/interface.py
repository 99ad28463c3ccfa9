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
# call (the runner's client went away, or its deadline passed). Implementations never catch it, except
# in attention_batch, where it ends only the call it belongs to.
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
    # attention_batch decodes its calls together (one padded batch), not one by one: the runner gathers
    # concurrent requests for it
    batching: bool = False


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


@dataclass(frozen=True)
class AttentionQuery:
    """One attention() call, as attention_batch takes it."""

    source: str
    target: str | None = None
    beam_size: int = 1
    max_length: int | None = None
    controls: dict[str, str] | None = None


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
    ) -> list[Translation]: ...

    def attention(
        self,
        source: str,
        target: str | None = None,
        *,
        beam_size: int = 1,
        max_length: int | None = None,
        controls: dict[str, str] | None = None,
        stop: StopCheck = never_stop,
    ) -> AttentionResult:
        """Decode `source` (or force `target`), then collect every map in one teacher-forced pass."""
        ...

    def attention_batch(self, queries: list[AttentionQuery], stops: list[StopCheck]) -> list[AttentionResult | Exception]:
        """Several attention() calls at once, each with its own stop check. A call whose check raises, or whose
        input the model refuses, gets that exception in its place; the others go on. Each result is what
        attention() gives that call alone.

        This default runs them one by one; a model that decodes them together overrides it and says so in
        ModelDescription.batching."""
        results: list[AttentionResult | Exception] = []
        for query, stop in zip(queries, stops, strict=True):
            try:
                results.append(
                    self.attention(
                        query.source,
                        query.target,
                        beam_size=query.beam_size,
                        max_length=query.max_length,
                        controls=query.controls,
                        stop=stop,
                    )
                )
            except Exception as exc:  # this call's own: stopped, or input the model refuses
                results.append(exc)
        return results


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
