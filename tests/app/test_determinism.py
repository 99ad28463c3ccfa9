"""The same request gets byte-identical answers: repeated (cache off, so the model really runs again),
side by side, batched with other requests, and across restarts of the app and of the whole process."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import model.translator as translator_module
from app import shaping
from app.settings import Settings
from backends.builtin import BuiltinModel
from tests.app.conftest import make_client
from tests.conftest import REPO

REQUESTS = [
    ("/api/v1/attention", {"source": "This is an example."}),
    ("/api/v1/attention", {"source": "i like tea !", "target": "私 は お 茶 が 好き", "precision": 8}),
    ("/api/v1/attention", {"source": "the cat and the dog", "beam_size": 3, "kinds": ["cross"], "heads": [1, 3]}),
    ("/api/v1/translate", {"source": "do n't go ?", "beam_size": 4}),
]

DIGEST_SCRIPT = """
import hashlib, sys
from tests.app.conftest import make_client
from tests.app.test_determinism import REQUESTS
with make_client(sys.argv[1], cache_size=0, concurrency=2) as client:
    for path, body in REQUESTS:
        print(hashlib.sha256(client.post(path, json=body).content).hexdigest())
"""


def digests(client) -> list[str]:
    return [hashlib.sha256(client.post(path, json=body).content).hexdigest() for path, body in REQUESTS]


def test_same_request_same_bytes_repeated_concurrent_and_after_restarts(tiny_model_dir):
    with make_client(tiny_model_dir, cache_size=0, concurrency=2) as client:
        first = digests(client)
        assert digests(client) == first
        with ThreadPoolExecutor(4) as pool:
            side_by_side = list(pool.map(lambda _: digests(client), range(4)))
        assert side_by_side == [first] * 4
    with make_client(tiny_model_dir, cache_size=0, concurrency=2) as restarted:
        assert digests(restarted) == first
    fresh_process = subprocess.run(
        [sys.executable, "-c", DIGEST_SCRIPT, str(tiny_model_dir)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert fresh_process.returncode == 0, fresh_process.stderr
    assert fresh_process.stdout.split() == first


BATCHED = [
    {"source": "the cat"},
    {"source": "This is an example.", "max_length": 7},
    {"source": "i like tea ! the dog and the cat .", "precision": 8},
    {"source": "do n't go ?", "kinds": ["cross"]},
    {"source": "he 's the dog", "beam_size": 3},
    {"source": "i like tea !", "beam_size": 3, "max_length": 5},
    {"source": "i like tea !", "target": "私 は お 茶 が 好き"},
]


def batched_and_alone(model_dir, monkeypatch, bodies, gathered) -> tuple[list[bytes], list[bytes], list[int]]:
    """Each body's answer alone, then all sent at once while the first holds the only slot until `gathered(runner)`
    says the others wait, so those that batch are batched; and the size of every batch the model was given."""
    batch_sizes = []
    real_batch, real_alone = BuiltinModel.attention_batch, shaping.attention

    def counted(self, queries, stops):
        batch_sizes.append(len(queries))
        return real_batch(self, queries, stops)

    monkeypatch.setattr(BuiltinModel, "attention_batch", counted)
    with make_client(model_dir, cache_size=0, concurrency=1, max_batch=8) as client:
        alone = [client.post("/api/v1/attention", json=body).content for body in bodies]
        runner = client.app.state.runner

        held = []

        def first_holds_the_slot(model, name, call, stop):  # until every other request waits, so they batch
            deadline = time.monotonic() + 30
            while not held and not gathered(runner) and time.monotonic() < deadline:
                time.sleep(0.01)
            held.append(call)
            return real_alone(model, name, call, stop)

        monkeypatch.setattr(shaping, "attention", first_holds_the_slot)
        with ThreadPoolExecutor(len(bodies)) as pool:
            first = pool.submit(client.post, "/api/v1/attention", json=bodies[0])
            time.sleep(0.2)
            others = [pool.submit(client.post, "/api/v1/attention", json=body) for body in bodies[1:]]
            together = [first.result().content] + [future.result().content for future in others]
    return alone, together, batch_sizes


@pytest.fixture
def torch_threads_kept():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("torch_threads", [1, 2])
@pytest.mark.usefixtures("torch_threads_kept")
def test_requests_batched_together_get_the_bytes_they_get_alone(tiny_model_dir, monkeypatch, torch_threads):
    # One torch thread a model call (the server's default): the batch shares its encoder and forced passes
    # (model.translator.Translator.batches_exactly); two: each call runs its own, and only decoding is shared.
    monkeypatch.setattr(Settings, "torch_threads", property(lambda self: torch_threads))
    forced_rows = []
    real_forced = translator_module.forced_attention_batch

    def counted_forced(model, src, *args, **kwargs):
        forced_rows.append(src.size(0))
        return real_forced(model, src, *args, **kwargs)

    monkeypatch.setattr(translator_module, "forced_attention_batch", counted_forced)
    alone, together, batch_sizes = batched_and_alone(
        tiny_model_dir, monkeypatch, BATCHED, lambda runner: runner.cheap.waiting >= len(BATCHED) - 1
    )
    assert together == alone
    assert sorted(batch_sizes) == [2, 4]  # the greedy ones with the forced one, and the beam ones
    assert any(rows > 1 for rows in forced_rows) == (torch_threads == 1)  # a forced pass of several calls


# Every method but saliency batches, and so do alignment, encoding and granularity: each call's maps are those of its
# pass alone, and are shaped for it alone. Saliency runs alone (app.routes.attention.ALONE_METHODS).
MIXED_METHODS = [
    {"source": "the cat"},
    {"source": "This is an example.", "method": "norms"},
    {"source": "i like tea ! the dog and the cat .", "method": "alti"},
    {"source": "do n't go ?", "alignment": {"layer": 0, "head": "mean"}},
    {"source": "he 's the dog", "method": "norms", "encoding": "base64", "alignment": {"layer": 1, "threshold": 0.1}},
    {"source": "i like tea !", "encoding": "base64", "granularity": "word", "precision": 6},
    {"source": "the dog", "method": "saliency", "saliency": {"algorithm": "input_x_gradient"}},
]


def test_a_batch_mixing_methods_and_alignments_gives_each_what_it_gets_alone(tiny_model_dir, monkeypatch):
    def five_gathered(runner) -> bool:  # every request after the first but saliency, in its group's queue
        return sum(len(queue) for queue in runner.cheap.batches.values()) >= 5

    alone, together, batch_sizes = batched_and_alone(tiny_model_dir, monkeypatch, MIXED_METHODS, five_gathered)
    assert together == alone
    assert batch_sizes == [5]  # weights, norms, alti, alignments and encodings in one batch; saliency alone
    answers = [json.loads(body) for body in together]
    assert [answer["method"] for answer in answers] == [body.get("method", "weights") for body in MIXED_METHODS]
    assert answers[3]["alignment"]["links"] and answers[4]["attention"]["cross"]["encoded"]["dtype"]


# Heads switched off are gates the whole batch decodes under: requests batch only with the same set of heads off.
CROSS_0_1, ENCODER_1_2 = {"kind": "cross", "layer": 0, "head": 1}, {"kind": "encoder", "layer": 1, "head": 2}
MIXED_ABLATIONS = [
    {"source": "the cat"},
    {"source": "i like tea !", "ablate": [CROSS_0_1]},
    {"source": "he 's the dog"},
    {"source": "the dog and the cat .", "ablate": [CROSS_0_1]},
    {"source": "do n't go ?", "ablate": [ENCODER_1_2, CROSS_0_1]},
    {"source": "This is an example.", "ablate": [CROSS_0_1, ENCODER_1_2]},
    {"source": "i like tea ! the dog", "ablate": []},
]


def test_requests_batch_only_with_the_same_heads_switched_off_and_get_what_they_get_alone(tiny_model_dir, monkeypatch):
    def six_gathered(runner) -> bool:
        return sum(len(queue) for queue in runner.cheap.batches.values()) >= 6

    alone, together, batch_sizes = batched_and_alone(tiny_model_dir, monkeypatch, MIXED_ABLATIONS, six_gathered)
    assert together == alone
    assert sorted(batch_sizes) == [2, 2, 2]  # every head on (ablate [] too), cross 0:1 off, and both off in either order
    answers = [json.loads(body) for body in together]
    assert [len(answer["ablated"]) for answer in answers] == [0, 1, 0, 1, 2, 2, 0]
