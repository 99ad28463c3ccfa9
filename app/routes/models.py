from __future__ import annotations

from fastapi import APIRouter

from app import service
from app.dependencies import RegistryDep, SettingsDep
from app.routes import error_responses
from app.schemas import ModelInfo

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.get("", summary="List the models this server serves")
def list_models(registry: RegistryDep, settings: SettingsDep) -> list[ModelInfo]:
    return [service.model_info(served, registry, settings) for served in registry.models.values()]


@router.get("/{name}", summary="Describe one model", responses=error_responses(404, 422))
def get_model(name: str, registry: RegistryDep, settings: SettingsDep) -> ModelInfo:
    return service.model_info(registry.get(name), registry, settings)
