from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app import checks, shaping
from app.dependencies import ClientGoneDep, JsonBody, RegistryDep, RunnerDep, SettingsDep
from app.routes import POST_ERRORS, gzipped_json_response
from app.schemas import TranslateRequest, TranslateResponse

router = APIRouter(prefix="/api/v1/translate", tags=["translate"])


@router.post("", response_model=TranslateResponse, responses=POST_ERRORS, dependencies=[JsonBody], summary="Translate a sentence")
async def translate(
    request: Request,
    body: TranslateRequest,
    registry: RegistryDep,
    runner: RunnerDep,
    settings: SettingsDep,
    client_gone: ClientGoneDep,
) -> Response:
    """Greedy decoding by default; with `beam_size` > 1, `n_best` holds every finished hypothesis, best first."""
    name, model = registry.get(body.model)
    call = checks.check_translate(model, body, settings)  # before queueing: bad input is answered at once
    content = await runner.gzipped_json(
        ("translate", name, call),
        lambda stop: shaping.translate(model, name, call, stop),
        client_gone,
        cost=checks.cost(call),
    )
    return gzipped_json_response(request, content)
