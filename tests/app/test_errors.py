"""Bad input gets a 4xx whose JSON `detail` says what to fix; never a 500, a hang or a stack trace."""

from __future__ import annotations

import pytest

from tests.app.conftest import make_client


@pytest.fixture
def strict_client(tiny_model_dir):
    with make_client(tiny_model_dir, max_source_tokens=10, max_target_tokens=12, max_beam_size=4) as client:
        yield client


def post(client, body: dict | list | None, path: str = "/api/v1/attention"):
    return client.post(path, json=body)


def assert_error(response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    for fragment in fragments:
        assert fragment in detail, detail
    assert "Traceback" not in response.text and "/work" not in response.text


@pytest.mark.parametrize("source", ["", "   ", "\n\t ", "\u0000\u0001", "\u200b"])
def test_empty_source(strict_client, source):
    assert_error(post(strict_client, {"source": source}), 422, "the source is empty")


def test_too_many_source_tokens_names_the_limit_and_the_count(strict_client):
    assert_error(
        post(strict_client, {"source": "one two three four five six seven eight nine ten eleven"}),
        422,
        "11 tokens",
        "limit is 10",
    )
    assert_error(post(strict_client, {"source": "x " * 10_000}), 422, "10000 tokens", "limit is 10")
    assert post(strict_client, {"source": "one two three four five six seven eight nine ten"}).status_code == 200


def test_too_many_target_tokens_and_an_empty_target(strict_client):
    assert_error(post(strict_client, {"source": "hi", "target": "これ " * 13}), 422, "target has 13 tokens", "limit is 12")
    assert_error(post(strict_client, {"source": "hi", "target": "  "}), 422, "the target is empty")


def test_unknown_model_lists_the_available_ones(strict_client):
    assert_error(
        post(strict_client, {"source": "hi", "model": "../../etc/passwd"}), 404, "'../../etc/passwd'", "available models: tiny"
    )


@pytest.mark.parametrize(
    ("fields", "fragments"),
    [
        ({"layers": [2]}, ["encoder layers 2 out of range", "0 to 1"]),
        ({"layers": [0, 7, 9]}, ["layers 7, 9 out of range", "0 to 1"]),
        ({"layers": [-1]}, ["layers -1 out of range", "0 to 1"]),
        ({"layers": [10**30]}, ["out of range", "0 to 1"]),
        ({"kinds": ["cross"], "layers": [5]}, ["cross layers 5 out of range"]),
        ({"heads": [4]}, ["encoder heads 4 out of range", "0 to 3"]),
        ({"heads": [-2]}, ["heads -2 out of range", "0 to 3"]),
        ({"kinds": ["self"]}, ["kinds[0]", "'encoder', 'decoder' or 'cross'"]),
        ({"kinds": []}, ["kinds"]),
        ({"layers": []}, ["layers"]),
        ({"beam_size": 5}, ["Beam size (beam_size) 5 is over the limit", "1 to 4"]),
        ({"beam_size": 10**6}, ["Beam size (beam_size) 1000000 is over the limit"]),
        ({"beam_size": 0}, ["beam_size", "greater than or equal to 1"]),
        ({"max_length": 13}, ["Max length (max_length) 13 is over the limit", "1 to 12"]),
        ({"max_length": 10**6}, ["Max length (max_length) 1000000"]),
        ({"max_length": 0}, ["max_length"]),
        ({"precision": 9}, ["precision", "less than or equal to 8"]),
        ({"source": 5}, ["source", "valid string"]),
        ({"source": ["hi"]}, ["source", "valid string"]),
        ({"beam_size": "many"}, ["beam_size", "valid integer"]),
        ({"beam_size": "4"}, ["beam_size", "valid integer"]),  # no guessing at types
        ({"precision": False}, ["precision", "valid integer"]),
        ({"max_length": 2.5}, ["max_length", "valid integer"]),
        ({"layers": "0"}, ["layers", "valid list"]),
        ({"colour": "red"}, ["colour", "Extra inputs are not permitted"]),
    ],
)
def test_out_of_range_and_wrong_types_name_the_field(strict_client, fields, fragments):
    assert_error(post(strict_client, {"source": "this is an example", **fields}), 422, *fragments)


@pytest.mark.parametrize("body", [[], ["this is"], "this is", 3, {}])
def test_bodies_that_are_not_a_request_object(strict_client, body):
    assert_error(post(strict_client, body), 422)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"source": "hi"', "not valid JSON"),
        (b"not json", "not valid JSON"),
        (b'{"source": "\xff\xfe hi"}', "UTF-8"),
        (b"", "JSON object"),
    ],
)
def test_malformed_json(strict_client, content, fragment):
    response = strict_client.post("/api/v1/attention", content=content, headers={"content-type": "application/json"})
    assert_error(response, 422, fragment)


def test_a_body_without_a_json_content_type_says_so(strict_client):
    response = strict_client.post("/api/v1/attention", content=b'{"source": "hi"}', headers={"content-type": "text/plain"})
    assert_error(response, 415, "Content-Type: application/json", "it was 'text/plain'")
    assert_error(strict_client.post("/api/v1/attention"), 415, "Content-Type: application/json", "it was missing")


def test_bodies_over_64_kib_are_413_with_or_without_a_content_length(strict_client):
    big = b'{"source": "' + b"a" * 70_000 + b'"}'
    assert_error(
        strict_client.post("/api/v1/attention", content=big, headers={"content-type": "application/json"}), 413, "65536 bytes"
    )

    def chunks():
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    streamed = strict_client.post("/api/v1/attention", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in streamed.request.headers
    assert_error(streamed, 413, "64 KiB")
    assert strict_client.post("/api/v1/attention", json={"source": "still serving"}).status_code == 200


def test_unencodable_text_in_an_error_is_escaped_not_a_500(strict_client):
    response = strict_client.post(
        "/api/v1/attention", content=b'{"source": "hi", "model": "\\ud800"}', headers={"content-type": "application/json"}
    )
    assert_error(response, 404, "unknown model '\\ud800'")


def test_unknown_paths_and_methods(strict_client):
    assert_error(strict_client.get("/api/v1/nothing"), 404, "Not Found")
    assert_error(strict_client.get("/api/v1/attention"), 405, "Method Not Allowed")


def test_an_unexpected_failure_is_a_json_500_without_internals(strict_client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals at /work/main/app/shaping.py")

    monkeypatch.setattr("app.shaping.attention", broken)
    response = post(strict_client, {"source": "this is"})
    assert_error(response, 500, "internal error")
    assert "secret" not in response.text
