"""Request and response bodies of /api/v1, named by role. These shapes are the public contract."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

AttentionKind = Literal["encoder", "decoder", "cross"]
ATTENTION_KINDS: tuple[AttentionKind, ...] = ("encoder", "decoder", "cross")
TokenAxis = Literal["source_tokens", "target_tokens", "decoder_input_tokens"]
PolitenessChoice = Literal["auto", "plain", "polite"]

EXAMPLE_SOURCE = "This is an example."


class RequestBody(BaseModel):
    # A misspelt field name or a "4" for 4 is a mistake the caller wants to hear about, not have silently guessed.
    model_config = ConfigDict(extra="forbid", strict=True)


class TranslateRequest(RequestBody):
    model: str | None = Field(None, description="model name from GET /api/v1/models; the default model when left out")
    source: str = Field(description="English text, raw (`Don't go!`) or corpus-tokenized", examples=[EXAMPLE_SOURCE])
    beam_size: int = Field(1, ge=1, description="1 is greedy decoding; at most the server's max_beam_size")
    max_length: int | None = Field(None, ge=1, description="at most this many produced tokens (</s> included)")
    politeness: PolitenessChoice = Field(
        "auto",
        description="register of the Japanese: plain (だ・である) or polite (です・ます); auto lets the model predict it "
        "from the source (a forced target is scored under its own). Only models that list politeness_levels in "
        "GET /api/v1/models take more than auto",
    )


class AttentionRequest(TranslateRequest):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"source": EXAMPLE_SOURCE},
                {"source": EXAMPLE_SOURCE, "target": "これ は 例 で す 。", "kinds": ["cross"], "layers": [0], "heads": [0, 1]},
            ]
        },
    )

    target: str | None = Field(
        None, description="a Japanese translation to force (space-separated tokens or plain text); the model's own when left out"
    )
    kinds: list[AttentionKind] = Field(list(ATTENTION_KINDS), min_length=1, description="which maps to return")
    layers: list[int] | None = Field(None, min_length=1, description="layer indices (from 0); all when left out")
    heads: list[int] | None = Field(None, min_length=1, description="head indices (from 0); all when left out")
    precision: int = Field(4, ge=0, le=8, description="decimal places of the weights")


class Token(BaseModel):
    text: str = Field(description="the token as the user typed it (lowercased English), even when the model sees <unk>")
    id: int
    unknown: bool = Field(description="not in the model's vocabulary: the model saw <unk>")
    special: bool = Field(description="<s>, </s> and the like")
    reading: str | None = Field(
        None,
        description="Latin-letter reading of a target token (例 -> rei), from the model's readings table; null when it has none",
    )


class Hypothesis(BaseModel):
    translation: str
    tokens: list[str]
    score: float = Field(description="log-probability, length-penalised for beam search")


# Shared by both responses, declared once; listed after the score so that JSON reads model, translation first.
PolitenessUsed = Annotated[
    str | None,
    Field(
        description="the politeness decoded with (auto resolves to the predicted one, or to a forced target's own); "
        "null for a model without politeness control",
        examples=["polite"],
    ),
]
PolitenessProbabilities = Annotated[
    dict[str, float],
    Field(
        description="the politeness the model predicts from the source; empty for a model without politeness control",
        examples=[{"plain": 0.3, "polite": 0.7}],
    ),
]


class TranslateResponse(BaseModel):
    model: str
    translation: str = Field(examples=["これは例です。"])
    score: float
    politeness: PolitenessUsed
    politeness_probabilities: PolitenessProbabilities
    source_tokens: list[Token]
    target_tokens: list[Token]
    n_best: list[Hypothesis] = Field(description="best first; one entry per finished beam hypothesis")


class AttentionMap(BaseModel):
    causal: bool = Field(description="true for decoder self-attention: cells above the diagonal are masked and exactly 0")
    query_axis: TokenAxis = Field(description="which token list labels the rows")
    key_axis: TokenAxis = Field(description="which token list labels the columns")
    query_tokens: list[str]
    key_tokens: list[str]
    layers: list[int]
    heads: list[int]
    weights: list[list[list[list[float]]]] = Field(description="[layer][head][query][key]; each row sums to 1")


class AttentionResponse(BaseModel):
    model: str
    translation: str = Field(examples=["これは例です。"])
    forced: bool = Field(description="true when the target was given rather than decoded")
    score: float = Field(description="log-probability of the target tokens")
    politeness: PolitenessUsed
    politeness_probabilities: PolitenessProbabilities
    source_tokens: list[Token] = Field(description="rows and columns of encoder maps, columns of cross maps")
    target_tokens: list[Token] = Field(description="tokens produced: rows of decoder and cross maps")
    decoder_input_tokens: list[Token] = Field(description="<s> then target_tokens[:-1]: columns of decoder maps")
    attention: dict[AttentionKind, AttentionMap]


class VocabSizes(BaseModel):
    source: int
    target: int


class ModelLimits(BaseModel):
    max_source_tokens: int
    max_target_tokens: int
    max_beam_size: int


class ModelInfo(BaseModel):
    name: str = Field(examples=["en-ja"])
    description: str
    source_language: str | None
    target_language: str | None
    encoder_layers: int
    decoder_layers: int
    heads: int
    d_model: int
    parameters: int
    vocab_sizes: VocabSizes
    test_bleu: dict[str, float] | None = Field(description="BLEU on the test set by decoding method, from the model card")
    politeness_levels: list[str] = Field(
        description="politeness a request may ask for besides auto; empty for a model without politeness control"
    )
    default: bool
    limits: ModelLimits


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
