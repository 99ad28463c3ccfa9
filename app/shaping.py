"""Response shaping: what a model computed, as the API's response schemas, with the warnings a reader needs."""

from __future__ import annotations

import base64
from dataclasses import asdict

import numpy as np
import torch
from torch import Tensor

from app.checks import AttentionCall, ExplainCall, TranslateCall, alignment_layer, limits, words
from app.registry import ModelRegistry
from app.schemas import (
    Alignment,
    AlignmentLink,
    AttentionMap,
    AttentionResponse,
    Contributions,
    ControlInfo,
    EncodedWeights,
    ExplainResponse,
    FeedForwardValues,
    Head,
    HeadImportance,
    Hypothesis,
    KindInfo,
    LanguageInfo,
    MethodInfo,
    ModelInfo,
    PositionTableInfo,
    ResultWarning,
    Token,
    TokenConventionsInfo,
    TranslateResponse,
    VocabSizes,
)
from app.settings import Settings
from backends.alignment import cross_map, shift_att, weighted_links
from backends.interface import (
    DEFAULT_SALIENCY,
    KIND_AXES,
    METHOD_LABELS,
    SALIENCY_ALGORITHMS,
    AttentionQuery,
    AttentionResult,
    ModelDescription,
    StopCheck,
    TranslationModel,
)
from backends.interface import Contributions as ModelContributions
from backends.interface import Token as ModelToken
from backends.words import merge_words

# Shown by name, up to this many, in a warning about unknown words.
NAMED_WORDS = 5


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
        methods=[
            MethodInfo(name=m, label=METHOD_LABELS[m], saliency_algorithms=list(SALIENCY_ALGORITHMS) if m == "saliency" else [])
            for m in d.methods
        ],
        explains=d.explains,
        layer_norm=d.layer_norm,
        ablation=d.ablation,
        head_importance=d.head_importance is not None,
        alignment_layer=alignment_layer(d),
        card=d.card,
    )


def _heads(call: TranslateCall) -> list[Head]:
    return [Head(kind=ref.kind, layer=ref.layer, head=ref.head) for ref in call.ablate]


def head_importance(model: TranslationModel) -> HeadImportance | None:
    """The model's corpus head table, or None where it has none."""
    table = model.describe().head_importance
    return None if table is None else HeadImportance.model_validate(table)


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
        ablate=frozenset(call.ablate),
    )[0]
    return TranslateResponse(
        model=name,
        translation=result.translation,
        score=result.score,
        controls=result.controls,
        predictions=result.predictions,
        ablated=_heads(call),
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


def alignment(description: ModelDescription, result: AttentionResult, call: AttentionCall) -> Alignment:
    """The links of the cross map the call asks for, in the tokens of the response. Shift-Att moves rows before
    pieces are merged into words, so a word is read from the rows where its pieces are the decoder input."""
    asked = call.alignment
    shown, _ = _at_granularity(description, shift_att(result) if asked.shift_att else result, call)
    weights = cross_map(shown, asked.layer, asked.head)  # (T, S)
    links = weighted_links(weights, shown.source_tokens, shown.target_tokens, asked.threshold)
    return Alignment(
        method=result.method,
        layer=asked.layer,
        head=asked.head,
        threshold=asked.threshold,
        shift_att=asked.shift_att,
        links=[AlignmentLink(source=k.source, target=k.target, weight=round(k.share, call.precision)) for k in links],
    )


def attention(model: TranslationModel, name: str, call: AttentionCall, stop: StopCheck) -> AttentionResponse:
    result = model.attention(
        call.source,
        call.target,
        beam_size=call.beam_size,
        max_length=call.max_length,
        controls=call.control_values,
        method=call.method,
        saliency=call.saliency or DEFAULT_SALIENCY,
        stop=stop,
        ablate=frozenset(call.ablate),
    )
    return _attention_response(model.describe(), name, call, result)


def served_attention_batch(
    name: str, registry: ModelRegistry, calls: list[AttentionCall], stops: list[StopCheck]
) -> list[AttentionResponse | Exception]:
    """attention_batch() of the model `name` of `registry`: a Batchable's run_many, which the runner calls on the
    models of the process it runs in."""
    return attention_batch(registry.get(name)[1], name, calls, stops)


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
        AttentionQuery(
            call.source,
            call.target,
            call.beam_size,
            call.max_length,
            call.control_values,
            call.method,
            call.saliency or DEFAULT_SALIENCY,
            frozenset(call.ablate),
        )
        for call in calls
    ]
    description = model.describe()
    responses: list[AttentionResponse | Exception] = []
    for call, result in zip(calls, model.attention_batch(queries, stops), strict=True):
        try:
            responses.append(result if isinstance(result, Exception) else _attention_response(description, name, call, result))
        except Exception as exc:  # this call's own failure; the rest of the batch is answered
            responses.append(exc)
    return responses


