"""The model cache's pure functions (settings, StorageClass and size checks, a claim's state from its events, a pod's
cache, the marker check, the cache-hit decision) and the judge's cache rules, on objects shaped as a real cluster and
the upstream protocol write them."""

from __future__ import annotations

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils import judge as J
from ansible_collections.odp.model_engine.plugins.module_utils import model_cache as M
from ansible_collections.odp.model_engine.plugins.module_utils.errors import SpecError
from tests.unit.plugins.module_utils.test_judge import NOW, container, deployment, dl, observe, pod, ready_pod, record, ts, unschedulable

FP = "a" * 64
CLAIM = "launch-endpoint-id-end-x-model-cache"
CACHE_CMD = ("set -euo pipefail;expected_model_cache_fingerprint=%s;model_cache_ready() { [ -f /mnt/model-cache/model_files/.complete ] "
             "&& ...; }; model_cache_lock_stale() { ...; [ $((now - last_heartbeat)) -gt 600 ]; };mkdir -p /mnt/model-cache/model_files;"
             "while ! model_cache_ready; do ...; done;python -m vllm_server --model /mnt/model-cache/model_files "
             "--served-model-name m model_files /mnt/model-cache/model_files --port 5005" % FP)


def sc(name, provisioner, mode="Immediate", default=False):
    return {"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": {M.DEFAULT_CLASS_ANNOTATION: "true"} if default else {}},
            "provisioner": provisioner, "volumeBindingMode": mode}


CLASSES = [sc("ceph-rbd", "rbd.csi.ceph.com", default=True), sc("cephfs", "cephfs.csi.ceph.com"),
           sc("local-imm", "rancher.io/local-path"), sc("local-path", "rancher.io/local-path", "WaitForFirstConsumer"),
           sc("vendor", "csi.example.com")]


# ------------------------------------------------------------------------------------------------ settings and preflight
def test_settings_fill_defaults_and_refuse_what_cannot_work():
    assert M.settings({"enabled": True}) == dict(M.DEFAULTS, enabled=True)
    assert M.chart_values({"enabled": True, "storage_class": "cephfs", "storage": "200Gi"}) == {
        "enabled": True, "storage": "200Gi", "storageClassName": "cephfs", "accessMode": "ReadWriteMany",
        "mountPath": "/mnt/model-cache", "lockStaleSeconds": 600}
    for bad, text in (({"access_mode": "RWX"}, "access_mode"), ({"storage": "100GB"}, "storage"), ({"mount_path": "cache"}, "absolute"),
                      ({"lock_stale_seconds": 0}, "positive"), ({"size": "1Gi"}, "unknown key")):
        with pytest.raises(SpecError, match=text):
            M.settings(bad)


def test_rwx_on_ceph_rbd_is_refused_with_both_ways_out():
    problems, _warnings, facts = M.check_storage_class({"storage_class": "ceph-rbd", "access_mode": "ReadWriteMany"}, CLASSES)
    assert len(problems) == 1 and "never binds" in problems[0]
    assert "CephFS" in problems[0] and "ReadWriteOnce with one replica" in problems[0]
    assert facts["provisioner"] == "rbd.csi.ceph.com"
    # the default class is RBD: an empty storage_class is the same mistake
    assert M.check_storage_class({"access_mode": "ReadWriteMany"}, CLASSES)[0]


def test_storage_class_checks():
    assert M.check_storage_class({"storage_class": "cephfs"}, CLASSES)[0] == []
    ok, warnings, _facts = M.check_storage_class({"storage_class": "ceph-rbd", "access_mode": "ReadWriteOnce"}, CLASSES, {"big": 2, "small": 1})
    assert ok == [] and "big (2)" in warnings[0] and "one node" in warnings[0]
    missing = M.check_storage_class({"storage_class": "fast"}, CLASSES)[0]
    assert "does not exist" in missing[0] and "cephfs" in missing[0]
    assert "no default StorageClass" in M.check_storage_class({}, CLASSES[1:])[0][0]
    imm = M.check_storage_class({"storage_class": "local-imm", "access_mode": "ReadWriteOnce"}, CLASSES)[0]
    assert "WaitForFirstConsumer" in imm[0] and "volume node affinity conflict" in imm[0]
    assert M.check_storage_class({"storage_class": "local-path", "access_mode": "ReadWriteOnce"}, CLASSES)[0] == []
    unknown = M.check_storage_class({"storage_class": "vendor"}, CLASSES)
    assert unknown[0] == [] and "test_claim" in unknown[1][0]


