"""llm_endpoint_info run as Ansible runs it, through pytest-ansible's localhost fixture."""

from __future__ import annotations

import base64

MODULE = "odp.model_engine.llm_endpoint_info"
EP = {
    "id": "end_cismpd08agn003rr2kc0", "name": "test-endpoint-v1", "status": "READY",
    "spec": {"deployment_state": {"available_workers": 1}, "status_reason": None, "created_by": "test-user-id"},
}


def run(localhost, **args):
    result = getattr(localhost, MODULE)(**args)
    return result["localhost"]


def test_by_name_found(localhost, gateway):
    gateway.queue("GET", "/v1/llm/model-endpoints/test-endpoint-v1", 200, EP)
    res = run(localhost, url=gateway.url, user_id="test-user-id", name="test-endpoint-v1")
    assert res["changed"] is False
    [ep] = res["endpoints"]
    assert ep["k8s_resource_name"] == "launch-endpoint-id-end-cismpd08agn003rr2kc0"
    assert ep["serving"] is True


def test_by_name_missing_is_empty_list(localhost, gateway):
    gateway.queue("GET", "/v1/llm/model-endpoints/nope", 404, {"detail": "Model Endpoint nope  was not found."})
    res = run(localhost, url=gateway.url, user_id="test-user-id", name="nope")
    assert res.get("failed") is not True
    assert res["endpoints"] == []


def test_list_with_order(localhost, gateway):
    gateway.queue("GET", "/v1/llm/model-endpoints", 200, {"model_endpoints": [EP, dict(EP, name="b", status="UPDATE_PENDING")]})
    res = run(localhost, url=gateway.url, user_id="test-user-id", order_by="newest")
    assert [e["name"] for e in res["endpoints"]] == ["test-endpoint-v1", "b"]
    assert [e["serving"] for e in res["endpoints"]] == [True, False]
    assert gateway.requests[0]["query"] == "order_by=newest"


def test_api_error_fails_with_status_and_detail(localhost, gateway):
    gateway.default("GET", "/v1/llm/model-endpoints", 401, {"detail": "No authentication was passed in"})
    res = run(localhost, url=gateway.url, user_id="test-user-id")
    assert res["failed"] is True
    assert "HTTP 401" in res["msg"] and "No authentication was passed in" in res["msg"]
    assert res["api_error"]["status"] == 401


def test_unknown_option_is_rejected_before_any_call(localhost, gateway):
    res = run(localhost, url=gateway.url, user_id="u", nmae="typo")
    assert res["failed"] is True
    assert "nmae" in res["msg"]
    assert gateway.requests == []


def test_bad_url_is_rejected_before_any_call(localhost):
    res = run(localhost, url="localhost:5000", user_id="u")
    assert res["failed"] is True
    assert res["msg"].startswith("url: ")


def test_auth_header_never_in_output(localhost, gateway):
    gateway.default("GET", "/v1/llm/model-endpoints", 200, {"model_endpoints": []})
    res = run(localhost, url=gateway.url, user_id="secret-user-key")
    token = base64.b64encode(b"secret-user-key:").decode()
    assert token not in repr(res)
    assert gateway.requests[0]["headers"]["Authorization"] == "Basic " + token


def test_check_mode_reads(localhost_check, gateway):
    gateway.queue("GET", "/v1/llm/model-endpoints/test-endpoint-v1", 200, EP)
    res = run(localhost_check, url=gateway.url, user_id="u", name="test-endpoint-v1")
    assert res["endpoints"][0]["name"] == "test-endpoint-v1"
