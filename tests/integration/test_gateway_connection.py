"""Issue 15, item 1: the gateway reached through the Kubernetes API (connection: kubernetes), as the runbook's
`kubectl port-forward svc/model-engine -n llm-core 5000:80` does, with no model_engine_url to the gateway.

The direct URL is set to a port nothing listens on, so anything that still used it would fail.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from tests.integration.conftest import kubectl
from tests.twin.tests.conftest_platform import RUNBOOK_BODY

THROUGH_K8S = {"model_engine_connection": "kubernetes", "model_engine_url": "http://127.0.0.1:9"}
FAST = {"llm_endpoint_progress_interval": 1}


def test_modules_reach_the_gateway_through_the_kubernetes_api(module, gateway):
    assert gateway.post("/v1/llm/model-endpoints", dict(copy.deepcopy(RUNBOOK_BODY), name="k8s-conn")).status == 200
    res = module("llm_endpoint_info", connection="kubernetes", url="http://127.0.0.1:9", name="k8s-conn",
                 kubeconfig=module.vars["k8s_kubeconfig"])
    assert res.get("failed") is not True, res.get("msg")
    assert [e["name"] for e in res["endpoints"]] == ["k8s-conn"]
    ready = module("gateway_info", connection="kubernetes", kubeconfig=module.vars["k8s_kubeconfig"])
    assert ready["ready"] is True and ready["status"] == 200


def test_a_gateway_with_no_ready_pod_says_so(module, odp_twin):
    kubectl(odp_twin, "scale", "deployment/model-engine", "--replicas=0")
    try:
        deadline = time.monotonic() + 30
        res = None
        while time.monotonic() < deadline:
            res = module("llm_endpoint_info", connection="kubernetes", kubeconfig=module.vars["k8s_kubeconfig"])
            if res.get("failed"):
                break
            time.sleep(0.5)
        assert res["failed"] is True
        assert 'no endpoints available for service "model-engine"' in res["msg"] and "gateway is down" in res["msg"], res["msg"]
        waited = module("gateway_info", connection="kubernetes", kubeconfig=module.vars["k8s_kubeconfig"], wait=True, wait_timeout=3,
                        wait_sleep=1)
        assert waited["failed"] is True and "did not become ready" in waited["msg"] and "no endpoints available" in waited["msg"]
    finally:
        kubectl(odp_twin, "scale", "deployment/model-engine", "--replicas=1")
        kubectl(odp_twin, "rollout", "status", "deployment/model-engine", "--timeout=60s")


# The same flows with connection: url are every other integration test's (test_endpoint_lifecycle, test_sync_and_readiness).
def test_main_flows_through_the_kubernetes_api(playbook, gateway):
    extra = dict(FAST, **THROUGH_K8S)
    name = "conn-kub"
    body = dict(json.loads((Path(__file__).resolve().parents[2] / "playbooks/vars/test-endpoint-v1.json").read_text()), name=name)
    create = playbook("create_endpoint.yml", extra=dict(extra, endpoint=body))
    assert create.rc == 0, create
    assert gateway.get("/v1/llm/model-endpoints/%s" % name).json()["status"] == "READY"
    again = playbook("create_endpoint.yml", extra=dict(extra, endpoint=body))
    assert again.rc == 0 and again.changed == 0, again
    verify = playbook("verify_endpoint.yml", extra=dict(extra, endpoint_name=name, verify_mode="quick"))
    assert verify.rc == 0, verify
    assert "completion" in verify.stdout
    status = playbook("endpoint_status.yml", extra=extra)
    assert status.rc == 0 and "%s (owner test-user-id): READY" % name in status.stdout, status


def test_deploy_revert_and_site_through_the_kubernetes_api(playbook, gateway, odp_twin):
    deploy = playbook("deploy_model_engine.yml", extra=dict(THROUGH_K8S, model_engine_tag="onprem19"))
    assert deploy.rc == 0, deploy
    revert = playbook("revert.yml", extra=dict(THROUGH_K8S, model_engine_revert_tag="onprem20"))
    assert revert.rc == 0, revert
    site = playbook("site.yml", extra=dict(THROUGH_K8S, **FAST))
    assert site.rc == 0, site
    assert gateway.get("/v1/llm/model-endpoints/test-endpoint-v1").json()["status"] == "READY"
