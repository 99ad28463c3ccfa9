"""Request checks: everything that can be refused without running the model, and the canonical call.

A check returns a frozen, hashable call with every default filled in and every list sorted and
de-duplicated, so requests that ask for the same computation share one cache key. Handlers check
before queueing for a model slot: a bad request is answered at once even when the server is busy.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.schemas import (
    AlignmentLayer,
    AttentionRequest,
    BestAlignment,
    ExplainRequest,
    ModelLimits,
    TranslateRequest,
    WeightsEncoding,
)
from app.settings import Settings
from backends.alignment import CONTRIBUTIONS, HEADS, MEAN, METHOD_READINGS
from backends.interface import (
    ATTENTION_KINDS,
    DEFAULT_SALIENCY,
    AttentionKind,
    Granularity,
    HeadRef,
    InputError,
    Method,
    ModelDescription,
    SaliencyOptions,
    Token,
    TranslationModel,
    check_ablation,
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
    ablate: tuple[HeadRef, ...]  # heads switched off, de-duplicated, in ATTENTION_KINDS order, then layer and head

    @property
    def control_values(self) -> dict[str, str]:
        return dict(self.controls)


@dataclass(frozen=True)
class AlignmentCall:
    layer: int | None  # resolved: the model's alignment layer when the request left it out; None for contributions
    head: int | str  # a head index, "mean", "layer" or "contributions" (backends.alignment), resolved
    threshold: float | None  # None: argmax
    shift_att: bool


@dataclass(frozen=True)
class AttentionCall(TranslateCall):
    target: str | None
    target_length: int | None  # tokens of the forced target
    kinds: tuple[AttentionKind, ...]  # in ATTENTION_KINDS order
    layers: tuple[tuple[int, ...], ...]  # per kind, in the order of `kinds`
    heads: tuple[tuple[int, ...], ...]
    precision: int
    granularity: Granularity
    method: Method = "weights"
    saliency: SaliencyOptions | None = None  # method saliency only, its defaults filled in
    alignment: AlignmentCall | None = None
    encoding: WeightsEncoding = "lists"


@dataclass(frozen=True)
class ExplainCall(TranslateCall):
    target: str | None
    target_length: int | None
    kind: AttentionKind
    layer: int
    head: int
    query: int
    precision: int


def limits(description: ModelDescription, settings: Settings) -> ModelLimits:
    """The server's limits, lowered to what the model's positions allow."""
    return ModelLimits(
        max_source_tokens=min(settings.max_source_tokens, description.limits.max_source_tokens),
        max_target_tokens=min(settings.max_target_tokens, description.limits.max_target_tokens),
        max_beam_size=settings.max_beam_size,
    )


# Which reference a model card's AER table is read against first, and which method picks the page's layer.
REFERENCES = ("gold", "silver")


def alignment_layer(description: ModelDescription) -> AlignmentLayer | None:
    """The cross-attention layer to open first. It is a setting, so it is chosen on dev where the model card has a
    dev figure (alignment_by_layer: the layer mean of lowest AER against dev's silver alignments); the test-set AER
    tables (alignment_aer, against gold, else silver) are reported beside it, per method, and choose only for a
    card without a dev figure (the note says so); else the last layer."""
    cross = description.kinds.get("cross")
    if cross is None:
        return None
    tables = description.card.get("alignment_aer", {})
    reference = next((name for name in REFERENCES if name in tables), None)
    by_method, on_test = {}, None
    if reference is not None:
        for method, table in tables[reference]["methods"].items():
            best, mean = table["best"], table.get("best_mean", {})
            by_method[method] = BestAlignment(
                reference=reference, layer=best["layer"], head=best["head"], aer=best["aer"],
                mean_layer=mean.get("layer"), mean_aer=mean.get("aer"),
            )  # fmt: skip
        weights, sentences = by_method["weights"], tables[reference]["sentences"]
        on_test = (weights.mean_layer, f"the {reference} alignments of {sentences} test sentences ({weights.mean_aer:.3f})")
    dev = description.card.get("alignment_by_layer")
    if dev:
        best = dev["best_layer"]
        aer = next(row["aer"] for row in dev["layers"] if row["layer"] == best)
        split = dev["split"]
        where = (
            f"the silver alignments of {dev['dev_sentences']} {split} sentences"
            if "dev_sentences" in dev
            else f"{split}'s silver alignments"
        )
        note = f"chosen on {split}: lowest AER of the mean of heads against {where} ({aer:.3f})"
        if on_test is not None:
            note += (
                f"; on test, against {on_test[1]}"
                if on_test[0] == best
                else f"; on test, layer {on_test[0]} against {on_test[1]}"
            )
        return AlignmentLayer(layer=best, measured=True, note=note, by_method=by_method)
    if on_test is not None:
        note = f"lowest AER of the mean of heads against {on_test[1]}; the card has no dev figure to choose on"
        return AlignmentLayer(layer=on_test[0], measured=True, note=note, by_method=by_method)
    return AlignmentLayer(layer=cross.layers - 1, measured=False, note="the last layer: the model card has no alignment figure")


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
        ablate=ablation(description, request),
    )


def ablation(description: ModelDescription, request: TranslateRequest) -> tuple[HeadRef, ...]:
    try:
        return check_ablation(description, [HeadRef(h.kind, h.layer, h.head) for h in request.ablate])
    except InputError as exc:
        raise InvalidRequest(f"ablate: {exc}") from None


def _indices(requested: list[int] | None, count: int, what: str) -> tuple[int, ...]:
    if requested is None:
        return tuple(range(count))
    wrong = sorted({i for i in requested if not 0 <= i < count})
    if wrong:
        raise InvalidRequest(f"{what} {', '.join(map(str, wrong))} out of range: valid {what} are 0 to {count - 1}")
    return tuple(sorted(set(requested)))


def _saliency(request: AttentionRequest, settings: Settings) -> SaliencyOptions | None:
    """The canonical saliency options of a request: None unless method saliency, every default filled in."""
    asked = request.saliency
    if request.method != "saliency":
        if asked is not None:
            raise InvalidRequest(f"saliency options are for method saliency, not {request.method}: leave saliency out")
        return None
    if asked is None:
        return DEFAULT_SALIENCY
    if asked.algorithm == "input_x_gradient":
        if asked.steps is not None:
            raise InvalidRequest("saliency steps are for integrated_gradients; input_x_gradient takes none: leave steps out")
        return SaliencyOptions(asked.algorithm, None)
    steps = DEFAULT_SALIENCY.steps if asked.steps is None else asked.steps
    if steps > settings.max_saliency_steps:
        raise InvalidRequest(f"saliency steps {steps} is over the limit: use 1 to {settings.max_saliency_steps}")
    return SaliencyOptions(asked.algorithm, steps)


def check_attention(model: TranslationModel, request: AttentionRequest, settings: Settings) -> AttentionCall:
    call = check_translate(model, request, settings)
    description = model.describe()
    if request.method not in description.methods:
        raise InvalidRequest(
            f"model {description.name} has no method {request.method}; its methods are {', '.join(description.methods)}"
        )
    saliency = _saliency(request, settings)
    has = [kind for kind in ATTENTION_KINDS if kind in description.kinds]
    asked = set(request.kinds or has)
    missing = sorted(asked - set(has))
    if missing:
        raise InvalidRequest(f"model {description.name} has no {', '.join(missing)} attention; its kinds are {', '.join(has)}")
    kinds = tuple(kind for kind in has if kind in asked)
    shapes = [description.kinds[kind] for kind in kinds]
    layers = tuple(_indices(request.layers, shape.layers, f"{kind} layers") for kind, shape in zip(kinds, shapes, strict=True))
    heads = tuple(_indices(request.heads, shape.heads, f"{kind} heads") for kind, shape in zip(kinds, shapes, strict=True))
    target_length = _target_length(model, request.target, call, settings)
    return AttentionCall(
        **{field: getattr(call, field) for field in TranslateCall.__dataclass_fields__},
        alignment=check_alignment(description, request),
        target=request.target,
        target_length=target_length,
        kinds=kinds,
        layers=layers,
        heads=heads,
        precision=request.precision,
        granularity=request.granularity,
        method=request.method,
        saliency=saliency,
        encoding=request.encoding,
    )


def _target_length(model: TranslationModel, target: str | None, call: TranslateCall, settings: Settings) -> int | None:
    """The tokens a user typed in a forced target (None when there is none), refused when empty or too long."""
    if target is None:
        return None
    description = model.describe()
    bound = limits(description, settings).max_target_tokens
    count = len(words(model.target_tokens(target, call.control_values)))
    if count == 0:
        raise InvalidRequest(f"the target is empty: type a {description.target_language.name} translation or leave it out")
    if count > bound:
        raise too_long("target", count, bound)
    return count


def _check_query(query: int, rows: list[Token], axis: str) -> None:
    if query >= len(rows):
        raise InvalidRequest(
            f"query {query} out of range: the {axis} has {len(rows)} tokens as the model reads it (special tokens included), "
            f"so valid queries are 0 to {len(rows) - 1}"
        )


def check_explain(model: TranslationModel, request: ExplainRequest, settings: Settings) -> ExplainCall:
    """Everything but a query past the end of a translation the model has yet to decode (the model refuses that)."""
    call = check_translate(model, request, settings)
    description = model.describe()
    if request.kind not in description.kinds:
        has = ", ".join(kind for kind in ATTENTION_KINDS if kind in description.kinds)
        raise InvalidRequest(f"model {description.name} has no {request.kind} attention; its kinds are {has}")
    if not description.explains:
        raise InvalidRequest(
            f"model {description.name} cannot explain its attention step by step (GET /api/v1/models gives it "
            "explains: false); choose a model with explains: true, or ask POST /api/v1/attention for its maps"
        )
    shape = description.kinds[request.kind]
    _indices([request.layer], shape.layers, f"{request.kind} layers")
    _indices([request.head], shape.heads, f"{request.kind} heads")
    target_length = _target_length(model, request.target, call, settings)
    if request.kind == "encoder":
        _check_query(request.query, model.source_tokens(request.source, call.control_values), "source")
    elif request.target is not None:
        _check_query(request.query, model.target_tokens(request.target, call.control_values), "target")
    return ExplainCall(
        **{field: getattr(call, field) for field in TranslateCall.__dataclass_fields__},
        target=request.target,
        target_length=target_length,
        kind=request.kind,
        layer=request.layer,
        head=request.head,
        query=request.query,
        precision=request.precision,
    )


def check_alignment(description: ModelDescription, request: AttentionRequest) -> AlignmentCall | None:
    asked = request.alignment
    if asked is None:
        return None
    cross = description.kinds.get("cross")
    if cross is None:
        has = ", ".join(description.kinds)
        raise InvalidRequest(f"model {description.name} has no cross attention, which alignment reads; its kinds are {has}")
    readings = METHOD_READINGS[request.method]
    choices = [MEAN, f"a head 0 to {cross.heads - 1}"] if HEADS in readings else []
    choices += [r for r in readings if r != HEADS]
    head = asked.head if asked.head is not None else MEAN if HEADS in readings else readings[0]
    allowed = HEADS if isinstance(head, int) or head == MEAN else head
    if allowed not in readings:
        can = " or ".join(choices)
        raise InvalidRequest(f"method {request.method} has no {head!r} map to align: alignment.head can be {can}")
    if isinstance(head, int) and not 0 <= head < cross.heads:
        raise InvalidRequest(f"alignment.head {head} out of range: valid cross heads are 0 to {cross.heads - 1}, or mean")
    if head == CONTRIBUTIONS:
        if asked.layer is not None:
            raise InvalidRequest("alignment.layer is for per-layer maps; contributions compose every layer: leave it out")
        layer = None
    else:
        layer = alignment_layer(description).layer if asked.layer is None else asked.layer
        if not 0 <= layer < cross.layers:
            raise InvalidRequest(f"alignment.layer {layer} out of range: valid cross layers are 0 to {cross.layers - 1}")
    return AlignmentCall(layer=layer, head=head, threshold=asked.threshold, shift_att=asked.shift_att)


def cost(call: TranslateCall) -> float:
    """What a call costs, in token pairs, before running it: source tokens x target tokens it may produce x beam.

    A forced target is one pass over tokens it already has; a free translation may run to max_length
    steps, each over every beam. The runner sends calls up to its cheap_cost to a lane of their own.
    """
    passes = _passes(call) if isinstance(call, AttentionCall) else 1
    if isinstance(call, AttentionCall | ExplainCall) and call.target_length is not None:
        return float(call.source_length * call.target_length * passes)
    return float(call.source_length * call.max_length * call.beam_size * passes)


def _passes(call: AttentionCall) -> int:
    """How many teacher-forced passes the method costs: saliency one backward pass per produced token and step."""
    if call.saliency is None:
        return 1
    return 2 * (call.saliency.steps or 1) * (call.target_length or call.max_length)