def test_size_must_hold_the_largest_checkpoint_with_headroom():
    problems, facts = M.check_size({"storage": "10Gi"}, {"s3://b/small/": 2 ** 30, "s3://b/big/": 10 * 2 ** 30})
    assert "s3://b/big/" in problems[0] and "raise storage" in problems[0] and facts["needed_bytes"] == int(10 * 2 ** 30 * 1.05)
    assert M.check_size({"storage": "11Gi"}, {"s3://b/big/": 10 * 2 ** 30})[0] == []
    assert M.check_size({"storage": "1Gi"}, {})[0] == []


# ------------------------------------------------------------------------------------------------ a claim's events
def claim(phase="Pending", cls="ceph-rbd", created=30, volume=None):
    return {"metadata": {"name": CLAIM, "creationTimestamp": ts(created)},
            "spec": {"storageClassName": cls, "accessModes": ["ReadWriteMany"], **({"volumeName": volume} if volume else {})},
            "status": {"phase": phase}}


def event(reason, message, type_="Normal", count=1):
    return {"reason": reason, "message": message, "type": type_, "count": count}


EXT = event("ExternalProvisioning", "Waiting for a volume to be created either by the external provisioner 'rbd.csi.ceph.com' or "
                                    "manually by the system administrator. If volume creation is delayed, please verify that the "
                                    "provisioner is running and correctly registered.", count=9)
RBD_RWX = event("ProvisioningFailed", 'failed to provision volume with StorageClass "ceph-rbd": rpc error: code = InvalidArgument '
                                      "desc = multi node access modes are only supported on rbd `block` type volumes", "Warning")


@pytest.mark.parametrize("events, created, state", [
    ([EXT, event("Provisioning", 'External provisioner is provisioning volume for claim "llm-core/x"'), RBD_RWX], 30, "access_mode"),
    ([event("ProvisioningFailed", 'storageclass.storage.k8s.io "fast" not found', "Warning")], 30, "no_class"),
    ([event("FailedBinding", "no persistent volumes available for this claim and no storage class is set")], 30, "no_class"),
    ([EXT, event("Provisioning", "..."), event("ProvisioningFailed", 'failed to provision volume with StorageClass "ceph-rbd": rpc error: '
                                                                     "code = Internal desc = failed to create rbd image: rbd: ret=-122, "
                                                                     "Disk quota exceeded", "Warning")], 30, "capacity"),
    ([event("WaitForFirstConsumer", "waiting for first consumer to be created before binding")], 30, "wait_first_consumer"),
    ([EXT], 30, "pending"),
    ([EXT], 300, "no_provisioner"),
    ([EXT, event("Provisioning", "...")], 300, "pending"),
])
def test_claim_state_reads_the_events_a_cluster_writes(events, created, state):
    got, evidence = M.claim_state(claim(created=created), events, now=NOW, bind_timeout=120)
    assert got == state
    assert CLAIM in evidence[0]


