"""The browser page. Its scripts and styles come from /static, Plotly from /vendor (app.routes.vendor)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app import shaping
from app.dependencies import RegistryDep, SettingsDep
from app.settings import REPO_ROOT

templates = Jinja2Templates(directory=REPO_ROOT / "templates")

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(request: Request, registry: RegistryDep, settings: SettingsDep) -> HTMLResponse:
    models = [shaping.model_info(name, model, registry.default, settings).model_dump() for name, model in registry.models.items()]
    return templates.TemplateResponse(request, "index.html", {"models": models, "default_model": registry.default})


@router.get("/learn", response_class=HTMLResponse)
def learn(request: Request) -> HTMLResponse:
    """Attention worked through on editable numbers; the page needs no model."""
    return templates.TemplateResponse(request, "learn.html", {})
