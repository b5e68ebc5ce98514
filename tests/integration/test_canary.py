"""Issue 18 on the twin: the canary endpoint a deploy builds before it records last-known-good, and forwarder drift.

The twin's onprem22 and onprem23 have a healthy control plane (rollout and /readyz pass) and an endpoint builder
that writes broken endpoint pods: only an endpoint built after the update (the canary) can catch them.
"""

from __future__ import annotations

import json

from tests.integration.conftest import create_endpoint
from tests.integration.test_deploy import REPO_IMG, images, kubectl, lkg, pod_images, resource_versions

CANARY_TASK = "Follow the canary with the judge and check what the new builder wrote"


def flat(run):
    return " ".join(run.stdout.split())


def task_results(run, name):
    """The runner events (ok / failed / skipped) of the tasks named ``name``."""
    return [ev["event"] for ev in run.events if ev.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_skipped")
            and (ev.get("event_data") or {}).get("task", "").endswith(name)]


def canaries(odp_twin):
    return sorted(r["name"] for r in odp_twin.engine.records.values() if r["name"].startswith("canary-"))


def test_onprem22_passes_rollout_and_readyz_but_its_canary_fails_with_premature_start(playbook, odp_twin, control_plane, gateway):
    assert playbook("deploy_model_engine.yml").rc == 0
    run = playbook("deploy_model_engine.yml", extra={"model_engine_tag": "onprem22"})
    text = flat(run)
    assert run.rc != 0
    assert task_results(run, "Wait for both rollouts and check every running pod's image")[0] == "runner_on_ok"
    assert task_results(run, "Smoke-check the gateway (/readyz)")[0] == "runner_on_ok"
    assert task_results(run, CANARY_TASK) == ["runner_on_failed"]
    assert ('failed at "%s": canary-onprem22: PREMATURE_START: vLLM started before the model download finished. Evidence: ' % CANARY_TASK) in text
    assert "No config format found" in text and "the main command has no wait loop before starting vLLM" in text
    assert "Fix: Add the wait guard" in text
    assert "Reverted to the last-known-good %sonprem20 (verified)" % REPO_IMG in text and "The last-known-good record was not changed" in text
    assert images(odp_twin) == pod_images(odp_twin) == [REPO_IMG + "onprem20"]
    assert lkg(odp_twin)["model_engine_tag"] == "onprem20"
    assert canaries(odp_twin) == []            # deleted before the revert


def test_onprem23_builds_without_ephemeral_storage_and_its_canary_says_so(playbook, odp_twin, control_plane, gateway):
    assert playbook("deploy_model_engine.yml").rc == 0
    # serve depth: on the twin's ~1 MB model the pod even serves; only the build check sees the missing storage
    run = playbook("deploy_model_engine.yml", extra={"model_engine_tag": "onprem23", "model_engine_canary": {
        "enabled": True, "depth": "serve", "settle_seconds": 3, "wait_sleep": 1, "wait_timeout": 300}})
    text = flat(run)
    assert run.rc != 0
    assert ("canary-onprem23: NO_STORAGE_REQUEST: The main container lacks the endpoint's ephemeral-storage request or limit "
            "(expected requests and limits ephemeral-storage 50Gi, found requests none, limits none)") in text
    assert "Reverted to the last-known-good %sonprem20 (verified)" % REPO_IMG in text
    assert images(odp_twin) == [REPO_IMG + "onprem20"] and lkg(odp_twin)["model_engine_tag"] == "onprem20"
    assert canaries(odp_twin) == []


def test_a_good_tag_passes_its_serve_canary_and_is_recorded_with_it(playbook, odp_twin, control_plane, gateway):
    first = playbook("deploy_model_engine.yml", extra={"model_engine_tag": "onprem19"})   # build depth (the local inventory's)
    assert first.rc == 0, first
    assert lkg(odp_twin)["canary"]["depth"] == "build"
    run = playbook("deploy_model_engine.yml", extra={"model_engine_canary": {
        "enabled": True, "depth": "serve", "settle_seconds": 3, "wait_sleep": 1, "wait_timeout": 300}})
    assert run.rc == 0, run
    assert task_results(run, "Create the canary endpoint canary-onprem20") == ["runner_on_ok"]
    assert task_results(run, "Ask the canary's vLLM for a completion through the gateway and the new forwarder (serve depth)") == ["runner_on_ok"]
    record = lkg(odp_twin)
    assert record["model_engine_tag"] == "onprem20"
    assert record["canary"]["name"] == "canary-onprem20" and record["canary"]["depth"] == "serve"
    assert record["canary"]["verdict"].startswith("canary-onprem20 serves (READY; 1 pod(s) ready); 4 check(s) passed")
    assert record["canary"]["completion"]      # vLLM's answer through the gateway and the onprem20 forwarder
    assert canaries(odp_twin) == []
    again = playbook("deploy_model_engine.yml")   # recorded: no canary, nothing changes
    assert again.rc == 0 and again.changed == 0 and task_results(again, CANARY_TASK) == []


