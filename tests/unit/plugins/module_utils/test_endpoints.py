from __future__ import annotations

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineClient, ModelEngineError
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import annotate, get_endpoint, is_serving, resource_name


def record(status="READY", available=1):
    return {"id": "end_cismpd08agn003rr2kc0", "name": "e", "status": status,
            "spec": {"deployment_state": {"available_workers": available}, "status_reason": None}}


def test_resource_name_from_id():
    assert resource_name("end_cismpd08agn003rr2kc0") == "launch-endpoint-id-end-cismpd08agn003rr2kc0"


@pytest.mark.parametrize("status, available, serving", [
    ("READY", 1, True), ("READY", 0, False), ("UPDATE_PENDING", 1, False), ("UPDATE_FAILED", 0, False)])
def test_serving_needs_ready_and_a_worker(status, available, serving):
    assert is_serving(record(status, available)) is serving
    assert annotate(record(status, available))["serving"] is serving


def test_annotate_tolerates_null_spec():
    out = annotate({"id": "end_a", "status": "UPDATE_PENDING", "spec": None})
    assert out["available_workers"] == 0 and out["serving"] is False and out["k8s_resource_name"] == "launch-endpoint-id-end-a"


def test_get_endpoint_404_is_none_and_other_errors_raise(gateway):
    client = ModelEngineClient(gateway.url, "u", retries=0)
    gateway.queue("GET", "/v1/llm/model-endpoints/missing", 404, {"detail": "Model Endpoint missing  was not found."})
    assert get_endpoint(client, "missing") is None
    gateway.queue("GET", "/v1/llm/model-endpoints/boom", 500, {"error": "Internal error occurred."})
    with pytest.raises(ModelEngineError):
        get_endpoint(client, "boom")
