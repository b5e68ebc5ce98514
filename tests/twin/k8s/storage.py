"""Persistent storage: the persistentvolume-controller, simulated CSI external provisioners, and the volume binding
rules the scheduler applies (its VolumeBinding plugin).

What a cluster with dynamic provisioning does, as its components write it into the API:

* A claim without ``storageClassName`` gets the default class at creation (DefaultStorageClass admission,
  ``objects.admit_create``); with no class at all it waits for a matching PersistentVolume (Normal ``FailedBinding``
  "no persistent volumes available for this claim and no storage class is set").
* A class that does not exist: Warning ``ProvisioningFailed`` ``storageclass.storage.k8s.io "<name>" not found``.
* ``volumeBindingMode: WaitForFirstConsumer``: Normal ``WaitForFirstConsumer`` "waiting for first consumer to be
  created before binding" until the scheduler picks a node for a pod that uses it (annotation
  ``volume.kubernetes.io/selected-node``).
* Otherwise the claim is handed to the external provisioner the class names (annotations
  ``volume.kubernetes.io/storage-provisioner``, Normal ``ExternalProvisioning`` "Waiting for a volume to be created
  either by the external provisioner '<name>' ..."). A provisioner nobody runs leaves it Pending with only that event.
  A running one (``Emulator.provisioners``) says Normal ``Provisioning``, then either ``ProvisioningFailed``
  ("failed to provision volume with StorageClass ..." with the driver's error: an access mode it cannot serve, the
  pool's capacity) or creates the PersistentVolume ``pvc-<claim uid>`` (its ``nodeAffinity`` pins a node-local volume
  to one node), binds both, and says ``ProvisioningSucceeded``.
* A deleted claim releases its volume: reclaim policy ``Delete`` deletes it (and its data), ``Retain`` leaves it
  ``Released``.

Each volume's data lives in ``<state_dir>/volumes/<pv name>/`` (outside every pod sandbox, so it survives pods); the
kubelet mounts it (``KubeletPodHandle.volume_path``) and exec sees it at the container's mountPath.
"""

from __future__ import annotations

import copy
import shutil
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import resources as R
from .errors import ApiError

if TYPE_CHECKING:
    from .controllers import ControllerManager

PV_CONTROLLER = "persistentvolume-controller"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
RETRY_INITIAL, RETRY_MAX = 0.5, 4.0     # real external-provisioner: 1 s doubling to 5 min (compressed)
NO_CLASS = "no persistent volumes available for this claim and no storage class is set"
WAIT_FIRST_CONSUMER = "waiting for first consumer to be created before binding"


def _bytes(q) -> float:
    from .controllers import parse_quantity

    return parse_quantity(q)


@dataclass
class Provisioner:
    """A CSI driver's external-provisioner the twin runs. ``access_modes``: what it serves for Filesystem volumes;
    ``block_access_modes``: for ``volumeMode: Block``; ``capacity``: bytes its pool can hand out (None: unlimited);
    ``topology``: "node" for node-local volumes (the PersistentVolume gets a node affinity), None for network storage;
    ``immediate_node``: where an Immediate-binding node-local volume lands (None: the first node by name)."""

    name: str
    access_modes: frozenset = frozenset({"ReadWriteOnce"})
    block_access_modes: frozenset = frozenset({"ReadWriteOnce"})
    capacity: float | None = None
    topology: str | None = None
    immediate_node: str | None = None
    provision_seconds: float = 0.2
    access_error: str = "rpc error: code = InvalidArgument desc = access mode not supported"
    capacity_error: str = "rpc error: code = ResourceExhausted desc = insufficient capacity"
    fs_type: str | None = "ext4"
    pod: str = field(default="")

    @property
    def component(self) -> str:
        return f"{self.name}_{self.pod or 'csi-provisioner-0'}_{uuid.uuid5(uuid.NAMESPACE_DNS, self.name)}"