def test_a_bound_claim_and_its_volume_nodes():
    assert M.claim_state(claim("Bound", volume="pvc-1"), [RBD_RWX])[0] == "bound"
    pv = {"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["c01"]}]}]}}}}
    assert M.pv_nodes(pv) == ["c01"] and M.pv_nodes({"spec": {}}) is None


# ------------------------------------------------------------------------------------------------ the pod and the marker
def cache_pod(volume="claim", **kw):
    p = pod(cmd=CACHE_CMD, **kw)
    vol = {"name": "model-cache", **({"persistentVolumeClaim": {"claimName": CLAIM}} if volume == "claim" else {"emptyDir": {}})}
    p["spec"]["volumes"] = [vol]
    p["spec"]["containers"][1]["volumeMounts"] = [{"name": "model-cache", "mountPath": "/mnt/model-cache"}]
    return p


def test_pod_cache_reads_volume_mount_and_the_protocol_from_the_command():
    info = M.pod_cache(cache_pod())
    assert info == {"volume": "claim", "claim": CLAIM, "mount_path": "/mnt/model-cache", "model_dir": "/mnt/model-cache/model_files",
                    "fingerprint": FP, "lock_stale_seconds": 600}
    assert M.pod_cache(cache_pod("emptyDir"))["volume"] == "emptyDir"
    plain = M.pod_cache(pod(cmd="./s5cmd cp s3://b/m/* model_files;python -m vllm_server --model model_files"))
    assert plain["fingerprint"] is None and plain["model_dir"] == "model_files" and plain["volume"] is None
    assert M.cache_enabled({"spec": {"metadata": {"_llm": {"model_cache_enabled": True}}}})
    assert not M.cache_enabled({"spec": {"metadata": {"_llm": {"model_cache_enabled": False}}}}) and not M.cache_enabled({})


def marker(complete=FP, complete_ago=60, lock=False, beat_ago=5):
    out = {"now": NOW, "complete": complete + "\n" if complete else None, "complete_mtime": NOW - complete_ago if complete else None,
           "lock": lock, "heartbeat": int(NOW - beat_ago) if lock else None, "lock_mtime": NOW - 100 if lock else None}
    return out


def test_marker_check():
    ok = M.evaluate_marker(marker(), FP)
    assert ok["complete"] and ok["matches"] and not ok["lock"] and ok["problems"] == []
    other = M.evaluate_marker(marker("b" * 64), FP)
    assert other["matches"] is False and other["problems"][0]["problem"] == "cache_marker_mismatch"
    fresh = M.evaluate_marker(marker(None, lock=True, beat_ago=20), FP, 90, 600)
    assert fresh["fresh"] and not fresh["stale"] and fresh["problems"] == []
    old = M.evaluate_marker(marker(None, lock=True, beat_ago=700), FP, 90, 600)
    assert not old["fresh"] and old["stale"] and old["problems"][0]["problem"] == "cache_lock_stale"


def test_cache_hit_is_a_marker_older_than_the_container():
    ev = M.evaluate_marker(marker(complete_ago=60), FP)
    assert M.cache_hit(ev, ts(30))                       # written 30 s before main started
    assert not M.cache_hit(M.evaluate_marker(marker(complete_ago=10), FP), ts(30))   # written by this container
    same_second = M.evaluate_marker(dict(marker(), complete_mtime=NOW - 30 + 0.5), FP)
    start = ts(30)   # RFC 3339 seconds: the marker falls in the start's second
    from ansible_collections.odp.model_engine.plugins.module_utils.podstate import parse_timestamp

    same_second["complete_mtime"] = parse_timestamp(start) + 0.5
    assert M.cache_hit(same_second, start, downloaded_lines=0) and not M.cache_hit(same_second, start, downloaded_lines=3)
    assert not M.cache_hit(M.evaluate_marker(marker("b" * 64), FP), ts(30))


def test_protocol_files_are_not_model_files():
    files = {"config.json": {}, ".complete": {}, ".download.lock/heartbeat": {}, "model.safetensors": {}}
    assert sorted(M.strip_protocol_files(files)) == ["config.json", "model.safetensors"]


def test_provisioner_table():
    assert M.provisioner_info("rook-ceph.rbd.csi.ceph.com")["storage"] == "Ceph RBD"
    assert "ReadWriteMany" in M.provisioner_info("cephfs.csi.ceph.com")["access_modes"]
    assert M.provisioner_info("rancher.io/local-path")["node_local"] and M.provisioner_info("x.example.com") is None


# ------------------------------------------------------------------------------------------------ the judge's cache rules
def cache_record(status="READY", workers=0):
    rec = record(status, workers)
    rec["spec"]["metadata"] = {"_llm": {"model_cache_enabled": True}}
    return rec


def cache_dep(volume="claim"):
    dep = deployment(available=0)
    dep["spec"]["template"] = {"spec": cache_pod(volume)["spec"]}
    return dep


def cache(pods, volume="claim", pvc=None, events=(), pv=None, storage_class=None, builder_warning=None, mark=None, started=None):
    tmpl = M.pod_cache(cache_pod(volume))
    return {"claim_name": CLAIM, "claim": pvc, "claim_events": list(events), "pv": pv, "storage_class": storage_class,
            "pod": M.pod_cache(pods[0]) if pods else tmpl, "template": tmpl, "builder_warning": builder_warning, "marker": mark,
            "marker_pod": pods[0]["metadata"]["name"] if (pods and mark) else None, "started_at": started,
            "downloaded_lines": 0, "model_dir": "/mnt/model-cache/model_files"}


def cache_obs(pods, status="READY", workers=0, volume="claim", download=None, logs=None, **kw):
    obs = observe(cache_record(status, workers), pods, cache_dep(volume), download=download, logs=logs)
    obs.cache = cache(pods, volume, **kw)
    return obs


PENDING_POD = dict(phase="Pending", main=container("main", state={"waiting": {"reason": "ContainerCreating"}}))
UNBOUND = unschedulable("0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are "
                        "available: 2 Preemption is not helpful for scheduling.")
WARNING = "pod model-engine-endpoint-builder-x: /workspace/.../k8s_endpoint_resource_delegate.py:1873: RuntimeWarning: " + M.ASYNC_BUG
PV_C01 = {"metadata": {"name": "pvc-1"}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["hpc-k8s-phy-wrk-c01"]}]}]}}}}
CONFLICT = unschedulable("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had volume node "
                         "affinity conflict. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
WAIT_LOG = {"p1": {"main": [M.WAITING_LINE, M.WAITING_LINE]}}

CACHE_CASES = {
    "cache: async bug, EmptyDir in the pod and the builder's warning": (
        lambda: cache_obs([cache_pod("emptyDir")], volume="emptyDir", builder_warning=WARNING), J.DEGRADED, "cache_emptydir_fallback", None),
    "cache: EmptyDir and no claim, even without the log line": (
        lambda: cache_obs([ready_pod()], "READY", 1, volume="emptyDir"), J.DEGRADED, "cache_emptydir_fallback", None),
    "cache: claim missing": (
        lambda: cache_obs([cache_pod(**PENDING_POD, conditions=unschedulable(
            '0/2 nodes are available: persistentvolumeclaim "%s" not found. preemption: ...' % CLAIM))]), J.FAILED, "cache_claim_missing", None),
    "cache: RWX on Ceph RBD never binds": (
        lambda: cache_obs([cache_pod(**PENDING_POD, conditions=UNBOUND)], pvc=claim(), events=[EXT, event("Provisioning", "..."), RBD_RWX]),
        J.FAILED, "cache_claim_access_mode", None),
    "cache: no provisioner answers": (
        lambda: cache_obs([cache_pod(**PENDING_POD, conditions=UNBOUND)], pvc=claim(created=300), events=[EXT]),
        J.FAILED, "cache_claim_no_provisioner", None),
    "cache: the pool is full": (
        lambda: cache_obs([cache_pod(**PENDING_POD, conditions=UNBOUND)], pvc=claim(), events=[event(
            "ProvisioningFailed", "failed to provision volume with StorageClass \"ceph-rbd\": rpc error: code = ResourceExhausted desc = x",
            "Warning")]), J.FAILED, "cache_claim_capacity", None),
    "cache: the class does not exist": (
        lambda: cache_obs([cache_pod(**PENDING_POD, conditions=UNBOUND)], pvc=claim(cls="fast"), events=[event(
            "ProvisioningFailed", 'storageclass.storage.k8s.io "fast" not found', "Warning")]), J.FAILED, "cache_claim_no_class", None),
    "cache: other provisioning error": (
        lambda: cache_obs([cache_pod(**PENDING_POD, conditions=UNBOUND)], pvc=claim(), events=[event(
            "ProvisioningFailed", "failed to provision volume: rpc error: code = Unavailable desc = mons down", "Warning")]),
        J.FAILED, "cache_claim_pending", None),
    "cache: a claim still provisioning is scheduling": (
        lambda: cache_obs([cache_pod(**PENDING_POD, conditions=UNBOUND)], pvc=claim(created=5), events=[EXT]),
        J.PROGRESSING, "scheduling", None),
    "cache: the claim just bound, the scheduler has not tried the pod again yet": (
        lambda: cache_obs([cache_pod(**PENDING_POD, conditions=UNBOUND)], pvc=claim("Bound", volume="pvc-1")), J.PROGRESSING, "scheduling",
        None),
    "cache: a node-local volume on the CPU node": (
        lambda: cache_obs([cache_pod(**PENDING_POD, conditions=CONFLICT)], pvc=claim("Bound", "local-imm", volume="pvc-1"), pv=PV_C01,
                          storage_class=sc("local-imm", "rancher.io/local-path")), J.FAILED, "cache_volume_node_conflict", None),
    "cache: waiting for the other replica's fresh lock": (
        lambda: cache_obs([cache_pod()], pvc=claim("Bound", volume="pvc-1"), mark=marker(None, lock=True, beat_ago=10), logs=WAIT_LOG,
                          started=ts(30)), J.PROGRESSING, "cache_waiting", None),
    "cache: waiting on an orphaned lock": (
        lambda: cache_obs([cache_pod()], pvc=claim("Bound", volume="pvc-1"), mark=marker(None, lock=True, beat_ago=200), logs=WAIT_LOG,
                          started=ts(30)), J.PROGRESSING, "cache_lock_orphaned", None),
    "cache: a stale lock left behind on a serving endpoint": (
        lambda: cache_obs([ready_pod(cmd=CACHE_CMD)], "READY", 1, pvc=claim("Bound", volume="pvc-1"),
                          mark=marker(lock=True, beat_ago=900), started=ts(30)), J.DEGRADED, "cache_lock_stale", None),
    "cache: restart with a complete cache is a cache hit": (
        lambda: cache_obs([cache_pod()], pvc=claim("Bound", volume="pvc-1"), download=dl(10 ** 9, complete=True, idle=1),
                          mark=marker(complete_ago=60), started=ts(30)), J.PROGRESSING, "cache_hit", "main"),
    "cache: the first download into the claim is a download": (
        lambda: cache_obs([cache_pod()], pvc=claim("Bound", volume="pvc-1"), download=dl(10 ** 8),
                          mark=marker(None, lock=True, beat_ago=5), started=ts(30)), J.PROGRESSING, "downloading", "main"),
}


@pytest.mark.parametrize("case", list(CACHE_CASES), ids=list(CACHE_CASES))
def test_each_cache_condition_gets_its_verdict(case):
    make, state, cause, container_name = CACHE_CASES[case]
    verdict = J.judge(make())
    assert (verdict.state, verdict.cause) == (state, cause), (verdict.summary, verdict.evidence)
    assert verdict.container == container_name
    assert verdict.summary and verdict.fix and verdict.evidence


def test_the_verdicts_say_what_an_operator_needs():
    rbd = J.judge(CACHE_CASES["cache: RWX on Ceph RBD never binds"][0]())
    assert "CephFS" in rbd.fix and any("multi node access modes" in e for e in rbd.evidence)
    bug = J.judge(CACHE_CASES["cache: async bug, EmptyDir in the pod and the builder's warning"][0]())
    assert any(M.ASYNC_BUG in e for e in bug.evidence) and "await" in bug.fix
    orphan = J.judge(CACHE_CASES["cache: waiting on an orphaned lock"][0]())
    assert "Stale model-cache lock" in orphan.summary and "rm -rf" in orphan.fix
    conflict = J.judge(CACHE_CASES["cache: a node-local volume on the CPU node"][0]())
    assert "hpc-k8s-phy-wrk-c01" in conflict.summary and "WaitForFirstConsumer" in conflict.fix
    hit = J.judge(CACHE_CASES["cache: restart with a complete cache is a cache hit"][0]())
    assert hit.summary.startswith("Cache hit") and "nothing was downloaded" in hit.summary
    serving = cache_obs([ready_pod(cmd=CACHE_CMD)], "READY", 1, pvc=claim("Bound", volume="pvc-1"), mark=marker(complete_ago=60),
                        started=ts(30))
    assert "cache hit" in J.judge(serving).summary
