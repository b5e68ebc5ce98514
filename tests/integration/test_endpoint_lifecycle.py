"""Issue 5 on the twin: create, idempotent re-run, update, check mode, diff, delete, API faults, waits."""

from __future__ import annotations

import copy
import json

from tests.integration.conftest import create_endpoint, endpoint_names, wait_no_objects
from tests.twin.tests.conftest_platform import RUNBOOK_BODY

FAST = {"llm_endpoint_progress_interval": 1}


def body(**over):
    b = copy.deepcopy(RUNBOOK_BODY)
    b.update(over)
    return b


def test_create_then_rerun_is_unchanged_then_delete(playbook, gateway, odp_twin):
    run = playbook("create_endpoint.yml", extra=dict(FAST, endpoint=body()))
    assert run.rc == 0, run
    assert run.changed == 1, run
    assert "2/2 Running" in run.stdout  # the progress lines show the pod becoming ready
    ep = gateway.get("/v1/llm/model-endpoints/test-endpoint-v1").json()
    assert ep["status"] == "READY" and ep["spec"]["deployment_state"]["available_workers"] >= 1

    again = playbook("create_endpoint.yml", extra=dict(FAST, endpoint=body()))
    assert again.rc == 0 and again.changed == 0, again

    gone = playbook("delete_endpoint.yml", extra={"endpoint_name": "test-endpoint-v1"})
    assert gone.rc == 0 and gone.changed == 1, gone
    assert gateway.get("/v1/llm/model-endpoints/test-endpoint-v1").status == 404
    # nothing with the endpoint's id is left, of any kind the cluster serves (PDB and ConfigMaps included)
    assert wait_no_objects(odp_twin, ep["id"]) == []
    assert playbook("delete_endpoint.yml", extra={"endpoint_name": "test-endpoint-v1"}).changed == 0


def test_delete_removes_what_the_gateway_left_behind(module, playbook, gateway, odp_twin):
    """An endpoint whose PDB survived the gateway's delete (a real cluster where the delete failed half-way, or an
    older model-engine that did not know the kind): the module removes it by label, and says so."""
    ep = create_endpoint(gateway, "left-ep", wait=False)
    gateway.wait("left-ep", lambda e: e["status"] == "READY", timeout=60)
    ns = odp_twin.config.endpoint_namespace
    name = "launch-endpoint-id-" + ep["id"].replace("_", "-")
    pdb = odp_twin.call(odp_twin.kube.get("PodDisruptionBudget", name, ns))
    extra = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
             "metadata": {"name": name + "-extra", "namespace": ns, "labels": pdb["metadata"]["labels"]}, "spec": pdb["spec"]}
    odp_twin.call(odp_twin.kube.create("PodDisruptionBudget", ns, extra))
    dry = playbook("delete_endpoint.yml", check=True, extra={"endpoint_name": "left-ep"})
    assert dry.rc == 0 and "would remove" in dry.stdout and "PodDisruptionBudget/%s-extra" % name in dry.stdout, dry
    assert gateway.get("/v1/llm/model-endpoints/left-ep").status == 200  # check mode deleted nothing
    res = module("llm_endpoint", name="left-ep", state="absent")
    assert res["changed"] is True and res["removed_objects"] == ["PodDisruptionBudget/%s-extra" % name], res
    assert wait_no_objects(odp_twin, ep["id"]) == []


def test_check_mode_creates_nothing_and_diff_shows_the_endpoint(playbook, gateway):
    run = playbook("create_endpoint.yml", check=True, diff=True, extra=dict(FAST, endpoint=body(name="check-mode-ep")))
    assert run.rc == 0 and run.changed == 1, run
    assert "+    storage: 50Gi" in run.stdout and "+    name: check-mode-ep" in run.stdout
    assert gateway.get("/v1/llm/model-endpoints/check-mode-ep").status == 404


def test_update_puts_only_the_difference_and_diff_shows_it(playbook, gateway):
    assert playbook("create_endpoint.yml", extra=dict(FAST, endpoint=body(name="upd-ep"))).rc == 0
    before = gateway.get("/v1/llm/model-endpoints/upd-ep").json()
    run = playbook("create_endpoint.yml", diff=True, extra=dict(FAST, endpoint=body(name="upd-ep", max_workers=2,
                                                                                       labels={"team": "test", "product": "chat"})))
    assert run.rc == 0 and run.changed == 1, run
    assert "-    max_workers: 1" in run.stdout and "+    max_workers: 2" in run.stdout
    after = gateway.get("/v1/llm/model-endpoints/upd-ep").json()
    assert after["spec"]["deployment_state"]["max_workers"] == 2 and after["spec"]["labels"]["product"] == "chat"
    assert after["id"] == before["id"]
    assert playbook("create_endpoint.yml", extra=dict(FAST, endpoint=body(name="upd-ep", max_workers=2,
                                                                          labels={"team": "test", "product": "chat"}))).changed == 0


