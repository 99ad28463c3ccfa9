from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app import service
from app.dependencies import ClientGoneDep, RegistryDep, RunnerDep, SettingsDep
from app.routes import POST_ERRORS, gzipped_json_response
from app.schemas import TranslateRequest, TranslateResponse

router = APIRouter(prefix="/api/v1/translate", tags=["translate"])


@router.post("", response_model=TranslateResponse, responses=POST_ERRORS, summary="Translate English to the target language")
async def translate(
    request: Request,
    body: TranslateRequest,
    registry: RegistryDep,
    runner: RunnerDep,
    settings: SettingsDep,
    client_gone: ClientGoneDep,
) -> Response:
    """Greedy decoding by default; with `beam_size` > 1, `n_best` holds every finished hypothesis, best first."""
    served = registry.get(body.model)
    service.check_translate(served, body, settings)  # before queueing: bad input is answered at once
    key = ("translate", served.name, repr(body.model_dump(exclude={"model"})))
    content = await runner.gzipped_json(key, lambda: service.translate(served, body, settings), client_gone)
    return gzipped_json_response(request, content)
