"""Response shaping: what a model computed, as the API's response schemas, with the warnings a reader needs."""

from __future__ import annotations

import base64
from dataclasses import asdict

import torch

from app.checks import AttentionCall, TranslateCall, limits, words
from app.schemas import (
    AlignmentLayer,
    AttentionMap,
    AttentionResponse,
    ControlInfo,
    EncodedWeights,
    Hypothesis,
    KindInfo,
    LanguageInfo,
    ModelInfo,
    ResultWarning,
    Token,
    TokenConventionsInfo,
    TranslateResponse,
    VocabSizes,
)
from app.settings import Settings
from backends.interface import KIND_AXES, AttentionQuery, AttentionResult, ModelDescription, StopCheck, TranslationModel
from backends.interface import Token as ModelToken
from backends.words import merge_words

# Shown by name, up to this many, in a warning about unknown words.
NAMED_WORDS = 5


def alignment_layer(description: ModelDescription) -> AlignmentLayer | None:
    """The cross-attention layer to open first: the card's measured best, else the last one."""
    cross = description.kinds.get("cross")
    if cross is None:
        return None
    measured = description.card.get("alignment_by_layer")
    if measured:
        best = measured["best_layer"]
        aer = next(row["aer"] for row in measured["layers"] if row["layer"] == best)
        return AlignmentLayer(
            layer=best, measured=True, note=f"lowest AER on {measured['split']} against silver alignments ({aer:.3f})"
        )
    return AlignmentLayer(layer=cross.layers - 1, measured=False, note="the last layer: the model card has no alignment figure")


def model_info(name: str, model: TranslationModel, default: str, settings: Settings) -> ModelInfo:
    d = model.describe()
    return ModelInfo(
        name=name,
        description=d.description,
        family=d.family,
        default=name == default,
        source_language=LanguageInfo(**asdict(d.source_language)),
        target_language=LanguageInfo(**asdict(d.target_language)),
        kinds={kind: KindInfo(layers=shape.layers, heads=shape.heads) for kind, shape in d.kinds.items()},
        controls=[ControlInfo(**{**asdict(c), "values": list(c.values)}) for c in d.controls],
        tokens=TokenConventionsInfo(**{**asdict(d.tokens), "special_tokens": list(d.tokens.special_tokens)}),
        granularities=["token"] if d.tokens.word_level else ["token", "word"],
        limits=limits(d, settings),
        d_model=d.d_model,
        parameters=d.parameters,
        vocab_sizes=VocabSizes(**d.vocab_sizes),
        test_bleu=d.card.get("test_bleu"),
        examples=list(d.examples),
        target_example=d.target_example,
        has_readings=d.has_readings,
        alignment_layer=alignment_layer(d),
        card=d.card,
    )


def _tokens(tokens: list[ModelToken]) -> list[Token]:
    return [
        Token(text=t.text, id=t.id, unknown=t.unknown, special=t.special, reading=t.reading, word_start=t.word_start)
        for t in tokens
    ]


def _unknown(tokens: list[ModelToken]) -> tuple[list[str], int]:
    typed = words(tokens)
    return [t.text for t in typed if t.unknown], len(typed)


def _named(texts: list[str]) -> str:
    shown = ", ".join(dict.fromkeys(texts[:NAMED_WORDS]))
    return shown + (" …" if len(texts) > NAMED_WORDS else "")


def source_warnings(description: ModelDescription, tokens: list[ModelToken]) -> list[ResultWarning]:
    unknown, count = _unknown(tokens)
    units = "words" if description.tokens.word_level else "tokens"  # a subword model's unknown pieces are not words
    warnings = []
    if unknown and len(unknown) == count:
        warnings.append(
            ResultWarning(
                code="all_source_unknown",
                message=f"none of the {count} source {units} is in the model's vocabulary ({_named(unknown)}): "
                "the translation is a guess",
            )
        )
    elif unknown:
        one = len(unknown) == 1
        warnings.append(
            ResultWarning(
                code="unknown_source_words",
                message=f"{len(unknown)} of {count} source {units} {'is' if one else 'are'} not in the model's vocabulary "
                f"({_named(unknown)}): the model reads {'it' if one else 'them'} as unknown, so the translation misses "
                f"{'its' if one else 'their'} meaning",
            )
        )
    lengths = description.card.get("training_lengths", {}).get("source")
    if lengths and count > lengths["max"]:
        warnings.append(
            ResultWarning(
                code="source_longer_than_training",
                message=f"the source has {count} tokens, more than any training sentence (at most {lengths['max']}; "
                f"half have {lengths['p50']} or fewer, 99% {lengths['p99']} or fewer): expect a poorer translation",
            )
        )
    return warnings


def target_warnings(description: ModelDescription, tokens: list[ModelToken]) -> list[ResultWarning]:
    unknown, count = _unknown(tokens)
    if not unknown:
        return []
    if 2 * len(unknown) > count:
        return [
            ResultWarning(
                code="target_mostly_unknown",
                message=f"{len(unknown)} of the target's {count} tokens are not in the model's vocabulary "
                f"({_named(unknown)}): is it written in {description.target_language.name}?",
            )
        ]
    verb = "is" if len(unknown) == 1 else "are"
    return [
        ResultWarning(
            code="unknown_target_tokens",
            message=f"{len(unknown)} of the target's {count} tokens {verb} not in the model's vocabulary ({_named(unknown)}): "
            "the model scores them as unknown",
        )
    ]


