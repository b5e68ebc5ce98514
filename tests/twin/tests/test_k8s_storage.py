"""Persistent storage in the emulator: StorageClasses, claims bound by simulated CSI provisioners (Ceph RBD serves only
ReadWriteOnce filesystem volumes, CephFS ReadWriteMany, a node-local provisioner pins its volumes to a node), the events a
real cluster writes, the scheduler's volume binding, volume data that outlives pods, exec seeing the mount; through real
kubectl, the kubernetes Python client and kubernetes.core."""

from __future__ import annotations

import json
import subprocess

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.twin.k8s import EmulatorThread
from tests.twin.k8s.storage import Provisioner, ceph_rbd, cephfs, local_path

from .conftest import VENV_BIN, Kubectl, assert_healthy, tool_env, wait_for

pytestmark = pytest.mark.twin

NODES = [{"name": "c01", "labels": {"node-lifecycle": "normal"}},
         {"name": "g01", "labels": {"k8s.amazonaws.com/accelerator": "nvidia-tesla-t4"}, "allocatable": {"nvidia.com/gpu": "1"}}]
CLASSES = """apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: ceph-rbd
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rbd.csi.ceph.com
parameters: {clusterID: ceph, pool: rbd}
reclaimPolicy: Delete
allowVolumeExpansion: true
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: cephfs}
provisioner: cephfs.csi.ceph.com
reclaimPolicy: Retain
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local-now}
provisioner: rancher.io/local-path
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local-late}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: nobody}
provisioner: csi.vendor.example.com
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: tiny}
provisioner: tiny.csi.example.com
"""


def claim(name, mode="ReadWriteOnce", cls=None, size="10Gi", ns="st"):
    cls_line = f"\n  storageClassName: {cls}" if cls else ""
    return f"""apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}, namespace: {ns}}}
spec:
  accessModes: [{mode}]{cls_line}
  resources: {{requests: {{storage: {size}}}}}
"""


def pod(name, claim_name, gpu=False, ns="st"):
    sel = "\n  nodeSelector: {k8s.amazonaws.com/accelerator: nvidia-tesla-t4}" if gpu else ""
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}}}
spec:{sel}
  containers:
    - name: main
      image: busybox
      volumeMounts: [{{name: cache, mountPath: /mnt/twin-cache-test/data}}]
  volumes: [{{name: cache, persistentVolumeClaim: {{claimName: {claim_name}}}}}]
