"""Issue 17 on the twin: the PVC model cache enabled through deploy_model_engine.yml (helm method) downloads once, a
restarted pod serves from the claim without one GET for the shards ("cache hit" in the progress output), the
RWX-on-RBD setting fails in preflight before any change, a revert restores the recorded cache setting, and each known
failure of the cache ends in its named diagnosis with the fix."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.conftest import create_endpoint, kubectl, running_main, settle
from tests.twin.platform import model_cache as MC

BUCKET, PREFIX = "scale-gp-models", "intermediate-model-aws/"
CACHE = {"enabled": True, "storage": "100Gi", "storage_class": "cephfs", "access_mode": "ReadWriteMany",
         "mount_path": "/mnt/model-cache", "lock_stale_seconds": 600}
HELM = {"model_engine_deploy_method": "helm"}
ASYNC_BUG = "RuntimeWarning: coroutine '_get_recommended_hardware_config_map' was never awaited"
OFF = dict(CACHE, enabled=False)


def control_plane_env(odp_twin):
    out = {}
    for app in ("model-engine", "model-engine-endpoint-builder"):
        dep = json.loads(kubectl(odp_twin, "get", "deploy", app, "-o", "json").stdout)
        out[app] = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0].get("env") or []}
    return out


def lkg(odp_twin):
    proc = kubectl(odp_twin, "get", "cm", "-o", "json", "--ignore-not-found", "model-engine-last-known-good")
    return json.loads(json.loads(proc.stdout)["data"]["current"]) if proc.stdout.strip() else None


def shard_gets(odp_twin):
    return odp_twin.s3.object_gets(BUCKET, PREFIX, ".safetensors")


def pods_of(odp_twin, name):
    return odp_twin.call(odp_twin.kube.list_pods(odp_twin.config.endpoint_namespace, "endpoint_name=%s" % name))


@pytest.fixture
def helm_cache(playbook, odp_twin):
    """Leave the control plane as the other tests expect it: onprem20, the cache off, no record."""
    yield
    odp_twin.faults.clear()
    assert playbook("deploy_model_engine.yml", extra=dict(HELM, model_engine_model_cache=OFF)).rc == 0
    odp_twin.call(odp_twin.apply_model_cache(None))
    kubectl(odp_twin, "delete", "cm", "model-engine-last-known-good", "--ignore-not-found")


@pytest.fixture
def cache_on(odp_twin):
    """The control plane's model cache as the chart renders it (twin helper, faster than a helm upgrade per case)."""

    def apply(**values):
        odp_twin.call(odp_twin.apply_model_cache({"enabled": True, "storageClassName": "cephfs", **values}))

    yield apply
    odp_twin.faults.clear()
    odp_twin.call(odp_twin.apply_model_cache(None))
    for sc in ("vendor-sc", "local-now"):
        kubectl(odp_twin, "delete", "storageclass", sc, "--ignore-not-found")


def test_rwx_on_rbd_fails_in_preflight_before_any_change(playbook, odp_twin, helm_cache):
    before_env, before_record = control_plane_env(odp_twin), lkg(odp_twin)
    run = playbook("deploy_model_engine.yml", extra=dict(HELM, model_engine_model_cache=dict(CACHE, storage_class="ceph-rbd")))
    assert run.rc != 0, run
    text = " ".join(run.stdout.split())
    assert "Preflight the model cache before any change" in text and "never binds" in text
    assert "use a CephFS class (provisioner cephfs.csi.ceph.com) for ReadWriteMany, or access_mode: ReadWriteOnce with one replica" in text
    assert "Upgrade the model-engine Helm release" not in text and "Restore the last-known-good" not in text
    assert control_plane_env(odp_twin) == before_env and lkg(odp_twin) == before_record
    # the same setting with an RWO claim passes the preflight; the image method cannot render the cache at all
    image = playbook("deploy_model_engine.yml", extra={"model_engine_model_cache": CACHE})
    assert image.rc != 0 and "needs model_engine_deploy_method: helm" in " ".join(image.stdout.split())