def translate(model: TranslationModel, name: str, call: TranslateCall, stop: StopCheck) -> TranslateResponse:
    result = model.translate(
        [call.source],
        beam_size=call.beam_size,
        max_length=call.max_length,
        n_best=call.beam_size,
        controls=call.control_values,
        stop=stop,
    )[0]
    return TranslateResponse(
        model=name,
        translation=result.translation,
        score=result.score,
        controls=result.controls,
        predictions=result.predictions,
        source_tokens=_tokens(result.source_tokens),
        target_tokens=_tokens(result.target_tokens),
        n_best=[Hypothesis(translation=h.translation, tokens=h.tokens, score=h.score) for h in result.n_best],
        warnings=source_warnings(model.describe(), result.source_tokens),
    )


def _at_granularity(
    description: ModelDescription, result: AttentionResult, call: AttentionCall
) -> tuple[AttentionResult, list[ResultWarning]]:
    if call.granularity == "token":
        return result, []
    if description.tokens.word_level:
        note = f"model {description.name} reads and writes whole words: granularity word has nothing to merge"
        return result, [ResultWarning(code="nothing_to_merge", message=note)]
    return merge_words(result, subword_marker=description.tokens.subword_marker), []


def attention(model: TranslationModel, name: str, call: AttentionCall, stop: StopCheck) -> AttentionResponse:
    result = model.attention(
        call.source,
        call.target,
        beam_size=call.beam_size,
        max_length=call.max_length,
        controls=call.control_values,
        stop=stop,
    )
    return _attention_response(model.describe(), name, call, result)


def attention_batch(
    model: TranslationModel, name: str, calls: list[AttentionCall], stops: list[StopCheck]
) -> list[AttentionResponse | Exception]:
    """attention() of several calls in one model call (TranslationModel.attention_batch); a call that was stopped
    or refused gets its exception in its place. A batch of one is attention() alone."""
    if len(calls) == 1:
        try:
            return [attention(model, name, calls[0], stops[0])]
        except Exception as exc:
            return [exc]
    queries = [
        AttentionQuery(call.source, call.target, call.beam_size, call.max_length, call.control_values) for call in calls
    ]
    description = model.describe()
    responses: list[AttentionResponse | Exception] = []
    for call, result in zip(calls, model.attention_batch(queries, stops), strict=True):
        try:
            responses.append(result if isinstance(result, Exception) else _attention_response(description, name, call, result))
        except Exception as exc:  # this call's own failure; the rest of the batch is answered
            responses.append(exc)
    return responses


def rounded(weights: torch.Tensor, precision: int) -> list:
    # float64 before rounding, so 0.1234 is written as 0.1234 and not 0.12340000271797180
    return weights.double().round(decimals=precision).tolist()


def packed(weights: torch.Tensor, precision: int) -> EncodedWeights:
    """The numbers rounded() gives, as integers: round(w · 10^p), which torch's round(decimals=p) divides by 10^p, so
    a reader's integer / 10^p is the same double the JSON list holds."""
    scale = 10**precision
    integers = (weights.double() * scale).round().to(torch.int64).numpy()
    dtype, wire = ("uint16", "<u2") if precision <= 4 else ("uint32", "<u4")  # 10^4 fits 16 bits, 10^8 32
    data = base64.b64encode(integers.astype(wire).tobytes()).decode("ascii")
    return EncodedWeights(dtype=dtype, scale=scale, shape=list(weights.shape), data=data)


def _attention_response(
    description: ModelDescription, name: str, call: AttentionCall, result: AttentionResult
) -> AttentionResponse:
    warnings = source_warnings(description, result.source_tokens)
    if result.forced:
        warnings += target_warnings(description, result.target_tokens)
    result, merge_warnings = _at_granularity(description, result, call)
    axes = {
        "source_tokens": result.source_tokens,
        "target_tokens": result.target_tokens,
        "decoder_input_tokens": result.decoder_input_tokens,
    }
    maps = {}
    for kind, layers, heads in zip(call.kinds, call.layers, call.heads, strict=True):
        query_axis, key_axis, causal = KIND_AXES[kind]
        weights = result.maps[kind][list(layers)][:, list(heads)]
        maps[kind] = AttentionMap(
            causal=causal,
            query_axis=query_axis,
            key_axis=key_axis,
            query_tokens=[t.text for t in axes[query_axis]],
            key_tokens=[t.text for t in axes[key_axis]],
            layers=list(layers),
            heads=list(heads),
            weights=rounded(weights, call.precision) if call.encoding == "lists" else None,
            encoded=packed(weights, call.precision) if call.encoding == "base64" else None,
        )
    return AttentionResponse(
        model=name,
        translation=result.translation,
        forced=result.forced,
        score=result.score,
        controls=result.controls,
        predictions=result.predictions,
        granularity=call.granularity,
        source_tokens=_tokens(result.source_tokens),
        target_tokens=_tokens(result.target_tokens),
        decoder_input_tokens=_tokens(result.decoder_input_tokens),
        attention=maps,
        warnings=warnings + merge_warnings,
    )
