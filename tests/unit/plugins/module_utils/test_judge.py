"""The one judge, rule by rule, on observations built the way the Kubernetes API and the gateway write them.

Each case is a state an operator meets (the runbook's Common Issues, and the everyday ones the issue lists);
the assertions are what the operator reads: the state (is it safe to clean up? does the wait stop?), the
cause, the container named, and what the fix tells them to do — or not to do.
"""

from __future__ import annotations

import copy
import datetime
import json
import time

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils import judge as J
from ansible_collections.odp.model_engine.plugins.module_utils.observe import VERIFICATION_ANNOTATION, Observation

NOW = time.time()
RS_NEW, RS_OLD = "launch-endpoint-id-end-x-new", "launch-endpoint-id-end-x-old"


def ts(seconds_ago):
    return datetime.datetime.fromtimestamp(NOW - seconds_ago, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(status="READY", workers=1, reason=None, updated_ago=60):
    return {"id": "end_x", "name": "ep", "status": status, "checkpoint_path": "s3://b/m/",
            "spec": {"status_reason": reason, "created_by": "me", "last_updated_at": ts(updated_ago), "created_at": ts(updated_ago),
                     "deployment_state": {"available_workers": workers}}}


def deployment(replicas=1, updated=1, available=1, total=1, generation=2, observed=2):
    return {"metadata": {"name": "launch-endpoint-id-end-x", "generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "availableReplicas": available, "replicas": total}}


def rs(name, revision):
    return {"metadata": {"name": name, "annotations": {"deployment.kubernetes.io/revision": str(revision)}}}


def container(name, ready=False, state=None, restarts=0, last=None):
    cs = {"name": name, "ready": ready, "restartCount": restarts, "state": state or {"running": {"startedAt": ts(30)}}}
    if last:
        cs["lastState"] = {"terminated": last}
    return cs


def pod(name="p1", owner=RS_NEW, phase="Running", main=None, forwarder=None, conditions=None, reason=None, message=None,
        cmd="./s5cmd cp s3://b/m/* model_files;python -m vllm_server", annotations=None, storage="50Gi"):
    main = main or container("main")
    forwarder = forwarder or container("http-forwarder", ready=main.get("ready", False))
    status = {"phase": phase, "containerStatuses": [forwarder, main], "conditions": conditions or []}
    if reason:
        status.update(reason=reason, message=message)
    return {
        "metadata": {"name": name, "creationTimestamp": ts(40), "ownerReferences": [{"kind": "ReplicaSet", "name": owner}],
                     "labels": {"app": "launch-endpoint-id-end-x", "endpoint_name": "ep"}, "annotations": annotations or {}},
        "spec": {"nodeSelector": {"k8s.amazonaws.com/accelerator": "nvidia-tesla-t4"}, "containers": [
            {"name": "http-forwarder", "image": "me:onprem20", "resources": {"limits": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "1G"}}},
            {"name": "main", "image": "vllm:vllm-onprem", "command": ["/bin/bash", "-c", cmd],
             "resources": {"limits": {"cpu": "4", "memory": "16Gi", "ephemeral-storage": storage, "nvidia.com/gpu": "1"}}}]},
        "status": status,
    }


def ready_pod(name="p1", owner=RS_NEW, **kw):
    return pod(name, owner, main=container("main", ready=True), forwarder=container("http-forwarder", ready=True), **kw)


def observe(rec=None, pods=(), dep=None, rss=None, events=None, logs=None, builder=None, builder_pods=(),
            nodes=None, download=None, history=None):
    obs = Observation("ep", rec, now=NOW)
    obs.deployment = dep
    obs.replicasets = (list(rss) if rss else [rs(RS_NEW, 2)]) if dep else []
    obs.pods = list(pods)
    obs.events = events or {}
    obs.logs = logs or {}
    obs.builder = builder
    obs.builder_pods = list(builder_pods)
    obs.nodes = nodes
    obs.download = download
    obs.history = history or {}
    return obs


def unschedulable(message):
    return [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]


def node(gpu_used=2, cpu_free=1.0):
    return {"g01": {"name": "g01", "labels": {"k8s.amazonaws.com/accelerator": "nvidia-tesla-t4"}, "gpu_requested": gpu_used,
                    "gpu_allocatable": 2, "gpu_holders": ["ep (Running, 1 GPU)", "other (Running, 1 GPU)"][:gpu_used],
                    "cpu_free": cpu_free, "cpu_allocatable": 32.0, "memory_free": 2 ** 36, "memory_allocatable": 2 ** 37,
                    "ephemeral_free": 2 ** 37, "ephemeral_allocatable": 189 * 2 ** 30}}


def dl(present, expected=10 ** 9, idle=5, files=3, complete=False):
    return {"pod": "p1", "error": None, "exists": True, "files": files, "pod_now": NOW, "newest_mtime": NOW - idle,
            "bytes_present": present, "bytes_expected": expected, "percent": round(100.0 * present / expected, 1),
            "complete": complete, "temp_files": [] if complete else ["model-00002-of-00003.safetensors.a1B2c3D4"]}


MISSING_CM = 'MountVolume.SetUp failed for volume "config-volume" : configmap "default-config" not found'
BUILDER_OK = {"spec": {"replicas": 1}, "status": {"availableReplicas": 1}}
AWSCLI = "pip install --quiet awscli --no-cache-dir;aws s3 sync s3://b/m model_files --no-progress & sync_pid=$!; while ...; python -m vllm_server"


# ------------------------------------------------------------------------------------------------ the table
CASES = {
    "serving": (lambda: observe(record(), [ready_pod()], deployment()), J.SERVING, "serving", None),
    "absent": (lambda: observe(None), J.ABSENT, "absent", None),
    "update_failed": (lambda: observe(record("UPDATE_FAILED", 0, "Bad name"), [], None), J.FAILED, "update_failed", None),
    "update failed while the old pod serves": (
        lambda: observe(record("UPDATE_FAILED", 1, "quota"), [ready_pod()], deployment()), J.DEGRADED, "update_failed", None),
    "builder scaled to 0 fails at once": (
        lambda: observe(record("UPDATE_PENDING", 0, updated_ago=2), [], None, builder={"spec": {"replicas": 0}, "status": {}}),
        J.FAILED, "builder_down", None),
    "pending with a running builder is building": (
        lambda: observe(record("UPDATE_PENDING", 0, updated_ago=30), [], None, builder=BUILDER_OK), J.PROGRESSING, "building", None),
    "pending for longer than the allowance": (
        lambda: observe(record("UPDATE_PENDING", 0, updated_ago=700), [], None, builder=BUILDER_OK), J.FAILED, "stuck_pending", None),
    "GPUs all taken on create": (
        lambda: observe(record("READY", 0), [pod(phase="Pending", conditions=unschedulable(
            "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node affinity/selector. "
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."),
            main={"name": "main", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}})],
            deployment(available=0, updated=1), nodes=node()), J.FAILED, "unschedulable_gpu", None),
    "update while every GPU is taken: the old pod serves": (
        lambda: observe(record("READY", 1), [
            pod("new", RS_NEW, phase="Pending", conditions=unschedulable(
                "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node affinity/selector.")),
            ready_pod("old", RS_OLD)], deployment(updated=1, available=1, total=2, generation=3, observed=3),
            rss=(rs(RS_NEW, 2), rs(RS_OLD, 1)), nodes=node()), J.DEGRADED, "unschedulable_gpu", None),
    "CPU shortage is not blamed on labels": (
        lambda: observe(record("READY", 0), [pod(phase="Pending", conditions=unschedulable(
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector. preemption: ..."))],
            deployment(available=0), nodes=node(gpu_used=0, cpu_free=2.0)), J.FAILED, "unschedulable_cpu", None),
    "no node of the GPU type": (
        lambda: observe(record("READY", 0), [pod(phase="Pending", conditions=unschedulable(
            "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."))], deployment(available=0), nodes={}),
        J.FAILED, "unschedulable_selector", None),
    "untolerated taint": (
        lambda: observe(record("READY", 0), [pod(phase="Pending", conditions=unschedulable(
            "0/2 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: present}, 1 node(s) didn't match "
            "Pod's node affinity/selector."))], deployment(available=0), nodes=node(0)), J.FAILED, "unschedulable_taint", None),
    "image pull names the container": (
        lambda: observe(record("READY", 0), [pod(main=container("main", state={"waiting": {"reason": "ImagePullBackOff",
                                                                                           "message": "Back-off pulling image"}}))],
                        deployment(available=0)), J.FAILED, "image_pull", "main"),
    "eviction for storage names main, not the forwarder": (
        lambda: observe(record("READY", 0), [pod(phase="Failed", reason="Evicted",
                                                 message="Pod ephemeral local storage usage exceeds the total limit of containers 50Gi.",
                                                 main=container("main", state={"terminated": {"exitCode": 137, "reason": "Error"}}),
                                                 forwarder=container("http-forwarder", state={"terminated": {"exitCode": 137}}))],
                        deployment(available=0)), J.FAILED, "storage_exceeded", "main"),
    "OOMKilled": (
        lambda: observe(record("READY", 0), [pod(main=container("main", state={"waiting": {"reason": "CrashLoopBackOff"}}, restarts=2,
                                                                last={"exitCode": 137, "reason": "OOMKilled"}))], deployment(available=0)),
        J.FAILED, "oom_killed", "main"),
    "Qwen3 on an image without the fix": (
        lambda: observe(record("READY", 0), [pod(main=container("main", state={"waiting": {"reason": "CrashLoopBackOff"}}, restarts=1,
                                                                last={"exitCode": 1}))], deployment(available=0),
                        logs={"p1": {"main": ["ValueError: Model architectures ['Qwen3ForCausalLM'] are not supported for now."]}}),
        J.FAILED, "unsupported_architecture", "main"),
    "premature start": (
        lambda: observe(record("READY", 0), [pod(main=container("main", restarts=1, last={"exitCode": 1}))], deployment(available=0),
                        logs={"p1": {"main": ["ValueError: No supported config format found in model_files"]}}),
        J.FAILED, "premature_start", "main"),
    "S3 credentials refused": (
        lambda: observe(record("READY", 0), [pod(main=container("main", restarts=1, last={"exitCode": 1}))], deployment(available=0),
                        logs={"p1": {"main": ["fatal error: An error occurred (InvalidAccessKeyId) when calling the ListObjectsV2 operation"]}}),
        J.FAILED, "download_failed", "main"),
    "one unexplained crash is not yet a crash loop": (
        lambda: observe(record("READY", 0), [pod(main=container("main", restarts=1, last={"exitCode": 2}))], deployment(available=0),
                        logs={"p1": {"main": ["something odd"]}}), J.PROGRESSING, "starting", None),
    "unexplained crash loop": (
        lambda: observe(record("READY", 0), [pod(main=container("main", state={"waiting": {"reason": "CrashLoopBackOff"}}, restarts=3,
                                                                last={"exitCode": 2}))], deployment(available=0),
                        logs={"p1": {"main": ["something odd"]}}), J.FAILED, "crash_loop", "main"),
    "installing the AWS CLI for 8 min is normal": (
        lambda: observe(record("READY", 0), [pod(cmd=AWSCLI, main=container("main", state={"running": {"startedAt": ts(480)}}))],
                        deployment(available=0), download=dict(dl(0), files=0, exists=False)), J.PROGRESSING, "installing", "main"),
    "installing for 25 min is the runbook's slow install": (
        lambda: observe(record("READY", 0), [pod(cmd=AWSCLI, main=container("main", state={"running": {"startedAt": ts(1500)}}))],
                        deployment(available=0), download=dict(dl(0), files=0, exists=False)), J.FAILED, "slow_tool_install", "main"),
    "a slow download that moves is progressing": (
        lambda: observe(record("READY", 0), [pod()], deployment(available=0), download=dl(300_000_000, idle=90),
                        history={"samples": [[NOW - 120, 299_000_000, "p1"], [NOW, 300_000_000, "p1"]]}), J.PROGRESSING, "downloading", "main"),
    "no byte for the stall window": (
        lambda: observe(record("READY", 0), [pod()], deployment(available=0), download=dl(300_000_000, idle=700)),
        J.FAILED, "download_stalled", "main"),
    "files complete, vLLM loading": (
        lambda: observe(record("READY", 0), [pod()], deployment(available=0), download=dl(10 ** 9, complete=True, idle=1)),
        J.PROGRESSING, "loading", "main"),
    "new pod of a rollout downloading while the old serves": (
        lambda: observe(record("READY", 1), [pod("new", RS_NEW), ready_pod("old", RS_OLD)], deployment(total=2, available=1),
                        rss=(rs(RS_NEW, 2), rs(RS_OLD, 1)), download=dict(dl(10 ** 8), pod="new")), J.PROGRESSING, "downloading", "main"),
    "rollout finishing: old pod still running": (
        lambda: observe(record("READY", 1), [ready_pod("new", RS_NEW), ready_pod("old", RS_OLD)], deployment(total=2, available=2),
                        rss=(rs(RS_NEW, 2), rs(RS_OLD, 1))), J.PROGRESSING, "rollout_pending", None),
    "an update is queued": (
        lambda: observe(record("UPDATE_PENDING", 1, updated_ago=5), [ready_pod()], deployment(), builder=BUILDER_OK),
        J.PROGRESSING, "update_queued", None),
    "corrupt shard found by the last deep verification": (
        lambda: observe(record(), [ready_pod(annotations={VERIFICATION_ANNOTATION: json.dumps(
            {"mode": "deep", "complete": False, "checkpoint": "s3://b/m/", "main_started_at": ts(30),
             "problems": [{"file": "model-00002-of-00003.safetensors", "problem": "content_mismatch"}]})})], deployment()),
        J.DEGRADED, "corrupt_files", "main"),
    "READY without a Deployment": (lambda: observe(record(), [], None), J.FAILED, "objects_missing", None),
    "S3 refused in the background: the guard waits for ever": (
        lambda: observe(record("READY", 0), [pod(cmd=AWSCLI)], deployment(available=0), download=dict(dl(0), files=0, exists=False),
                        logs={"p1": {"main": ["fatal error: An error occurred (AccessDenied) when calling the ListObjectsV2 operation: Access Denied"]}}),
        J.FAILED, "download_failed", "main"),
    "a missing default-config keeps the pod in ContainerCreating": (
        lambda: observe(record("READY", 0), [pod(phase="Pending", main=container("main", state={"waiting": {"reason": "ContainerCreating"}}))],
                        deployment(available=0), events={"p1": [{"type": "Warning", "reason": "FailedMount", "count": 4,
                                                                 "firstTimestamp": ts(20), "lastTimestamp": ts(1),
                                                                 "message": MISSING_CM}]}),
        J.FAILED, "failed_mount", None),
    "one FailedMount right after the pod was written is not yet a failure": (
        lambda: observe(record("READY", 0), [pod(phase="Pending", main=container("main", state={"waiting": {"reason": "ContainerCreating"}}))],
                        deployment(available=0), events={"p1": [{"type": "Warning", "reason": "FailedMount", "count": 1,
                                                                 "firstTimestamp": ts(1), "lastTimestamp": ts(1),
                                                                 "message": MISSING_CM}]}),
        J.PROGRESSING, "scheduling", None),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_condition_gets_its_verdict(case):
    make, state, cause, container_name = CASES[case]
    verdict = J.judge(make())
    assert (verdict.state, verdict.cause) == (state, cause), (verdict.summary, verdict.evidence)
    assert verdict.container == container_name
    assert verdict.summary and verdict.fix and verdict.evidence


def test_every_cause_is_reachable_from_the_table_or_named_elsewhere():
    from tests.unit.plugins.module_utils.test_model_cache import CACHE_CASES  # the model cache's rules have their own table

    seen = {cause for _m, _s, cause, _c in [*CASES.values(), *CACHE_CASES.values()]}
    others = {"image_not_found_on_create", "unschedulable_memory", "unschedulable_storage", "unschedulable_cordoned",
              "unschedulable_other", "incomplete_files", "scheduling"}
    assert set(J.CAUSES) - seen <= others


def test_a_downloading_pod_is_never_told_to_restart():
    for cause in ("downloading", "installing", "loading", "rollout_pending"):
        fix = J.CAUSES[cause].fix.lower()
        assert "restart" not in fix or "do not restart" in fix, cause
    stall = J.CAUSES["download_stalled"].fix
    assert "S3" in stall and "throws the downloaded bytes away" in stall


def test_cpu_shortage_fix_does_not_ask_for_labels():
    verdict = J.judge(CASES["CPU shortage is not blamed on labels"][0]())
    assert "label" not in verdict.fix.split(";")[0].lower() and "cpus" in verdict.fix
    assert any("requests cpu" in e for e in verdict.evidence)


def test_blocked_rollout_says_the_old_pod_serves_and_names_the_gpu_holders():
    verdict = J.judge(CASES["update while every GPU is taken: the old pod serves"][0]())
    assert "cannot roll out" in verdict.summary and "still serve" in verdict.summary
    assert any("by ep (Running, 1 GPU), other (Running, 1 GPU)" in e for e in verdict.evidence)
    assert "maxSurge 1" in verdict.fix


def test_slow_download_reports_rate_and_eta():
    verdict = J.judge(CASES["a slow download that moves is progressing"][0]())
    assert verdict.download["rate"] == pytest.approx(1_000_000 / 120, rel=0.01)
    assert verdict.download["eta_seconds"] > 0 and "ETA" in verdict.summary and "30.0%" in verdict.summary


def test_one_slow_sample_is_not_a_stall():
    # Two samples 5 s apart with no growth: the old detector called this stalled; the newest file changed 60 s ago.
    obs = observe(record("READY", 0), [pod()], deployment(available=0), download=dl(300_000_000, idle=60),
                  history={"samples": [[NOW - 5, 300_000_000, "p1"], [NOW, 300_000_000, "p1"]]})
    assert J.judge(obs).cause == "downloading"


def test_a_verification_recorded_before_a_restart_does_not_count():
    obs = CASES["corrupt shard found by the last deep verification"][0]()
    ann = json.loads(obs.pods[0]["metadata"]["annotations"][VERIFICATION_ANNOTATION])
    ann["main_started_at"] = ts(9999)
    obs.pods[0]["metadata"]["annotations"][VERIFICATION_ANNOTATION] = json.dumps(ann)
    assert J.judge(obs).cause == "serving"


def test_an_evicted_pod_next_to_a_serving_replacement_is_history():
    evicted = pod("gone", phase="Failed", reason="Evicted", message="Pod ephemeral local storage usage exceeds the total limit of containers 50Gi.")
    obs = observe(record(), [ready_pod("p2"), evicted], deployment())
    assert J.judge(obs).state == J.SERVING


def test_limits_are_the_module_defaults():
    from ansible_collections.odp.model_engine.plugins.module_utils.args_common import ENDPOINT_JUDGE_SPEC

    for key, value in J.DEFAULT_LIMITS.items():
        if key in ENDPOINT_JUDGE_SPEC:
            assert ENDPOINT_JUDGE_SPEC[key]["default"] == value, key


def test_parse_scheduler_message_counts_per_reason():
    msg = ("0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint "
           "{nvidia.com/gpu: present}. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    assert J.parse_scheduler_message(msg) == {"Insufficient cpu": 1, "Insufficient nvidia.com/gpu": 1,
                                              "node(s) had untolerated taint {nvidia.com/gpu: present}": 1}
    assert J.unschedulable_cause(msg)[0] == "unschedulable_gpu"


def test_judge_does_not_change_the_observation():
    obs = CASES["update while every GPU is taken: the old pod serves"][0]()
    before = copy.deepcopy(obs.__dict__)
    J.judge(obs)
    assert obs.__dict__ == before
