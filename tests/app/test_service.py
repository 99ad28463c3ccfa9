from __future__ import annotations

import threading
import time

import anyio
import pytest

from app.service import InferenceRunner, ModelRegistry, RegistryError, ResponseCache
from app.settings import Settings
from tests.conftest import write_model_dir


def test_registry_refuses_an_empty_folder(tmp_path):
    with pytest.raises(RegistryError, match=r"no model checkpoints \(\*\.pt\) in"):
        ModelRegistry.load(tmp_path)


def test_registry_refuses_a_truncated_checkpoint(tmp_path):
    path = write_model_dir(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RegistryError, match="truncated or not a checkpoint"):
        ModelRegistry.load(tmp_path)


def test_registry_refuses_a_default_model_it_does_not_have(tiny_model_dir):
    with pytest.raises(RegistryError, match="default model 'en-ja' is not in .*; found: tiny"):
        ModelRegistry.load(tiny_model_dir, default="en-ja")


def test_registry_prefers_en_ja_as_default(tmp_path):
    write_model_dir(tmp_path, "aa")
    write_model_dir(tmp_path, "en-ja")
    assert ModelRegistry.load(tmp_path).default == "en-ja"


def test_cache_evicts_the_least_recently_used():
    cache = ResponseCache(2)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"  # now b is the least recently used
    cache.put("c", b"3")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1", None, b"3")
    assert len(cache) == 2


def test_runner_bounds_the_model_calls_running_at_once():
    runner = InferenceRunner(concurrency=2, cache_size=0)
    running, most = 0, 0
    lock = threading.Lock()

    def compute():
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return Settings()

    async def main():
        async with anyio.create_task_group() as tasks:
            for i in range(6):
                tasks.start_soon(runner.gzipped_json, i, compute)

    anyio.run(main)
    assert most == 2


def test_torch_threads_share_the_cores_among_concurrent_calls(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert Settings(concurrency=2).torch_threads == 4
    assert Settings(concurrency=8).torch_threads == 1
    assert Settings(concurrency=16).torch_threads == 1
    assert Settings().concurrency == 8


def test_settings_come_from_attnscope_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNSCOPE_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("ATTNSCOPE_MAX_SOURCE_TOKENS", "40")
    monkeypatch.setenv("ATTNSCOPE_CORS_ORIGINS", '["https://example.org"]')
    settings = Settings()
    assert (settings.model_dir, settings.max_source_tokens, settings.cors_origins) == (tmp_path, 40, ["https://example.org"])
    assert Settings.model_fields["cors_origins"].default_factory() == []