def packed(weights: torch.Tensor, precision: int) -> EncodedWeights:
    """The numbers _rounded() gives, as integers: round(w · 10^p), which torch's round(decimals=p) divides by 10^p, so
    a reader's integer / 10^p is the same double the JSON list holds. The narrowest type that holds every integer:
    weights in [0, 1] fit uint16 to 4 decimals and uint32 to 8; norms, which are not bounded by 1, may need float64
    (which holds integers exactly up to 2^53)."""
    scale = 10**precision
    integers = (weights.double() * scale).round()
    low, high = (float(integers.min()), float(integers.max())) if integers.numel() else (0.0, 0.0)
    if low >= 0 and high < 2**16:
        dtype, wire = "uint16", "<u2"
    elif low >= 0 and high < 2**32:
        dtype, wire = "uint32", "<u4"
    else:
        dtype, wire = "float64", "<f8"
    integers = integers.numpy() if dtype == "float64" else integers.to(torch.int64).numpy()
    data = base64.b64encode(integers.astype(wire).tobytes()).decode("ascii")
    return EncodedWeights(dtype=dtype, scale=scale, shape=list(weights.shape), data=data)


def _attention_response(
    description: ModelDescription, name: str, call: AttentionCall, result: AttentionResult
) -> AttentionResponse:
    warnings = source_warnings(description, result.source_tokens)
    if result.forced:
        warnings += target_warnings(description, result.target_tokens)
    links = alignment(description, result, call) if call.alignment is not None else None
    result, merge_warnings = _at_granularity(description, result, call)
    axes = {
        "source_tokens": result.source_tokens,
        "target_tokens": result.target_tokens,
        "decoder_input_tokens": result.decoder_input_tokens,
    }
    maps = {}
    lists = call.encoding == "lists"
    for kind, layers, heads in zip(call.kinds, call.layers, call.heads, strict=True):
        if kind not in result.maps and kind not in result.layer_maps:
            continue  # saliency has no per-layer maps
        query_axis, key_axis, causal = KIND_AXES[kind]
        per_head = kind in result.maps
        weights = result.maps[kind][list(layers)][:, list(heads)] if per_head else None
        layer_map = result.layer_maps.get(kind)
        residual = result.residual_shares.get(kind)
        maps[kind] = AttentionMap(
            causal=causal,
            query_axis=query_axis,
            key_axis=key_axis,
            query_tokens=[t.text for t in axes[query_axis]],
            key_tokens=[t.text for t in axes[key_axis]],
            layers=list(layers),
            heads=list(heads) if per_head else [],
            weights=np.zeros((len(layers), 0)) if not per_head else _rounded(weights, call.precision) if lists else None,
            encoded=packed(weights, call.precision) if per_head and not lists else None,
            method=result.method,
            rows_sum_to_one=result.method != "norms",
            layer_weights=None if layer_map is None else _rounded(layer_map[list(layers)], call.precision),
            residual=None if residual is None else _rounded(residual[list(layers)], call.precision),
        )
    return AttentionResponse(
        model=name,
        translation=result.translation,
        forced=result.forced,
        score=result.score,
        controls=result.controls,
        predictions=result.predictions,
        ablated=_heads(call),
        granularity=call.granularity,
        source_tokens=_tokens(result.source_tokens),
        target_tokens=_tokens(result.target_tokens),
        decoder_input_tokens=_tokens(result.decoder_input_tokens),
        attention=maps,
        alignment=links,
        warnings=warnings + merge_warnings,
        method=result.method,
        contributions=None if result.contributions is None else _contributions(result.contributions, result.method, call),
    )


