"""Which models a folder holds: every built-in NAME.pt, and every Hugging Face directory NAME/ with a config.json."""

from __future__ import annotations

import json
from pathlib import Path

from backends.interface import ModelLoadError, TranslationModel

HF_HEADS_FILE = "attnscope.heads.json"  # beside a Hugging Face model's attnscope.json card


def is_huggingface_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def head_importance_path(model_path: str | Path) -> Path:
    """Where `attnscope heads` writes a model's head-importance table: NAME.heads.json beside NAME.pt and its
    NAME.json card, or attnscope.heads.json inside a Hugging Face directory, beside its attnscope.json."""
    path = Path(model_path)
    return path.with_suffix(".heads.json") if path.suffix == ".pt" else path / HF_HEADS_FILE


def read_head_importance(model_path: str | Path) -> dict | None:
    """The model's head-importance table, or None where it has none; ModelLoadError when it cannot be read."""
    path = head_importance_path(model_path)
    if not path.is_file():
        return None
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ModelLoadError(f"head-importance table {path} cannot be read: {exc}") from None
    if not isinstance(table, dict):
        raise ModelLoadError(f"head-importance table {path} is not a JSON object")
    return table


def find_model(model_dir: str | Path, name: str) -> Path:
    """The checkpoint NAME.pt or Hugging Face directory NAME/ in `model_dir`; ModelLoadError naming what is there."""
    model_dir = Path(model_dir)
    for path in (model_dir / f"{name}.pt", model_dir / name):
        if path.suffix == ".pt" and path.is_file() or is_huggingface_dir(path):
            return path
    models = [p for p in model_dir.glob("*") if p.suffix == ".pt" or is_huggingface_dir(p)]
    there = sorted(p.stem if p.suffix == ".pt" else p.name for p in models)
    raise ModelLoadError(f"no model {name!r} in {model_dir}; it holds: {', '.join(there) or 'no models'}")


def load_model(path_or_id: str | Path, device: str = "auto", name: str | None = None) -> tuple[str, TranslationModel]:
    """One model: a NAME.pt checkpoint, a Hugging Face directory, or a hub id (where the machine can reach the hub).
    Returns (name, model); ModelLoadError says in one line why it cannot be served."""
    path = Path(path_or_id)
    if path.suffix == ".pt":
        from backends.builtin import BuiltinModel

        model = BuiltinModel.load(path, device)
        return name or model.name, model
    if path.exists() and not is_huggingface_dir(path):
        raise ModelLoadError(f"{path} is neither a NAME.pt checkpoint nor a Hugging Face model directory (no config.json)")
    from backends.huggingface import HuggingFaceModel  # needs the [hf] extra; it says so when it is missing

    model = HuggingFaceModel.load(str(path_or_id), name=name, device=device)
    return model.describe().name, model


def folder_models(model_dir: str | Path) -> dict[str, Path]:
    """The models in `model_dir` by name (sorted), unloaded: NAME.pt checkpoints and Hugging Face directories NAME/.
    ModelLoadError for a folder with none."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"model folder {model_dir} does not exist")
    candidates = sorted(p for p in model_dir.iterdir() if p.suffix == ".pt" or is_huggingface_dir(p))
    if not candidates:
        raise ModelLoadError(
            f"no models in {model_dir}: it holds no NAME.pt checkpoint and no Hugging Face directory NAME/ with a config.json"
        )
    return {path.stem if path.suffix == ".pt" else path.name: path for path in candidates}
