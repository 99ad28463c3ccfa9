from __future__ import annotations

from fastapi import APIRouter

from app import shaping
from app.dependencies import RegistryDep, SettingsDep
from app.routes import error_responses
from app.schemas import ModelInfo

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.get("", summary="List the models this server serves")
def list_models(registry: RegistryDep, settings: SettingsDep) -> list[ModelInfo]:
    return [shaping.model_info(name, model, registry.default, settings) for name, model in registry.models.items()]


@router.get("/{name}", summary="Describe one model", responses=error_responses(404, 422))
def get_model(name: str, registry: RegistryDep, settings: SettingsDep) -> ModelInfo:
    name, model = registry.get(name)
    return shaping.model_info(name, model, registry.default, settings)
