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
# "pre": x + Sublayer(LayerNorm(x)) (the built-in transformer, mBART, T5); "post": LayerNorm(x + Sublayer(x))
# (the original transformer, Marian, BART)
LayerNormPlacement = Literal["pre", "post"]
PositionEncoding = Literal["sinusoidal", "learned"]

# kind -> (rows, columns, causal)
KIND_AXES: dict[AttentionKind, tuple[TokenAxis, TokenAxis, bool]] = {
    "encoder": ("source_tokens", "source_tokens", False),
    "decoder": ("target_tokens", "decoder_input_tokens", True),
    "cross": ("target_tokens", "source_tokens", False),
}

# --- attribution methods: what a map measures ----------------------------------------------------
#
#   weights   the softmax weights α_ij, per head; rows sum to 1 (what every visualizer shows)
#   norms     ‖α_ij f(x_j)‖ per head, f(x) = (x W_V + b_V) W_O restricted to the head, and ‖Σ_h α_ij f_h(x_j)‖ as
#             the layer's map (Kobayashi et al. 2020, eq. 5-6); rows are not normalised
#   alti      ALTI+ (Ferrando et al. 2022): per layer, each block's token contributions (rows sum to 1; cross-attention
#             keeps the share of the decoder's own residual stream apart), and per produced token the contributions
#             of every source and target-prefix token composed through the layers
#   saliency  gradient attribution (Captum) of each produced token's log-probability to the source and target-prefix
#             token embeddings, reduced by the L2 norm per token; no per-layer maps
Method = Literal["weights", "norms", "alti", "saliency"]
METHODS: tuple[Method, ...] = ("weights", "norms", "alti", "saliency")
METHOD_LABELS: dict[Method, str] = {
    "weights": "Attention weights",
    "norms": "Vector norms ‖αf(x)‖",
    "alti": "ALTI+ contributions",
    "saliency": "Gradient saliency",
}
SaliencyAlgorithm = Literal["integrated_gradients", "input_x_gradient"]
SALIENCY_ALGORITHMS: tuple[SaliencyAlgorithm, ...] = ("integrated_gradients", "input_x_gradient")


@dataclass(frozen=True)
class SaliencyOptions:
    """How method "saliency" attributes: Captum's IntegratedGradients with `steps` (its n_steps) from a zero
    embedding baseline, or InputXGradient (which takes no steps: `steps` is then None)."""

    algorithm: SaliencyAlgorithm = "integrated_gradients"
    steps: int | None = 20


DEFAULT_SALIENCY = SaliencyOptions()


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
    methods: tuple[Method, ...] = ("weights",)  # the attribution methods attention() computes for this model
    # explain() shows how one head computes one row, with the model's own intermediates (q, K, V, scores …);
    # a model that explains declares its layer_norm
    explains: bool = False
    layer_norm: LayerNormPlacement | None = None  # where a transformer layer's LayerNorms sit; None where not declared
    # translate() and attention() take `ablate` (heads whose outputs are zeroed before the output projection)
    # and gate_gradients() answers; False: a non-empty `ablate` raises InputError, and so does gate_gradients()
    ablation: bool = False
    # the corpus head-importance table (`attnscope heads`, NAME.heads.json beside the model), when there is one
    head_importance: dict | None = None
    # attention_batch runs its calls together (decoding in one padded batch, and where the model can, its encoder
    # and forced passes), not one by one: the runner gathers concurrent requests for it
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
class Contributions:
    """Per produced token, what each input token gave it: alti's composed contributions, saliency's attributions."""

    source: Tensor  # (T, S): rows target_tokens, columns source_tokens
    prefix: Tensor  # (T, T): rows target_tokens, columns decoder_input_tokens (0 for the inputs a row cannot see)
    normalised: bool  # each row of source and prefix together sums to 1 (alti); saliency's L2 norms are not normalised


@dataclass
class AttentionResult:
    source_tokens: list[Token]  # columns of encoder and cross maps
    target_tokens: list[Token]  # produced tokens: rows of decoder and cross maps
    decoder_input_tokens: list[Token]  # start token + target_tokens[:-1]: columns of the decoder map
    translation: str
    forced: bool
    score: float  # total log-probability of target_tokens
    maps: dict[AttentionKind, Tensor]  # kind -> (L, H, Tq, Tk) per head, labelled as KIND_AXES says; {} for alti, saliency
    controls: dict[str, str]
    predictions: dict[str, dict[str, float]]
    method: Method = "weights"
    # kind -> (L, Tq, Tk): the layer's own map where the method has one (norms: ‖Σ_h α f_h(x_j)‖; alti: the block's
    # contributions), labelled as `maps`
    layer_maps: dict[AttentionKind, Tensor] = field(default_factory=dict)
    # kind -> (L, Tq): alti's share of the decoder's own residual stream in each cross-attention block (the source
    # columns of layer_maps["cross"] and it sum to 1)
    residual_shares: dict[AttentionKind, Tensor] = field(default_factory=dict)
    contributions: Contributions | None = None  # alti and saliency


