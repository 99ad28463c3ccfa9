from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request, Response

from app import checks, shaping
from app.dependencies import ClientGoneDep, JsonBody, RegistryDep, RunnerDep, SettingsDep
from app.routes import POST_ERRORS, gzipped_json_response
from app.runner import Batchable
from app.schemas import AttentionRequest, AttentionResponse

router = APIRouter(prefix="/api/v1/attention", tags=["attention"])

# Methods whose own pass dwarfs the decoding a batch would share (saliency: a backward pass per produced token and
# integration step), so that in a batch it would hold every other member's answer back: they run alone.
ALONE_METHODS = frozenset({"saliency"})


@router.post(
    "",
    response_model=AttentionResponse,
    responses=POST_ERRORS,
    dependencies=[JsonBody],
    summary="Every attention map of a translation",
)
async def attention(
    request: Request,
    body: AttentionRequest,
    registry: RegistryDep,
    runner: RunnerDep,
    settings: SettingsDep,
    client_gone: ClientGoneDep,
) -> Response:
    """Translate `source` (or force `target`) and return the requested attention maps.

    Each map's `weights` are indexed `[layer][head][query][key]`:

    - **encoder** self-attention: rows and columns are `source_tokens`;
    - **decoder** masked self-attention (`causal: true`): rows are the produced `target_tokens`,
      columns the `decoder_input_tokens` (`<s>` then the target shifted right); cells above the
      diagonal are masked and exactly 0;
    - **cross** (encoder-decoder) attention: rows are `target_tokens`, columns `source_tokens`.
    """
    name, model = registry.get(body.model)
    call = checks.check_attention(model, body, settings)  # before queueing: bad input is answered at once
    if model.describe().batching and call.method not in ALONE_METHODS:
        # Calls of one beam size and one set of heads switched off (the batch's gates) share a model call, whatever
        # their method, alignment, encoding or selection: free translations decode together, and a model may share
        # the encoder and forced passes too (TranslationModel.attention_batch: each call gets what it gets alone);
        # each call's answer is shaped for it alone.
        work = Batchable(("attention", name, call.beam_size, call.ablate), call, partial(shaping.served_attention_batch, name))
    else:
        work = lambda stop: shaping.attention(model, name, call, stop)  # noqa: E731 (one expression, like the batch's)
    content = await runner.gzipped_json(("attention", name, call), work, client_gone, cost=checks.cost(call))
    return gzipped_json_response(request, content)