def ceph_rbd(name: str = "rbd.csi.ceph.com", capacity: float | None = 2 * 1024 ** 4) -> Provisioner:
    """ceph-csi RBD: block images; a filesystem on one can only be mounted read-write by one node (RWO)."""
    return Provisioner(name, frozenset({"ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany"}),
                       frozenset({"ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany", "ReadWriteMany"}), capacity,
                       access_error="rpc error: code = InvalidArgument desc = multi node access modes are only supported on "
                                    "rbd `block` type volumes",
                       capacity_error="rpc error: code = Internal desc = failed to create rbd image: rbd: ret=-122, Disk quota "
                                      "exceeded", pod="csi-rbdplugin-provisioner-6f9d8d7b9-x2kqp")


def cephfs(name: str = "cephfs.csi.ceph.com", capacity: float | None = 2 * 1024 ** 4) -> Provisioner:
    """ceph-csi CephFS: a shared filesystem, mountable read-write by many nodes (RWX)."""
    every = frozenset({"ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany", "ReadWriteMany"})
    return Provisioner(name, every, frozenset(), capacity, fs_type=None,
                       access_error="rpc error: code = InvalidArgument desc = cephfs doesn't support Block volume",
                       capacity_error="rpc error: code = Internal desc = an error (exit status 28) occurred while running ceph "
                                      "args: [fs subvolume create ...] (No space left on device)",
                       pod="csi-cephfsplugin-provisioner-7c9b5f6d4-q8wzt")


def local_path(name: str = "rancher.io/local-path", capacity: float | None = None, immediate_node: str | None = None) -> Provisioner:
    """A node-local provisioner (local-path): the volume is a directory on one node, RWO only."""
    return Provisioner(name, frozenset({"ReadWriteOnce", "ReadWriteOncePod"}), frozenset(), capacity, topology="node",
                       immediate_node=immediate_node, fs_type=None,
                       access_error="NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes",
                       capacity_error="no space left on the node's local path", pod="local-path-provisioner-5d56847996-8tb9d")


