"""Control-plane faults: builder not consuming, image missing, gateway without a healthy replica, API errors."""

from __future__ import annotations

import time

import pytest

from tests.twin.platform.config import MODEL_ENGINE_IMAGE, REGISTRY, VLLM_REPO
from tests.twin.tests.test_e2e_runbook import NS, wait_for

pytestmark = pytest.mark.twin
CREATE = "/v1/llm/model-endpoints"


def test_builder_fault_keeps_endpoint_update_pending(me, runbook_body, odp_twin):
    r = me.post("/_twin/faults", {"fault": "builder_stalled", "endpoint": runbook_body["name"]})
    assert r.status == 200
    assert me.create(runbook_body).status == 200
    time.sleep(1.0)
    ep = me.endpoint(runbook_body["name"])
    assert ep["status"] == "UPDATE_PENDING"
    assert odp_twin.call(odp_twin.kube.list_pods(NS, f"endpoint_name={runbook_body['name']}")) == []
    me.delete("/_twin/faults?fault=builder_stalled")
    me.wait(runbook_body["name"], lambda e: e["status"] == "READY")


def test_builder_deployment_scaled_to_zero_stops_builds(me, runbook_body, odp_twin, twin_kubectl):
    twin_kubectl("scale", "deployment/model-engine-endpoint-builder", "-n", NS, "--replicas=0")
    try:
        wait_for(lambda: not odp_twin.builder_ready(), what="builder gone")
        assert me.create(runbook_body).status == 200
        time.sleep(1.0)
        assert me.endpoint(runbook_body["name"])["status"] == "UPDATE_PENDING"
    finally:
        twin_kubectl("scale", "deployment/model-engine-endpoint-builder", "-n", NS, "--replicas=1")
    me.wait(runbook_body["name"], lambda e: e["status"] == "READY", timeout=30)


def test_forwarder_tag_follows_the_builder_deployment_image(me, runbook_body, odp_twin, twin_kubectl):
    new = MODEL_ENGINE_IMAGE.rsplit(":", 1)[0] + ":onprem19"
    twin_kubectl("set", "image", "deployment/model-engine-endpoint-builder", f"model-engine-endpoint-builder={new}",
            "-n", NS)
    try:
        twin_kubectl("rollout", "status", "deployment/model-engine-endpoint-builder", "-n", NS, "--timeout=30s")
        wait_for(odp_twin.builder_ready, what="builder ready")
        assert me.create(runbook_body).status == 200
        ep = me.wait(runbook_body["name"], lambda e: e["status"] == "READY")
        dep = odp_twin.call(odp_twin.kube.get("Deployment", "launch-endpoint-id-" + ep["id"].replace("_", "-"), NS))
        fwd = dep["spec"]["template"]["spec"]["containers"][0]
        assert fwd["name"] == "http-forwarder" and fwd["image"] == new
        assert dep["metadata"]["labels"]["tags.datadoghq.com/version"] == "onprem19"
    finally:
        twin_kubectl("set", "image", "deployment/model-engine-endpoint-builder",
                f"model-engine-endpoint-builder={MODEL_ENGINE_IMAGE}", "-n", NS)
        twin_kubectl("rollout", "status", "deployment/model-engine-endpoint-builder", "-n", NS, "--timeout=30s")


def test_image_missing_from_registry_is_404(me, runbook_body, odp_twin):
    image = f"{REGISTRY}/{VLLM_REPO}:vllm-onprem"
    odp_twin.registry.remove(image)
    try:
        r = me.post(CREATE, runbook_body)
        assert r.status == 404 and r.json() == {"detail": "The specified docker image could not be found."}
    finally:
        odp_twin.registry.add(image)
    assert me.create(runbook_body).status == 200


def test_gateway_readyz_follows_the_model_engine_deployment(me, odp_twin, twin_kubectl):
    assert me.get("/readyz").status == 200
    broken = MODEL_ENGINE_IMAGE.rsplit(":", 1)[0] + ":onprem21"
    twin_kubectl("set", "image", "deployment/model-engine", f"model-engine={broken}", "-n", NS)
    try:
        # A broken new image crash-loops; the old replica keeps serving (maxUnavailable rounds down to 0).
        def crashloop():
            out = twin_kubectl("get", "pods", "-n", NS, "-l", "app=model-engine", "--no-headers").stdout
            return "CrashLoopBackOff" in out or "Error" in out

        wait_for(crashloop, timeout=20, what="crash loop")
        assert me.get("/readyz").status == 200
        twin_kubectl("scale", "deployment/model-engine", "-n", NS, "--replicas=0")
        wait_for(lambda: me.get("/readyz").status == 503, timeout=20, what="readyz 503")
        r = me.get("/readyz")
        assert r.json() == {"detail": "model-engine gateway has no available replica running a known-good image"}
        twin_kubectl("scale", "deployment/model-engine", "-n", NS, "--replicas=1")
        time.sleep(1.0)
        assert me.get("/readyz").status == 503     # only the broken image runs now
    finally:
        twin_kubectl("set", "image", "deployment/model-engine", f"model-engine={MODEL_ENGINE_IMAGE}", "-n", NS)
        twin_kubectl("scale", "deployment/model-engine", "-n", NS, "--replicas=1")
    wait_for(lambda: me.get("/readyz").status == 200, timeout=30, what="readyz 200")
