from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.schemas import ErrorResponse, HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])
NOT_READY = {503: {"model": ErrorResponse, "description": "Not ready: the models are not loaded yet"}}


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> HealthResponse:
    return HealthResponse(status="ok")


@router.get("/readyz", response_model=ReadyResponse, summary="Readiness: the models are loaded", responses=NOT_READY)
def readyz(request: Request) -> ReadyResponse | JSONResponse:
    registry = getattr(request.app.state, "registry", None)
    if registry is None:
        return JSONResponse(ErrorResponse(detail="models are still loading").model_dump(exclude_none=True), status_code=503)
    return ReadyResponse(status="ready", models=registry.names)