"""


@pytest.fixture
def storage(tmp_path):
    t = EmulatorThread(tmp_path / "k8s", nodes=NODES).start()
    try:
        for prov in (ceph_rbd(), cephfs(), local_path(), Provisioner("tiny.csi.example.com", capacity=5 * 2 ** 30,
                                                                     capacity_error="rpc error: code = ResourceExhausted desc = "
                                                                                    "pool full")):
            t.call(t.emulator.add_provisioner, prov)
        k = Kubectl(t, tmp_path)
        k("create", "namespace", "st")
        k("apply", "-f", "-", input=CLASSES)
        yield t, k
        assert_healthy(t)
    finally:
        t.stop()


def phase(k, name, kind="pvc", ns="st"):
    args = ["get", kind, name, "-o", "jsonpath={.status.phase}"] + (["-n", ns] if kind == "pvc" else [])
    return k(*args).stdout


def events(k, name):
    return [(e["reason"], e["message"]) for e in json.loads(k("get", "events", "-n", "st", "--field-selector",
                                                               f"involvedObject.name={name}", "-o", "json").stdout)["items"]]


def test_kubectl_gets_the_new_kinds_and_claims_bind_by_the_provisioners_rules(storage):
    t, k = storage
    sc = k("get", "sc").stdout
    assert sc.split("\n")[0].split() == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"]
    assert "ceph-rbd (default)   rbd.csi.ceph.com" in sc and "local-late" in sc and "WaitForFirstConsumer" in sc
    for name, mode, cls, size in (("fs", "ReadWriteMany", "cephfs", "10Gi"), ("rbd-rwx", "ReadWriteMany", None, "10Gi"),
                                  ("rbd-rwo", "ReadWriteOnce", None, "10Gi"), ("gone", "ReadWriteOnce", "fast", "1Gi"),
                                  ("orphan", "ReadWriteOnce", "nobody", "1Gi"), ("big", "ReadWriteOnce", "tiny", "20Gi")):
        k("apply", "-f", "-", input=claim(name, mode, cls, size))
    wait_for(lambda: phase(k, "fs") == "Bound" and phase(k, "rbd-rwo") == "Bound", message="claims bound")
    fs = json.loads(k("get", "pvc", "fs", "-n", "st", "-o", "json").stdout)
    assert fs["spec"]["volumeName"] == "pvc-" + fs["metadata"]["uid"]
    assert fs["status"] == {"phase": "Bound", "accessModes": ["ReadWriteMany"], "capacity": {"storage": "10Gi"}}
    assert fs["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == "cephfs.csi.ceph.com"
    # DefaultStorageClass admission gave the class-less claims ceph-rbd
    assert k("get", "pvc", "rbd-rwx", "-n", "st", "-o", "jsonpath={.spec.storageClassName}").stdout == "ceph-rbd"
    pv = k("get", "pv", fs["spec"]["volumeName"]).stdout
    assert "RWX" in pv and "Retain" in pv and "st/fs" in pv and "cephfs" in pv and "Bound" in pv
    wait_for(lambda: any(r == "ProvisioningFailed" for r, _ in events(k, "rbd-rwx")), message="RBD refusal")
    assert ("ProvisioningFailed", 'failed to provision volume with StorageClass "ceph-rbd": rpc error: code = InvalidArgument desc = '
            "multi node access modes are only supported on rbd `block` type volumes") in events(k, "rbd-rwx")
    assert phase(k, "rbd-rwx") == "Pending"
    assert ("ProvisioningFailed", 'storageclass.storage.k8s.io "fast" not found') in events(k, "gone")
    wait_for(lambda: any(r == "ProvisioningFailed" for r, _ in events(k, "big")), message="capacity refusal")
    assert "ResourceExhausted" in dict(events(k, "big"))["ProvisioningFailed"]
    orphan = dict(events(k, "orphan"))
    assert set(orphan) == {"ExternalProvisioning"} and "external provisioner 'csi.vendor.example.com'" in orphan["ExternalProvisioning"]
    describe = k("describe", "pvc", "rbd-rwx", "-n", "st").stdout
    assert "Pending" in describe and "multi node access modes" in describe
    listed = k("get", "pvc,pv,sc", "-n", "st").stdout
    assert "persistentvolumeclaim/fs" in listed and "persistentvolume/pvc-" in listed and "storageclass.storage.k8s.io/cephfs" in listed
    # the Python client's typed models read them
    from kubernetes import config

    api = config.new_client_from_config(str(t.kubeconfig_path))
    assert {c.metadata.name for c in client.StorageV1Api(api).list_storage_class().items} >= {"ceph-rbd", "cephfs"}
    assert client.CoreV1Api(api).read_persistent_volume(fs["spec"]["volumeName"]).spec.claim_ref.name == "fs"
    with pytest.raises(ApiException) as bad:
        client.CoreV1Api(api).create_namespaced_persistent_volume_claim("st", {"metadata": {"name": "bad"}, "spec": {}})
    assert bad.value.status == 422 and "at least 1 access mode is required" in bad.value.body
    api.close()
    changed = k("apply", "-f", "-", input=claim("fs", "ReadWriteOnce", "cephfs"), check=False)
    assert changed.returncode != 0 and "spec is immutable after creation except resources.requests" in changed.stderr


def test_the_scheduler_binds_volumes_and_honours_their_node_affinity(storage):
    _t, k = storage
    k("apply", "-f", "-", input=claim("late", cls="local-late"))
    wait_for(lambda: ("WaitForFirstConsumer", "waiting for first consumer to be created before binding") in events(k, "late"),
             message="WaitForFirstConsumer")
    k("apply", "-f", "-", input=pod("gpu-late", "late", gpu=True))
    wait_for(lambda: k("get", "pod", "gpu-late", "-n", "st", "-o", "jsonpath={.spec.nodeName}").stdout == "g01", message="pod bound to g01")
    assert k("get", "pvc", "late", "-n", "st", "-o", "jsonpath={.metadata.annotations.volume\\.kubernetes\\.io/selected-node}").stdout == "g01"
    late_pv = k("get", "pvc", "late", "-n", "st", "-o", "jsonpath={.spec.volumeName}").stdout
    assert "g01" in k("get", "pv", late_pv, "-o", "jsonpath={.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values}").stdout

    # Immediate binding on a node-local provisioner: the volume lands on c01 (the first node), the GPU pod cannot follow
    k("apply", "-f", "-", input=claim("now", cls="local-now"))
    wait_for(lambda: phase(k, "now") == "Bound", message="immediate claim bound")
    k("apply", "-f", "-", input=pod("gpu-now", "now", gpu=True))

    def condition(name):
        conds = json.loads(k("get", "pod", name, "-n", "st", "-o", "json").stdout)["status"].get("conditions") or []
        return next((c for c in conds if c["type"] == "PodScheduled" and c["status"] == "False"), None)

    cond = wait_for(lambda: condition("gpu-now"), message="unschedulable")
    assert cond["message"] == ("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had volume "
                               "node affinity conflict. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
    k("apply", "-f", "-", input=pod("no-claim", "missing"))
    assert wait_for(lambda: condition("no-claim"), message="missing claim")["message"] == (
        '0/2 nodes are available: persistentvolumeclaim "missing" not found. preemption: 0/2 nodes are available: 2 Preemption '
        "is not helpful for scheduling.")
    k("apply", "-f", "-", input=claim("rwx", "ReadWriteMany"))
    k("apply", "-f", "-", input=pod("unbound", "rwx"))
    assert "pod has unbound immediate PersistentVolumeClaims" in wait_for(lambda: condition("unbound"), message="unbound")["message"]
    warn = k("get", "events", "-n", "st", "--field-selector", "involvedObject.name=gpu-now,reason=FailedScheduling").stdout
    assert "volume node affinity conflict" in warn


def test_volume_data_outlives_pods_exec_sees_the_mount_and_the_claim_takes_it_away(storage, tmp_path):
    t, k = storage
    k("apply", "-f", "-", input=claim("data", "ReadWriteMany", "cephfs"))
    k("apply", "-f", "-", input=pod("writer", "data"))
    wait_for(lambda: k("get", "pod", "writer", "-n", "st", "-o", "jsonpath={.status.phase}").stdout == "Running", message="writer runs")
    k("exec", "writer", "-n", "st", "--", "sh", "-c", "echo kept > /mnt/twin-cache-test/data/marker")
    pv_name = k("get", "pvc", "data", "-n", "st", "-o", "jsonpath={.spec.volumeName}").stdout
    assert (t.emulator.volumes_dir / pv_name / "marker").read_text() == "kept\n"
    k("delete", "pod", "writer", "-n", "st")
    k("apply", "-f", "-", input=pod("reader", "data"))
    wait_for(lambda: k("get", "pod", "reader", "-n", "st", "-o", "jsonpath={.status.phase}").stdout == "Running", message="reader runs")
    assert k("exec", "reader", "-n", "st", "--", "cat", "/mnt/twin-cache-test/data/marker").stdout == "kept\n"
    # kubernetes.core reads and deletes the new kinds
    env = tool_env(tmp_path, t.kubeconfig_path)
    env.update({"ANSIBLE_LOCALHOST_WARNING": "False", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
                "ANSIBLE_PYTHON_INTERPRETER": str(VENV_BIN / "python")})
    play = tmp_path / "storage.yml"
    play.write_text(f"""- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Read the volume
      kubernetes.core.k8s_info: {{kind: PersistentVolume, name: {pv_name}}}
      register: pv
    - name: Read the classes
      kubernetes.core.k8s_info: {{api_version: storage.k8s.io/v1, kind: StorageClass}}
      register: sc
    - name: Check
      ansible.builtin.assert:
        that:
          - pv.resources[0].spec.claimRef.name == 'data'
          - sc.resources | length == 6
    - name: Delete the claim
      kubernetes.core.k8s: {{kind: PersistentVolumeClaim, name: data, namespace: st, state: absent}}
""")
    run = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(play)], env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # reclaim policy Retain (cephfs): the volume is Released and keeps its data
    wait_for(lambda: phase(k, pv_name, "pv") == "Released", message="Released")
    k("apply", "-f", "-", input=claim("scratch", "ReadWriteOnce"))
    wait_for(lambda: phase(k, "scratch") == "Bound", message="scratch bound")
    scratch_pv = k("get", "pvc", "scratch", "-n", "st", "-o", "jsonpath={.spec.volumeName}").stdout
    (t.emulator.volumes_dir / scratch_pv / "x").write_text("x")
    k("delete", "pvc", "scratch", "-n", "st")
    # reclaim policy Delete (ceph-rbd): the volume and its data go
    wait_for(lambda: k("get", "pv", scratch_pv, check=False).returncode != 0, message="PV deleted")
    wait_for(lambda: not (t.emulator.volumes_dir / scratch_pv).exists(), message="data removed")
