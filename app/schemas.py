"""Request and response bodies of /api/v1, named by role. These shapes are the public contract."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema

from backends.interface import (
    AttentionKind,
    Granularity,
    LayerNormPlacement,
    Method,
    PositionEncoding,
    SaliencyAlgorithm,
    TokenAxis,
)

# How the weights of each map travel: "lists" as nested JSON numbers, "base64" as the same numbers packed (EncodedWeights).
WeightsEncoding = Literal["lists", "base64"]

EXAMPLE_SOURCE = "This is an example."


def float_array(depth: int) -> Any:
    """Numbers nested `depth` lists deep in JSON, held as a float64 numpy array in Python.

    app.runner.answer_json writes the array as JSON without a Python float for each number: a 128-token answer
    (223,716 weights as lists) took 35-40 ms to build, write and gzip through Python floats, 14 ms from arrays. A
    value that is nested lists (a client's answer read back) becomes an array; an empty one (alti's per-head
    weights, one empty list a layer) may be shallower than `depth`.
    """

    def as_array(value: Any) -> np.ndarray:
        array = np.ascontiguousarray(value, dtype=np.float64)  # orjson writes C-ordered arrays only
        if array.ndim != depth and array.size:
            raise ValueError(f"expected numbers nested {depth} lists deep, got {array.ndim}")
        return array

    schema: dict[str, Any] = {"type": "number"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return Annotated[
        np.ndarray, PlainValidator(as_array), PlainSerializer(np.ndarray.tolist, when_used="json"), WithJsonSchema(schema)
    ]


Vector = float_array(1)
Matrix = float_array(2)
LayerMaps = float_array(3)  # [layer][query][key]
HeadMaps = float_array(4)  # [layer][head][query][key]


class RequestBody(BaseModel):
    # A misspelt field name or a "4" for 4 is a mistake the caller wants to hear about, not have silently guessed.
    model_config = ConfigDict(extra="forbid", strict=True)


class Head(RequestBody):
    kind: AttentionKind
    layer: int = Field(ge=0, description="from 0")
    head: int = Field(ge=0, description="from 0")


# Shared by both requests and both responses, declared once.
ABLATE_DESCRIPTION = (
    "heads to switch off, their outputs zeroed before the output projection, for decoding and the maps alike; "
    "GET /api/v1/models says whether a model can (`ablation`) and how many layers and heads each kind has. "
    "Empty: the model as it is"
)


class TranslateRequest(RequestBody):
    model: str | None = Field(None, description="model name from GET /api/v1/models; the default model when left out")
    source: str = Field(
        description="text in the model's source language, raw (`Don't go!`) or tokenized", examples=[EXAMPLE_SOURCE]
    )
    beam_size: int = Field(1, ge=1, description="1 is greedy decoding; at most the server's max_beam_size")
    max_length: int | None = Field(None, ge=1, description="at most this many produced tokens (</s> included)")
    controls: dict[str, str] = Field(
        default_factory=dict,
        description="decoding controls by name, as the model lists them in GET /api/v1/models (e.g. the built-in "
        'model\'s {"politeness": "plain"}); a control left out takes its default',
    )
    ablate: list[Head] = Field(
        default_factory=list,
        max_length=1024,  # every head of a kind of the largest models, and still within the 64 KiB body limit
        description=ABLATE_DESCRIPTION,
        examples=[[{"kind": "cross", "layer": 1, "head": 2}]],
    )


class AlignmentRequest(RequestBody):
    layer: int | None = Field(
        None, ge=0, description="cross-attention layer to read; the model's best alignment layer (alignment_layer) when left out"
    )
    head: int | Literal["mean", "layer", "contributions"] | None = Field(
        None,
        description="a head index (from 0) or mean (the layer's mean over heads) for methods with per-head maps (weights, "
        "norms); layer: the layer's own map (norms ‖Σ_h α f_h(x)‖, alti's cross-attention block); contributions: the "
        "per-token source contributions (alti composed through every layer, saliency), which have no layer; "
        "the first the method has of mean, layer, contributions when left out",
    )
    threshold: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="every link whose share of its row (over the source tokens, special tokens left out) is over this; "
        "each target token's argmax when left out",
    )
    shift_att: bool = Field(
        False,
        description="Shift-Att (Chen et al. 2020): read target token t from the row where it is the decoder input (row t + 1)",
    )


class SaliencyRequest(RequestBody):
    algorithm: SaliencyAlgorithm = Field(
        "integrated_gradients",
        description="integrated_gradients (Captum's IntegratedGradients from a zero-embedding baseline) or "
        "input_x_gradient (Captum's InputXGradient)",
    )
    steps: int | None = Field(
        None,
        ge=1,
        description="integrated gradients' step count (Captum's n_steps): 20 when left out, at most the server's "
        "max_saliency_steps; input_x_gradient takes none",
    )


class AttentionRequest(TranslateRequest):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"source": EXAMPLE_SOURCE},
                {"source": EXAMPLE_SOURCE, "target": "これ は 例 で す 。", "kinds": ["cross"], "layers": [0], "heads": [0, 1]},
                {"source": EXAMPLE_SOURCE, "controls": {"politeness": "plain"}},
                {"source": EXAMPLE_SOURCE, "target": "これ は 例 で す 。", "alignment": {"head": "mean", "shift_att": False}},
                {"source": EXAMPLE_SOURCE, "method": "alti"},
                {"source": EXAMPLE_SOURCE, "method": "saliency", "saliency": {"algorithm": "integrated_gradients", "steps": 20}},
                {"source": EXAMPLE_SOURCE, "ablate": [{"kind": "cross", "layer": 1, "head": 2}]},
                {"source": EXAMPLE_SOURCE, "encoding": "base64"},
            ]
        },
    )

    target: str | None = Field(
        None, description="a translation to force (space-separated tokens or plain text); the model's own when left out"
    )
    kinds: list[AttentionKind] | None = Field(
        None, min_length=1, description="which maps to return; every kind the model has when left out"
    )
    layers: list[int] | None = Field(
        None, min_length=1, description="layer indices (from 0) of every kind asked for; all when left out"
    )
    heads: list[int] | None = Field(
        None, min_length=1, description="head indices (from 0) of every kind asked for; all when left out"
    )
    precision: int = Field(4, ge=0, le=8, description="decimal places of the weights")
    granularity: Granularity = Field(
        "token",
        description="word merges the subword pieces of each word: columns summed over a word's pieces, rows averaged, "
        "so rows still sum to 1 (models whose tokens are words have nothing to merge)",
    )
    alignment: AlignmentRequest | None = Field(
        None,
        description="word alignment read off one cross map: each target token's argmax source token, or every link over "
        "a threshold; returned as `alignment`, in the tokens of the response (at its granularity)",
    )
    method: Method = Field(
        "weights",
        description="what the maps measure, one of the model's `methods` (GET /api/v1/models): weights (the softmax "
        "weights), norms (‖α_ij f(x_j)‖ per head and ‖Σ_h α_ij f_h(x_j)‖ per layer, Kobayashi et al. 2020; rows not "
        "normalised), alti (ALTI+ contributions, Ferrando et al. 2022: per-layer maps and `contributions`), saliency "
        "(gradient attributions with Captum: `contributions` only)",
    )
    saliency: SaliencyRequest | None = Field(None, description="how method saliency attributes; only with method saliency")
    encoding: WeightsEncoding = Field(
        "lists",
        description="lists: each map's `weights` as nested JSON numbers; base64: each map's `encoded` instead, the same "
        "numbers as integers packed in base64 (about a third fewer bytes gzipped, and far quicker to write and read)",
    )


class ExplainRequest(TranslateRequest):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"source": EXAMPLE_SOURCE, "target": "これ は 例 で す 。", "kind": "cross", "layer": 1, "head": 0, "query": 2},
                {"source": EXAMPLE_SOURCE, "kind": "encoder", "layer": 0, "head": 3, "query": 0},
            ]
        },
    )

    target: str | None = Field(
        None,
        description="a translation to force (space-separated tokens or plain text); the model's own when left out "
        "(decoded as POST /api/v1/attention decodes it, so the same request gives the same rows)",
    )
    kind: AttentionKind = Field(description="which attention: one of the kinds the model has")
    layer: int = Field(ge=0, description="layer index (from 0)")
    head: int = Field(ge=0, description="head index (from 0)")
    query: int = Field(
        ge=0,
        description="the row to explain: a position (from 0) on the kind's query axis, special tokens included, as the "
        "rows of the attention maps (a source token for encoder, a produced token for decoder and cross)",
    )
    precision: int = Field(6, ge=0, le=8, description="decimal places of every number")


class Token(BaseModel):
    text: str = Field(description="the token as the user typed it (lowercased English), even when the model sees <unk>")
    id: int
    unknown: bool = Field(description="not in the model's vocabulary: the model saw <unk>")
    special: bool = Field(description="<s>, </s> and the like")
    reading: str | None = Field(
        None,
        description="Latin-letter reading of a target token (例 -> rei), from the model's readings table; null when it has none",
    )
    word_start: bool = Field(True, description="begins a word (false for a continuation piece of a subword model)")


class Hypothesis(BaseModel):
    translation: str
    tokens: list[str]
    score: float = Field(description="log-probability, length-penalised for beam search")


class ResultWarning(BaseModel):
    code: str = Field(
        examples=["unknown_source_words"],
        description="unknown_source_words, all_source_unknown, source_longer_than_training, unknown_target_tokens, "
        "target_mostly_unknown, nothing_to_merge",
    )
    message: str = Field(examples=["1 of 4 source words is not in the model's vocabulary (flibbert): it reads it as <unk>"])


# Shared by both responses, declared once; listed after the score so that JSON reads model, translation first.
ControlsUsed = Annotated[
    dict[str, str],
    Field(
        description="the value each of the model's controls was decoded with (an auto resolved to what was used)",
        examples=[{"politeness": "polite"}],
    ),
]
Predictions = Annotated[
    dict[str, dict[str, float]],
    Field(
        description="for controls the model predicts from the source: its probabilities",
        examples=[{"politeness": {"plain": 0.3, "polite": 0.7}}],
    ),
]
Warnings = Annotated[
    list[ResultWarning], Field(description="where the model is likely out of its depth; empty when nothing stands out")
]
Ablated = Annotated[
    list[Head],
    Field(description="the heads that were switched off, in encoder, decoder, cross order, then by layer and head; "
          "empty: none"),
]  # fmt: skip


class TranslateResponse(BaseModel):
    model: str
    translation: str = Field(examples=["これは例です。"])
    score: float
    controls: ControlsUsed
    predictions: Predictions
    ablated: Ablated
    source_tokens: list[Token]
    target_tokens: list[Token]
    n_best: list[Hypothesis] = Field(description="best first; one entry per finished beam hypothesis")
    warnings: Warnings


class EncodedWeights(BaseModel):
    """The weights of a map packed: `data` is base64 of little-endian integers (`dtype`), one per weight in
    [layer][head][query][key] order (row-major over `shape`); each integer divided by `scale` is the weight, the very
    number `"encoding": "lists"` writes (rounded to `precision` decimals)."""

    dtype: Literal["uint16", "uint32", "float64"] = Field(
        description="the narrowest that holds every integer: uint16 for weights up to 4 decimals, uint32 up to 8; "
        "float64 (integers held exactly) for norms too large for uint32"
    )
    scale: int = Field(description="10 ** precision: weight = integer / scale", examples=[10000])
    shape: list[int] = Field(description="[layers, heads, queries, keys]", examples=[[3, 4, 7, 6]])
    data: str = Field(description="base64 of the integers, little-endian")


class AttentionMap(BaseModel):
    causal: bool = Field(description="true for decoder self-attention: cells above the diagonal are masked and exactly 0")
    query_axis: TokenAxis = Field(description="which token list labels the rows")
    key_axis: TokenAxis = Field(description="which token list labels the columns")
    query_tokens: list[str]
    key_tokens: list[str]
    layers: list[int]
    heads: list[int] = Field(description="the heads of `weights`; empty for alti, which has no per-head maps")
    weights: HeadMaps | None = Field(
        description="[layer][head][query][key]: for method weights the attention weights (each row sums to 1), for "
        'norms ‖α_ij f_h(x_j)‖ (not normalised); empty lists per layer for alti. null with "encoding": "base64" '
        "where the method has per-head maps"
    )
    encoded: EncodedWeights | None = Field(
        None, description='`weights` packed, with "encoding": "base64" where the method has per-head maps; else null'
    )
    method: Method = Field(description="what the values measure: the request's method")
    rows_sum_to_one: bool = Field(
        description="true for weights and alti (alti cross-attention: with `residual`); false for norms, whose rows "
        "are vector norms: divide a row by its sum for a row-normalised view"
    )
    layer_weights: LayerMaps | None = Field(
        None,
        description="[layer][query][key] the layer's own map where the method has one: norms ‖Σ_h α_ij f_h(x_j)‖ "
        "(Kobayashi et al. 2020 eq. 6), alti the block's contributions; null for weights",
    )
    residual: Matrix | None = Field(
        None,
        description="[layer][query] alti cross-attention only: the share of the decoder's own residual stream, "
        "which with the source columns of layer_weights sums to 1",
    )


class Contributions(BaseModel):
    method: Method = Field(description="alti or saliency")
    normalised: bool = Field(
        description="true (alti): each row of source and prefix together sums to 1; false (saliency): L2 norms of the "
        "attributions, not normalised"
    )
    source: Matrix = Field(description="[produced token][source token], rows target_tokens")
    prefix: Matrix = Field(
        description="[produced token][decoder input], columns decoder_input_tokens; 0 for the inputs a token cannot see"
    )
    source_share: Vector = Field(
        description="per produced token: the source's part of the row's total, sum(source) / (sum(source) + sum(prefix))"
    )


class AlignmentLink(BaseModel):
    source: int = Field(description="index into source_tokens")
    target: int = Field(description="index into target_tokens")
    weight: float = Field(description="the link's share of its row over the source tokens (special tokens left out)")


class Alignment(BaseModel):
    method: Method = Field(description="the method whose map was read: the request's")
    layer: int | None = Field(description="the cross-attention layer read; null for contributions")
    head: int | Literal["mean", "layer", "contributions"]
    threshold: float | None = Field(description="null: each target token's argmax")
    shift_att: bool
    links: list[AlignmentLink] = Field(
        description="by target token; special tokens (</s>, language codes) have none, and a row with no weight on the "
        "source tokens has none"
    )


class AttentionResponse(BaseModel):
    model: str
    translation: str = Field(examples=["これは例です。"])
    forced: bool = Field(description="true when the target was given rather than decoded")
    score: float = Field(description="log-probability of the target tokens")
    controls: ControlsUsed
    predictions: Predictions
    ablated: Ablated
    granularity: Granularity
    source_tokens: list[Token] = Field(description="rows and columns of encoder maps, columns of cross maps")
    target_tokens: list[Token] = Field(description="tokens produced: rows of decoder and cross maps")
    decoder_input_tokens: list[Token] = Field(description="<s> then target_tokens[:-1]: columns of decoder maps")
    attention: dict[AttentionKind, AttentionMap] = Field(description="the per-layer maps; empty for method saliency")
    alignment: Alignment | None = Field(None, description="the word alignment asked for with `alignment`; null when not asked")
    warnings: Warnings
    method: Method = Field(description="what the maps measure: the request's method")
    contributions: Contributions | None = Field(
        None,
        description="alti and saliency: per produced token, what each source token and each decoder input gave it; "
        "null for weights and norms",
    )


class FeedForwardValues(BaseModel):
    input: Vector = Field(description="the residual stream entering the layer's feed-forward block, at the query")
    normed: Vector = Field(description="what W₁ reads: its LayerNorm (pre-LN), the input itself (post-LN)")
    output: Vector = Field(description="W₂ act(W₁ normed + b₁) + b₂, act being `activation`")
    result: Vector = Field(
        description="the layer's output at the query: input + output (pre-LN), LayerNorm(input + output) (post-LN)"
    )


class PositionTableInfo(BaseModel):
    encoding: PositionEncoding = Field(description="sinusoidal (a fixed table) or learned (trained with the model)")
    side: Literal["source", "target"] = Field(description="whose embedding the table belongs to (the query side's)")
    table: Matrix = Field(description="[position][dimension]: the vector added to the token embedding at each position")


class ExplainResponse(BaseModel):
    """One head's computation of one attention row. Key-indexed lists follow `key_axis`."""

    model: str
    translation: str
    forced: bool
    controls: ControlsUsed
    ablated: Ablated
    kind: AttentionKind
    layer: int
    head: int
    query: int = Field(description="the row explained: a position on `query_axis`")
    query_axis: TokenAxis
    key_axis: TokenAxis
    source_tokens: list[Token]
    target_tokens: list[Token]
    decoder_input_tokens: list[Token]
    d_model: int
    heads: int
    d_k: int = Field(description="the size of one head's queries, keys and values: d_model / heads")
    d_ff: int = Field(description="the feed-forward block's hidden size")
    activation: str = Field(description="the feed-forward block's activation between W₁ and W₂: ReLU, GELU, Swish …")
    layer_norm: LayerNormPlacement = Field(description="pre: x + Sublayer(LayerNorm(x)); post: LayerNorm(x + Sublayer(x))")
    query_input: Vector = Field(description="x: what the query is projected from (pre-LN: the block input after LayerNorm)")
    key_inputs: Matrix = Field(description="[key]: what keys and values are projected from (cross: the encoder output)")
    queries: Matrix = Field(description="[query position][d_k]: this head's query at every position; row `query` is q")
    keys: Matrix = Field(description="[key][d_k]: K = key_inputs W_K, this head's columns")
    values: Matrix = Field(description="[key][d_k]: V = key_inputs W_V, this head's columns")
    scores: Vector = Field(description="[key]: q·k_j / √d_k, before the mask")
    allowed: list[bool] = Field(description="[key]: false where the mask sets the score to −∞ before the softmax")
    weights: Vector = Field(description="[key]: the softmax of the masked scores: this row of the attention map")
    head_outputs: Matrix = Field(description="[head][d_k]: each head's Σ_j α_j v_j at this query; row `head` is this head's")
    attention_output: Vector = Field(description="the heads' outputs concatenated, times W_O, plus its bias")
    residual_in: Vector = Field(description="the residual stream entering the attention block, at the query")
    residual_out: Vector = Field(description="residual_in + attention_output (post-LN: then its LayerNorm)")
    feed_forward: FeedForwardValues
    positions: PositionTableInfo
    warnings: Warnings


