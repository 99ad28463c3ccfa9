"""Typed dependencies: what a handler may ask for. Everything lives on app.state, set by the lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.service import InferenceRunner, ModelRegistry
from app.settings import Settings


def app_settings(request: Request) -> Settings:
    return request.app.state.settings


def model_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


def inference_runner(request: Request) -> InferenceRunner:
    return request.app.state.runner


SettingsDep = Annotated[Settings, Depends(app_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(model_registry)]
RunnerDep = Annotated[InferenceRunner, Depends(inference_runner)]
