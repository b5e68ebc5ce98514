"""Scheduler, deployment controller, kubelet image pulls and the PodRuntime contract."""

from __future__ import annotations

import asyncio
import json

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.twin.k8s import EmulatorThread, PodHandle, PodRuntime

from .conftest import assert_healthy, wait_for

pytestmark = pytest.mark.twin

GPU_NODE = {"name": "gpu-1", "labels": {"k8s.amazonaws.com/accelerator": "nvidia-ampere-a10"},
            "allocatable": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1", "ephemeral-storage": "100Gi"},
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]}
CPU_NODE = {"name": "cpu-1", "labels": {}, "allocatable": {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "20Gi"}}
GPU_TOL = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


@pytest.fixture
def cluster(tmp_path):
    t = EmulatorThread(tmp_path / "k8s", nodes=[GPU_NODE, CPU_NODE]).start()
    api = config.new_client_from_config(str(t.kubeconfig_path))
    try:
        yield t, client.CoreV1Api(api), client.AppsV1Api(api)
        assert_healthy(t)
    finally:
        api.close()
        t.stop()


def pod(name, *, limits=None, requests=None, node_selector=None, tolerations=None, image="busybox"):
    c = {"name": "main", "image": image, "resources": {}}
    if limits:
        c["resources"]["limits"] = limits
    if requests:
        c["resources"]["requests"] = requests
    spec = {"containers": [c]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    return {"metadata": {"name": name}, "spec": spec}


def sched_cond(core, name):
    p = core.read_namespaced_pod(name, "default")
    return next((c for c in p.status.conditions or [] if c.type == "PodScheduled"), None), p


def test_scheduler_gpu_selector_taints_and_unschedulable(cluster):
    _, core, _ = cluster
    core.create_namespaced_pod("default", pod("gpu-a", limits={"nvidia.com/gpu": "1"}, tolerations=GPU_TOL,
                                              node_selector={"k8s.amazonaws.com/accelerator": "nvidia-ampere-a10"}))
    wait_for(lambda: core.read_namespaced_pod("gpu-a", "default").spec.node_name == "gpu-1", message="gpu pod bound")
    # requests default to limits: the only GPU is taken now
    core.create_namespaced_pod("default", pod("gpu-b", limits={"nvidia.com/gpu": "1"}, tolerations=GPU_TOL))
    cond = wait_for(lambda: (c := sched_cond(core, "gpu-b")[0]) and c.status == "False" and c, message="unschedulable")
    assert cond.reason == "Unschedulable"
    assert cond.message.startswith("0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 Insufficient nvidia.com/gpu.") \
        or cond.message.startswith("0/2 nodes are available: 2 Insufficient nvidia.com/gpu.")
    ev = wait_for(lambda: core.list_namespaced_event("default", field_selector="involvedObject.name=gpu-b,reason=FailedScheduling").items,
                  message="FailedScheduling event")
    assert ev[0].type == "Warning" and ev[0].message == cond.message and ev[0].source.component == "default-scheduler"
    # node selector that no node matches + GPU request without toleration
    core.create_namespaced_pod("default", pod("sel", node_selector={"k8s.amazonaws.com/accelerator": "nvidia-hopper-h100"}))
    core.create_namespaced_pod("default", pod("untol", limits={"nvidia.com/gpu": "1"}))
    c = wait_for(lambda: (c := sched_cond(core, "sel")[0]) and c.status == "False" and c, message="sel unschedulable")
    assert c.message.startswith("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                                "1 node(s) had untolerated taint {nvidia.com/gpu: present}.")
    c = wait_for(lambda: (c := sched_cond(core, "untol")[0]) and c.status == "False" and c, message="untol unschedulable")
    assert c.message.startswith("0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint "
                                "{nvidia.com/gpu: present}.")
    # ephemeral-storage and cpu requests are accounted
    core.create_namespaced_pod("default", pod("disk", requests={"ephemeral-storage": "30Gi", "cpu": "1"}))
    wait_for(lambda: core.read_namespaced_pod("disk", "default").spec.node_name is None and sched_cond(core, "disk")[0], message="disk")
    c = sched_cond(core, "disk")[0]
    assert c.status == "False" and "1 Insufficient ephemeral-storage" in c.message
    core.create_namespaced_pod("default", pod("cpu-hog", requests={"cpu": "3500m"}))
    wait_for(lambda: core.read_namespaced_pod("cpu-hog", "default").spec.node_name == "cpu-1", message="cpu-hog bound")
    core.create_namespaced_pod("default", pod("cpu-2", requests={"cpu": "1"}))
    c = wait_for(lambda: (c := sched_cond(core, "cpu-2")[0]) and c.status == "False" and c, message="cpu-2 unschedulable")
    assert "1 Insufficient cpu" in c.message
    # freeing the GPU lets the pending GPU pod schedule (retry on pod deletion)
    core.delete_namespaced_pod("gpu-a", "default")
    wait_for(lambda: core.read_namespaced_pod("gpu-b", "default").spec.node_name == "gpu-1", message="gpu-b bound after delete")
    p = wait_for(lambda: (p := core.read_namespaced_pod("gpu-b", "default")).status.phase == "Running" and p, message="running")
    assert {c.type: c.status for c in p.status.conditions}["PodScheduled"] == "True"
    assert core.list_namespaced_event("default", field_selector="involvedObject.name=gpu-b,reason=Scheduled").items


def test_scheduler_retries_when_node_added(cluster):
    twin, core, _ = cluster
    core.create_namespaced_pod("default", pod("big", requests={"memory": "100Gi"}))
    wait_for(lambda: (c := sched_cond(core, "big")[0]) and c.status == "False", message="unschedulable")
    twin.call(twin.emulator.add_node, "big-node", allocatable={"cpu": "16", "memory": "256Gi"})
    wait_for(lambda: core.read_namespaced_pod("big", "default").spec.node_name == "big-node", message="bound to new node")


def deployment(name, image="app:1", replicas=1, deadline=None, strategy=None):
    d = {"metadata": {"name": name},
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"containers": [{"name": "main", "image": image}]}}}}
    if deadline is not None:
        d["spec"]["progressDeadlineSeconds"] = deadline
    if strategy:
        d["spec"]["strategy"] = strategy
    return d


