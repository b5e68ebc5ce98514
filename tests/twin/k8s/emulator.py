"""The Emulator: wires the store, HTTP server, controllers, scheduler and kubelet together and owns their lifecycle."""

from __future__ import annotations

import base64
import copy
import logging
import pathlib
import shutil
import socket
from collections.abc import Callable

from aiohttp import web

from . import auth, objects, tls
from . import resources as R
from .controllers import ControllerManager
from .decoding import Decoder
from .errors import ApiError
from .kubelet import Kubelet
from .openapi import OpenAPI
from .portforward import PortForwarder
from .runtime import PodRuntime
from .server import ApiServer
from .storage import Provisioner
from .store import Store, event_name
from .streaming import Streams

log = logging.getLogger("tests.twin.k8s")

DEFAULT_NODE = {"name": "twin-node-1", "labels": {}, "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110",
                                                                      "ephemeral-storage": "100Gi"}}

_OPENAPI: OpenAPI | None = None


def _openapi() -> OpenAPI:
    global _OPENAPI
    if _OPENAPI is None:
        _OPENAPI = OpenAPI()
    return _OPENAPI


class Emulator:
    """An in-process Kubernetes API server with controllers, a scheduler and a kubelet.

    ``nodes``: None -> one default node ``twin-node-1`` (8 cpu, 32Gi); a list of dicts
    ``{"name", "labels", "allocatable", "taints"}`` -> exactly those nodes ([] -> none).
    """

    def __init__(self, state_dir: pathlib.Path | str, host: str = "127.0.0.1", port: int = 0, nodes: list[dict] | None = None):
        self.state_dir = pathlib.Path(state_dir)
        self.host = host
        self.port = port
        self.tls_port = 0              # HTTPS listener (same API) for the identities that need credentials sent
        self._ca_pem = b""
        self._initial_nodes = [DEFAULT_NODE] if nodes is None else list(nodes)
        self.store = Store()
        self.openapi = _openapi()
        self.decoder = Decoder(self.openapi.v2["definitions"])
        self.runtimes: list[PodRuntime] = []
        self.image_exists: Callable[[str], bool] = lambda image: True
        # CSI external provisioners the cluster runs (storage.py); a StorageClass naming another one never provisions.
        self.provisioners: dict[str, Provisioner] = {}
        self.api = ApiServer(self)
        self.streams = Streams(self)
        self.portforward = PortForwarder(self)
        self.controllers = ControllerManager(self)
        self.kubelet = Kubelet(self)
        self.stopping = False
        self._runner: web.AppRunner | None = None
        self._event_index: dict[tuple, tuple[str, str]] = {}
        self.started = False

    # -- public API ----------------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"https://{self.host}:{self.tls_port}"

    @property
    def kubeconfig_path(self) -> pathlib.Path:
        return self.state_dir / "kubeconfig"

    @property
    def pods_dir(self) -> pathlib.Path:
        return self.state_dir / "pods"

    @property
    def volumes_dir(self) -> pathlib.Path:
        """Where PersistentVolumes keep their data (one folder per volume, outside every pod sandbox)."""
        return self.state_dir / "volumes"

    def register_runtime(self, rt: PodRuntime) -> None:
        self.runtimes.append(rt)

    def add_provisioner(self, provisioner: Provisioner) -> Provisioner:
        """Run a CSI driver's external provisioner (``storage.ceph_rbd()``, ``cephfs()``, ``local_path()``, ...)."""
        self.provisioners[provisioner.name] = provisioner
        self.controllers.wake()
        return provisioner

    def add_storage_class(self, name: str, provisioner: str, *, default: bool = False, binding_mode: str = "Immediate",
                          reclaim_policy: str = "Delete", parameters: dict | None = None, allow_expansion: bool = True) -> dict:
        sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
              "metadata": {"name": name, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}},
              "provisioner": provisioner, "reclaimPolicy": reclaim_policy, "volumeBindingMode": binding_mode,
              "allowVolumeExpansion": allow_expansion, "parameters": dict(parameters or {})}
        created = self.store.create(R.STORAGECLASS, sc, None, manager="kubectl")
        self.controllers.wake()
        return created

    def add_node(self, name: str, labels: dict | None = None, allocatable: dict | None = None, taints: list | None = None,
                 capacity: dict | None = None, unschedulable: bool = False, ready: bool = True) -> dict:
        alloc = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        alloc.update({k: str(v) for k, v in (allocatable or {}).items()})
        node_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
        node_labels.update(labels or {})
        ip = f"172.18.0.{len(self.store.list_raw(R.NODE.key)) + 2}"
        now = objects.now_iso()
        cond = [
            {"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": now, "lastTransitionTime": now}
            for t, r, m in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))
        ]
        cond.append({"type": "Ready", "status": "True" if ready else "False",
                     "reason": "KubeletReady" if ready else "KubeletNotReady",
                     "message": "kubelet is posting ready status" if ready else "container runtime network not ready",
                     "lastHeartbeatTime": now, "lastTransitionTime": now})
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": node_labels, "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
            "status": {
                "capacity": dict(capacity or alloc), "allocatable": alloc, "conditions": cond,
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": name, "systemUUID": name, "bootID": name, "kernelVersion": "6.1.0-twin",
                             "osImage": "Debian GNU/Linux 12 (bookworm)", "containerRuntimeVersion": "containerd://1.7.24",
                             "kubeletVersion": "v1.33.1", "kubeProxyVersion": "", "operatingSystem": "linux",
                             "architecture": "amd64"},
                "images": [],
            },
        }
        if taints:
            node["spec"]["taints"] = list(taints)
        if unschedulable:
            node["spec"]["unschedulable"] = True
        created = self.store.create(R.NODE, node, None, manager="kubelet", keep_status=True)
        self.controllers.wake()
        return created

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.volumes_dir.mkdir(parents=True, exist_ok=True)
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.store.create(R.NAMESPACE, {"metadata": {"name": ns}}, None, manager="kube-apiserver")
        self.store.create(R.SERVICE, {"metadata": {"name": "kubernetes", "namespace": "default",
                                                   "labels": {"component": "apiserver", "provider": "kubernetes"}},
                                      "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443,
                                                                                    "targetPort": 6443}]}},
                          "default", manager="kube-apiserver")
        for rt in R.RESOURCES:   # the add-ons' CRDs are installed, as on the cluster the chart targets
            if rt.custom:
                self.store.create(R.CRD, crd_object(rt), None, manager="kube-apiserver", keep_status=True)
        for n in self._initial_nodes:
            self.add_node(n["name"], labels=n.get("labels"), allocatable=n.get("allocatable"), taints=n.get("taints"),
                          capacity=n.get("capacity"), unschedulable=n.get("unschedulable", False), ready=n.get("ready", True))
        # Like the Go apiserver (MaxHeaderBytes 1 MiB), accept long request lines: exec commands travel in the query.
        self._runner = web.AppRunner(self.api.app, access_log=None, handle_signals=False, shutdown_timeout=1.0,
                                     max_line_size=1 << 20, max_field_size=1 << 20)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock, shutdown_timeout=1.0)
        await site.start()
        ssl_ctx, self._ca_pem = tls.server_context(self.host)
        tls_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tls_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tls_sock.bind((self.host, 0))
        self.tls_port = tls_sock.getsockname()[1]
        await web.SockSite(self._runner, tls_sock, ssl_context=ssl_ctx).start()
        self.write_kubeconfig()
        self.controllers.start()
        self.kubelet.start()
        self.started = True

    async def stop(self) -> None:
        if not self.started:
            return
        self.stopping = True
        await self.controllers.stop()
        await self.kubelet.stop()
        await self.streams.close()
        await self.portforward.close()
        if self._runner is not None:
            await self._runner.cleanup()
        shutil.rmtree(self.pods_dir, ignore_errors=True)
        shutil.rmtree(self.volumes_dir, ignore_errors=True)
        self.started = False

    def write_kubeconfig(self, path: pathlib.Path | None = None) -> pathlib.Path:
        """Context ``twin`` (current): admin over HTTP. ``twin-readonly``: the read-only user over HTTPS (kubectl and
        client-go send a user's token only to a TLS server). ``twin-tls``: the admin over HTTPS."""
        path = path or self.kubeconfig_path
        ca = base64.b64encode(self._ca_pem).decode()

        def context(name: str, cluster: str, user: str) -> str:
            return f"- context:\n    cluster: {cluster}\n    namespace: default\n    user: {user}\n  name: {name}\n"

        text = (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- cluster:\n    server: {self.url}\n  name: twin\n"
            f"- cluster:\n    certificate-authority-data: {ca}\n    server: {self.tls_url}\n  name: twin-tls\n"
            "contexts:\n" + context("twin", "twin", auth.ADMIN.name)
            + context(auth.READONLY_CONTEXT, "twin-tls", auth.READONLY.name) + context("twin-tls", "twin-tls", auth.ADMIN.name)
            + "current-context: twin\npreferences: {}\n"
            f"users:\n- name: {auth.ADMIN.name}\n  user:\n    token: {auth.ADMIN_TOKEN}\n"
            f"- name: {auth.READONLY.name}\n  user:\n    token: {auth.READONLY_TOKEN}\n"
        )
        path.write_text(text)
        return path

    # -- events --------------------------------------------------------------------------------------------------------
    def record_event(self, obj: dict, reason: str, message: str, type: str = "Normal", component: str = "",
                     host: str | None = None, field_path: str | None = None) -> None:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        if self.store.get_raw(R.NAMESPACE.key, "", ns) is None:
            return
        key = (meta.get("uid"), reason, message, type, component, field_path)
        now = objects.now_iso()
        existing = self._event_index.get(key)
        if existing:
            ev = self.store.get_raw(R.EVENT.key, existing[0], existing[1])
            if ev is not None:
                new = copy.deepcopy(ev)
                new["count"] = int(new.get("count", 1)) + 1
                new["lastTimestamp"] = now
                self.store.update(R.EVENT, new, existing[0], existing[1], manager=component or "twin", validate=False)
                return
        inv = {"kind": obj.get("kind"), "namespace": meta.get("namespace"), "name": meta.get("name"), "uid": meta.get("uid"),
               "apiVersion": obj.get("apiVersion"), "resourceVersion": meta.get("resourceVersion")}
        if field_path:
            inv["fieldPath"] = field_path
        inv = {k: v for k, v in inv.items() if v}
        name = event_name(meta.get("name", "unknown"))
        source = {"component": component}
        if host:
            source["host"] = host
        ev = {"metadata": {"name": name, "namespace": ns}, "involvedObject": inv, "reason": reason, "message": message,
              "source": source, "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": type,
              "eventTime": None, "reportingComponent": component, "reportingInstance": host or ""}
        try:
            self.store.create(R.EVENT, ev, ns, manager=component or "twin", validate=False)
        except ApiError:
            return
        self._event_index[key] = (ns, name)


def crd_object(rt) -> dict:
    """The CustomResourceDefinition that makes the API server serve ``rt`` (Established, names accepted)."""
    now = objects.now_iso()
    names = {"kind": rt.kind, "listKind": rt.list_kind, "plural": rt.plural, "singular": rt.singular_name}
    if rt.short_names:
        names["shortNames"] = list(rt.short_names)
    version = {"name": rt.version, "served": True, "storage": True,
               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    if rt.printer_columns:
        version["additionalPrinterColumns"] = [{"name": n, "type": t, "jsonPath": p} for n, t, p in rt.printer_columns]
    if "status" in rt.subresources:
        version["subresources"] = {"status": {}}
    cond = [{"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found",
             "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now}]
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{rt.plural}.{rt.group}"},
            "spec": {"group": rt.group, "names": names, "scope": "Namespaced" if rt.namespaced else "Cluster",
                     "versions": [version], "conversion": {"strategy": "None"}},
            "status": {"acceptedNames": names, "conditions": cond, "storedVersions": [rt.version]}}


__all__ = ["Emulator", "crd_object"]
