"""create without duplicates, and the serving wait, against a scripted gateway."""

from __future__ import annotations

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineClient, ModelEngineError
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import create_endpoint

PATH = "/v1/llm/model-endpoints"
BODY = {"name": "e1"}


def client_for(gateway, retries=3):
    return ModelEngineClient(gateway.url, "u", retries=retries, sleep=lambda s: None, rand=lambda: 0.0)


def rec(status, workers=0, reason=None):
    return {"id": "end_x", "name": "e1", "status": status,
            "spec": {"status_reason": reason, "deployment_state": {"available_workers": workers}}}


def test_create_first_try(gateway):
    gateway.queue("POST", PATH, 200, {"endpoint_creation_task_id": "t1"})
    assert create_endpoint(client_for(gateway), BODY) == ("t1", 1)


def test_ambiguous_failure_then_found_by_name_is_not_reposted(gateway):
    # the gateway took the POST but answered 503 (e.g. broker hiccup after the record was written)
    gateway.queue("POST", PATH, 503, {"detail": "Message broker temporarily unavailable. Please retry."})
    gateway.queue("GET", PATH + "/e1", 200, rec("UPDATE_PENDING"))
    assert create_endpoint(client_for(gateway), BODY) == (None, 1)
    assert len(gateway.calls("POST")) == 1


def test_ambiguous_failure_and_absent_is_reposted_once(gateway):
    gateway.queue("POST", PATH, 502, {"error": "bad gateway"})
    gateway.queue("GET", PATH + "/e1", 404, {"detail": "Model Endpoint e1  was not found."})
    gateway.queue("POST", PATH, 200, {"endpoint_creation_task_id": "t2"})
    assert create_endpoint(client_for(gateway), BODY) == ("t2", 2)
    assert len(gateway.calls("POST")) == 2


def test_duplicate_400_after_a_retry_means_the_first_went_through(gateway):
    gateway.queue("POST", PATH, 429, {"error": "Too many requests"})
    gateway.queue("GET", PATH + "/e1", 404, {"detail": "Model Endpoint e1  was not found."})
    gateway.queue("POST", PATH, 400, {"detail": "The specified model endpoint already exists."})
    assert create_endpoint(client_for(gateway), BODY) == (None, 2)


def test_validation_errors_are_not_retried(gateway):
    gateway.queue("POST", PATH, 400, {"detail": "Num shard 2 must be equal to the number of GPUs 1."})
    with pytest.raises(ModelEngineError) as err:
        create_endpoint(client_for(gateway), BODY)
    assert err.value.status == 400 and len(gateway.calls("POST")) == 1
    assert gateway.calls("GET") == []


def test_gives_up_after_retries(gateway):
    gateway.default("POST", PATH, 503, {"detail": "busy"})
    gateway.default("GET", PATH + "/e1", 404, {"detail": "nope"})
    with pytest.raises(ModelEngineError) as err:
        create_endpoint(client_for(gateway, retries=2), BODY)
    assert len(gateway.calls("POST")) == 3 and err.value.attempts == 3
    # the message counts the create's attempts, not the last single POST's
    assert str(err.value) == "POST /v1/llm/model-endpoints returned HTTP 503 after 3 attempt(s): busy"
