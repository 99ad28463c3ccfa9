"""All configuration in one place; every field can be set by an ATTNSCOPE_* environment variable."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.workers import MAX_ROWS

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILT_IN_MODEL_DIR = REPO_ROOT / "model" / "checkpoints"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATTNSCOPE_", env_file=None, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    model_dir: Path | None = Field(
        BUILT_IN_MODEL_DIR, description="folder whose NAME.pt checkpoints and Hugging Face NAME/ directories are all served"
    )
    models: list[str] = Field(
        default_factory=list,
        description='more models, one by one: paths or Hugging Face hub ids (JSON list, e.g. ["./opus-mt-en-de"])',
    )
    default_model: str | None = Field(None, description="name of the default model; None picks en-ja, else the first by name")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1 ...")
    max_source_tokens: int = Field(128, ge=1)
    max_target_tokens: int = Field(160, ge=1)
    max_beam_size: int = Field(8, ge=1)
    max_saliency_steps: int = Field(
        64, ge=1, description="integrated gradients' step count a saliency request may ask for (each step is a pass per token)"
    )
    cors_origins: list[str] = Field(default_factory=list, description='JSON list, e.g. ["https://example.org"]; none by default')
    cache_size: int = Field(256, ge=0, description="responses kept in the LRU cache; 0 disables it")
    malloc_arenas: int = Field(
        2,
        ge=0,
        description="glibc malloc arenas the server may use (M_ARENA_MAX); 0 leaves glibc's default of 8 a core. Model "
        "calls of every shape in many threads grow every arena: two keep the memory flat under load",
    )
    cache_max_bytes: int = Field(
        16 * 1024 * 1024, ge=0, description="gzipped bytes the LRU cache may hold in all (16 MiB, about 64 MiB of JSON)"
    )
    max_body_bytes: int = Field(64 * 1024, ge=1)
    workers: int = Field(1, ge=1, description="server processes (attnscope serve --workers), each with its own model slots")
    concurrency: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, description="model calls running at once, in each server process"
    )
    max_queue: int = Field(64, ge=0, description="requests that may wait for a model slot; more are answered 503")
    deadline: float = Field(
        15.0,
        gt=0,
        description="seconds a model request may take in all, waiting for a slot plus computing; past it the model call "
        "stops at its next decoding step and the answer is 503 with Retry-After (half the deadline)",
    )
    cheap_cost: float = Field(
        16384,
        ge=0,
        description="requests whose cost (source tokens x max_length x beam_size, or source x target tokens when "
        "forced) is at most this run in the cheap lane, with slots and a queue of their own; the default takes a "
        "greedy call on up to 100 source tokens or beam 4 on up to 25, and leaves the longest beam searches out",
    )
    max_batch: int = Field(
        16,
        ge=1,
        le=MAX_ROWS,  # the rows a model process takes
        description="most requests decoded together in one batch, for models that batch (the built-in ones); 1 turns "
        "batching off",
    )
    batch_window: float = Field(
        0.02,
        ge=0,
        description="seconds a batch may wait for more requests once it has its model slot, and only while other model "
        "calls of its lane are running or the answers of its group's last batch are on their way back: a lone request "
        "starts at once",
    )
    model_processes: bool = Field(
        True,
        description="run batches (of models that batch, on the CPU) in processes of their own, one a model slot, each "
        "with its own copy of the models: batches in threads take turns at the server process's interpreter lock. "
        "false runs them in threads of the server process",
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="request line plus headers; larger requests get 431 and the connection is closed"
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        description="seconds a connection has to send a complete request head, from connecting or from the previous "
        "answer; then 408 (or, if nothing was sent, the connection just closes)",
    )
    body_timeout: float = Field(
        20.0, gt=0, description="seconds a request has to send its whole body once its head has arrived; then 408 and close"
    )
    keep_alive_timeout: int = Field(5, ge=1, description="seconds an idle keep-alive connection stays open after an answer")
    max_connections: int = Field(
        512, ge=1, description="open connections at once; one more gets 503 with Retry-After and is closed"
    )

    @property
    def torch_threads(self) -> int:
        """Threads per model call, so that `concurrency` calls in each of the `workers` together use each core once."""
        return max(1, (os.cpu_count() or 1) // (self.concurrency * self.workers))


@lru_cache
def get_settings() -> Settings:
    return Settings()
