"""Issue 8: every fault of the twin maps to its diagnosis (one case per cause, plus healthy)."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import create_endpoint

VLLM = "registry.odp.om/odp-development/oman-national-llm/vllm:"


def settle(gateway, odp_twin, name, predicate, timeout=60):
    """Wait until one of the endpoint's pods satisfies ``predicate`` (evicted pods are replaced, so the
    one that shows the fault is not always the newest)."""
    deadline = time.monotonic() + timeout
    pods = []
    while time.monotonic() < deadline:
        pods = odp_twin.call(odp_twin.kube.list_pods(odp_twin.config.endpoint_namespace, "endpoint_name=%s" % name))
        if any(predicate(p) for p in pods):
            return
        time.sleep(0.2)
    raise AssertionError("pods of %s never reached the state; last phases: %s" % (name, [p["status"].get("phase") for p in pods]))


def main_state(pod):
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        if cs["name"] == "main":
            return cs
    return {}


def crashed(pod):
    cs = main_state(pod)
    return cs.get("restartCount", 0) >= 1 or "terminated" in cs.get("state", {}) or pod["status"].get("phase") == "Failed"


def running_main(pod):
    return "running" in main_state(pod).get("state", {})


def setup_healthy(gw, tw):
    create_endpoint(gw, "dx-healthy")
    return "dx-healthy", {}


def setup_storage(gw, tw):
    tw.faults.add("storage_exceeded", "dx-storage", declared_size_multiplier=1e6)
    tw.faults.add("download_rate", "dx-storage", bytes_per_second=100_000)  # evicted mid-download, as for real
    create_endpoint(gw, "dx-storage", wait=False)
    settle(gw, tw, "dx-storage", lambda p: p["status"].get("reason") == "Evicted" or crashed(p))
    return "dx-storage", {}


def setup_slow_install(gw, tw):
    tw.faults.add("download_form", "dx-install", tool="awscli", wait_guard=True)
    tw.faults.add("slow_tool_install", "dx-install", seconds=120)
    create_endpoint(gw, "dx-install", wait=False)
    settle(gw, tw, "dx-install", running_main)
    time.sleep(1.5)
    return "dx-install", {"install_timeout": 1}


def setup_arch(gw, tw):
    create_endpoint(gw, "dx-arch", wait=False, inference_framework_image_tag="0.6.3-rc1")
    settle(gw, tw, "dx-arch", crashed)
    return "dx-arch", {}


def setup_s3_auth(gw, tw):
    tw.faults.add("s3_credentials_rejected", "dx-auth")
    create_endpoint(gw, "dx-auth", wait=False)
    settle(gw, tw, "dx-auth", crashed)
    return "dx-auth", {}


def setup_premature(gw, tw):
    tw.faults.add("download_form", "dx-early", tool="awscli", wait_guard=False)
    tw.faults.add("download_rate", "dx-early", bytes_per_second=50_000)
    create_endpoint(gw, "dx-early", wait=False)
    settle(gw, tw, "dx-early", crashed)
    return "dx-early", {}


def setup_stuck(gw, tw):
    tw.faults.add("builder_stalled", "dx-stuck")
    create_endpoint(gw, "dx-stuck", wait=False)
    time.sleep(1.5)
    return "dx-stuck", {"pending_timeout": 1}


def setup_image_missing_on_create(gw, tw):
    r = gw.post("/v1/llm/model-endpoints", dict(create_body("dx-noimage"), inference_framework_image_tag="does-not-exist"))
    assert r.status == 404, r
    return "dx-noimage", {"api_error": r.json()["detail"]}


def setup_no_gpu(gw, tw):
    create_endpoint(gw, "dx-gpu", wait=False, gpus=4, num_shards=4)
    settle(gw, tw, "dx-gpu", lambda p: p["status"].get("phase") == "Pending" and p["status"].get("conditions"))
    return "dx-gpu", {}


def setup_no_storage(gw, tw):
    create_endpoint(gw, "dx-disk", wait=False, storage="300Gi")
    settle(gw, tw, "dx-disk", lambda p: p["status"].get("phase") == "Pending" and p["status"].get("conditions"))
    return "dx-disk", {}


def setup_image_pull(gw, tw):
    ep = create_endpoint(gw, "dx-pull")
    tw.registry.remove(VLLM + "vllm-onprem")  # deleted from the registry after the endpoint was built
    assert gw.post("/v1/model-endpoints/%s/restart" % ep["id"]).status == 200
    settle(gw, tw, "dx-pull", lambda p: main_state(p).get("state", {}).get("waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff"))
    return "dx-pull", {}


def setup_stall(gw, tw):
    tw.faults.add("download_stall", "dx-stall", after_bytes=200_000)
    create_endpoint(gw, "dx-stall", wait=False)
    settle(gw, tw, "dx-stall", running_main)
    time.sleep(1)
    return "dx-stall", {"stall_sample_seconds": 1.5}


def setup_update_failed(gw, tw):
    # The API accepts the name; Kubernetes rejects it as a label value, so the build fails.
    r = gw.post("/v1/llm/model-endpoints", dict(create_body("x"), name="Bad.Name."))
    assert r.status == 200, r
    gw.created.append("Bad.Name.")
    gw.wait("Bad.Name.", lambda e: e["status"] == "UPDATE_FAILED", timeout=30)
    return "Bad.Name.", {}


def create_body(name):
    import copy

    from tests.twin.tests.conftest_platform import RUNBOOK_BODY

    return dict(copy.deepcopy(RUNBOOK_BODY), name=name)


CASES = [
    ("healthy", setup_healthy),
    ("storage_exceeded", setup_storage),
    ("slow_tool_install", setup_slow_install),
    ("unsupported_architecture", setup_arch),
    ("download_failed", setup_s3_auth),
    ("premature_start", setup_premature),
    ("stuck_pending", setup_stuck),
    ("update_failed", setup_update_failed),
    ("image_not_found_on_create", setup_image_missing_on_create),
    ("unschedulable_gpu", setup_no_gpu),
    ("unschedulable_storage", setup_no_storage),
    ("image_pull", setup_image_pull),
    ("download_stalled", setup_stall),
]


@pytest.mark.parametrize("cause, setup", CASES, ids=[c for c, _ in CASES])
def test_each_fault_maps_to_its_diagnosis(module, gateway, odp_twin, cause, setup):
    try:
        name, extra = setup(gateway, odp_twin)
        args = dict({"stall_sample_seconds": 0}, **extra)
        res = module("endpoint_diagnose", name=name, **args)
    finally:
        odp_twin.registry.add(VLLM + "vllm-onprem")
    assert res.get("failed") is not True, res.get("msg")
    assert res["cause"] == cause, (res["cause"], res["summary"], res["evidence"])
    assert res["summary"] and res["fix"] and res["evidence"]


def test_playbook_prints_the_diagnosis_and_fails_for_a_broken_endpoint(playbook, gateway, odp_twin):
    create_endpoint(gateway, "dx-play", wait=False, inference_framework_image_tag="0.6.3-rc1")
    settle(gateway, odp_twin, "dx-play", crashed)
    run = playbook("diagnose_endpoint.yml", extra={"endpoint_name": "dx-play"})
    assert run.rc != 0, run
    assert "UNSUPPORTED_ARCHITECTURE" in run.stdout and "Fix: The vLLM image does not support" in run.stdout
    assert "are not supported" in run.stdout
