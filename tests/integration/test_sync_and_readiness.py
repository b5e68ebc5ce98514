"""Issue 6 on the twin: s3_sync_verify in a pod and vllm_ready, for each state a download can be in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import create_endpoint, pod_of

CKPT = "s3://scale-gp-models/intermediate-model-aws/"


def kubectl_exec(module, pod, *cmd):
    kubectl = str(Path(sys.executable).parent / "kubectl")
    return subprocess.run([kubectl, "--kubeconfig", module.vars["k8s_kubeconfig"], "-n", "llm-core", "exec", pod, "-c", "main", "--", *cmd],
                          capture_output=True, text=True, check=True, timeout=30)


def first_shard(module, pod):
    out = kubectl_exec(module, pod, "ls", "model_files").stdout.split()
    return sorted(n for n in out if n.endswith(".safetensors"))[0]


@pytest.mark.parametrize("form", ["awscli", "s5cmd"])
def test_complete_quick_and_deep_and_ready(module, gateway, odp_twin, form):
    """Both download forms: the on-prem image's (pip install awscli, aws s3 sync, the while guard; the twin's
    default) and upstream's s5cmd: the same verification, progress and readiness."""
    odp_twin.faults.add("download_form", "sync-ok", tool=form, wait_guard=form == "awscli")
    odp_twin.faults.add("download_rate", "sync-ok", bytes_per_second=200_000)
    odp_twin.faults.add("slow_tool_install", "sync-ok", seconds=6)  # the awscli install, long enough to be seen
    create_endpoint(gateway, "sync-ok", wait=False)
    seen = set()
    snap = {}
    for _ in range(200):  # follow it as the role does, one check at a time, until it serves
        snap = module("llm_endpoint_progress", name="sync-ok", previous=snap.get("sample"))
        seen.add(snap["cause"])
        if snap["state"] != "progressing":
            break
    assert snap["state"] == "serving", snap.get("reason")
    assert "downloading" in seen and ("installing" in seen) is (form == "awscli"), seen
    ep = gateway.get("/v1/llm/model-endpoints/sync-ok").json()
    dep = odp_twin.call(odp_twin.kube.get("Deployment", "launch-endpoint-id-" + ep["id"].replace("_", "-"), odp_twin.config.endpoint_namespace))
    main = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "main")
    assert ("aws s3 sync" if form == "awscli" else "s5cmd") in main["command"][-1]
    diag = module("endpoint_diagnose", name="sync-ok")
    assert diag["state"] == "serving" and diag["cause"] == "serving", diag.get("summary")
    for mode in ("quick", "deep"):
        res = module("s3_sync_verify", checkpoint_path=CKPT, endpoint_name="sync-ok", mode=mode)
        assert res.get("failed") is not True, res.get("msg")
        assert res["complete"] and res["percent"] == 100.0 and res["all_index_shards_present"] and res["config_json_present"]
    assert all(f.get("etag_match") for f in res["files"].values())
    ready = module("vllm_ready", endpoint_id=ep["id"], model="test-model", smoke="direct", wait=True, wait_timeout=30)
    assert ready["ready"] is True and "test-model" in ready["served_models"] and ready["completion"]
    assert ready["timings"]["healthy"] <= ready["timings"]["model_listed"] <= ready["timings"]["first_completion"]


def test_in_progress_download_is_reported_without_failing(module, gateway, odp_twin):
    odp_twin.faults.add("download_rate", "sync-slow", bytes_per_second=20_000)  # ~50 s: still downloading on a loaded machine
    create_endpoint(gateway, "sync-slow", wait=False)
    gateway.wait("sync-slow", lambda e: e["status"] == "READY", timeout=30)
    res = {}
    for _ in range(100):
        res = module("s3_sync_verify", checkpoint_path=CKPT, endpoint_name="sync-slow", fail_on_problems=False)
        if res.get("failed") is not True and res["bytes_present"] > 0:
            break
    assert res["complete"] is False and res["in_progress"] is True, res
    assert 0 < res["percent"] < 100 and res["temp_files"]
    not_ready = module("vllm_ready", endpoint_name="sync-slow")
    # the files are not all there, so vLLM is not even asked: the step that did not pass is the download
    assert not_ready["ready"] is False and not_ready["failure"] == "download", not_ready
    assert "not complete yet" in not_ready["msg"] and not_ready["requests"]["proxy"] == 0
    plain = module("vllm_ready", endpoint_name="sync-slow", adaptive=False)
    assert plain["ready"] is False and plain["failure"] == "health" and plain["requests"]["exec"] == 0


