from __future__ import annotations

ENDPOINTS = {
    ("/api/v1/models", "get"),
    ("/api/v1/models/{name}", "get"),
    ("/api/v1/translate", "post"),
    ("/api/v1/attention", "post"),
    ("/api/v1/explain", "post"),
    ("/healthz", "get"),
    ("/readyz", "get"),
}


def test_the_schema_lists_every_endpoint(client):
    schema = client.get("/openapi.json").json()
    listed = {(path, method) for path, operations in schema["paths"].items() for method in operations}
    assert listed == ENDPOINTS


def test_every_error_status_is_documented_with_the_error_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        ("/api/v1/models/{name}", "get"): {"404", "422"},
        ("/api/v1/translate", "post"): {"404", "408", "413", "415", "422", "503"},
        ("/api/v1/attention", "post"): {"404", "408", "413", "415", "422", "503"},
        ("/api/v1/explain", "post"): {"404", "408", "413", "415", "422", "503"},
        ("/readyz", "get"): {"503"},
    }
    for (path, method), statuses in expected.items():
        responses = paths[path][method]["responses"]
        assert {s for s in responses if s >= "400"} == statuses
        for status in statuses:
            assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    busy = paths["/api/v1/attention"]["post"]["responses"]["503"]
    assert busy["headers"]["Retry-After"]["schema"] == {"type": "integer"}


def test_the_attention_request_has_examples_and_the_response_its_schema(client):
    schema = client.get("/openapi.json").json()
    request = schema["components"]["schemas"]["AttentionRequest"]
    assert {"source": "This is an example."} in request["examples"]
    assert request["additionalProperties"] is False
    ok = schema["paths"]["/api/v1/attention"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/AttentionResponse"}


def test_interactive_docs_are_served(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert "/openapi.json" in response.text


def test_every_documented_error_has_an_example_of_its_own(client):
    paths = client.get("/openapi.json").json()["paths"]
    examples = {
        status: answer["content"]["application/json"]["example"]["detail"]
        for status, answer in paths["/api/v1/attention"]["post"]["responses"].items()
        if status >= "400"
    }
    assert set(examples) == {"404", "408", "413", "415", "422", "503"}
    assert len(set(examples.values())) == 6
    assert "unknown model" in examples["404"] and "over the limit" in examples["413"] and "busy" in examples["503"]
    assert "did not arrive" in examples["408"] and "Content-Type: application/json" in examples["415"]
