from __future__ import annotations

from app.settings import Settings


def test_torch_threads_share_the_cores_among_concurrent_calls(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert Settings(concurrency=2).torch_threads == 4
    assert Settings(concurrency=8).torch_threads == 1
    assert Settings(concurrency=16).torch_threads == 1
    assert Settings().concurrency == 8
    assert Settings(workers=2, concurrency=2).torch_threads == 2  # two server processes share the 8 cores
    assert Settings(workers=4, concurrency=2).torch_threads == 1


def test_settings_come_from_attnscope_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNSCOPE_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("ATTNSCOPE_MAX_SOURCE_TOKENS", "40")
    monkeypatch.setenv("ATTNSCOPE_CORS_ORIGINS", '["https://example.org"]')
    settings = Settings()
    assert (settings.model_dir, settings.max_source_tokens, settings.cors_origins) == (tmp_path, 40, ["https://example.org"])
    assert Settings.model_fields["cors_origins"].default_factory() == []
