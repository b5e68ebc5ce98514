from __future__ import annotations

import base64

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils.api_client import (
    ModelEngineClient,
    ModelEngineError,
    error_detail,
)


def make_client(url, **kw):
    sleeps = []
    kw.setdefault("retries", 3)
    client = ModelEngineClient(url, "test-user-id", sleep=sleeps.append, rand=lambda: 1.0, **kw)
    return client, sleeps


def test_basic_auth_user_id_as_username_and_empty_password(gateway):
    gateway.queue("GET", "/v1/llm/model-endpoints", 200, {"model_endpoints": []})
    client = make_client(gateway.url)[0]
    assert client.get("/v1/llm/model-endpoints") == {"model_endpoints": []}
    auth = gateway.requests[0]["headers"]["Authorization"]
    assert auth.startswith("Basic ")
    assert base64.b64decode(auth.split()[1]) == b"test-user-id:"


def test_json_body_and_query(gateway):
    gateway.queue("POST", "/v1/llm/model-endpoints", 200, {"endpoint_creation_task_id": "t1"})
    client = make_client(gateway.url)[0]
    assert client.post("/v1/llm/model-endpoints", {"name": "a"}) == {"endpoint_creation_task_id": "t1"}
    req = gateway.requests[0]
    assert req["body"] == {"name": "a"}
    assert req["headers"]["Content-Type"] == "application/json"
    gateway.queue("GET", "/v1/llm/model-endpoints", 200, {"model_endpoints": []})
    client.get("/v1/llm/model-endpoints", params={"name": "x y", "order_by": None})
    assert gateway.requests[1]["query"] == "name=x+y"


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retries_on_retryable_statuses_then_succeeds(gateway, status):
    gateway.queue("GET", "/readyz", status, {"error": "Too many requests"})
    gateway.queue("GET", "/readyz", status, {"error": "Too many requests"})
    gateway.queue("GET", "/readyz", 200, {"ok": True})
    client, sleeps = make_client(gateway.url)
    assert client.get("/readyz") == {"ok": True}
    assert len(gateway.calls("GET", "/readyz")) == 3
    # full jitter with rand()=1.0 gives the cap: base 0.5 * 2**attempt
    assert sleeps == [0.5, 1.0]


def test_gives_up_after_retries_with_status_and_attempts(gateway):
    gateway.default("GET", "/readyz", 503, {"detail": "Message broker temporarily unavailable. Please retry."})
    client, sleeps = make_client(gateway.url, retries=2)
    with pytest.raises(ModelEngineError) as err:
        client.get("/readyz")
    assert err.value.status == 503
    assert err.value.attempts == 3
    assert "after 3 attempt(s)" in str(err.value)
    assert "Message broker temporarily unavailable" in str(err.value)
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 500])
def test_never_retries_4xx_or_500(gateway, status):
    gateway.default("POST", "/v1/llm/model-endpoints", status, {"detail": "The specified model endpoint already exists."})
    client, sleeps = make_client(gateway.url)
    with pytest.raises(ModelEngineError) as err:
        client.post("/v1/llm/model-endpoints", {"name": "a"})
    assert err.value.status == status
    assert len(gateway.calls("POST")) == 1
    assert sleeps == []
    assert "already exists" in str(err.value)


def test_retry_after_header_is_honoured(gateway):
    gateway.queue("GET", "/readyz", 429, {"error": "Too many requests"}, headers={"Retry-After": "3"})
    gateway.queue("GET", "/readyz", 200, {})
    client, sleeps = make_client(gateway.url)
    client.get("/readyz")
    assert sleeps == [3.0]


def test_retry_false_disables_retries(gateway):
    gateway.default("POST", "/x", 503, {"detail": "busy"})
    client, sleeps = make_client(gateway.url)
    with pytest.raises(ModelEngineError):
        client.post("/x", {}, retry=False)
    assert len(gateway.calls("POST", "/x")) == 1
    assert sleeps == []


def test_connection_errors_are_retried_and_reported():
    client, sleeps = make_client("http://127.0.0.1:9", retries=2, timeout=2)
    with pytest.raises(ModelEngineError) as err:
        client.get("/healthz")
    assert err.value.status is None
    assert err.value.attempts == 3
    assert "is http://127.0.0.1:9 reachable?" in str(err.value)
    assert len(sleeps) == 2


def test_backoff_is_capped():
    client = ModelEngineClient("http://x", "u", backoff_base=1, backoff_max=4, rand=lambda: 1.0)
    assert [client.backoff(a) for a in range(5)] == [1, 2, 4, 4, 4]


def test_backoff_jitter_spreads_between_zero_and_cap():
    client = ModelEngineClient("http://x", "u", backoff_base=1, backoff_max=8, rand=lambda: 0.25)
    assert client.backoff(3) == 2.0


@pytest.mark.parametrize("url", ["", "localhost:5000", "ftp://x"])
def test_bad_url_is_rejected_before_any_call(url):
    with pytest.raises(ValueError) as err:
        ModelEngineClient(url, "u")
    assert str(err.value).startswith("url: ")


@pytest.mark.parametrize(
    "body, text",
    [
        ({"detail": "Model Endpoint x  was not found."}, "Model Endpoint x  was not found."),
        ({"detail": [{"type": "missing", "loc": ["body", "vllm", "labels"], "msg": "Field required"}]},
         "body.vllm.labels: Field required"),
        ({"error": "Internal error occurred. Our team has been notified.", "timestamp": "t", "request_id": "r1"},
         "Internal error occurred. Our team has been notified. (request_id r1)"),
        ("plain text", "plain text"),
        (None, ""),
    ],
)
def test_error_detail_understands_every_gateway_error_shape(body, text):
    assert error_detail(body) == text