def test_the_cache_through_the_helm_method_downloads_once_and_a_restart_is_a_cache_hit(playbook, odp_twin, gateway, module, helm_cache):
    run = playbook("deploy_model_engine.yml", extra=dict(HELM, model_engine_model_cache=CACHE))
    assert run.rc == 0, run
    env = control_plane_env(odp_twin)
    for app in env.values():
        assert (app["MODEL_CACHE_ENABLED"], app["MODEL_CACHE_MOUNT_PATH"], app["MODEL_CACHE_LOCK_STALE_SECONDS"]) == ("true", "/mnt/model-cache", "600")
    assert lkg(odp_twin)["model_cache"] == {"enabled": True, "storage": "100Gi", "storageClassName": "cephfs", "accessMode": "ReadWriteMany",
                                            "mountPath": "/mnt/model-cache", "lockStaleSeconds": 600}
    odp_twin.faults.add("download_rate", "mc-ep", bytes_per_second=500_000)
    before = shard_gets(odp_twin)
    t0 = time.monotonic()
    first = module("llm_endpoint", **dict(create_body("mc-ep"), wait=True, wait_sleep=0.5, wait_timeout=120))
    first_s = time.monotonic() - t0
    assert first.get("failed") is not True and first["state"] == "serving", first.get("msg")
    assert shard_gets(odp_twin) - before == 3
    rec = gateway.get("/v1/llm/model-endpoints/mc-ep").json()
    assert rec["spec"]["metadata"]["_llm"]["model_cache_enabled"] is True
    claim = rec["spec"]["deployment_name"] + "-model-cache"
    assert kubectl(odp_twin, "get", "pvc", claim, "-o", "jsonpath={.status.phase}").stdout == "Bound"

    verify = module("s3_sync_verify", checkpoint_path=rec["checkpoint_path"], endpoint_id=rec["id"], mode="deep")
    assert verify.get("failed") is not True and verify["complete"] is True, verify.get("msg")
    assert verify["checked"].endswith("folder /mnt/model-cache/model_files")
    assert verify["cache"]["complete"] and verify["cache"]["matches"] and not verify["cache"]["lock"] and verify["cache"]["claim"] == claim
    assert ".complete" not in verify["extra_files"]

    old = pods_of(odp_twin, "mc-ep")[0]["metadata"]["name"]
    kubectl(odp_twin, "delete", "pod", old)
    t1 = time.monotonic()
    progress = module("llm_endpoint_progress", name="mc-ep", wait=True, wait_sleep=0.2, wait_timeout=120)
    second_s = time.monotonic() - t1
    assert progress.get("failed") is not True and progress["state"] == "serving", progress.get("msg")
    assert "cache hit" in progress["line"] and "nothing was downloaded" in progress["line"], progress["line"]
    assert shard_gets(odp_twin) - before == 3        # the S3 server saw no GET for the shards
    assert second_s < first_s, (first_s, second_s)


def test_revert_restores_the_cache_setting_of_the_record(playbook, odp_twin, helm_cache):
    assert playbook("deploy_model_engine.yml", extra=dict(HELM, model_engine_model_cache=CACHE)).rc == 0
    # an upgrade that turns the cache off and breaks the gateway image: the automatic revert brings the cache back
    broken = playbook("deploy_model_engine.yml", extra=dict(HELM, model_engine_tag="onprem21", model_engine_model_cache=OFF))  # crash-loops
    assert broken.rc != 0 and "Reverted to the last-known-good" in " ".join(broken.stdout.split()), broken
    assert control_plane_env(odp_twin)["model-engine"].get("MODEL_CACHE_ENABLED") == "true"
    assert lkg(odp_twin)["model_cache"]["enabled"] is True
    # the emergency revert does the same from the record
    off = playbook("deploy_model_engine.yml", extra=dict(HELM, model_engine_tag="onprem21", model_engine_model_cache=OFF,
                                                          model_engine_deploy_auto_revert=False))
    assert off.rc != 0 and "MODEL_CACHE_ENABLED" not in control_plane_env(odp_twin)["model-engine"]
    assert playbook("revert.yml", extra=dict(HELM, model_engine_model_cache=OFF)).rc == 0
    assert control_plane_env(odp_twin)["model-engine-endpoint-builder"].get("MODEL_CACHE_ENABLED") == "true"
    # a successful deploy with the cache off records it off
    assert playbook("deploy_model_engine.yml", extra=dict(HELM, model_engine_model_cache=OFF)).rc == 0
    assert lkg(odp_twin)["model_cache"]["enabled"] is False and "MODEL_CACHE_ENABLED" not in control_plane_env(odp_twin)["model-engine"]


def create_body(name, **over):
    import copy

    from tests.twin.tests.conftest_platform import RUNBOOK_BODY

    return dict(copy.deepcopy(RUNBOOK_BODY), name=name, **over)