@dataclass
class PositionTable:
    """The position vectors a model adds to its token embeddings, for the first `rows` positions."""

    encoding: PositionEncoding
    side: Literal["source", "target"]  # whose embedding table (the two are equal when sinusoidal)
    table: Tensor  # (P, D)


@dataclass
class FeedForwardStep:
    """The feed-forward block that follows in the same layer, at the query's position; each (D,)."""

    input: Tensor  # the residual stream entering it
    normed: Tensor  # what the two linear layers read: its LayerNorm (pre-LN), the input itself (post-LN)
    output: Tensor  # W₂ act(W₁ normed + b₁) + b₂ (act: HeadExplanation.activation), before the residual add
    result: Tensor  # the layer's output at this position: input + output (pre-LN), LayerNorm(input + output) (post-LN)


@dataclass
class HeadExplanation:
    """How one head of one layer computed the attention row of one query token, in the model's own numbers.

    Rows of `key_inputs`, `keys`, `values` and entries of `scores`, `allowed`, `weights` follow the key axis
    of the kind (KIND_AXES); `query` indexes its query axis, special tokens included, as the maps do.
    """

    kind: AttentionKind
    layer: int
    head: int
    query: int
    source_tokens: list[Token]
    target_tokens: list[Token]
    decoder_input_tokens: list[Token]
    translation: str
    forced: bool
    controls: dict[str, str]
    d_ff: int
    query_input: Tensor  # (D,) what the query is projected from: the block's input after its LayerNorm (pre-LN)
    key_inputs: Tensor  # (Tk, D) what keys and values are projected from (the encoder memory for cross-attention)
    queries: Tensor  # (Tq, d_k) this head's query of every position; row `query` is the one explained
    keys: Tensor  # (Tk, d_k)
    values: Tensor  # (Tk, d_k)
    scores: Tensor  # (Tk,) q·k_j / √d_k, before the mask
    allowed: Tensor  # (Tk,) bool: False where the mask sets the score to −∞ (padding; the future, for the decoder)
    weights: Tensor  # (Tk,) softmax of the masked scores: the row of the attention map
    head_outputs: Tensor  # (H, d_k) every head's Σ_j α_j v_j at this query; row `head` is this head's
    attention_output: Tensor  # (D,) the heads concatenated, times W_O (plus its bias)
    residual_in: Tensor  # (D,) the residual stream entering the block
    residual_out: Tensor  # (D,) after the residual add (and, post-LN, its LayerNorm)
    feed_forward: FeedForwardStep
    positions: PositionTable
    activation: str = "ReLU"  # the feed-forward block's, between W₁ and W₂ (GELU for BART, Swish for Marian …)


@dataclass(frozen=True)
class AttentionQuery:
    """One attention() call, as attention_batch takes it."""

    source: str
    target: str | None = None
    beam_size: int = 1
    max_length: int | None = None
    controls: dict[str, str] | None = None
    method: Method = "weights"
    saliency: SaliencyOptions = DEFAULT_SALIENCY
    ablate: frozenset[HeadRef] = frozenset()


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
        method: Method = "weights",
        saliency: SaliencyOptions = DEFAULT_SALIENCY,
        stop: StopCheck = never_stop,
        ablate: frozenset[HeadRef] = frozenset(),
    ) -> AttentionResult:
        """Decode `source` (or force `target`), then compute every map of `method` (one of describe().methods;
        `saliency` says how method saliency attributes) over that pair in one teacher-forced pass; with
        `ablate`, both with those heads switched off."""
        ...

    def explain(
        self,
        source: str,
        target: str | None = None,
        *,
        kind: AttentionKind,
        layer: int,
        head: int,
        query: int,
        beam_size: int = 1,
        max_length: int | None = None,
        controls: dict[str, str] | None = None,
        stop: StopCheck = never_stop,
        ablate: frozenset[HeadRef] = frozenset(),
    ) -> HeadExplanation:
        """The same pass as attention() (with `ablate`, the same heads switched off), opened up at one head and
        one query row. Only for a model whose describe() says `explains`; InputError when the query is past the
        end of its axis."""
        ...

    def gate_gradients(
        self, sources: list[str], targets: list[str], *, controls: dict[str, str] | None = None
    ) -> dict[AttentionKind, Tensor]:
        """Per kind (L, H): Σ over the pairs of |∂L/∂ξ_h|, L a pair's mean token cross-entropy of its target
        under teacher forcing and ξ_h a gate of 1 on head h's output before the output projection (Michel
        et al. 2019's head importance, before the mean over pairs). Only where describe().ablation."""
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
                        method=query.method,
                        saliency=query.saliency,
                        stop=stop,
                        ablate=query.ablate,
                    )
                )
            except Exception as exc:  # this call's own: stopped, or input the model refuses
                results.append(exc)
        return results


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
