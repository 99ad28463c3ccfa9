"""The same request gets byte-identical answers: repeated (cache off, so the model really runs again),
side by side, and across restarts of the app and of the whole process."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

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