class VocabSizes(BaseModel):
    source: int
    target: int


class ModelLimits(BaseModel):
    max_source_tokens: int
    max_target_tokens: int
    max_beam_size: int


class LanguageInfo(BaseModel):
    code: str = Field(examples=["ja"])
    name: str = Field(examples=["Japanese"])


class KindInfo(BaseModel):
    layers: int
    heads: int


class ControlInfo(BaseModel):
    name: str = Field(examples=["politeness"])
    label: str = Field(examples=["Politeness"])
    values: list[str] = Field(examples=[["auto", "plain", "polite"]])
    default: str
    help: str
    value_labels: dict[str, str] = Field(description="labels for the page, where a value has one")


class TokenConventionsInfo(BaseModel):
    subword_marker: str | None = Field(
        description="how the model's tokenizer marks word pieces (shown stripped); null for word-level models"
    )
    target_joiner: str = Field(description='"" when the target language is written without spaces, " " otherwise')
    special_tokens: list[str]
    word_level: bool = Field(description="every token is a whole word: granularity word has nothing to merge")


class BestAlignment(BaseModel):
    reference: str = Field(examples=["gold"], description="the reference it was measured against: gold or silver")
    layer: int | None = Field(description="the layer of the lowest AER of every map the method has; null: contributions")
    head: int | Literal["mean", "layer", "contributions"] = Field(description="as the request's alignment.head")
    aer: float
    mean_layer: int | None = Field(description="the layer whose mean over heads has the lowest AER; null without heads")
    mean_aer: float | None


