"""The models this server serves, by name: every model in the model folder, plus any named one by one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from backends.discovery import load_folder, load_model
from backends.interface import ModelLoadError, TranslationModel

PREFERRED_DEFAULT = "en-ja"


class UnknownModel(LookupError):
    def __init__(self, name: str, available: list[str]):
        super().__init__(f"unknown model {name!r}; available models: {', '.join(available)}")


class RegistryError(RuntimeError):
    """The models cannot be served: none found, one that does not load, or a default that is not among them."""


class ModelRegistry:
    def __init__(self, models: dict[str, TranslationModel], default: str):
        self.models = models
        self.default = default

    @classmethod
    def load(
        cls, model_dir: Path | None, device: str = "auto", default: str | None = None, extra: Sequence[str] = ()
    ) -> ModelRegistry:
        """Every model in `model_dir` (None: none from a folder), then each of `extra` (paths or hub ids)."""
        try:
            models = load_folder(model_dir, device) if model_dir is not None else {}
            for source in extra:
                name, model = load_model(source, device)
                if name in models:
                    raise ModelLoadError(f"two models are named {name!r}: rename one of them")
                models[name] = model
        except ModelLoadError as exc:
            raise RegistryError(str(exc)) from None
        if not models:
            raise RegistryError("no models to serve: give a model folder or --model")
        if default is None:
            default = PREFERRED_DEFAULT if PREFERRED_DEFAULT in models else next(iter(models))
        elif default not in models:
            raise RegistryError(f"default model {default!r} is not among the models served: {', '.join(models)}")
        return cls(models, default)

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str | None) -> tuple[str, TranslationModel]:
        name = self.default if name is None else name
        if name not in self.models:
            raise UnknownModel(name, self.names)
        return name, self.models[name]
