"""The hostile-input catalogue (issue 6): every item gets its documented answer with a message that says
what to fix, within 1 s, and the server keeps serving. Text the model can take (emoji, RTL, punctuation)
is translated; what it cannot is a 4xx. The last part sends the worst of it over real HTTP."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from app.settings import Settings
from tests.app.conftest import live_server, make_client

ATTENTION = "/api/v1/attention"
TEN_MB = 10 * 1024 * 1024


def raw(text: str) -> bytes:
    return text.encode()


# (name, path, body: dict for JSON or bytes as sent, status, fragments the message must hold)
CATALOGUE = [
    ("empty", ATTENTION, {"source": ""}, 422, ["the source is empty"]),
    ("whitespace", ATTENTION, {"source": " \t\n\u3000\u200b "}, 422, ["the source is empty"]),
    ("10,000 characters", ATTENTION, {"source": "word " * 2000}, 422, ["2000 tokens", "limit is"]),
    ("10,000 characters, translate", "/api/v1/translate", {"source": "word " * 2000}, 422, ["2000 tokens", "limit is"]),
    ("only punctuation", ATTENTION, {"source": "!?.,;:()[]{}"}, 200, []),
    ("emoji", ATTENTION, {"source": "I 😀 like 🍵 👩‍👩‍👧"}, 200, []),
    ("RTL text", ATTENTION, {"source": "مرحبا بالعالم \u202eevil\u202c שלום"}, 200, []),
    ("control characters and NUL", ATTENTION, {"source": "this\u0000 is\u0007 an\u001b[31m example"}, 200, []),
    ("only control characters", ATTENTION, {"source": "\u0000\u0001\u001f\u007f"}, 422, ["the source is empty"]),
    ("lone surrogate alone", ATTENTION, raw('{"source": "\\ud800"}'), 422, ["the source is empty"]),
    ("lone surrogates in text", ATTENTION, raw('{"source": "this \\udc00 is \\ud83d"}'), 200, []),
    ("lone surrogate in the model name", ATTENTION, raw('{"source": "hi", "model": "\\udfff"}'), 404, ["unknown model"]),
    ("invalid UTF-8", ATTENTION, b'{"source": "\xc3\x28 \xff hi"}', 422, ["UTF-8"]),
    ("source a number", ATTENTION, {"source": 42}, 422, ["source", "valid string"]),
    ("source null", ATTENTION, {"source": None}, 422, ["source", "valid string"]),
    ("source an object", ATTENTION, {"source": {"text": "hi"}}, 422, ["source", "valid string"]),
    ("layers a string", ATTENTION, {"source": "hi", "layers": "all"}, 422, ["layers", "valid list"]),
    ("heads of floats", ATTENTION, {"source": "hi", "heads": [0.5]}, 422, ["heads[0]", "valid integer"]),
    ("beam size a bool", ATTENTION, {"source": "hi", "beam_size": True}, 422, ["beam_size", "valid integer"]),
    ("body an array", ATTENTION, [{"source": "hi"}], 422, ["JSON object"]),
    ("extra field", ATTENTION, {"source": "hi", "temperature": 0.7}, 422, ["temperature", "Extra inputs are not permitted"]),
    (
        "negative layer",
        ATTENTION,
        {"source": "hi", "layers": [-1]},
        422,
        ["layers -1 out of range", "valid encoder layers are 0 to"],
    ),
    ("huge layer", ATTENTION, {"source": "hi", "layers": [10**100]}, 422, ["out of range", "0 to 1"]),
    (
        "negative head",
        ATTENTION,
        {"source": "hi", "heads": [-3]},
        422,
        ["encoder heads -3 out of range", "valid encoder heads are 0 to 3"],
    ),
    ("huge head", ATTENTION, {"source": "hi", "heads": [2**63]}, 422, ["out of range", "0 to 3"]),
    (
        "beam size 10^6",
        ATTENTION,
        {"source": "hi", "beam_size": 10**6},
        422,
        ["Beam size (beam_size) 1000000 is over the limit", "1 to 8"],
    ),
    ("beam size 10^6, translate", "/api/v1/translate", {"source": "hi", "beam_size": 10**6}, 422, ["(beam_size) 1000000"]),
    (
        "max length 10^6",
        ATTENTION,
        {"source": "hi", "max_length": 10**6},
        422,
        ["Max length (max_length) 1000000 is over the limit"],
    ),
    ("negative max length", ATTENTION, {"source": "hi", "max_length": -5}, 422, ["max_length", "greater than or equal to 1"]),
    (
        "model ../../etc/passwd",
        ATTENTION,
        {"source": "hi", "model": "../../etc/passwd"},
        404,
        ["unknown model", "available models"],
    ),
    ("model path in the URL", "/api/v1/models/..%2F..%2Fetc%2Fpasswd", None, 404, ["nothing is at this path", "/docs"]),
    ("model name in the URL", "/api/v1/models/passwd%00", None, 404, ["unknown model", "available models: tiny"]),
    ("model name with NUL", ATTENTION, {"source": "hi", "model": "tiny\u0000"}, 404, ["unknown model"]),
    ("deeply nested JSON", ATTENTION, raw('{"source": ' + "[" * 5000 + "]" * 5000 + "}"), 422, ["not valid JSON", "nested"]),
    ("huge number", ATTENTION, raw('{"source": "hi", "precision": 1' + "0" * 4000 + "}"), 422, ["precision"]),
    ("10 MB body", ATTENTION, b'{"source": "' + b"a" * TEN_MB + b'"}', 413, ["over the limit of 65536 bytes"]),
]


def send(client, path: str, body):
    if body is None:
        return client.get(path)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers={"content-type": "application/json"})


def assert_answered(response, status: int, fragments: list[str], elapsed: float) -> None:
    assert response.status_code == status, response.text[:500]
    assert elapsed < 1, f"took {elapsed:.2f} s"
    body = response.json()
    if status >= 400:
        assert isinstance(body["detail"], str) and body["detail"]
        for fragment in fragments:
            assert fragment in body["detail"], body["detail"]
        assert "Traceback" not in response.text and "/work" not in response.text
    else:
        assert body["source_tokens"] and set(body["attention"]) == {"encoder", "decoder", "cross"}


@pytest.fixture(scope="module")
def hostile_client(tmp_path_factory):
    from tests.conftest import write_model_dir

    model_dir = tmp_path_factory.mktemp("models")
    write_model_dir(model_dir)
    # Short decodes: the tiny random model never ends a sentence, and this is about input handling, not speed.
    with make_client(model_dir, cache_size=0, max_target_tokens=16) as client:
        yield client


@pytest.mark.parametrize(("name", "path", "body", "status", "fragments"), CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_hostile_input_gets_its_documented_answer_fast(hostile_client, name, path, body, status, fragments):
    started = time.monotonic()
    response = send(hostile_client, path, body)
    assert_answered(response, status, fragments, time.monotonic() - started)
    assert hostile_client.post(ATTENTION, json={"source": "still serving"}).status_code == 200


def test_tokens_of_any_script_come_back_as_sent(hostile_client):
    body = hostile_client.post(ATTENTION, json={"source": "I 😀 مرحبا \u202eevil"}).json()
    assert [t["text"] for t in body["source_tokens"]][:4] == ["i", "😀", "مرحبا", "evil"]  # bidi controls dropped


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from tests.conftest import write_model_dir

    model_dir = tmp_path_factory.mktemp("live-models")
    write_model_dir(model_dir)
    with live_server(Settings(model_dir=model_dir, cache_size=0, max_target_tokens=16)) as base:
        yield base


def test_over_real_http_the_worst_input_is_answered_and_the_server_keeps_serving(live):
    with httpx.Client(base_url=live, timeout=10) as client:
        for _name, path, body, status, fragments in CATALOGUE:
            started = time.monotonic()
            response = send(client, path, body)
            assert_answered(response, status, fragments, time.monotonic() - started)

        # 10 MB without a Content-Length (chunked): refused once 64 KiB have arrived, not after reading it all.
        def chunks():
            yield b'{"source": "'
            for _ in range(TEN_MB // 65536):
                yield b"a" * 65536

        started = time.monotonic()
        response = client.post(ATTENTION, content=chunks(), headers={"content-type": "application/json"})
        assert_answered(response, 413, ["64 KiB"], time.monotonic() - started)
        assert client.get("/healthz").status_code == 200
        assert client.post(ATTENTION, json={"source": "This is an example."}).status_code == 200


def test_over_a_raw_socket_invalid_utf8_and_a_lying_content_length_are_answered(live):
    host, port = live.removeprefix("http://").split(":")
    body = b'{"source": "\xff\xfe\xfd"}'
    request = (
        b"POST /api/v1/attention HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 422")
    assert b"UTF-8" in payload

    # Declares 10 MB, sends a little, then waits: refused from the header alone.
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/attention HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(TEN_MB).encode() + b'\r\n\r\n{"source": "'
        )
        started = time.monotonic()
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")
        assert time.monotonic() - started < 1
    assert httpx.get(f"{live}/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("path", [ATTENTION, "/api/v1/translate"])
@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_a_post_that_is_not_sent_as_json_gets_415_naming_the_header(hostile_client, path, content_type):
    # text/plain and forms are what a cross-site page can send without a CORS preflight.
    headers = {"content-type": content_type} if content_type else {}
    response = hostile_client.post(path, content=b'{"source": "this is"}', headers=headers)
    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["detail"]
    assert ("missing" if content_type is None else repr(content_type)) in response.json()["detail"]


def test_json_with_a_charset_is_json(hostile_client):
    headers = {"content-type": "Application/JSON; charset=utf-8"}
    assert hostile_client.post(ATTENTION, content=b'{"source": "this is"}', headers=headers).status_code == 200


def test_a_body_of_thousands_of_unknown_keys_gets_the_first_20_errors_and_a_count(hostile_client):
    body = {"source": "hi", **{f"key{i}": 0 for i in range(5000)}}
    response = hostile_client.post(ATTENTION, json=body)
    assert response.status_code == 422
    assert len(response.content) < 5000
    answer = response.json()
    assert len(answer["errors"]) == 20
    assert "key0: Extra inputs are not permitted" in answer["detail"]
    assert answer["detail"].endswith("(the first 20 of 5000 errors)")


def test_a_limit_has_one_wording_however_far_it_is_passed(hostile_client):
    just_over = hostile_client.post(ATTENTION, json={"source": "hi", "target": "猫 " * 17}).json()["detail"]
    far_over = hostile_client.post(ATTENTION, json={"source": "hi", "target": "猫" * 10_000}).json()["detail"]
    assert just_over == "the target has 17 tokens; the limit is 16: shorten it"
    assert far_over.replace("10000", "17") == just_over
