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


LKG = "model-engine-last-known-good"
_FIRST_RECORD = {}  # per twin (one per pytest-xdist worker): the record its first deploy of onprem20 wrote


def recorded_onprem20(odp_twin, playbook):
    """The record a deploy of onprem20 from no record writes (its canary built and checked): that first deploy runs
    once per twin, here; every later test starts from its record put back, so a test's own first deploy of onprem20
    is the re-run an operator makes (nothing due, no canary) instead of a whole first deploy (a CI budget)."""
    import tempfile

    kubectl(odp_twin, "delete", "cm", LKG, "--ignore-not-found")
    if id(odp_twin) not in _FIRST_RECORD:
        first = playbook("deploy_model_engine.yml")
        assert first.rc == 0, first
        cm = json.loads(kubectl(odp_twin, "get", "cm", LKG, "-o", "json"))
        assert json.loads(cm["data"]["current"])["canary"]["verdict"], cm  # the first deploy proved its builder
        _FIRST_RECORD[id(odp_twin)] = {"apiVersion": "v1", "kind": "ConfigMap", "data": cm["data"],
                                       "metadata": {"name": LKG, "labels": cm["metadata"].get("labels") or {}}}
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(_FIRST_RECORD[id(odp_twin)], f)
        f.flush()
        kubectl(odp_twin, "create", "-f", f.name)


def leave_onprem20_without_record(odp_twin, playbook):
    odp_twin.faults.clear()
    if not at_onprem20(odp_twin):  # what revert.yml would leave; a test that ended there saves the run (CI budget)
        assert playbook("revert.yml", extra={"model_engine_revert_tag": "onprem20"}).rc == 0
    kubectl(odp_twin, "delete", "cm", LKG, "--ignore-not-found")


def at_onprem20(odp_twin):
    """Both control-plane Deployments on onprem20, rolled out (no other pod running), and the vLLM tag new endpoints
    get is the twin's default."""
    from tests.twin.platform.config import LATEST_TAGS
    from tests.twin.platform.service import LATEST_CM

    rolled = kubectl(odp_twin, "get", "deploy", "model-engine", "model-engine-endpoint-builder", "-o",
                     "jsonpath={range .items[*]}{.status.updatedReplicas}/{.status.replicas}/{.status.availableReplicas}/"
                     "{.spec.replicas}{'\\n'}{end}").split()
    vllm = kubectl(odp_twin, "get", "cm", LATEST_CM, "-o", "jsonpath={.data.vllm}")
    return (images(odp_twin) == pod_images(odp_twin) == [REPO_IMG + "onprem20"] and vllm == LATEST_TAGS["vllm"]
            and all(len(set(r.split("/"))) == 1 for r in rolled))


# helm only (a CI budget): the image method's deploy, record and idempotence are test_site's and the canary tests'
# (the image method is the inventories' default), its check mode test_check_mode_reports_the_canary_and_changes_nothing.
@pytest.mark.parametrize("method", ["helm"])
def test_deploy_new_tag_is_verified_recorded_and_idempotent(playbook, odp_twin, fresh_control_plane, method):
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


# Each failure signal once, each method once (a CI budget: every variant costs a minute).
@pytest.mark.parametrize("method, tag, signal", [("image", "onprem21", "CrashLoopBackOff"), ("helm", "onprem99", "ImagePull")])
def test_failed_rollout_reverts_automatically_and_keeps_the_record(playbook, odp_twin, control_plane, method, tag, signal):
    assert playbook("deploy_model_engine.yml", extra={"model_engine_deploy_method": method}).rc == 0
    # onprem99 is not in the registry: with the pre-check off, the rollout itself fails (ImagePull) and is reverted
    run = playbook("deploy_model_engine.yml", extra={"model_engine_tag": tag, "model_engine_deploy_method": method,
                                                     "model_engine_deploy_registry_check": False})
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


def test_revert_without_record_or_tag_says_what_to_do(playbook, odp_twin, fresh_control_plane):
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


def resource_versions(odp_twin):
    """resourceVersion of both control-plane Deployments and of the latest-tag ConfigMap (real kubectl)."""
    out = kubectl(odp_twin, "get", "deploy/model-engine", "deploy/model-engine-endpoint-builder", "cm/model-engine-inference-framework-latest-config",
                  "-o", "jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}{'\\n'}{end}")
    versions = dict(line.split("=", 1) for line in out.split())
    assert len(versions) == 3, out
    return versions


# The registry check runs before the method's first change; helm is the method with more to leave untouched (the
# release, its revision). The image method's refusal is in test_fleet (a refused deploy stops the endpoint plays).
@pytest.mark.parametrize("method", ["helm"])
def test_a_tag_missing_from_the_registry_is_refused_before_any_change(playbook, odp_twin, control_plane, registry_url, method):
    assert playbook("deploy_model_engine.yml", extra={"model_engine_deploy_method": method}).rc == 0
    before, record = resource_versions(odp_twin), lkg(odp_twin)
    run = playbook("deploy_model_engine.yml", extra={"model_engine_tag": "onprem99", "model_engine_deploy_method": method})
    text = " ".join(run.stdout.split())
    assert run.rc != 0
    assert ("Refusing to deploy %sonprem99 (vLLM vllm-onprem): 1 image(s) not in the registry: %sonprem99 (HTTP 404 MANIFEST_UNKNOWN: "
            "manifest unknown (Tag=onprem99) at %s)" % (REPO_IMG, REPO_IMG, registry_url)) in text
    assert "Nothing was changed" in text and "Reverted" not in text and run.recap["changed"] == 0
    assert resource_versions(odp_twin) == before and lkg(odp_twin) == record
    assert images(odp_twin) == [REPO_IMG + "onprem20"]


def test_a_vllm_tag_missing_from_the_registry_is_refused_and_check_mode_asks_too(playbook, odp_twin, control_plane, registry_url):
    assert playbook("deploy_model_engine.yml").rc == 0
    before = resource_versions(odp_twin)
    vllm = "registry.odp.om/odp-development/oman-national-llm/vllm:0.99.0"
    for check in (True, False):   # the registry check is read-only, so --check runs it and fails the same way
        run = playbook("deploy_model_engine.yml", check=check, extra={"model_engine_tag": "onprem19", "vllm_tag": "0.99.0"})
        assert run.rc != 0 and "%s (HTTP 404 MANIFEST_UNKNOWN: manifest unknown (Tag=0.99.0) at %s)" % (vllm, registry_url) in " ".join(run.stdout.split())
        assert resource_versions(odp_twin) == before


def test_check_mode_reports_the_canary_and_changes_nothing(playbook, odp_twin, control_plane, gateway):
    assert playbook("deploy_model_engine.yml").rc == 0
    before, record, endpoints = resource_versions(odp_twin), lkg(odp_twin), set(odp_twin.engine.records)
    run = playbook("deploy_model_engine.yml", check=True, extra={"model_engine_tag": "onprem19"})
    text = " ".join(run.stdout.split())
    assert run.rc == 0, run
    assert ("Would create canary canary-onprem19 with the onprem19 builder, follow it to depth build, check forwarder onprem19, "
            "vLLM vllm-onprem, the wait-for-files guard and storage 50Gi, then delete it.") in text
    assert resource_versions(odp_twin) == before and lkg(odp_twin) == record
    assert set(odp_twin.engine.records) == endpoints   # no canary was created


@pytest.fixture
def registry_url(twin_vars):
    import yaml

    return yaml.safe_load(twin_vars.read_text())["model_engine_registry_url"]
