"""The models this server serves, by name: every model in the model folder, plus any named one by one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from backends.discovery import folder_models, load_model
from backends.interface import ModelLoadError, TranslationModel
from model.onnx_graphs import forget_graphs, reuse_graphs

PREFERRED_DEFAULT = "en-ja"


class UnknownModel(LookupError):
    def __init__(self, name: str, available: list[str]):
        super().__init__(f"unknown model {name!r}; available models: {', '.join(available)}")


class RegistryError(RuntimeError):
    """The models cannot be served: none found, one that does not load, or a default that is not among them."""


class ModelRegistry:
    def __init__(self, models: dict[str, TranslationModel], default: str, sources: dict[str, str | Path] | None = None):
        self.models = models
        self.default = default
        self.sources = sources or {}  # where each model was loaded from: a path or a hub id

    @classmethod
    def load(
        cls, model_dir: Path | None, device: str = "auto", default: str | None = None, extra: Sequence[str] = ()
    ) -> ModelRegistry:
        """Every model in `model_dir` (None: none from a folder), then each of `extra` (paths or hub ids)."""
        try:
            sources: dict[str, str | Path] = dict(folder_models(model_dir)) if model_dir is not None else {}
            models = {name: load_model(path, device, name=name)[1] for name, path in sources.items()}
            for source in extra:
                name, model = load_model(source, device)
                if name in models:
                    raise ModelLoadError(f"two models are named {name!r}: rename one of them")
                models[name], sources[name] = model, source
        except ModelLoadError as exc:
            raise RegistryError(str(exc)) from None
        if not models:
            raise RegistryError("no models to serve: give a model folder or --model")
        if default is None:
            default = PREFERRED_DEFAULT if PREFERRED_DEFAULT in models else next(iter(models))
        elif default not in models:
            raise RegistryError(f"default model {default!r} is not among the models served: {', '.join(models)}")
        return cls(models, default, sources)

    @classmethod
    def load_sources(
        cls, sources: dict[str, str | Path], device: str = "auto", graphs: dict[str, dict[str, bytes]] | None = None
    ) -> ModelRegistry:
        """Exactly these models, each from its path or hub id under its name (a model process's share of a
        registry: `registry.sources` of the models it runs). `graphs`: the ONNX Runtime graphs the server process
        exported (model.onnx_graphs.exported_graphs()), which these models reuse instead of exporting them again
        (a few seconds a process). Their sessions made, the graphs are dropped, and `graphs` is emptied: a model
        process loads its models once, and the graphs it got in its arguments (60 MB for the shipped model) would
        stay with it otherwise."""
        reuse_graphs(graphs or {})
        try:
            models = {name: load_model(source, device, name=name)[1] for name, source in sources.items()}
        except ModelLoadError as exc:
            raise RegistryError(str(exc)) from None
        finally:
            if graphs:
                forget_graphs()
                graphs.clear()
        return cls(models, next(iter(models)), dict(sources))

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str | None) -> tuple[str, TranslationModel]:
        name = self.default if name is None else name
        if name not in self.models:
            raise UnknownModel(name, self.names)
        return name, self.models[name]