def test_a_canary_that_cannot_be_scheduled_refuses_the_deploy_before_any_change(playbook, odp_twin, control_plane, gateway):
    assert playbook("deploy_model_engine.yml").rc == 0
    create_endpoint(gateway, "gpu-holder-1")
    create_endpoint(gateway, "gpu-holder-2")      # the twin's two T4s are taken
    before, record = resource_versions(odp_twin), lkg(odp_twin)
    run = playbook("deploy_model_engine.yml", extra={"model_engine_tag": "onprem19"})
    text = flat(run)
    assert run.rc != 0
    assert "The canary endpoint canary-onprem19 could not be built after the update, so %sonprem19 is not deployed: no nvidia-tesla-t4 node" % REPO_IMG in text
    assert "1 free nvidia.com/gpu" in text and "Nothing was changed" in text
    assert resource_versions(odp_twin) == before and lkg(odp_twin) == record and canaries(odp_twin) == []


def forwarders(odp_twin, name):
    """http-forwarder image of the endpoint's Deployment template and of each of its running pods."""
    dep = json.loads(kubectl(odp_twin, "get", "deploy", "-l", "endpoint_name=%s" % name, "-o", "json"))["items"][0]
    template = [c["image"] for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "http-forwarder"]
    pods = json.loads(kubectl(odp_twin, "get", "pods", "-l", "endpoint_name=%s" % name, "--field-selector=status.phase=Running", "-o", "json"))
    return template + sorted({c["image"] for p in pods["items"] for c in p["spec"]["containers"] if c["name"] == "http-forwarder"})


def test_drift_is_reported_and_rebuilt_one_at_a_time_idempotently(playbook, odp_twin, control_plane, gateway, tmp_path):
    assert playbook("deploy_model_engine.yml").rc == 0
    create_endpoint(gateway, "drift-a")                                     # built by onprem20
    assert playbook("deploy_model_engine.yml", extra={"model_engine_tag": "onprem19"}).rc == 0
    assert forwarders(odp_twin, "drift-a") == [REPO_IMG + "onprem20"] * 2  # it keeps the forwarder of its builder

    status = flat(playbook("endpoint_status.yml"))
    assert "drift-a (owner test-user-id): READY, 1 worker(s) available, serving, forwarder onprem20 (DRIFTED)" in status
    assert "Forwarder drift (control plane onprem19): 1 of 1 endpoint(s) built by an older control plane:" in status
    assert "drift-a: forwarder onprem20, control plane onprem19" in status
    assert playbook("environment_report.yml", extra={"report_dir": str(tmp_path)}).rc == 0
    report = (tmp_path / "environment-local.md").read_text()
    assert "1 of 1 endpoint(s) run the `http-forwarder` of an older control plane (now `onprem19`)" in report
    assert "| drift-a | onprem20 | onprem19 | test-user-id |" in report

    check = playbook("rebuild_drifted_endpoints.yml", check=True)
    assert check.rc == 0, check
    assert "Would rebuild 1 endpoint(s), one at a time: drift-a (forwarder onprem20 -> onprem19)." in flat(check)
    assert forwarders(odp_twin, "drift-a") == [REPO_IMG + "onprem20"] * 2  # check mode rebuilt nothing

    run = playbook("rebuild_drifted_endpoints.yml")
    assert run.rc == 0, run
    assert task_results(run, "Verify that the new pods serve with the control plane's forwarder tag onprem19") == ["runner_on_ok"]
    assert forwarders(odp_twin, "drift-a") == [REPO_IMG + "onprem19"] * 2
    ep = gateway.get("/v1/llm/model-endpoints/drift-a").json()
    assert ep["status"] == "READY" and ep["spec"]["deployment_state"]["available_workers"] == 1

    again = playbook("rebuild_drifted_endpoints.yml")
    assert again.rc == 0 and again.changed == 0, again
    assert "Nothing to rebuild: every endpoint runs the forwarder tag of the endpoint builder %sonprem19." % REPO_IMG in flat(again)
    assert "forwarder onprem19 (DRIFTED)" not in flat(playbook("endpoint_status.yml"))
