"""Each endpoint-pod fault, reproduced and checked through the signals an operator sees."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from tests.twin.tests.test_e2e_runbook import NS, pods_of, ready_column, wait_for

pytestmark = pytest.mark.twin


def main_status(pod: dict) -> dict:
    return next(c for c in pod["status"].get("containerStatuses", []) if c["name"] == "main")


def events_for(twin_kubectl, pod_name: str) -> list[dict]:
    out = twin_kubectl("get", "events", "-n", NS, "--field-selector", f"involvedObject.name={pod_name}", "-o", "json").stdout
    return json.loads(out)["items"]


def create(me, body, odp_twin, name, **faults):
    body["name"] = name
    for kind, params in faults.items():
        odp_twin.faults.add(kind, name, **(params or {}))
    r = me.create(body)
    assert r.status == 200, r
    return wait_for(lambda: pods_of_running_or_any(me, odp_twin, name), what="pod")


def pods_of_running_or_any(me, odp_twin, name):
    return odp_twin.call(odp_twin.kube.list_pods(NS, f"endpoint_name={name}"))


def test_storage_exceeded_evicts_with_exit_137(me, runbook_body, odp_twin, twin_kubectl, download_form):
    name = "storage-exceeded"
    create(me, runbook_body, odp_twin, name, storage_exceeded={"declared_size_multiplier": 1e6})

    def evicted():
        return [p for p in pods_of(twin_kubectl, name) if p["status"].get("reason") == "Evicted"]

    (pod,) = wait_for(evicted, timeout=30, what="an evicted pod")[:1]
    assert pod["status"]["phase"] == "Failed"
    msg = "Pod ephemeral local storage usage exceeds the total limit of containers 50Gi."
    assert pod["status"]["message"] == msg
    term = main_status(pod)["state"]["terminated"]
    assert term["exitCode"] == 137
    evs = [e for e in events_for(twin_kubectl, pod["metadata"]["name"]) if e["reason"] == "Evicted"]
    assert evs and evs[0]["type"] == "Warning" and evs[0]["message"] == msg
    # The API still says READY: the objects were applied; only the workers tell the truth.
    ep = me.endpoint(name)
    assert ep["status"] == "READY" and ep["spec"]["deployment_state"]["available_workers"] == 0


def test_image_without_qwen3_crash_loops(me, runbook_body, odp_twin, twin_kubectl):
    name = "old-vllm"
    runbook_body["inference_framework_image_tag"] = "0.6.3-rc1"
    (pod,) = create(me, runbook_body, odp_twin, name)
    pod_name = pod["metadata"]["name"]

    def crashlooping():
        st = main_status(pods_of(twin_kubectl, name)[0])
        return st if st["restartCount"] >= 1 and (st["state"].get("waiting") or {}).get("reason") == "CrashLoopBackOff" \
            else None

    st = wait_for(crashlooping, timeout=30, what="CrashLoopBackOff")
    assert st["lastState"]["terminated"]["exitCode"] == 1
    prev = twin_kubectl("logs", "-n", NS, pod_name, "-c", "main", "--previous").stdout
    assert "ValueError: Model architectures ['Qwen3ForCausalLM'] are not supported for now. Supported architectures:" \
        in prev
    assert "'LlamaForCausalLM'" in prev
    assert ready_column(twin_kubectl, name) == ["0/2"]
    # kubectl shows the back-off between restarts (the container restarts in between, so look until it is seen)
    wait_for(lambda: "CrashLoopBackOff" in twin_kubectl("get", "pods", "-n", NS, "-l", f"endpoint_name={name}").stdout,
             timeout=30, what="kubectl get pods showing CrashLoopBackOff")
    ep = me.endpoint(name)
    assert ep["status"] == "READY" and ep["spec"]["deployment_state"]["available_workers"] == 0


def test_llama_architecture_runs_on_the_old_image(me, runbook_body, odp_twin, twin_kubectl):
    name = "old-vllm-llama"
    runbook_body.update(inference_framework_image_tag="0.6.3-rc1", model_name="llama-3-8b-instruct",
                        checkpoint_path="s3://scale-gp-models/llama-3-8b-instruct/")
    create(me, runbook_body, odp_twin, name)
    wait_for(lambda: ready_column(twin_kubectl, name) == ["2/2"], timeout=30, what="2/2")


def test_no_wait_guard_starts_vllm_too_early(me, runbook_body, odp_twin, twin_kubectl):
    name = "no-guard"
    (pod,) = create(me, runbook_body, odp_twin, name, download_form={"tool": "awscli", "wait_guard": False},
                    download_rate={"bytes_per_second": 200_000})
    pod_name = pod["metadata"]["name"]
    st = wait_for(lambda: main_status(pods_of(twin_kubectl, name)[0])["restartCount"] >= 1 or None, timeout=30,
                  what="a restart")
    assert st
    prev = twin_kubectl("logs", "-n", NS, pod_name, "-c", "main", "--previous").stdout
    assert "No config format found" in prev
    assert "ValueError: No supported config format found in model_files" in prev
    assert "Waiting for model files" not in prev


def test_slow_tool_install(me, runbook_body, odp_twin, twin_kubectl):
    name = "slow-install"
    (pod,) = create(me, runbook_body, odp_twin, name, download_form={"tool": "awscli", "wait_guard": True},
                    slow_tool_install={"seconds": 30})
    pod_name = pod["metadata"]["name"]
    wait_for(lambda: (main_status(pods_of(twin_kubectl, name)[0])["state"].get("running") is not None), what="running")
    time.sleep(1.0)
    p = twin_kubectl("exec", "-n", NS, pod_name, "-c", "main", "--", "ls", "model_files", check=False)
    assert p.returncode != 0                     # nothing downloaded while pip is still installing awscli
    assert ready_column(twin_kubectl, name) == ["0/2"]
    assert main_status(pods_of(twin_kubectl, name)[0])["restartCount"] == 0
    assert "download:" not in twin_kubectl("logs", "-n", NS, pod_name, "-c", "main").stdout


@pytest.mark.parametrize("how", ["fault", "secret"])
def test_s3_credentials_rejected(me, runbook_body, odp_twin, twin_kubectl, how, download_form):
    name = f"bad-creds-{how}"
    if how == "secret":   # what an operator would break: the Secret behind extraPodEnvFrom
        twin_kubectl("create", "secret", "generic", "bad-s3", "-n", NS, "--from-literal=AWS_ACCESS_KEY_ID=wrong",
                     "--from-literal=AWS_SECRET_ACCESS_KEY=wrong")
        old = odp_twin.config.s3_credentials_secret
        odp_twin.config.s3_credentials_secret = "bad-s3"
        try:
            (pod,) = create(me, runbook_body, odp_twin, name)
        finally:
            odp_twin.config.s3_credentials_secret = old
    else:
        (pod,) = create(me, runbook_body, odp_twin, name, s3_credentials_rejected=None)
    try:
        _check_credentials_rejected(twin_kubectl, name, pod["metadata"]["name"], download_form)
    finally:
        if how == "secret":
            twin_kubectl("delete", "secret", "bad-s3", "-n", NS, "--ignore-not-found")


def _check_credentials_rejected(twin_kubectl, name: str, pod_name: str, download_form: str) -> None:
    if download_form == "s5cmd":   # s5cmd runs in the foreground under `set -euo pipefail`: the container exits

        def terminated_once():
            st = main_status(pods_of(twin_kubectl, name)[0])
            return st if st["restartCount"] >= 1 else None

        st = wait_for(terminated_once, timeout=30, what="a failed start")
        assert st["lastState"]["terminated"]["exitCode"] != 0
        prev = twin_kubectl("logs", "-n", NS, pod_name, "-c", "main", "--previous").stdout
        assert 'ERROR "cp s3://scale-gp-models/intermediate-model-aws/* model_files": AccessDenied' in prev
    else:   # `aws s3 sync` fails in the background; the runbook's guard then waits for files that never come
        def waiting_after_denial():
            # check=False: until the container starts, kubectl logs answers 400 "is waiting to start" (a loaded machine)
            log = twin_kubectl("logs", "-n", NS, pod_name, "-c", "main", check=False).stdout
            denied = "fatal error: An error occurred (AccessDenied) when calling the ListObjectsV2 operation: Access Denied"
            return log if denied in log and "Waiting for model files..." in log.split(denied, 1)[1] else None

        wait_for(waiting_after_denial, timeout=30, what="the guard waiting after the denied sync")
        st = main_status(pods_of(twin_kubectl, name)[0])
        assert st["restartCount"] == 0 and st["state"].get("running") and not st["ready"]
    p = twin_kubectl("exec", "-n", NS, pod_name, "-c", "main", "--", "ls", "model_files", check=False)
    assert p.returncode != 0 or p.stdout.strip() == ""


def test_download_stall(me, runbook_body, odp_twin, twin_kubectl, download_form):
    name = "stalled"
    (pod,) = create(me, runbook_body, odp_twin, name, download_stall={"after_bytes": 300_000})
    pod_name = pod["metadata"]["name"]

    def size():
        out = twin_kubectl("exec", "-n", NS, pod_name, "-c", "main", "--", "du", "-sb", "model_files", check=False).stdout
        return int(out.split()[0]) if out.strip() else 0

    wait_for(lambda: size() >= 290_000, timeout=30, what="some bytes")
    first = size()
    time.sleep(1.5)
    assert size() == first                      # bytes stop growing
    st = main_status(pods_of(twin_kubectl, name)[0])
    assert st["state"].get("running") and st["restartCount"] == 0 and not st["ready"]
    ls = twin_kubectl("exec", "-n", NS, pod_name, "-c", "main", "--", "ls", "model_files").stdout.split()
    shard = "model-00001-of-00003.safetensors"
    in_flight = [f[len(shard):] for f in ls if f.startswith(shard) and f != shard]
    assert len(in_flight) == 1, ls              # the tool's temp file is still there
    if download_form == "awscli":               # awscli: <name>.<8 hex chars>; the guard keeps vLLM waiting
        assert in_flight[0][0] == "." and len(in_flight[0]) == 9
        assert "Waiting for model files..." in twin_kubectl("logs", "-n", NS, pod_name, "-c", "main").stdout
    else:                                       # s5cmd: <name><digits>
        assert in_flight[0].isdigit()


def test_corrupted_shard_of_the_right_size_is_served(me, runbook_body, odp_twin, twin_kubectl):
    clean, bad = "clean-weights", "corrupt-weights"
    create(me, dict(runbook_body), odp_twin, clean)
    wait_for(lambda: ready_column(twin_kubectl, clean) == ["2/2"], timeout=30, what="clean 2/2")
    (pod,) = create(me, dict(runbook_body), odp_twin, bad, corrupt_shard=None)
    wait_for(lambda: ready_column(twin_kubectl, bad) == ["2/2"], timeout=30, what="corrupt 2/2")  # vLLM does not notice
    pod_name = pod["metadata"]["name"]
    shard = "model-00001-of-00003.safetensors"
    want = odp_twin.manifest["intermediate-model-aws/"][shard]
    path = odp_twin.emulator.pods_dir / NS / pod_name / "main" / "model_files" / shard
    ls = twin_kubectl("exec", "-n", NS, pod_name, "-c", "main", "--", "ls", "-l", f"model_files/{shard}").stdout
    assert int(ls.split()[4]) == want["size"]
    assert hashlib.md5(path.read_bytes()).hexdigest() != want["etag"].strip('"')
    chat = {"messages": [{"role": "user", "content": "same prompt"}], "max_tokens": 6}
    a = me.post("/v2/chat/completions", dict(chat, model=clean)).json()["choices"][0]["message"]["content"]
    b = me.post("/v2/chat/completions", dict(chat, model=bad)).json()["choices"][0]["message"]["content"]
    assert a != b                               # garbage weights, garbage answers


def test_corrupted_header_crashes_vllm(me, runbook_body, odp_twin, twin_kubectl, download_form):
    name = "corrupt-header"
    (pod,) = create(me, runbook_body, odp_twin, name, corrupt_header=None)
    st = wait_for(lambda: main_status(pods_of(twin_kubectl, name)[0])["restartCount"] >= 1 or None, timeout=30,
                  what="a crash")
    assert st
    prev = twin_kubectl("logs", "-n", NS, pod["metadata"]["name"], "-c", "main", "--previous").stdout
    assert "SafetensorError: Error while deserializing header" in prev


@pytest.mark.parametrize(("change", "insufficient"), [
    ({"gpus": 4, "num_shards": 4}, "Insufficient nvidia.com/gpu"),
    ({"storage": "200Gi"}, "Insufficient ephemeral-storage"),
])
def test_node_too_small_leaves_pod_pending(me, runbook_body, odp_twin, twin_kubectl, change, insufficient):
    name = "too-big-" + ("gpu" if "gpus" in change else "disk")
    runbook_body.update(change)
    create(me, runbook_body, odp_twin, name)

    def unschedulable():
        p = pods_of(twin_kubectl, name)[0]
        cond = next((c for c in p["status"].get("conditions", []) if c["type"] == "PodScheduled"), None)
        return (p, cond) if cond and cond["status"] == "False" else None

    p, cond = wait_for(unschedulable, timeout=20, what="Unschedulable")
    assert p["status"]["phase"] == "Pending"
    assert cond["reason"] == "Unschedulable" and insufficient in cond["message"]
    evs = [e for e in events_for(twin_kubectl, p["metadata"]["name"]) if e["reason"] == "FailedScheduling"]
    assert evs and insufficient in evs[0]["message"] and evs[0]["type"] == "Warning"


def test_missing_aws_config_map_leaves_pod_container_creating(me, runbook_body, odp_twin, twin_kubectl):
    """The chart's `default-config` (mounted at /opt/.aws/config) deleted: the pod never starts, the kubelet says why,
    and it proceeds once the ConfigMap is back (as `helm upgrade` re-running the chart's hooks would restore it)."""
    name = "no-aws-config"
    twin_kubectl("delete", "configmap", "default-config", "-n", NS)
    try:
        (pod,) = create(me, runbook_body, odp_twin, name)
        pod_name = pod["metadata"]["name"]

        def failed_mount():
            evs = [e for e in events_for(twin_kubectl, pod_name) if e["reason"] == "FailedMount"]
            return evs if evs and evs[0]["count"] >= 2 else None

        (ev,) = wait_for(failed_mount, timeout=20, what="a repeated FailedMount event")
        assert ev["type"] == "Warning"
        assert ev["message"] == 'MountVolume.SetUp failed for volume "config-volume" : configmap "default-config" not found'
        p = pods_of(twin_kubectl, name)[0]
        assert p["status"]["phase"] == "Pending"
        assert {c["name"]: c["state"] for c in p["status"]["containerStatuses"]} == {
            "http-forwarder": {"waiting": {"reason": "ContainerCreating"}}, "main": {"waiting": {"reason": "ContainerCreating"}}}
        row = twin_kubectl("get", "pods", "-n", NS, "-l", f"endpoint_name={name}", "--no-headers").stdout.split()
        assert row[1:3] == ["0/2", "ContainerCreating"]
        described = twin_kubectl("describe", "pod", pod_name, "-n", NS).stdout
        assert "FailedMount" in described and 'configmap "default-config" not found' in described
        assert "Pulled" not in [e["reason"] for e in events_for(twin_kubectl, pod_name)]   # mounts come before pulls
        ep = me.endpoint(name)                  # the API cannot tell: READY, no worker
        assert ep["status"] == "READY" and ep["spec"]["deployment_state"]["available_workers"] == 0
    finally:
        odp_twin.call(odp_twin.chart_config_maps())
    wait_for(lambda: ready_column(twin_kubectl, name) == ["2/2"], timeout=60, what="2/2 once default-config is back")
