from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app import checks, shaping
from app.dependencies import ClientGoneDep, JsonBody, RegistryDep, RunnerDep, SettingsDep
from app.routes import POST_ERRORS, gzipped_json_response
from app.schemas import ExplainRequest, ExplainResponse

router = APIRouter(prefix="/api/v1/explain", tags=["explain"])


@router.post(
    "",
    response_model=ExplainResponse,
    responses=POST_ERRORS,
    dependencies=[JsonBody],
    summary="How one head computes one attention row, step by step",
)
async def explain(
    request: Request,
    body: ExplainRequest,
    registry: RegistryDep,
    runner: RunnerDep,
    settings: SettingsDep,
    client_gone: ClientGoneDep,
) -> Response:
    """Translate `source` (or force `target`) as POST /api/v1/attention does, and return what head `head` of
    layer `layer` computed for row `query` of its `kind` map, in the model's own numbers:

    the query's input x and the key inputs, this head's q, K and V, the scores q·k_j/√d_k, which keys the mask
    allows, the softmax weights (the map's row), every head's output at the query, the output after W_O, the
    residual stream around the block, the feed-forward block after it, and the model's position table.

    Only for models whose description has `explains: true`. For the shipped model the answer is about 200 KB of
    JSON (85 KB gzipped), most of it the position table.
    """
    name, model = registry.get(body.model)
    call = checks.check_explain(model, body, settings)  # before queueing: bad input is answered at once
    content = await runner.gzipped_json(
        ("explain", name, call),
        lambda stop: shaping.explanation(model, name, call, stop),
        client_gone,
        cost=checks.cost(call),
    )
    return gzipped_json_response(request, content)
