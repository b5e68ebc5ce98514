"""create without duplicates, and the serving wait, against a scripted gateway."""

from __future__ import annotations

import itertools

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineClient, ModelEngineError
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import WaitError, create_endpoint, wait_for_serving

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


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


def wait(gateway, **kw):
    clock = Clock()
    kw.setdefault("timeout", 100)
    kw.setdefault("sleep_s", 5)
    return wait_for_serving(client_for(gateway, retries=0), "e1", clock=clock, sleep=clock.sleep, **kw)


def test_ready_without_workers_keeps_waiting(gateway):
    for r in (rec("UPDATE_PENDING"), rec("UPDATE_IN_PROGRESS"), rec("READY", 0), rec("READY", 0), rec("READY", 1)):
        gateway.queue("GET", PATH + "/e1", 200, r)
    record, elapsed, history = wait(gateway)
    assert record["status"] == "READY" and elapsed == 20
    assert [h[1:] for h in history] == [("UPDATE_PENDING", 0), ("UPDATE_IN_PROGRESS", 0), ("READY", 0), ("READY", 1)]


def test_update_failed_fails_fast_with_reason(gateway):
    gateway.queue("GET", PATH + "/e1", 200, rec("UPDATE_PENDING"))
    gateway.queue("GET", PATH + "/e1", 200, rec("UPDATE_FAILED", reason="Endpoint deployment failed due to an internal error."))
    with pytest.raises(WaitError) as err:
        wait(gateway)
    assert err.value.reason == "UPDATE_FAILED" and err.value.elapsed == 5
    assert "internal error" in str(err.value)


def test_stuck_pending_is_reported_after_pending_timeout(gateway):
    gateway.default("GET", PATH + "/e1", 200, rec("UPDATE_PENDING"))
    with pytest.raises(WaitError) as err:
        wait(gateway, pending_timeout=30)
    assert err.value.reason == "STUCK_PENDING" and err.value.elapsed == 30
    assert "no endpoint builder is consuming" in str(err.value)


def test_timeout_names_the_last_state(gateway):
    gateway.default("GET", PATH + "/e1", 200, rec("READY", 0))
    with pytest.raises(WaitError) as err:
        wait(gateway, timeout=20)
    assert err.value.reason == "TIMEOUT" and "READY with 0 available worker(s)" in str(err.value)


def test_transient_gateway_errors_do_not_end_the_wait(gateway):
    gateway.queue("GET", PATH + "/e1", 503, {"detail": "busy"})
    gateway.queue("GET", PATH + "/e1", 200, rec("READY", 1))
    record, elapsed, _h = wait(gateway)
    assert record["status"] == "READY" and elapsed == 5


def test_after_update_waits_for_the_status_to_leave_ready(gateway):
    statuses = itertools.chain([rec("READY", 1), rec("UPDATE_PENDING", 1), rec("READY", 1)])
    for r in statuses:
        gateway.queue("GET", PATH + "/e1", 200, r)
    _record, elapsed, history = wait(gateway, transition_timeout=30)
    assert elapsed == 10 and [h[1] for h in history] == ["READY", "UPDATE_PENDING", "READY"]
