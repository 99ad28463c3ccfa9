"""Request and response bodies of /api/v1, named by role. These shapes are the public contract."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backends.interface import AttentionKind, Granularity, TokenAxis

# How the weights of each map travel: "lists" as nested JSON numbers, "base64" as the same numbers packed (EncodedWeights).
WeightsEncoding = Literal["lists", "base64"]

EXAMPLE_SOURCE = "This is an example."


class RequestBody(BaseModel):
    # A misspelt field name or a "4" for 4 is a mistake the caller wants to hear about, not have silently guessed.
    model_config = ConfigDict(extra="forbid", strict=True)


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


class AttentionRequest(TranslateRequest):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"source": EXAMPLE_SOURCE},
                {"source": EXAMPLE_SOURCE, "target": "これ は 例 で す 。", "kinds": ["cross"], "layers": [0], "heads": [0, 1]},
                {"source": EXAMPLE_SOURCE, "controls": {"politeness": "plain"}},
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
    encoding: WeightsEncoding = Field(
        "lists",
        description="lists: each map's `weights` as nested JSON numbers; base64: each map's `encoded` instead, the same "
        "numbers as integers packed in base64 (about a third fewer bytes gzipped, and far quicker to write and read)",
    )


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


class TranslateResponse(BaseModel):
    model: str
    translation: str = Field(examples=["これは例です。"])
    score: float
    controls: ControlsUsed
    predictions: Predictions
    source_tokens: list[Token]
    target_tokens: list[Token]
    n_best: list[Hypothesis] = Field(description="best first; one entry per finished beam hypothesis")
    warnings: Warnings


class EncodedWeights(BaseModel):
    """The weights of a map packed: `data` is base64 of little-endian unsigned integers, one per weight in
    [layer][head][query][key] order (row-major over `shape`); each integer divided by `scale` is the weight, the very
    number `"encoding": "lists"` writes (rounded to `precision` decimals)."""

    dtype: Literal["uint16", "uint32"] = Field(description="uint16 up to 4 decimals, uint32 above")
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
    heads: list[int]
    weights: list[list[list[list[float]]]] | None = Field(
        description='[layer][head][query][key]; each row sums to 1. null with "encoding": "base64"'
    )
    encoded: EncodedWeights | None = Field(None, description='the weights packed, with "encoding": "base64"; else null')


class AttentionResponse(BaseModel):
    model: str
    translation: str = Field(examples=["これは例です。"])
    forced: bool = Field(description="true when the target was given rather than decoded")
    score: float = Field(description="log-probability of the target tokens")
    controls: ControlsUsed
    predictions: Predictions
    granularity: Granularity
    source_tokens: list[Token] = Field(description="rows and columns of encoder maps, columns of cross maps")
    target_tokens: list[Token] = Field(description="tokens produced: rows of decoder and cross maps")
    decoder_input_tokens: list[Token] = Field(description="<s> then target_tokens[:-1]: columns of decoder maps")
    attention: dict[AttentionKind, AttentionMap]
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


class AlignmentLayer(BaseModel):
    layer: int = Field(description="the cross-attention layer whose mean over heads aligns best")
    measured: bool = Field(description="true when the model card measured it; false: the last layer, for want of a figure")
    note: str = Field(examples=["lowest AER on dev against eflomal alignments (0.609)"])


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
    alignment_layer: AlignmentLayer | None = Field(description="where to look first: null for a model without cross-attention")
    card: dict[str, Any] = Field(description="the model card's figures, as stored next to the model")


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
