"""llm_endpoint run through pytest-ansible against a scripted gateway: which calls it makes."""

from __future__ import annotations

import copy

from tests.unit.plugins.module_utils.test_endpoint_spec import RECORD, RUNBOOK

MODULE = "odp.model_engine.llm_endpoint"
PATH = "/v1/llm/model-endpoints"


def run(host, gateway, **args):
    merged = dict(copy.deepcopy(RUNBOOK), url=gateway.url, user_id="test-user-id", retries=0)
    merged.update(args)
    return getattr(host, MODULE)(**merged)["localhost"]


def test_create_posts_the_runbook_body(localhost, gateway):
    gateway.queue("GET", PATH + "/test-endpoint-v1", 404, {"detail": "Model Endpoint test-endpoint-v1  was not found."})
    gateway.queue("POST", PATH, 200, {"endpoint_creation_task_id": "t1"})
    gateway.queue("GET", PATH + "/test-endpoint-v1", 200, dict(RECORD, status="UPDATE_PENDING"))
    res = run(localhost, gateway)
    assert res["changed"] is True and res["task_id"] == "t1"
    [post] = gateway.calls("POST")
    assert post["body"]["endpoint_type"] == "streaming" and post["body"]["storage"] == "50Gi"
    assert res["k8s_resource_name"] == "launch-endpoint-id-end-cismpd08agn003rr2kc0"


def test_check_mode_create_posts_nothing(localhost_check, gateway):
    gateway.queue("GET", PATH + "/test-endpoint-v1", 404, {"detail": "nope"})
    res = run(localhost_check, gateway)
    assert res["changed"] is True and "would be created" in res["msg"]
    assert gateway.calls("POST") == []


def test_unchanged_endpoint_reports_no_change_and_writes_nothing(localhost, gateway):
    gateway.default("GET", PATH + "/test-endpoint-v1", 200, RECORD)
    res = run(localhost, gateway)
    assert res["changed"] is False
    assert [r["method"] for r in gateway.requests] == ["GET"]


def test_update_puts_only_differences(localhost, gateway):
    gateway.default("GET", PATH + "/test-endpoint-v1", 200, RECORD)
    gateway.queue("PUT", PATH + "/test-endpoint-v1", 200, {"endpoint_creation_task_id": "t2"})
    res = run(localhost, gateway, max_workers=3)
    assert res["changed"] is True
    assert gateway.calls("PUT")[0]["body"] == {"max_workers": 3}
    assert res["changes"] == {"max_workers": {"before": 1, "after": 3}}


def test_check_mode_update_puts_nothing(localhost_check, gateway):
    gateway.default("GET", PATH + "/test-endpoint-v1", 200, RECORD)
    res = run(localhost_check, gateway, max_workers=3)
    assert res["changed"] is True and res["request"] == {"max_workers": 3}
    assert gateway.calls("PUT") == []


def test_absent_deletes_and_is_idempotent(localhost, gateway):
    gateway.queue("GET", PATH + "/test-endpoint-v1", 200, RECORD)
    gateway.queue("DELETE", PATH + "/test-endpoint-v1", 200, {"deleted": True})
    assert run(localhost, gateway, state="absent")["changed"] is True
    gateway.queue("GET", PATH + "/test-endpoint-v1", 404, {"detail": "nope"})
    res = run(localhost, gateway, state="absent")
    assert res["changed"] is False and len(gateway.calls("DELETE")) == 1


def test_bad_input_fails_before_any_call(localhost, gateway):
    res = run(localhost, gateway, endpoint_type="sync", num_shards=2)
    assert res["failed"] is True
    assert "endpoint_type: must be 'streaming'" in res["msg"] and "num_shards: must equal gpus" in res["msg"]
    assert gateway.requests == []


def test_unknown_option_rejected_by_argument_spec(localhost, gateway):
    res = run(localhost, gateway, max_model_len=4096)
    assert res["failed"] is True and "max_model_len" in res["msg"]
    assert gateway.requests == []


def test_immutable_change_fails_without_writing(localhost, gateway):
    gateway.default("GET", PATH + "/test-endpoint-v1", 200, RECORD)
    res = run(localhost, gateway, nodes_per_worker=2, gpus=1)
    assert res["failed"] is True and "nodes_per_worker: cannot change" in res["msg"]
    assert gateway.calls("PUT") == []