def unschedulable(pod):
    return any(c.get("reason") == "Unschedulable" for c in pod["status"].get("conditions") or [])


def claim_event(odp_twin, name, reason):
    rec = odp_twin.engine.find_by_name(name)[0]
    claim = "launch-endpoint-id-%s-model-cache" % rec["id"].replace("_", "-")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = kubectl(odp_twin, "get", "events", "--field-selector", "involvedObject.name=%s" % claim, "-o", "json").stdout
        if any(e["reason"] == reason for e in json.loads(out)["items"]):
            return claim
        time.sleep(0.3)
    raise AssertionError("no %s event for %s" % (reason, claim))


def setup_async_bug(gw, tw, cache_on):
    cache_on()
    tw.faults.add("model_cache_async_bug", "mc-bug")
    create_endpoint(gw, "mc-bug")
    return "mc-bug", {}


def setup_rbd_rwx(gw, tw, cache_on):
    cache_on(storageClassName="ceph-rbd")
    create_endpoint(gw, "mc-rbd", wait=False)
    claim_event(tw, "mc-rbd", "ProvisioningFailed")
    return "mc-rbd", {}


def apply_class(tw, name, provisioner):
    import subprocess
    import sys
    from pathlib import Path

    sc = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: %s}\nprovisioner: %s\n" % (name, provisioner)
    subprocess.run([str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(tw.emulator.kubeconfig_path), "apply", "-f", "-"],
                   input=sc, text=True, check=True, capture_output=True)


def setup_no_provisioner(gw, tw, cache_on):
    apply_class(tw, "vendor-sc", "csi.vendor.example.com")   # nobody runs this CSI driver
    cache_on(storageClassName="vendor-sc")
    create_endpoint(gw, "mc-noprov", wait=False)
    claim_event(tw, "mc-noprov", "ExternalProvisioning")
    time.sleep(1.5)
    return "mc-noprov", {"claim_bind_timeout": 1}


def setup_capacity(gw, tw, cache_on):
    cache_on(storage="3Ti")   # the twin's CephFS pool holds 2 TiB
    create_endpoint(gw, "mc-full", wait=False)
    claim_event(tw, "mc-full", "ProvisioningFailed")
    return "mc-full", {}


def setup_no_class(gw, tw, cache_on):
    cache_on(storageClassName="fast")
    create_endpoint(gw, "mc-nosc", wait=False)
    claim_event(tw, "mc-nosc", "ProvisioningFailed")
    return "mc-nosc", {}


def setup_node_conflict(gw, tw, cache_on):
    apply_class(tw, "local-now", "rancher.io/local-path")   # node-local volumes, bound at once (Immediate)
    cache_on(storageClassName="local-now", accessMode="ReadWriteOnce")
    create_endpoint(gw, "mc-node", wait=False)
    settle(gw, tw, "mc-node", unschedulable)
    return "mc-node", {}


def setup_orphaned_lock(gw, tw, cache_on):
    cache_on()
    tw.faults.add("download_rate", "mc-lock", bytes_per_second=100_000)
    create_endpoint(gw, "mc-lock", wait=False)
    settle(gw, tw, "mc-lock", running_main)
    time.sleep(2)   # the lock is taken and the download runs
    first = pods_of(tw, "mc-lock")[0]["metadata"]["name"]
    kubectl(tw, "delete", "pod", first)   # the downloader is killed: its lock stays behind
    settle(gw, tw, "mc-lock", lambda p: p["metadata"]["name"] != first and running_main(p))
    time.sleep(2.5)
    return "mc-lock", {"lock_fresh_seconds": 1}


def setup_stale_lock(gw, tw, cache_on):
    cache_on()
    create_endpoint(gw, "mc-stale")
    pod = pods_of(tw, "mc-stale")[0]["metadata"]["name"]
    kubectl(tw, "exec", pod, "-c", "main", "--", "sh", "-c",
            "mkdir -p /mnt/model-cache/model_files/.download.lock && echo 1000 > /mnt/model-cache/model_files/.download.lock/heartbeat")
    return "mc-stale", {}


def setup_claim_missing(gw, tw, cache_on):
    cache_on()
    rec = create_endpoint(gw, "mc-gone")
    kubectl(tw, "delete", "pvc", rec["spec"]["deployment_name"] + "-model-cache")
    assert gw.post("/v1/model-endpoints/%s/restart" % rec["id"]).status == 200
    settle(gw, tw, "mc-gone", unschedulable)
    return "mc-gone", {}


