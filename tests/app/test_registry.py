from __future__ import annotations

import pytest

from app.registry import ModelRegistry, RegistryError, UnknownModel
from tests.conftest import write_model_dir


def test_registry_refuses_an_empty_folder(tmp_path):
    with pytest.raises(RegistryError, match=r"no models in .*: it holds no NAME\.pt checkpoint and no Hugging Face directory"):
        ModelRegistry.load(tmp_path)


def test_registry_refuses_a_truncated_checkpoint(tmp_path):
    path = write_model_dir(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RegistryError, match="truncated or not a checkpoint"):
        ModelRegistry.load(tmp_path)


def test_registry_refuses_a_default_model_it_does_not_have(tiny_model_dir):
    with pytest.raises(RegistryError, match="default model 'en-ja' is not among the models served: tiny"):
        ModelRegistry.load(tiny_model_dir, default="en-ja")


def test_registry_prefers_en_ja_as_default(tmp_path):
    write_model_dir(tmp_path, "aa")
    write_model_dir(tmp_path, "en-ja")
    assert ModelRegistry.load(tmp_path).default == "en-ja"


def test_registry_serves_a_folder_and_models_named_one_by_one(tmp_path):
    write_model_dir(tmp_path / "folder", "aa")
    extra = write_model_dir(tmp_path / "elsewhere", "bb")
    registry = ModelRegistry.load(tmp_path / "folder", extra=[str(extra)])
    assert registry.names == ["aa", "bb"]
    name, model = registry.get("bb")
    assert name == "bb" and model.describe().name == "bb"
    with pytest.raises(UnknownModel, match="unknown model 'cc'; available models: aa, bb"):
        registry.get("cc")


def test_registry_refuses_two_models_of_one_name(tmp_path):
    write_model_dir(tmp_path / "folder", "aa")
    again = write_model_dir(tmp_path / "elsewhere", "aa")
    with pytest.raises(RegistryError, match="two models are named 'aa'"):
        ModelRegistry.load(tmp_path / "folder", extra=[str(again)])


def test_registry_refuses_a_path_that_is_not_a_model(tmp_path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(RegistryError, match="is neither a NAME.pt checkpoint nor a Hugging Face model directory"):
        ModelRegistry.load(None, extra=[str(tmp_path / "notes")])


def test_registry_records_where_each_model_came_from_and_loads_exactly_those_again(tmp_path):
    write_model_dir(tmp_path / "folder", "aa")
    write_model_dir(tmp_path / "folder", "cc")
    extra = write_model_dir(tmp_path / "elsewhere", "bb")
    registry = ModelRegistry.load(tmp_path / "folder", extra=[str(extra)])
    assert registry.sources == {"aa": tmp_path / "folder" / "aa.pt", "cc": tmp_path / "folder" / "cc.pt", "bb": str(extra)}
    share = ModelRegistry.load_sources({"bb": registry.sources["bb"], "cc": registry.sources["cc"]}, "cpu")
    assert share.names == ["bb", "cc"] and share.sources == {"bb": str(extra), "cc": tmp_path / "folder" / "cc.pt"}
    with pytest.raises(RegistryError, match="checkpoint not found: .*missing.pt"):
        ModelRegistry.load_sources({"gone": tmp_path / "missing.pt"}, "cpu")
