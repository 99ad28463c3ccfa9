"""Request checks: everything that can be refused without running the model, and the canonical call.

A check returns a frozen, hashable call with every default filled in and every list sorted and
de-duplicated, so requests that ask for the same computation share one cache key. Handlers check
before queueing for a model slot: a bad request is answered at once even when the server is busy.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.schemas import AttentionRequest, ModelLimits, TranslateRequest, WeightsEncoding
from app.settings import Settings
from backends.interface import (
    ATTENTION_KINDS,
    AttentionKind,
    Granularity,
    InputError,
    ModelDescription,
    Token,
    TranslationModel,
    resolve_controls,
)


class InvalidRequest(InputError):
    """A well-formed request the model cannot answer as asked; the message says what to change."""


@dataclass(frozen=True)
class TranslateCall:
    source: str
    source_length: int  # tokens, as the model reads them (what the cost is estimated from)
    beam_size: int
    max_length: int
    controls: tuple[tuple[str, str], ...]  # every control of the model, sorted by name

    @property
    def control_values(self) -> dict[str, str]:
        return dict(self.controls)


@dataclass(frozen=True)
class AttentionCall(TranslateCall):
    target: str | None
    target_length: int | None  # tokens of the forced target
    kinds: tuple[AttentionKind, ...]  # in ATTENTION_KINDS order
    layers: tuple[tuple[int, ...], ...]  # per kind, in the order of `kinds`
    heads: tuple[tuple[int, ...], ...]
    precision: int
    granularity: Granularity
    encoding: WeightsEncoding = "lists"


def limits(description: ModelDescription, settings: Settings) -> ModelLimits:
    """The server's limits, lowered to what the model's positions allow."""
    return ModelLimits(
        max_source_tokens=min(settings.max_source_tokens, description.limits.max_source_tokens),
        max_target_tokens=min(settings.max_target_tokens, description.limits.max_target_tokens),
        max_beam_size=settings.max_beam_size,
    )


def words(tokens: list[Token]) -> list[Token]:
    """The tokens a user typed: without the ones the model adds (</s>, language codes)."""
    return [t for t in tokens if not t.special]


def too_long(what: str, count: int, limit: int) -> InvalidRequest:
    # The one wording of every length limit, whoever finds it exceeded.
    return InvalidRequest(f"the {what} has {count} tokens; the limit is {limit}: shorten it")


def check_translate(model: TranslationModel, request: TranslateRequest, settings: Settings) -> TranslateCall:
    description = model.describe()
    bounds = limits(description, settings)
    controls = resolve_controls(description, request.controls)
    count = len(words(model.source_tokens(request.source, controls)))
    if count == 0:
        raise InvalidRequest(f"the source is empty: type a sentence in {description.source_language.name}")
    if count > bounds.max_source_tokens:
        raise too_long("source", count, bounds.max_source_tokens)
    if request.beam_size > bounds.max_beam_size:
        raise InvalidRequest(f"Beam size (beam_size) {request.beam_size} is over the limit: use 1 to {bounds.max_beam_size}")
    if request.max_length is not None and request.max_length > bounds.max_target_tokens:
        bound = bounds.max_target_tokens
        raise InvalidRequest(f"Max length (max_length) {request.max_length} is over the limit: use 1 to {bound}")
    return TranslateCall(
        source=request.source,
        source_length=count,
        beam_size=request.beam_size,
        max_length=request.max_length or bounds.max_target_tokens,
        controls=tuple(sorted(controls.items())),
    )


def _indices(requested: list[int] | None, count: int, what: str) -> tuple[int, ...]:
    if requested is None:
        return tuple(range(count))
    wrong = sorted({i for i in requested if not 0 <= i < count})
    if wrong:
        raise InvalidRequest(f"{what} {', '.join(map(str, wrong))} out of range: valid {what} are 0 to {count - 1}")
    return tuple(sorted(set(requested)))


def check_attention(model: TranslationModel, request: AttentionRequest, settings: Settings) -> AttentionCall:
    call = check_translate(model, request, settings)
    description = model.describe()
    has = [kind for kind in ATTENTION_KINDS if kind in description.kinds]
    asked = set(request.kinds or has)
    missing = sorted(asked - set(has))
    if missing:
        raise InvalidRequest(f"model {description.name} has no {', '.join(missing)} attention; its kinds are {', '.join(has)}")
    kinds = tuple(kind for kind in has if kind in asked)
    shapes = [description.kinds[kind] for kind in kinds]
    layers = tuple(_indices(request.layers, shape.layers, f"{kind} layers") for kind, shape in zip(kinds, shapes, strict=True))
    heads = tuple(_indices(request.heads, shape.heads, f"{kind} heads") for kind, shape in zip(kinds, shapes, strict=True))
    target_length = None
    if request.target is not None:
        bound = limits(description, settings).max_target_tokens
        target_length = len(words(model.target_tokens(request.target, call.control_values)))
        if target_length == 0:
            raise InvalidRequest(f"the target is empty: type a {description.target_language.name} translation or leave it out")
        if target_length > bound:
            raise too_long("target", target_length, bound)
    return AttentionCall(
        **{field: getattr(call, field) for field in TranslateCall.__dataclass_fields__},
        target=request.target,
        target_length=target_length,
        kinds=kinds,
        layers=layers,
        heads=heads,
        precision=request.precision,
        granularity=request.granularity,
        encoding=request.encoding,
    )


def cost(call: TranslateCall) -> float:
    """What a call costs, in token pairs, before running it: source tokens x target tokens it may produce x beam.

    A forced target is one pass over tokens it already has; a free translation may run to max_length
    steps, each over every beam. The runner sends calls up to its cheap_cost to a lane of their own.
    """
    if isinstance(call, AttentionCall) and call.target_length is not None:
        return float(call.source_length * call.target_length)
    return float(call.source_length * call.max_length * call.beam_size)
