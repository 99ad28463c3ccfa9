from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app import shaping
from app.dependencies import RegistryDep, SettingsDep
from app.routes import error_responses
from app.schemas import HeadImportance, ModelInfo

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.get("", summary="List the models this server serves")
def list_models(registry: RegistryDep, settings: SettingsDep) -> list[ModelInfo]:
    return [shaping.model_info(name, model, registry.default, settings) for name, model in registry.models.items()]


@router.get("/{name}", summary="Describe one model", responses=error_responses(404, 422))
def get_model(name: str, registry: RegistryDep, settings: SettingsDep) -> ModelInfo:
    name, model = registry.get(name)
    return shaping.model_info(name, model, registry.default, settings)


@router.get("/{name}/heads", summary="Which heads matter over a corpus", responses=error_responses(404, 422))
def get_head_importance(name: str, registry: RegistryDep) -> HeadImportance:
    """Per head of every kind: test-set BLEU with that head alone switched off and the drop from the full model,
    the gradient importance of Michel et al. 2019, Voita et al.'s confidence, mean entropy and attention distance;
    with the greedy pruning curve where it was measured. Written by `attnscope heads` beside the model; `head_importance`
    in the model's description says whether it has one."""
    name, model = registry.get(name)
    table = shaping.head_importance(model)
    if table is None:
        raise HTTPException(
            404, f"model {name} has no head-importance table: run attnscope heads --model {name} --data DIR beside it"
        )
    return table