def _contributions(contributions: ModelContributions, method: str, call: AttentionCall) -> Contributions:
    source, prefix = contributions.source.double(), contributions.prefix.double()
    total = source.sum(-1) + prefix.sum(-1)
    share = torch.where(total > 0, source.sum(-1) / total.clamp_min(1e-300), torch.zeros_like(total))
    return Contributions(
        method=method,
        normalised=contributions.normalised,
        source=_rounded(source, call.precision),
        prefix=_rounded(prefix, call.precision),
        source_share=_rounded(share, call.precision),
    )


def _rounded(tensor: Tensor, precision: int) -> np.ndarray:
    # float64 before rounding, so 0.1234 is written as 0.1234 and not 0.12340000271797180
    return tensor.double().round(decimals=precision).numpy()


def explanation(model: TranslationModel, name: str, call: ExplainCall, stop: StopCheck) -> ExplainResponse:
    description = model.describe()
    result = model.explain(
        call.source,
        call.target,
        kind=call.kind,
        layer=call.layer,
        head=call.head,
        query=call.query,
        beam_size=call.beam_size,
        max_length=call.max_length,
        controls=call.control_values,
        stop=stop,
        ablate=frozenset(call.ablate),
    )
    warnings = source_warnings(description, result.source_tokens)
    if result.forced:
        warnings += target_warnings(description, result.target_tokens)
    query_axis, key_axis, _ = KIND_AXES[result.kind]
    heads, d_k = result.head_outputs.shape

    def numbers(tensor: Tensor) -> list:
        return _rounded(tensor, call.precision)

    feed_forward = result.feed_forward
    return ExplainResponse(
        model=name,
        translation=result.translation,
        forced=result.forced,
        controls=result.controls,
        ablated=_heads(call),
        kind=result.kind,
        layer=result.layer,
        head=result.head,
        query=result.query,
        query_axis=query_axis,
        key_axis=key_axis,
        source_tokens=_tokens(result.source_tokens),
        target_tokens=_tokens(result.target_tokens),
        decoder_input_tokens=_tokens(result.decoder_input_tokens),
        d_model=heads * d_k,
        heads=heads,
        d_k=d_k,
        d_ff=result.d_ff,
        activation=result.activation,
        layer_norm=description.layer_norm,  # a model that explains is a transformer: it says where its LayerNorms sit
        query_input=numbers(result.query_input),
        key_inputs=numbers(result.key_inputs),
        queries=numbers(result.queries),
        keys=numbers(result.keys),
        values=numbers(result.values),
        scores=numbers(result.scores),
        allowed=result.allowed.tolist(),
        weights=numbers(result.weights),
        head_outputs=numbers(result.head_outputs),
        attention_output=numbers(result.attention_output),
        residual_in=numbers(result.residual_in),
        residual_out=numbers(result.residual_out),
        feed_forward=FeedForwardValues(
            input=numbers(feed_forward.input),
            normed=numbers(feed_forward.normed),
            output=numbers(feed_forward.output),
            result=numbers(feed_forward.result),
        ),
        positions=PositionTableInfo(
            encoding=result.positions.encoding, side=result.positions.side, table=numbers(result.positions.table)
        ),
        warnings=warnings,
    )