def test_engine_argument_change_forces_a_new_bundle(playbook, gateway):
    assert playbook("create_endpoint.yml", extra=dict(FAST, endpoint=body(name="args-ep"))).rc == 0
    run = playbook("create_endpoint.yml", extra=dict(FAST, endpoint=body(name="args-ep", vllm_args={"max_model_len": 4096})))
    assert run.rc == 0 and run.changed == 1, run
    ep = gateway.get("/v1/llm/model-endpoints/args-ep").json()
    assert ep["spec"]["metadata"]["_llm"]["vllm_additional_args"] == {"max_model_len": 4096}
    again = playbook("create_endpoint.yml", extra=dict(FAST, endpoint=body(name="args-ep", vllm_args={"max_model_len": 4096})))
    assert again.changed == 0, again


def test_invalid_definition_fails_before_any_call(playbook, gateway):
    run = playbook("create_endpoint.yml", extra=dict(FAST, llm_endpoint_preflight=False,
                                                      endpoint=body(name="bad-ep", endpoint_type="sync", num_shards=2)))
    assert run.rc != 0
    assert "endpoint_type: must be 'streaming'" in run.stdout and "num_shards: must equal gpus" in run.stdout
    assert "bad-ep" not in endpoint_names(gateway)


def test_preflight_stops_a_storage_request_over_policy(playbook, gateway):
    run = playbook("create_endpoint.yml", extra=dict(FAST, endpoint=body(name="big-ep", storage="100Gi")))
    assert run.rc != 0
    assert "storage 100Gi exceeds the 50Gi policy for nvidia-tesla-t4" in run.stdout
    assert "big-ep" not in endpoint_names(gateway)


def test_api_errors_mid_create_never_duplicate(playbook, gateway, odp_twin):
    odp_twin.faults.add("api_error", route=r"^POST /v1/llm/model-endpoints$", status=503, count=2)
    odp_twin.faults.add("api_error", route=r"^GET /v1/llm/model-endpoints/retry-ep$", status=429, count=1)
    run = playbook("create_endpoint.yml", extra=dict(FAST, endpoint=body(name="retry-ep")))
    assert run.rc == 0, run
    assert endpoint_names(gateway).count("retry-ep") == 1
    records = [r for r in odp_twin.engine.records.values() if r["name"] == "retry-ep"]
    assert len(records) == 1


def test_stuck_update_pending_is_reported(playbook, gateway, odp_twin):
    odp_twin.faults.add("builder_stalled", "stuck-ep")
    run = playbook("create_endpoint.yml", extra=dict(FAST, llm_endpoint_pending_timeout=3, endpoint=body(name="stuck-ep")))
    assert run.rc != 0
    text = " ".join(run.stdout.split())
    assert "UPDATE_PENDING for" in text and "no builder takes the task" in text and "celery_broker_type_redis" in text


def test_status_playbook_lists_endpoints(playbook, gateway):
    assert playbook("create_endpoint.yml", extra=dict(FAST, endpoint=body(name="status-ep"))).rc == 0
    run = playbook("endpoint_status.yml")
    assert run.rc == 0, run
    assert "status-ep (owner test-user-id): READY, 1 worker(s) available, serving" in run.stdout
    assert "model-engine: registry.odp.om/odp-development/oman-national-llm/model-engine:onprem20" in run.stdout
    assert json.dumps("status-ep") in json.dumps(endpoint_names(gateway))


def test_update_failed_is_reported_at_once_with_the_reason(module, gateway):
    r = gateway.post("/v1/llm/model-endpoints", body(name="Broken.Name."))
    assert r.status == 200, r
    gateway.wait("Broken.Name.", lambda e: e["status"] == "UPDATE_FAILED", timeout=30)
    snap = module("llm_endpoint_progress", name="Broken.Name.")
    assert snap["state"] == "failed" and snap["cause"] == "update_failed" and snap["outcome"] == "fail"
    assert snap["verdict"]["summary"].startswith("The endpoint build failed: ") and "no status_reason" not in snap["verdict"]["summary"]
    # the wait gives up at once rather than at the deadline
    waited = module("llm_endpoint_progress", name="Broken.Name.", wait=True, wait_sleep=1)
    assert waited["failed"] is True and waited["failure"] == "update_failed" and waited["elapsed"] < 5
    # the module refuses the name before any call, naming the rule
    res = module("llm_endpoint", name="Broken.Name.", state="absent")
    assert res.get("failed") is not True  # absent needs no validation: it deletes what exists
    assert gateway.get("/v1/llm/model-endpoints/Broken.Name.").status == 404


def test_endpoint_given_as_json_text_like_an_awx_survey_answer(playbook, gateway):
    run = playbook("create_endpoint.yml", extra=dict(FAST, endpoint=json.dumps(body(name="survey-ep"))))
    assert run.rc == 0, run
    assert gateway.get("/v1/llm/model-endpoints/survey-ep").json()["status"] == "READY"


def test_invalid_role_input_fails_at_the_start_with_the_spec_message(playbook, gateway):
    run = playbook("create_endpoint.yml", extra=dict(FAST, endpoint=body(name="spec-ep"), llm_endpoint_state="gone"))
    assert run.rc != 0
    assert "Validating arguments against arg spec" in run.stdout and "llm_endpoint_state" in run.stdout
    assert "value of llm_endpoint_state must be one of: present, absent" in " ".join(run.stdout.split())
    assert "spec-ep" not in endpoint_names(gateway)