class NeverReady(PodRuntime):
    """Runs pods of image app:broken: the container runs but never becomes ready."""

    def handles(self, pod):
        return pod["spec"]["containers"][0]["image"] == "app:broken"

    async def run(self, pod, handle: PodHandle):
        await handle.set_container_state("main", "running", ready=False)
        await asyncio.Event().wait()


def test_rollout_stuck_on_never_ready_pod_hits_progress_deadline(cluster):
    twin, core, apps = cluster
    twin.emulator.register_runtime(NeverReady())
    apps.create_namespaced_deployment("default", deployment("stuck", replicas=2, deadline=2))
    wait_for(lambda: (apps.read_namespaced_deployment("stuck", "default").status.available_replicas or 0) == 2, message="available")
    apps.patch_namespaced_deployment("stuck", "default", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "app:broken"}]}}}})

    def exceeded():
        d = apps.read_namespaced_deployment("stuck", "default")
        c = {c.type: c for c in d.status.conditions}
        return c["Progressing"].reason == "ProgressDeadlineExceeded" and (d, c)

    d, conds = wait_for(exceeded, timeout=10, message="ProgressDeadlineExceeded")
    assert conds["Progressing"].status == "False"
    assert conds["Progressing"].message.endswith("has timed out progressing.")
    # old pods keep serving: maxUnavailable 25% of 2 rounds down to 0
    assert d.status.available_replicas == 2 and d.status.updated_replicas == 1
    assert conds["Available"].status == "True"
    rs = apps.list_namespaced_replica_set("default", label_selector="app=stuck").items
    by_image = {r.spec.template.spec.containers[0].image: r for r in rs}
    assert by_image["app:1"].spec.replicas == 2 and by_image["app:broken"].spec.replicas == 1
    ready = [p for p in core.list_namespaced_pod("default", label_selector="app=stuck").items
             if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)]
    assert len(ready) == 2


def test_recreate_strategy_and_revision_history_limit(cluster):
    _, _, apps = cluster
    dep = deployment("rec", replicas=2, strategy={"type": "Recreate"})
    dep["spec"]["revisionHistoryLimit"] = 1
    apps.create_namespaced_deployment("default", dep)
    for img in ("app:2", "app:3", "app:4"):
        apps.patch_namespaced_deployment("rec", "default", {"spec": {"template": {"spec": {"containers": [
            {"name": "main", "image": img}]}}}})
        wait_for(lambda img=img: (d := apps.read_namespaced_deployment("rec", "default")).status.updated_replicas == 2
                 and d.status.available_replicas == 2 and (d.status.replicas or 0) == 2, message=f"rollout {img}")
    rs = apps.list_namespaced_replica_set("default", label_selector="app=rec").items
    revs = sorted(int(r.metadata.annotations["deployment.kubernetes.io/revision"]) for r in rs)
    assert revs == [3, 4]  # the current one plus revisionHistoryLimit=1 old one


