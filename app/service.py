"""The bridge between HTTP handlers and model/: a registry of loaded models, request limits,
the shaping of attention maps into the response schema, and an LRU-cached, bounded runner.

Nothing here knows about FastAPI; handlers call in, and errors come out as the exceptions below.
"""

from __future__ import annotations

import gzip
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import torch
from pydantic import BaseModel

from app.schemas import (
    AttentionKind,
    AttentionMap,
    AttentionRequest,
    AttentionResponse,
    Hypothesis,
    ModelInfo,
    ModelLimits,
    Token,
    TranslateRequest,
    TranslateResponse,
    VocabSizes,
)
from app.settings import Settings
from model.checkpoint import CheckpointError
from model.readings import load_readings
from model.tokenize import tokenize_english
from model.translator import InputError, Translator
from model.translator import Token as ModelToken

PREFERRED_DEFAULT = "en-ja"


class InvalidRequest(InputError):
    """A well-formed request the model cannot answer as asked; the message says what to change."""


class UnknownModel(LookupError):
    def __init__(self, name: str, available: list[str]):
        super().__init__(f"unknown model {name!r}; available models: {', '.join(available)}")


class RegistryError(RuntimeError):
    """The model folder cannot be served: empty, or holding a checkpoint that does not load."""


class ServerBusy(RuntimeError):
    """Every model slot is taken and the queue is full, or a request waited too long for a slot."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class RequestCancelled(Exception):
    """The client went away: the model call stops at its next layer and its slot goes to the next request."""


# The cancel flag of the request whose model call runs on this worker thread (None outside of one).
_current_call = threading.local()


def _stop_if_cancelled(module, args) -> None:
    cancel: threading.Event | None = getattr(_current_call, "cancel", None)
    if cancel is not None and cancel.is_set():
        raise RequestCancelled


@dataclass
class ServedModel:
    name: str
    translator: Translator
    card: dict  # the NAME.json model card next to the checkpoint ({} when there is none yet)
    readings: dict[str, str] = field(default_factory=dict)  # target token -> romaji, from NAME.readings.json

    def __post_init__(self) -> None:
        # Every encoder pass and every decoding step goes through the first layer of its stack: a request whose
        # client has gone stops there instead of decoding to the end.
        model = self.translator.model
        for layer in (model.encoder_layers[0], model.decoder_layers[0]):
            layer.register_forward_pre_hook(_stop_if_cancelled)

    @property
    def config(self):
        return self.translator.config

    def limits(self, settings: Settings) -> ModelLimits:
        # The model cannot place more tokens than its position table holds (one is </s>).
        positions = self.config.max_positions - 1
        return ModelLimits(
            max_source_tokens=min(settings.max_source_tokens, positions),
            max_target_tokens=min(settings.max_target_tokens, positions),
            max_beam_size=settings.max_beam_size,
        )


class ModelRegistry:
    def __init__(self, models: dict[str, ServedModel], default: str):
        self.models = models
        self.default = default

    @classmethod
    def load(cls, model_dir: Path, device: str = "auto", default: str | None = None) -> ModelRegistry:
        """Load every NAME.pt in `model_dir` (with its NAME.json card when present)."""
        paths = sorted(Path(model_dir).glob("*.pt"))
        if not paths:
            raise RegistryError(
                f"no model checkpoints (*.pt) in {model_dir}: train one with `make train` or set ATTNSCOPE_MODEL_DIR"
            )
        models = {}
        for path in paths:
            try:
                translator = Translator.from_checkpoint(path, device)
            except CheckpointError as exc:
                raise RegistryError(str(exc)) from None
            card_path = path.with_suffix(".json")
            try:
                card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
            except (ValueError, OSError) as exc:
                raise RegistryError(f"model card {card_path.name} cannot be read: {exc}") from None
            try:
                readings = load_readings(path)
            except ValueError as exc:
                raise RegistryError(f"readings table of {path.name} cannot be used: {exc}") from None
            models[path.stem] = ServedModel(path.stem, translator, card, readings)
        if default is None:
            default = PREFERRED_DEFAULT if PREFERRED_DEFAULT in models else next(iter(models))
        elif default not in models:
            raise RegistryError(f"default model {default!r} is not in {model_dir}; found: {', '.join(models)}")
        return cls(models, default)

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str | None) -> ServedModel:
        name = self.default if name is None else name
        if name not in self.models:
            raise UnknownModel(name, self.names)
        return self.models[name]


def model_info(served: ServedModel, registry: ModelRegistry, settings: Settings) -> ModelInfo:
    cfg, card, translator = served.config, served.card, served.translator
    return ModelInfo(
        name=served.name,
        description=card.get("description", ""),
        source_language=card.get("source_language"),
        target_language=card.get("target_language"),
        encoder_layers=cfg.n_encoder_layers,
        decoder_layers=cfg.n_decoder_layers,
        heads=cfg.n_heads,
        d_model=cfg.d_model,
        parameters=card.get("parameters", translator.model.num_parameters()),
        vocab_sizes=VocabSizes(source=len(translator.src_vocab), target=len(translator.tgt_vocab)),
        test_bleu=card.get("test_bleu"),
        politeness_levels=list(cfg.politeness_levels),
        default=served.name == registry.default,
        limits=served.limits(settings),
    )


def _check_decoding_limits(request: TranslateRequest, served: ServedModel, limits: ModelLimits) -> int:
    """Validate source length, beam size, max_length and politeness; returns the max_length to use."""
    served.translator.check_politeness(request.politeness)
    count = len(tokenize_english(request.source))
    if count == 0:
        raise InvalidRequest("the source is empty: type an English sentence")
    if count > limits.max_source_tokens:
        raise InvalidRequest(f"the source has {count} tokens; the limit is {limits.max_source_tokens}: shorten it")
    if request.beam_size > limits.max_beam_size:
        raise InvalidRequest(f"beam_size {request.beam_size} is over the limit: use 1 to {limits.max_beam_size}")
    if request.max_length is not None and request.max_length > limits.max_target_tokens:
        raise InvalidRequest(f"max_length {request.max_length} is over the limit: use 1 to {limits.max_target_tokens}")
    return request.max_length or limits.max_target_tokens


def _tokens(tokens: list[ModelToken], readings: dict[str, str] | None = None) -> list[Token]:
    """`readings` is given for target-language tokens: each gets its romaji when the table has one."""
    readings = readings or {}
    return [Token(text=t.text, id=t.id, unknown=t.unknown, special=t.special, reading=readings.get(t.text)) for t in tokens]


def translate(served: ServedModel, request: TranslateRequest, settings: Settings) -> TranslateResponse:
    max_length = check_translate(served, request, settings)
    result = served.translator.translate(
        [request.source], request.beam_size, max_length, n_best=request.beam_size, politeness=request.politeness
    )[0]
    return TranslateResponse(
        model=served.name,
        translation=result.translation,
        score=result.score,
        politeness=result.politeness,
        politeness_probabilities=result.politeness_probabilities,
        source_tokens=_tokens(result.source_tokens),
        target_tokens=_tokens(result.target_tokens, served.readings),
        n_best=[Hypothesis(translation=text, tokens=tokens, score=score) for text, tokens, score in result.n_best],
    )


def _indices(requested: list[int] | None, count: int, what: str) -> list[int]:
    if requested is None:
        return list(range(count))
    wrong = sorted({i for i in requested if not 0 <= i < count})
    if wrong:
        raise InvalidRequest(f"{what} {', '.join(map(str, wrong))} out of range: valid {what} are 0 to {count - 1}")
    return sorted(set(requested))


def check_translate(served: ServedModel, request: TranslateRequest, settings: Settings) -> int:
    """Refuse what can be refused without the model; returns the max_length to decode with. Cheap, so handlers
    call it before queueing for a model slot: a bad request is answered at once even when the server is busy."""
    return _check_decoding_limits(request, served, served.limits(settings))


def check_attention(
    served: ServedModel, request: AttentionRequest, settings: Settings
) -> tuple[int, list[AttentionKind], dict[str, list[int]], list[int]]:
    """As check_translate, for an attention request; returns max_length, kinds, layers by kind and heads."""
    limits = served.limits(settings)
    max_length = _check_decoding_limits(request, served, limits)
    cfg = served.config
    kinds = list(dict.fromkeys(request.kinds))
    layer_counts = {"encoder": cfg.n_encoder_layers, "decoder": cfg.n_decoder_layers, "cross": cfg.n_decoder_layers}
    layers = {kind: _indices(request.layers, layer_counts[kind], f"{kind} layers") for kind in kinds}
    heads = _indices(request.heads, cfg.n_heads, "heads")
    if request.target is not None:
        target_count = len(served.translator.target_tokens(request.target)) - 1  # without </s>
        if target_count > limits.max_target_tokens:
            raise InvalidRequest(f"the target has {target_count} tokens; the limit is {limits.max_target_tokens}: shorten it")
    return max_length, kinds, layers, heads


def attention(served: ServedModel, request: AttentionRequest, settings: Settings) -> AttentionResponse:
    max_length, kinds, layers, heads = check_attention(served, request, settings)
    result = served.translator.attention(request.source, request.target, request.beam_size, max_length, request.politeness)
    axes = {
        "source_tokens": result.source_tokens,
        "target_tokens": result.target_tokens,
        "decoder_input_tokens": result.decoder_input_tokens,
    }
    layout = {  # kind -> (rows, columns, causal), as labelled in model.decoding.AttentionMaps
        "encoder": ("source_tokens", "source_tokens", False),
        "decoder": ("target_tokens", "decoder_input_tokens", True),
        "cross": ("target_tokens", "source_tokens", False),
    }
    maps = {}
    for kind in kinds:
        query_axis, key_axis, causal = layout[kind]
        weights = getattr(result.maps, kind)[layers[kind]][:, heads]
        maps[kind] = AttentionMap(
            causal=causal,
            query_axis=query_axis,
            key_axis=key_axis,
            query_tokens=[t.text for t in axes[query_axis]],
            key_tokens=[t.text for t in axes[key_axis]],
            layers=layers[kind],
            heads=heads,
            # float64 before rounding, so 0.1234 is written as 0.1234 and not 0.12340000271797180
            weights=weights.double().round(decimals=request.precision).tolist(),
        )
    return AttentionResponse(
        model=served.name,
        translation=result.translation,
        forced=result.forced,
        score=result.score,
        politeness=result.politeness,
        politeness_probabilities=result.politeness_probabilities,
        source_tokens=_tokens(result.source_tokens),
        target_tokens=_tokens(result.target_tokens, served.readings),
        decoder_input_tokens=_tokens(result.decoder_input_tokens, served.readings),
        attention=maps,
    )


class ResponseCache:
    """Least-recently-used gzipped responses, bounded by count and by bytes (one 128-token answer is 400 KB).

    Used from the event loop only, so it needs no lock.
    """

    def __init__(self, size: int, max_bytes: int = 16 * 1024 * 1024):
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        body = self._entries.get(key)
        if body is not None:
            self._entries.move_to_end(key)
        return body

    def put(self, key: Hashable, body: bytes) -> None:
        if self.size == 0 or len(body) > self.max_bytes:
            return
        previous = self._entries.pop(key, None)
        self.bytes += len(body) - (len(previous) if previous is not None else 0)
        self._entries[key] = body
        while len(self._entries) > self.size or self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= len(evicted)

    def __len__(self) -> int:
        return len(self._entries)


class InferenceRunner:
    """Runs model calls in worker threads, `concurrency` at a time, and caches their gzipped JSON bodies.

    The model call, the serialization and the compression all run off the event loop: for a 128-token
    source the JSON of every map is 1.5 MB, and writing or compressing it there would stall every other
    request. Bodies are kept compressed, so the cache holds four times as many in the same memory.
    At most `max_queue` requests wait for a slot, each for at most `queue_timeout` seconds; beyond
    that the caller hears ServerBusy (503 with Retry-After) at once rather than hanging.
    """

    def __init__(
        self,
        concurrency: int,
        cache_size: int,
        cache_max_bytes: int = 16 * 1024 * 1024,
        max_queue: int = 64,
        queue_timeout: float = 10.0,
    ):
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.cache = ResponseCache(cache_size, cache_max_bytes)
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self.waiting = 0

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.queue_timeout / 2))

    async def gzipped_json(
        self, key: Hashable, compute: Callable[[], BaseModel], client_gone: Callable[[], Awaitable[None]] | None = None
    ) -> bytes:
        """The cached or computed JSON body, gzip-compressed. When `client_gone` returns first, raise RequestCancelled: a waiting
        request leaves the queue, a running one stops at its model's next layer, and either way frees its slot."""
        body = self.cache.get(key)
        if body is not None:
            return body
        cancel = threading.Event()
        failure: Exception | None = None
        async with anyio.create_task_group() as tasks:
            if client_gone is not None:

                async def watch() -> None:
                    await client_gone()
                    cancel.set()
                    tasks.cancel_scope.cancel()

                tasks.start_soon(watch)
            try:
                body = await self._compute(compute, cancel)
            except Exception as exc:  # raised outside the task group, so it is not wrapped in an ExceptionGroup
                failure = exc
            tasks.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if body is None:
            raise RequestCancelled
        self.cache.put(key, body)
        return body

    async def _compute(self, compute: Callable[[], BaseModel], cancel: threading.Event) -> bytes | None:
        if self.limiter.available_tokens == 0 and self.waiting >= self.max_queue:
            raise ServerBusy(
                f"the server is busy: {self.waiting} requests are already waiting for the model; try again shortly",
                self.retry_after,
            )
        self.waiting += 1
        try:
            with anyio.fail_after(self.queue_timeout):
                await self.limiter.acquire()
        except TimeoutError:
            raise ServerBusy(
                f"the server is busy: no model slot came free within {self.queue_timeout:g} s; try again shortly",
                self.retry_after,
            ) from None
        finally:
            self.waiting -= 1
        try:
            # Not abandoned on cancellation: the slot stays taken until the thread has really stopped.
            return await anyio.to_thread.run_sync(_run_call, compute, cancel)
        except RequestCancelled:
            return None
        finally:
            self.limiter.release()


def _run_call(compute: Callable[[], BaseModel], cancel: threading.Event) -> bytes:
    _current_call.cancel = cancel
    try:
        if cancel.is_set():
            raise RequestCancelled
        return gzip_json(compute())
    finally:
        _current_call.cancel = None


def gzip_json(model: BaseModel) -> bytes:
    # Level 1: a 128-token answer compresses in ~15 ms to 400 KB; level 9 takes seconds for 25% fewer bytes.
    # mtime=0 keeps the bytes the same for the same answer.
    return gzip.compress(model.model_dump_json().encode(), compresslevel=1, mtime=0)


def configure_torch(settings: Settings) -> None:
    torch.set_num_threads(settings.torch_threads)
