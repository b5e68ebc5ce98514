"""Issue 7 on the twin: deploy a tag, idempotence, check mode, automatic revert, emergency revert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import kubectl as _kubectl


def kubectl(odp_twin, *args):
    return _kubectl(odp_twin, *args).stdout


REPO_IMG = "registry.odp.om/odp-development/oman-national-llm/model-engine:"


def images(odp_twin):
    out = kubectl(odp_twin, "get", "deploy", "model-engine", "model-engine-endpoint-builder",
                  "-o", "jsonpath={range .items[*]}{.spec.template.spec.containers[0].image}{'\\n'}{end}")
    return sorted(set(out.split()))


def pod_images(odp_twin):
    out = kubectl(odp_twin, "get", "pods", "-l", "app in (model-engine,model-engine-endpoint-builder)", "--field-selector=status.phase=Running",
                  "-o", "jsonpath={range .items[*]}{.status.containerStatuses[0].image}{'\\n'}{end}")
    return sorted(set(out.split()))


def lkg(odp_twin):
    raw = subprocess.run([str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(odp_twin.emulator.kubeconfig_path), "-n", "llm-core",
                          "get", "cm", "model-engine-last-known-good", "-o", "json"], capture_output=True, text=True, check=False)
    return json.loads(json.loads(raw.stdout)["data"]["current"]) if raw.returncode == 0 else None


@pytest.fixture
def control_plane(odp_twin, playbook):
    """Leave the control plane on onprem20 with a fresh record for the next test."""
    yield
    odp_twin.faults.clear()
    assert playbook("revert.yml", extra={"model_engine_revert_tag": "onprem20"}).rc == 0
    kubectl(odp_twin, "delete", "cm", "model-engine-last-known-good", "--ignore-not-found")


@pytest.mark.parametrize("method", ["image", "helm"])
def test_deploy_new_tag_is_verified_recorded_and_idempotent(playbook, odp_twin, control_plane, method):
    first = playbook("deploy_model_engine.yml", extra={"model_engine_deploy_method": method})
    assert first.rc == 0, first
    assert lkg(odp_twin)["model_engine_image"] == REPO_IMG + "onprem20"

    check = playbook("deploy_model_engine.yml", check=True, extra={"model_engine_tag": "onprem19", "model_engine_deploy_method": method})
    assert check.rc == 0 and check.changed >= 1, check
    assert images(odp_twin) == [REPO_IMG + "onprem20"]  # check mode changed nothing

    run = playbook("deploy_model_engine.yml", extra={"model_engine_tag": "onprem19", "model_engine_deploy_method": method})
    assert run.rc == 0 and run.changed >= 2, run
    assert images(odp_twin) == pod_images(odp_twin) == [REPO_IMG + "onprem19"]
    record = lkg(odp_twin)
    assert record["model_engine_tag"] == "onprem19" and record["vllm_tag"] == "vllm-onprem"
    assert record["revisions"]["model-engine"] and record["method"] == method
    if method == "helm":
        assert int(record["chart_revision"]) >= 2

    again = playbook("deploy_model_engine.yml", extra={"model_engine_tag": "onprem19", "model_engine_deploy_method": method})
    assert again.rc == 0 and again.changed == 0, again


@pytest.mark.parametrize("method, tag, signal", [("image", "onprem21", "CrashLoopBackOff"), ("image", "onprem99", "ImagePull"),
                                                 ("helm", "onprem99", "ImagePull")])
def test_failed_rollout_reverts_automatically_and_keeps_the_record(playbook, odp_twin, control_plane, method, tag, signal):
    assert playbook("deploy_model_engine.yml", extra={"model_engine_deploy_method": method}).rc == 0
    run = playbook("deploy_model_engine.yml", extra={"model_engine_tag": tag, "model_engine_deploy_method": method})
    assert run.rc != 0
    assert signal in run.stdout and "Reverted to the last-known-good %sonprem20 (verified)" % REPO_IMG in " ".join(run.stdout.split())
    assert images(odp_twin) == pod_images(odp_twin) == [REPO_IMG + "onprem20"]
    assert lkg(odp_twin)["model_engine_tag"] == "onprem20"


def test_failed_smoke_check_reverts(playbook, odp_twin, control_plane):
    assert playbook("deploy_model_engine.yml").rc == 0
    odp_twin.faults.add("api_error", route=r"^GET /readyz$", status=503, count=1000)
    run = playbook("deploy_model_engine.yml", extra={"model_engine_tag": "onprem19", "model_engine_deploy_smoke_retries": 2})
    assert run.rc != 0
    assert "Smoke-check the gateway" in run.stdout and "Reverted to the last-known-good" in run.stdout
    assert images(odp_twin) == [REPO_IMG + "onprem20"] and lkg(odp_twin)["model_engine_tag"] == "onprem20"


def test_emergency_revert_works_with_the_api_down(playbook, odp_twin, control_plane):
    assert playbook("deploy_model_engine.yml").rc == 0
    broken = playbook("deploy_model_engine.yml", extra={"model_engine_tag": "onprem21", "model_engine_deploy_auto_revert": False})
    assert broken.rc != 0 and "Automatic revert is off" in broken.stdout
    odp_twin.faults.add("api_error", route=".*", status=503, count=100000)  # the gateway answers nothing
    run = playbook("revert.yml")
    assert run.rc == 0, run
    assert images(odp_twin) == pod_images(odp_twin) == [REPO_IMG + "onprem20"]
    assert playbook("revert.yml").changed == 0


def test_revert_without_record_or_tag_says_what_to_do(playbook, odp_twin, control_plane):
    kubectl(odp_twin, "delete", "cm", "model-engine-last-known-good", "--ignore-not-found")
    run = playbook("revert.yml")
    assert run.rc != 0 and "pass -e model_engine_revert_tag=TAG" in run.stdout


def test_helm_upgrade_leaves_the_latest_tag_hook_so_the_role_patches_it(playbook, odp_twin, control_plane):
    run = playbook("deploy_model_engine.yml", extra={"model_engine_deploy_method": "helm", "vllm_tag": "0.10.1"})
    assert run.rc == 0, run
    tag = kubectl(odp_twin, "get", "cm", "model-engine-inference-framework-latest-config", "-o", "jsonpath={.data.vllm}")
    assert tag == "0.10.1" and lkg(odp_twin)["vllm_tag"] == "0.10.1"
    assert playbook("revert.yml", extra={"model_engine_revert_tag": "onprem20", "model_engine_revert_vllm_tag": "vllm-onprem"}).rc == 0
    assert kubectl(odp_twin, "get", "cm", "model-engine-inference-framework-latest-config", "-o", "jsonpath={.data.vllm}") == "vllm-onprem"