class VolumeControllers:
    """Runs in the ControllerManager's pass: binds claims, provisions volumes, reclaims released ones."""

    KEYS = {R.PVC.key, R.PV.key, R.STORAGECLASS.key}

    def __init__(self, cm: ControllerManager):
        self.cm = cm
        self.emu = cm.emu
        self.store = cm.store
        self._retry: dict[str, tuple[float, float]] = {}      # claim uid -> (next attempt, delay)
        self._provisioning: dict[str, float] = {}             # claim uid -> when the provisioner started on it
        self._doomed: set[str] = set()                        # data dirs of deleted volumes, removed once unmounted

    # -- the pass --------------------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        now = time.monotonic()
        for pvc in self.store.list_raw(R.PVC.key):
            if (pvc.get("status") or {}).get("phase") != "Bound":
                self.sync_claim(pvc, now)
        for pv in self.store.list_raw(R.PV.key):
            self.sync_volume(pv)
        self.purge()

    def _due(self, uid: str, now: float) -> bool:
        nxt, _delay = self._retry.get(uid, (0.0, 0.0))
        return now >= nxt

    def _backoff(self, uid: str, now: float) -> None:
        _nxt, delay = self._retry.get(uid, (0.0, 0.0))
        delay = RETRY_INITIAL if not delay else min(delay * 2, RETRY_MAX)
        self._retry[uid] = (now + delay, delay)

    def _event(self, obj: dict, reason: str, message: str, type: str = "Normal", component: str = PV_CONTROLLER) -> None:
        self.emu.record_event(obj, reason, message, type, component)

    # -- claims ----------------------------------------------------------------------------------------------------
    def sync_claim(self, pvc: dict, now: float) -> None:
        uid = pvc["metadata"]["uid"]
        if not self._due(uid, now):
            return
        spec = pvc.get("spec") or {}
        pv = self._static_match(pvc)
        if pv is not None:
            self._bind(pvc, pv)
            return
        cls = spec.get("storageClassName")
        if not cls:
            self._event(pvc, "FailedBinding", NO_CLASS)
            self._backoff(uid, now)
            return
        sc = self.store.get_raw(R.STORAGECLASS.key, "", cls)
        if sc is None:
            self._event(pvc, "ProvisioningFailed", f'storageclass.storage.k8s.io "{cls}" not found', "Warning")
            self._backoff(uid, now)
            return
        ann = pvc["metadata"].get("annotations") or {}
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not ann.get(SELECTED_NODE):
            self._event(pvc, "WaitForFirstConsumer", WAIT_FIRST_CONSUMER)
            self._backoff(uid, now)
            return
        self._provision(pvc, sc, now)

    def _provision(self, pvc: dict, sc: dict, now: float) -> None:
        uid, name = pvc["metadata"]["uid"], sc["provisioner"]
        ann = pvc["metadata"].get("annotations") or {}
        if ann.get(STORAGE_PROVISIONER) != name:
            new = copy.deepcopy(pvc)
            new["metadata"].setdefault("annotations", {}).update({STORAGE_PROVISIONER: name, BETA_STORAGE_PROVISIONER: name})
            pvc = self.cm._update(R.PVC, new, manager="kube-controller-manager") or pvc
        self._event(pvc, "ExternalProvisioning", f"Waiting for a volume to be created either by the external provisioner "
                    f"'{name}' or manually by the system administrator. If volume creation is delayed, please verify that the "
                    "provisioner is running and correctly registered.")
        prov = self.emu.provisioners.get(name)
        if prov is None:     # nobody runs it: the claim stays Pending with the event above
            self._backoff(uid, now)
            return
        started = self._provisioning.get(uid)
        if started is None:
            self._provisioning[uid] = now
            self._event(pvc, "Provisioning", f'External provisioner is provisioning volume for claim '
                                             f'"{pvc["metadata"]["namespace"]}/{pvc["metadata"]["name"]}"', component=prov.component)
            self._retry[uid] = (now + prov.provision_seconds, 0.0)
            return
        error = self._refusal(pvc, prov)
        if error:
            self._provisioning.pop(uid, None)
            self._event(pvc, "ProvisioningFailed", f'failed to provision volume with StorageClass "{sc["metadata"]["name"]}": '
                                                   f"{error}", "Warning", component=prov.component)
            self._backoff(uid, now)
            return
        pv = self._create_volume(pvc, sc, prov)
        self._provisioning.pop(uid, None)
        self._event(pvc, "ProvisioningSucceeded", f"Successfully provisioned volume {pv['metadata']['name']}", component=prov.component)
        self._bind(pvc, pv)

    def _refusal(self, pvc: dict, prov: Provisioner) -> str | None:
        spec = pvc.get("spec") or {}
        allowed = prov.block_access_modes if spec.get("volumeMode") == "Block" else prov.access_modes
        if any(m not in allowed for m in spec.get("accessModes") or []):
            return prov.access_error
        want = _bytes(((spec.get("resources") or {}).get("requests") or {}).get("storage"))
        if prov.capacity is not None and self.used(prov.name) + want > prov.capacity:
            return prov.capacity_error
        return None

    def used(self, provisioner: str) -> float:
        return sum(_bytes((pv["spec"].get("capacity") or {}).get("storage")) for pv in self.store.list_raw(R.PV.key)
                   if (pv["metadata"].get("annotations") or {}).get(PROVISIONED_BY) == provisioner)

    def _node_for(self, pvc: dict, prov: Provisioner) -> str | None:
        if prov.topology != "node":
            return None
        selected = (pvc["metadata"].get("annotations") or {}).get(SELECTED_NODE)
        if selected:
            return selected
        nodes = sorted(n["metadata"]["name"] for n in self.store.list_raw(R.NODE.key))
        return prov.immediate_node or (nodes[0] if nodes else None)

    def _create_volume(self, pvc: dict, sc: dict, prov: Provisioner) -> dict:
        spec, meta = pvc.get("spec") or {}, pvc["metadata"]
        name = "pvc-" + meta["uid"]
        pv_spec = {
            "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage")},
            "accessModes": list(spec.get("accessModes") or []),
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
            "storageClassName": sc["metadata"]["name"], "volumeMode": spec.get("volumeMode", "Filesystem"),
            "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": meta["namespace"],
                         "name": meta["name"], "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
            "csi": {"driver": prov.name, "volumeHandle": f"0001-0009-twin-{uuid.uuid4()}",
                    "volumeAttributes": dict(sc.get("parameters") or {})},
        }
        if prov.fs_type:
            pv_spec["csi"]["fsType"] = prov.fs_type
        if sc.get("mountOptions"):
            pv_spec["mountOptions"] = list(sc["mountOptions"])
        node = self._node_for(pvc, prov)
        if node:
            pv_spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
        pv = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": name, "annotations": {PROVISIONED_BY: prov.name,
                                                         "volume.kubernetes.io/provisioner-deletion-secret-name": "",
                                                         "volume.kubernetes.io/provisioner-deletion-secret-namespace": ""}},
              "spec": pv_spec, "status": {"phase": "Bound"}}
        created = self.store.create(R.PV, pv, None, manager="csi-provisioner", validate=False, keep_status=True)
        self.data_dir(name).mkdir(parents=True, exist_ok=True)
        return created

    def _static_match(self, pvc: dict) -> dict | None:
        """A PersistentVolume this claim can bind without provisioning: the one it names, or an Available one of its class
        with the access modes and enough capacity (the smallest such)."""
        spec = pvc.get("spec") or {}
        want = _bytes(((spec.get("resources") or {}).get("requests") or {}).get("storage"))
        uid = pvc["metadata"]["uid"]
        fits = []
        for pv in self.store.list_raw(R.PV.key):
            ps = pv.get("spec") or {}
            ref = ps.get("claimRef") or {}
            if spec.get("volumeName") and pv["metadata"]["name"] != spec["volumeName"]:
                continue
            if ref and ref.get("uid") not in (None, uid):
                continue
            if (pv.get("status") or {}).get("phase") not in ("Available", "Pending") and ref.get("uid") != uid:
                continue
            if (ps.get("storageClassName") or "") != (spec.get("storageClassName") or ""):
                continue
            if ps.get("volumeMode", "Filesystem") != spec.get("volumeMode", "Filesystem"):
                continue
            if not set(spec.get("accessModes") or []) <= set(ps.get("accessModes") or []):
                continue
            if _bytes((ps.get("capacity") or {}).get("storage")) < want:
                continue
            fits.append(pv)
        return min(fits, key=lambda p: _bytes(p["spec"]["capacity"]["storage"])) if fits else None

    def _bind(self, pvc: dict, pv: dict) -> None:
        meta = pvc["metadata"]
        if (pv["spec"].get("claimRef") or {}).get("uid") != meta["uid"] or (pv.get("status") or {}).get("phase") != "Bound":
            new_pv = copy.deepcopy(pv)
            new_pv["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": meta["namespace"],
                                          "name": meta["name"], "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}
            new_pv["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bound-by-controller"] = "yes"
            new_pv = self.cm._update(R.PV, new_pv, manager="kube-controller-manager") or new_pv
            st = copy.deepcopy(new_pv)
            st["status"] = {"phase": "Bound"}
            self.cm._update(R.PV, st, "status", manager="kube-controller-manager")
        new = copy.deepcopy(pvc)
        new["spec"]["volumeName"] = pv["metadata"]["name"]
        new["metadata"].setdefault("annotations", {}).update({"pv.kubernetes.io/bind-completed": "yes",
                                                             "pv.kubernetes.io/bound-by-controller": "yes"})
        new = self.cm._update(R.PVC, new, manager="kube-controller-manager") or new
        st = copy.deepcopy(new)
        st["status"] = {"phase": "Bound", "accessModes": list(pv["spec"].get("accessModes") or []),
                        "capacity": dict(pv["spec"].get("capacity") or {})}
        self.cm._update(R.PVC, st, "status", manager="kube-controller-manager")
        self._retry.pop(meta["uid"], None)
        self.data_dir(pv["metadata"]["name"]).mkdir(parents=True, exist_ok=True)
        self.cm.wake()

    # -- volumes ---------------------------------------------------------------------------------------------------
    def sync_volume(self, pv: dict) -> None:
        phase = (pv.get("status") or {}).get("phase")
        ref = (pv.get("spec") or {}).get("claimRef")
        if phase == "Pending" and not ref:
            st = copy.deepcopy(pv)
            st["status"] = {"phase": "Available"}
            self.cm._update(R.PV, st, "status", manager="kube-controller-manager")
            return
        if phase != "Bound" or not ref:
            return
        claim = self.store.get_raw(R.PVC.key, ref.get("namespace") or "", ref.get("name") or "")
        if claim is not None and claim["metadata"]["uid"] == ref.get("uid"):
            return
        if pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            try:
                self.store.delete(R.PV, None, pv["metadata"]["name"])
            except ApiError:
                return
            self._doomed.add(pv["metadata"]["name"])
            return
        st = copy.deepcopy(pv)
        st["status"] = {"phase": "Released"}
        self.cm._update(R.PV, st, "status", manager="kube-controller-manager")

    def data_dir(self, pv_name: str):
        return self.emu.volumes_dir / pv_name

    def purge(self) -> None:
        """A deleted volume's data goes once no pod that mounted it still runs (its teardown may still be writing)."""
        if not self._doomed:
            return
        busy = self.emu.kubelet.mounted_volumes()
        for name in list(self._doomed):
            if name not in busy:
                shutil.rmtree(self.data_dir(name), ignore_errors=True)
                self._doomed.discard(name)

    # -- the scheduler's VolumeBinding plugin ----------------------------------------------------------------------
    def pod_claims(self, pod: dict) -> list[str]:
        return [v["persistentVolumeClaim"].get("claimName", "") for v in (pod.get("spec") or {}).get("volumes") or []
                if isinstance(v.get("persistentVolumeClaim"), dict)]

    def prefilter(self, pod: dict) -> tuple[str | None, list[dict], list[dict]]:
        """(rejection, bound volumes, claims waiting for their first consumer) of a pod's claims."""
        ns = pod["metadata"]["namespace"]
        bound, delayed = [], []
        for claim_name in self.pod_claims(pod):
            pvc = self.store.get_raw(R.PVC.key, ns, claim_name)
            if pvc is None:
                return f'persistentvolumeclaim "{claim_name}" not found', [], []
            name = (pvc.get("spec") or {}).get("volumeName")
            if (pvc.get("status") or {}).get("phase") == "Bound" and name:
                pv = self.store.get_raw(R.PV.key, "", name)
                if pv is not None:
                    bound.append(pv)
                    continue
            cls = (pvc.get("spec") or {}).get("storageClassName")
            sc = self.store.get_raw(R.STORAGECLASS.key, "", cls) if cls else None
            if sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                delayed.append(pvc)
                continue
            return "pod has unbound immediate PersistentVolumeClaims", [], []
        return None, bound, delayed

    @staticmethod
    def node_conflict(bound: list[dict], labels: dict) -> bool:
        """Whether a bound volume's node affinity excludes a node with these labels."""
        from .controllers import ControllerManager

        for pv in bound:
            required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")
            if required and not ControllerManager._affinity_ok({"affinity": {"nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": required}}}, labels):
                return True
        return False

    def select_node(self, delayed: list[dict], node: str) -> bool:
        """Annotate the delayed claims with the chosen node; True once every one is bound (the pod may be bound then)."""
        done = True
        for pvc in delayed:
            cur = self.store.get_raw(R.PVC.key, pvc["metadata"]["namespace"], pvc["metadata"]["name"]) or pvc
            if (cur.get("status") or {}).get("phase") == "Bound":
                continue
            done = False
            if (cur["metadata"].get("annotations") or {}).get(SELECTED_NODE) != node:
                new = copy.deepcopy(cur)
                new["metadata"].setdefault("annotations", {})[SELECTED_NODE] = node
                self.cm._update(R.PVC, new, manager="kube-scheduler")
                self._retry.pop(cur["metadata"]["uid"], None)
        return done


__all__ = ["Provisioner", "VolumeControllers", "ceph_rbd", "cephfs", "local_path"]