def test_missing_shard_temp_name_and_size_mismatch_in_the_pod(module, gateway, odp_twin):
    ep = create_endpoint(gateway, "sync-broken")
    pod = pod_of(odp_twin, ep["id"])
    shard = first_shard(module, pod)
    kubectl_exec(module, pod, "mv", "model_files/" + shard, "model_files/" + shard + ".a1B2c3D4")
    res = module("s3_sync_verify", checkpoint_path=CKPT, endpoint_name="sync-broken", fail_on_problems=False)
    assert {"file": shard + ".a1B2c3D4", "problem": "temp_name"} == {k: res["problems"][0][k] for k in ("file", "problem")}
    assert not res["all_index_shards_present"]
    kubectl_exec(module, pod, "rm", "model_files/" + shard + ".a1B2c3D4")
    res = module("s3_sync_verify", checkpoint_path=CKPT, endpoint_name="sync-broken")
    assert res["failed"] is True and [p["problem"] for p in res["problems"]] == ["missing"]
    assert "%s: missing" % shard in res["msg"]
    other = sorted(n for n in kubectl_exec(module, pod, "ls", "model_files").stdout.split() if n.endswith(".safetensors"))[0]
    kubectl_exec(module, pod, "truncate", "-s", "-10", "model_files/" + other)
    res = module("s3_sync_verify", checkpoint_path=CKPT, endpoint_name="sync-broken", fail_on_problems=False)
    assert {p["problem"] for p in res["problems"]} == {"missing", "size_mismatch"}


def test_same_size_corruption_passes_quick_and_fails_deep(module, gateway, odp_twin):
    odp_twin.faults.add("corrupt_shard", "sync-corrupt")
    create_endpoint(gateway, "sync-corrupt", wait=False)
    gateway.wait("sync-corrupt", lambda e: e["status"] == "READY", timeout=30)
    quick = module("s3_sync_verify", checkpoint_path=CKPT, endpoint_name="sync-corrupt", wait=True, wait_sleep=0.5, wait_timeout=60)
    assert quick.get("failed") is not True and quick["complete"] is True, quick.get("msg")
    deep = module("s3_sync_verify", checkpoint_path=CKPT, endpoint_name="sync-corrupt", mode="deep")
    assert deep["failed"] is True
    assert [p["problem"] for p in deep["problems"]] == ["content_mismatch"]


def test_stalled_download_fails_fast(module, gateway, odp_twin):
    odp_twin.faults.add("download_stall", "sync-stall", after_bytes=200_000)
    create_endpoint(gateway, "sync-stall", wait=False)
    gateway.wait("sync-stall", lambda e: e["status"] == "READY", timeout=30)
    res = module("s3_sync_verify", checkpoint_path=CKPT, endpoint_name="sync-stall", wait=True, wait_sleep=0.5,
                 stall_timeout=3, wait_timeout=120)
    assert res["failed"] is True and res["failure"] == "stalled"
    assert "Download stalled in pod" in res["msg"] and "no new bytes for" in res["msg"] and res["percent"] < 100


def test_storage_exceeded_fails_fast_with_exit_137(module, gateway, odp_twin):
    odp_twin.faults.add("storage_exceeded", "sync-oom", declared_size_multiplier=1e6)
    odp_twin.faults.add("download_rate", "sync-oom", bytes_per_second=100_000)  # evicted mid-download, as for real
    create_endpoint(gateway, "sync-oom", wait=False)
    res = module("vllm_ready", endpoint_name="sync-oom", wait=True, wait_timeout=120)
    assert res["failed"] is True and res["failure"] == "terminal"
    assert "137" in res["msg"] or "Evicted" in res["msg"], res["msg"]


def test_unsupported_architecture_fails_fast_with_the_vllm_error(module, gateway, odp_twin):
    create_endpoint(gateway, "arch-ep", wait=False, inference_framework_image_tag="0.6.3-rc1")
    res = module("vllm_ready", endpoint_name="arch-ep", wait=True, wait_timeout=120)
    assert res["failed"] is True and res["failure"] == "terminal"
    assert any("are not supported" in line for line in res["main_logs"]), res["main_logs"]


def test_premature_vllm_start_without_wait_guard(module, gateway, odp_twin):
    odp_twin.faults.add("download_form", "premature-ep", tool="awscli", wait_guard=False)
    odp_twin.faults.add("download_rate", "premature-ep", bytes_per_second=50_000)
    create_endpoint(gateway, "premature-ep", wait=False)
    res = module("vllm_ready", endpoint_name="premature-ep", wait=True, wait_timeout=120)
    assert res["failed"] is True and res["failure"] == "terminal"
    # vLLM started on a half-downloaded folder: before config.json it finds no config format, after it no weights
    assert any("No config format found" in line or "Cannot find any model weights" in line for line in res["main_logs"]), res["main_logs"]


def test_no_s3_secret_in_verbose_output(playbook, gateway, module):
    create_endpoint(gateway, "secret-ep")
    run = playbook("verify_endpoint.yml", "-vvv", extra={"endpoint_name": "secret-ep"})
    assert run.rc == 0, run
    secret = module.vars["s3_secret_key"]
    assert secret not in run.stdout and secret not in run.stderr
    assert json.dumps(secret) not in run.stdout