class MethodInfo(BaseModel):
    name: Method = Field(examples=["alti"])
    label: str = Field(examples=["ALTI+ contributions"])
    saliency_algorithms: list[SaliencyAlgorithm] = Field(
        description="for saliency: the algorithms a request may choose, the default first; empty for other methods"
    )


class AlignmentLayer(BaseModel):
    layer: int = Field(description="the cross-attention layer whose mean over heads aligns best")
    measured: bool = Field(description="true when the model card measured it; false: the last layer, for want of a figure")
    note: str = Field(examples=["lowest AER of the mean of heads against the gold alignments of 100 test sentences (0.512)"])
    by_method: dict[str, BestAlignment] = Field(
        default_factory=dict, description="per method, the best argmax alignment the model card measured (empty without one)"
    )


class ModelInfo(BaseModel):
    name: str = Field(examples=["en-ja"])
    description: str
    family: str = Field(examples=["attnscope-transformer", "marian", "t5"])
    default: bool
    source_language: LanguageInfo
    target_language: LanguageInfo
    kinds: dict[AttentionKind, KindInfo] = Field(
        description="the attention kinds the model has, with their layer and head counts"
    )
    controls: list[ControlInfo] = Field(description="decoding controls a request may set in `controls`")
    tokens: TokenConventionsInfo
    granularities: list[Granularity]
    limits: ModelLimits
    d_model: int
    parameters: int
    vocab_sizes: VocabSizes
    test_bleu: dict[str, float] | None = Field(description="BLEU on the test set by decoding method, from the model card")
    examples: list[str] = Field(description="source sentences to try")
    target_example: str | None = Field(description="a target the model accepts as written")
    has_readings: bool = Field(description="target tokens carry a Latin-letter reading")
    methods: list[MethodInfo] = Field(description="what attention requests may ask for in `method`, weights first")
    explains: bool = Field(description="POST /api/v1/explain shows how its heads compute a row, step by step")
    layer_norm: LayerNormPlacement | None = Field(
        description="pre or post: where a transformer layer's LayerNorms sit; null where the model does not declare it "
        "(the RNN, Hugging Face models)"
    )
    ablation: bool = Field(description="requests may switch heads off (`ablate`)")
    head_importance: bool = Field(
        description="GET /api/v1/models/{name}/heads has the model's head-importance table over a corpus"
    )
    alignment_layer: AlignmentLayer | None = Field(description="where to look first: null for a model without cross-attention")
    card: dict[str, Any] = Field(description="the model card's figures, as stored next to the model")