# (setup, state, cause, words the fix must contain, words the summary or evidence must contain)
CASES = [
    ("async_bug", setup_async_bug, "degraded", "cache_emptydir_fallback", ["await", "delete and create"], [ASYNC_BUG, "EmptyDir"]),
    ("rbd_rwx", setup_rbd_rwx, "failed", "cache_claim_access_mode", ["CephFS", "ReadWriteOnce with one replica"], ["multi node access modes"]),
    ("no_provisioner", setup_no_provisioner, "failed", "cache_claim_no_provisioner", ["csidrivers"], ["csi.vendor.example.com"]),
    ("capacity", setup_capacity, "failed", "cache_claim_capacity", ["quota"], ["No space left on device"]),
    ("no_class", setup_no_class, "failed", "cache_claim_no_class", ["kubectl get sc"], ['storageclass.storage.k8s.io "fast" not found']),
    ("node_conflict", setup_node_conflict, "failed", "cache_volume_node_conflict", ["WaitForFirstConsumer"],
     ["volume node affinity conflict", "hpc-k8s-phy-wrk-c01"]),
    ("orphaned_lock", setup_orphaned_lock, "progressing", "cache_lock_orphaned", ["rm -rf"], ["Stale model-cache lock", MC.WAITING_LINE]),
    ("stale_lock", setup_stale_lock, "degraded", "cache_lock_stale", ["rm -rf"], ["heartbeat"]),
    # the restart's new pod cannot schedule; the old one keeps serving (maxUnavailable 0)
    ("claim_missing", setup_claim_missing, "degraded", "cache_claim_missing", ["delete and create"], ["not found"]),
]


@pytest.mark.parametrize("case, setup, state, cause, fix_has, seen", CASES, ids=[c[0] for c in CASES])
def test_each_cache_failure_ends_in_its_diagnosis(module, gateway, odp_twin, cache_on, case, setup, state, cause, fix_has, seen):
    name, extra = setup(gateway, odp_twin, cache_on)
    diag = module("endpoint_diagnose", name=name, **extra)
    progress = module("llm_endpoint_progress", name=name, **extra)
    assert diag.get("failed") is not True, diag.get("msg")
    assert (diag["state"], diag["cause"]) == (state, cause), (diag["summary"], diag["evidence"])
    assert (progress["state"], progress["cause"]) == (state, cause), progress["line"]
    for word in fix_has:
        assert word in diag["fix"], (word, diag["fix"])
    text = " ".join([diag["summary"], *diag["evidence"]])
    for word in seen:
        assert word in text, (word, text)


def test_the_capacity_report_says_which_models_need_the_cache(playbook, module):
    shapes = [{"name": "fits", "gpu_type": "nvidia-tesla-t4", "storage": "50Gi", "checkpoint_path": "s3://scale-gp-models/intermediate-model-aws/"},
              {"name": "tight", "gpu_type": "nvidia-tesla-t4", "storage": "500Ki", "checkpoint_path": "s3://scale-gp-models/intermediate-model-aws/"}]
    tv = module.vars
    res = module("cluster_capacity_info", endpoints=shapes, model_cache=dict(CACHE, storage="200Gi"), s3_endpoint_url=tv["s3_endpoint_url"],
                 s3_access_key=tv["s3_access_key"], s3_secret_key=tv["s3_secret_key"])
    fits, tight = res["fits"]
    assert fits["fits_ephemeral"] is True and fits["needs_cache"] is False and fits["checkpoint_bytes"] > 0
    assert tight["fits_ephemeral"] is False and tight["needs_cache"] is True and tight["cache_holds"] is True
    mc = res["model_cache"]
    assert (mc["claims"], mc["claim_bytes_total"], mc["need_cache"], mc["fit_ephemeral"]) == (2, 2 * 200 * 2 ** 30, ["tight"], ["fits"])
    assert any(w.startswith("tight: the checkpoint") and "needs the model cache" in w for w in res["warnings_list"])
    run = playbook("capacity_report.yml", extra={"capacity_shapes": shapes, "model_engine_model_cache": dict(CACHE, storage="200Gi")})
    assert run.rc == 0, run
    text = " ".join(run.stdout.split())
    assert "tight: checkpoint" in text and "needs the model cache" in text and "claims: 2 x 200Gi = 400.0 GiB" in text
