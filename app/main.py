"""The FastAPI application: `create_app()` wires settings, models, middleware and routers together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.staticfiles import StaticFiles

from app.errors import install_error_handlers
from app.middleware import BodyReadTimeout, BodySizeLimit, SecurityHeaders, UnexpectedErrors
from app.registry import ModelRegistry
from app.routes import attention, docs, explain, health, models, pages, translate, vendor
from app.runner import GIVE_WAY_SECONDS, InferenceRunner, configure_torch, limit_malloc_arenas
from app.settings import REPO_ROOT, Settings, get_settings
from app.workers import ModelProcesses
from model.onnx_graphs import exported_graphs, prepare_sessions
from model.translator import resolve_device

DESCRIPTION = """
[← Back to the attnscope page](/)

See what an encoder-decoder translation model attends to. `POST /api/v1/attention` returns every
attention map (encoder self-attention, decoder masked self-attention, encoder-decoder cross-attention)
for each layer and head; `POST /api/v1/translate` translates. Errors are JSON `{"detail": "..."}`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    configure_torch(settings)
    limit_malloc_arenas(settings.malloc_arenas)
    registry = ModelRegistry.load(settings.model_dir, settings.device, settings.default_model, settings.models)
    # Even with model processes, translations, explanations and saliency run in threads here: no first request of
    # any of them exports or opens a graph.
    await anyio.to_thread.run_sync(prepare_sessions)
    processes = None
    # The processes load only the models whose batches they run: the rest run in threads here.
    batching = {name: registry.sources[name] for name, model in registry.models.items() if model.describe().batching}
    if settings.model_processes and resolve_device(settings.device).type == "cpu" and batching:
        load = partial(ModelRegistry.load_sources, batching, settings.device, exported_graphs())
        processes = await anyio.to_thread.run_sync(
            partial(ModelProcesses, InferenceRunner.slots(settings.concurrency), load, settings.torch_threads, GIVE_WAY_SECONDS)
        )
    app.state.runner = InferenceRunner(
        settings.concurrency,
        settings.cache_size,
        settings.cache_max_bytes,
        settings.max_queue,
        settings.deadline,
        settings.cheap_cost,
        settings.max_batch,
        settings.batch_window,
        context=registry,
        processes=processes,
    )
    app.state.registry = registry
    try:
        yield
    finally:
        app.state.runner.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # The docs pages come from app.routes.docs, which gives them a Content-Security-Policy of their own.
    app = FastAPI(title="attnscope", version="1.0.0", description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.registry = None  # set by the lifespan; /readyz says 503 until then

    install_error_handlers(app)
    # For the other answers (the page, Plotly, the schema): translations and attention maps come
    # gzipped from the runner. Level 1 for the reason app.runner.gzipped gives.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=1)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["content-type"]
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyReadTimeout, seconds=settings.body_timeout)
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(SecurityHeaders)  # outermost: every answer carries the headers, 413 and 500 included

    for module in (models, translate, attention, explain, health, pages, docs, vendor):
        app.include_router(module.router)
    # check_dir=False: the app (and its API) still starts from a checkout without the front end.
    app.mount("/static", StaticFiles(directory=REPO_ROOT / "static", check_dir=False), name="static")
    return app
