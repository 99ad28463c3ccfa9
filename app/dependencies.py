"""Typed dependencies: what a handler may ask for. Everything lives on app.state, set by the lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from app.registry import ModelRegistry
from app.runner import InferenceRunner
from app.settings import Settings


def app_settings(request: Request) -> Settings:
    return request.app.state.settings


def model_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


def inference_runner(request: Request) -> InferenceRunner:
    return request.app.state.runner


def client_gone(request: Request) -> Callable[[], Awaitable[None]]:
    """Something to await that returns when the client disconnects (the body has been read by then)."""

    async def wait() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return wait


SettingsDep = Annotated[Settings, Depends(app_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(model_registry)]
RunnerDep = Annotated[InferenceRunner, Depends(inference_runner)]
ClientGoneDep = Annotated[Callable[[], Awaitable[None]], Depends(client_gone)]
