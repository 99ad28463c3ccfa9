"""Schema fuzzing: schemathesis generates requests from /openapi.json, valid and invalid, for every endpoint.

Every answer must be documented: no 5xx, its status listed for the endpoint and its body matching the
schema. `make test` runs at least 300 cases with a fixed seed; `make fuzz` sets ATTNSCOPE_FUZZ_EXAMPLES
for 5,000 or more.

One built-in check is off: "valid data is accepted". A request that fits the schema can still be refused
with a documented 422, because the limits (layers, heads, tokens) belong to the loaded model, not the schema.
"Invalid data is rejected" counts 413 as a rejection too: a generated body over the size limit is refused
for its size before its fields are read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, seed, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.main import create_app
from app.settings import Settings
from tests.conftest import write_model_dir

EXAMPLES_PER_ENDPOINT = int(os.environ.get("ATTNSCOPE_FUZZ_EXAMPLES", "100"))
MIN_CASES = int(os.environ.get("ATTNSCOPE_FUZZ_MIN_CASES", "300"))


def fuzzed_app():
    model_dir = Path(tempfile.mkdtemp(prefix="attnscope-fuzz-"))
    write_model_dir(model_dir)
    # Short decodes keep thousands of cases quick; the limits are part of what is fuzzed.
    return create_app(Settings(model_dir=model_dir, max_target_tokens=12, max_source_tokens=24, cache_size=0))


app = fuzzed_app()
# schemathesis's own list, and 413.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    app,
    config=SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}}),
)


@pytest.fixture(scope="module", autouse=True)
def models_loaded():
    with TestClient(app):  # runs the lifespan, which loads the models
        yield
    shutil.rmtree(app.state.settings.model_dir, ignore_errors=True)


CASES: list[str] = []


@schema.parametrize()
@seed(20240601)
@settings(
    max_examples=EXAMPLES_PER_ENDPOINT,
    deadline=None,
    derandomize=False,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_generated_request_gets_a_documented_answer(case):
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    CASES.append(case.operation.label)
    assert response.status_code < 500, response.text
    assert response.headers["x-content-type-options"] == ["nosniff"]  # schemathesis lists each header's values


def test_a_body_refused_for_its_size_counts_as_rejected_in_every_phase():
    operation = schema["/api/v1/attention"]["POST"]
    for phase in ("examples", "coverage", "fuzzing", "stateful"):
        checks = schema.config.checks_config_for(operation=operation, phase=phase)
        assert "413" in checks.negative_data_rejection.expected_statuses, phase


def test_enough_cases_ran_over_every_endpoint():
    if not CASES:
        pytest.skip("run together with the fuzz test")
    assert len(CASES) >= MIN_CASES, f"only {len(CASES)} cases"
    operations = {f"{method.upper()} {path}" for path, item in app.openapi()["paths"].items() for method in item}
    assert set(CASES) == operations  # every endpoint the schema documents was fuzzed