def test_image_pull_backoff(cluster):
    twin, core, _ = cluster
    twin.emulator.image_exists = lambda image: not image.startswith("registry.example/missing")
    core.create_namespaced_pod("default", pod("nopull", image="registry.example/missing:1"))

    def backoff():
        p = core.read_namespaced_pod("nopull", "default")
        cs = (p.status.container_statuses or [None])[0]
        return cs and cs.state.waiting and cs.state.waiting.reason == "ImagePullBackOff" and (p, cs)

    p, cs = wait_for(backoff, message="ImagePullBackOff")
    assert cs.state.waiting.message == 'Back-off pulling image "registry.example/missing:1"'
    assert p.status.phase == "Pending" and not cs.ready
    reasons = {(e.reason, e.type) for e in core.list_namespaced_event("default", field_selector="involvedObject.name=nopull").items}
    assert {("Failed", "Warning"), ("BackOff", "Normal"), ("Pulling", "Normal")} <= reasons
    failed = [e.message for e in core.list_namespaced_event("default", field_selector="involvedObject.name=nopull,reason=Failed").items]
    assert any(m.startswith('Failed to pull image "registry.example/missing:1"') and "not found" in m for m in failed)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log("nopull", "default")
    assert "is waiting to start: trying and failing to pull image" in json.loads(e.value.body)["message"]
    # the image appears: the kubelet's next retry succeeds
    twin.emulator.image_exists = lambda image: True
    wait_for(lambda: core.read_namespaced_pod("nopull", "default").status.phase == "Running", timeout=10, message="running")


class Scripted(PodRuntime):
    """A custom runtime: a crash, a restart, an OOM-kill (137) and an exposed port."""

    def __init__(self):
        self.handles_seen: list[PodHandle] = []

    def handles(self, pod):
        return (pod["metadata"].get("labels") or {}).get("runtime") == "scripted"

    async def run(self, pod, h: PodHandle):
        self.handles_seen.append(h)
        (h.container_root("main") / "model.txt").write_text("weights")
        await h.set_container_state("main", "running")
        h.log("main", "booting\nfirst run\n")
        await asyncio.sleep(0.1)
        await h.set_container_state("main", "terminated", exit_code=1, reason="Error")
        await h.event("BackOff", "Back-off restarting failed container main in pod", "Warning")
        await asyncio.sleep(0.1)
        await h.set_container_state("main", "running", restart=True)
        h.log("main", "second run\n")
        await h.set_ready("main", True)
        await asyncio.sleep(0.5)
        await h.set_container_state("main", "terminated", exit_code=137, reason="OOMKilled")
        await asyncio.Event().wait()


def test_custom_runtime_states_restarts_logs_exec(cluster):
    twin, core, _ = cluster
    rt = Scripted()
    twin.emulator.register_runtime(rt)
    body = pod("scripted")
    body["metadata"]["labels"] = {"runtime": "scripted"}
    body["spec"]["restartPolicy"] = "Never"
    core.create_namespaced_pod("default", body)

    def ready():
        p = core.read_namespaced_pod("scripted", "default")
        cs = (p.status.container_statuses or [None])[0]
        return cs and cs.ready and (p, cs)

    p, cs = wait_for(ready, message="ready after restart")
    assert cs.restart_count == 1 and cs.state.running and p.status.phase == "Running"
    assert cs.last_state.terminated.exit_code == 1 and cs.last_state.terminated.reason == "Error"
    assert {c.type: c.status for c in p.status.conditions}["Ready"] == "True"
    assert core.read_namespaced_pod_log("scripted", "default", container="main") == "second run\n"
    assert core.read_namespaced_pod_log("scripted", "default", container="main", previous=True) == "booting\nfirst run\n"
    stamped = core.read_namespaced_pod_log("scripted", "default", timestamps=True)
    assert stamped.split(" ", 1)[1] == "second run\n" and stamped[:4].isdigit()
    from kubernetes.stream import stream

    out = stream(core.connect_get_namespaced_pod_exec, "scripted", "default", command=["cat", "model.txt"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "weights"

    def oom():
        p = core.read_namespaced_pod("scripted", "default")
        t = p.status.container_statuses[0].state.terminated
        return t and (p, t)

    p, t = wait_for(oom, message="terminated 137")
    assert t.exit_code == 137 and t.reason == "OOMKilled" and p.status.phase == "Failed"
    assert {c.type: c.status for c in p.status.conditions}["Ready"] == "False"
    sandbox = rt.handles_seen[0].sandbox
    assert sandbox.is_dir()
    core.delete_namespaced_pod("scripted", "default")
    wait_for(lambda: not sandbox.exists(), message="sandbox removed")


def test_garbage_collection_orphan_and_background(cluster):
    _, core, apps = cluster
    apps.create_namespaced_deployment("default", deployment("gc", replicas=2))
    wait_for(lambda: (apps.read_namespaced_deployment("gc", "default").status.ready_replicas or 0) == 2, message="ready")
    apps.delete_namespaced_deployment("gc", "default", propagation_policy="Orphan")
    rs = apps.list_namespaced_replica_set("default", label_selector="app=gc").items
    assert len(rs) == 1 and not rs[0].metadata.owner_references
    apps.delete_namespaced_replica_set(rs[0].metadata.name, "default")
    assert core.list_namespaced_pod("default", label_selector="app=gc").items == []