class CorpusInfo(BaseModel):
    corpus: str = Field(examples=["small_parallel_enja"])
    split: str = Field(examples=["test"])
    sentences: int


class HeadImportanceRow(BaseModel):
    kind: AttentionKind
    layer: int
    head: int
    bleu: float | None = Field(description="BLEU with this head alone switched off; null for a model that cannot")
    bleu_drop: float | None = Field(description="the full model's BLEU minus `bleu`")
    importance: float | None = Field(description="Michel et al. 2019: mean |dL/d xi_h| over the set")
    importance_normalized: float | None = Field(description="importance over the l2 norm of its layer's")
    confidence: float = Field(description="Voita et al. 2019: mean largest weight, </s> left out")
    entropy: float = Field(description="bits, as the page's head statistics")
    distance: float = Field(description="tokens, as the page's head statistics")
    aer: float | None = Field(description="cross heads: alignment error rate against gold alignments, once measured")


class PruningStep(BaseModel):
    removed: int = Field(description="heads switched off so far")
    head: Head | None = Field(description="the head switched off at this step; null at the start")
    bleu: float


class Pruning(BaseModel):
    order: str
    steps: list[PruningStep]


class AlignmentStatus(BaseModel):
    available: bool
    note: str


class ShardInfo(BaseModel):
    count: int
    size: int
    threads: int


class HeadImportance(BaseModel):
    """What `attnscope heads` measured over a corpus, as NAME.heads.json holds it."""

    format: Literal[1]
    model: str = Field(description="the model it was measured on")
    data: CorpusInfo
    decoding: str = Field(examples=["greedy"])
    controls: dict[str, str]
    bleu_method: str
    bleu: float = Field(description="the full model's BLEU on the set")
    kinds: dict[AttentionKind, KindInfo]
    definitions: dict[str, str] = Field(description="what each figure of a row is")
    heads: list[HeadImportanceRow]
    aer: AlignmentStatus
    pruning: Pruning | None = Field(description="BLEU as heads are switched off one by one, least important first")
    shards: ShardInfo


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorResponse(BaseModel):
    detail: str = Field(
        description="what went wrong and what to change", examples=["the source is empty: type an English sentence"]
    )
    errors: list[ValidationIssue] | None = Field(None, description="for malformed requests: each offending field")


class HealthResponse(BaseModel):
    status: Literal["ok"]


class ReadyResponse(BaseModel):
    status: Literal["ready"]
    models: list[str]
