"""The kubelet: runs bound pods through image pulls and a pluggable PodRuntime, keeps pod status, logs and sandboxes."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import pathlib
import shutil
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from . import objects
from . import resources as R
from .errors import ApiError
from .runtime import PodHandle, PodRuntime

if TYPE_CHECKING:
    from .emulator import Emulator

log = logging.getLogger("tests.twin.k8s")

STATES = ("waiting", "running", "terminated")
# The volume manager: its desired-state populator picks a new pod up on its next 100 ms loop; a failed
# MountVolume.SetUp is retried with exponential back-off (real: 500 ms doubling up to 2m2s; compressed here).
MOUNT_POPULATOR_DELAY = 0.1
MOUNT_BACKOFF_INITIAL = 0.25
MOUNT_BACKOFF_MAX = 2.0


def _ts() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def image_id(image: str) -> str:
    ref = image if "/" in image.split(":", maxsplit=1)[0] or "." in image.split("/", maxsplit=1)[0] else f"docker.io/library/{image}"
    return f"{ref.rsplit(':', 1)[0] if ':' in ref.split('/')[-1] else ref}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


class ContainerState:
    def __init__(self, name: str, image: str, init: bool):
        self.name, self.image, self.init = name, image, init
        self.state: dict = {"waiting": {"reason": "PodInitializing"}}
        self.last_state: dict = {}
        self.ready = False
        self.restart_count = 0
        self.started = False
        self.container_id: str | None = None
        self.ever_ran = False

    def status(self) -> dict:
        st = {"name": self.name, "state": copy.deepcopy(self.state), "lastState": copy.deepcopy(self.last_state),
              "ready": self.ready, "restartCount": self.restart_count, "image": self.image,
              "imageID": image_id(self.image) if self.ever_ran else "", "started": self.started}
        if self.container_id:
            st["containerID"] = self.container_id
        return st


class KubeletPodHandle(PodHandle):
    def __init__(self, kubelet: Kubelet, pod: dict):
        self._k = kubelet
        m = pod["metadata"]
        self.namespace, self.name, self.uid = m["namespace"], m["name"], m["uid"]
        self.node_name = pod["spec"].get("nodeName", "")
        self.sandbox = kubelet.emu.pods_dir / self.namespace / self.name
        self.sandbox.mkdir(parents=True, exist_ok=True)
        spec = pod["spec"]
        self.init = [ContainerState(c["name"], c.get("image", ""), True) for c in spec.get("initContainers") or []]
        self.containers = [ContainerState(c["name"], c.get("image", ""), False) for c in spec.get("containers") or []]
        for c in self.containers:
            c.state = {"waiting": {"reason": "PodInitializing" if self.init else "ContainerCreating"}}
        for c in self.init:
            c.state = {"waiting": {"reason": "PodInitializing"}}
        self.exposed: dict[int, tuple[str, int]] = {}
        self.evicted: tuple[str, str] | None = None
        self.deleted = False
        self._last_pod = pod
        self.pod_ip = kubelet.emu.store.allocate_pod_ip()
        self.start_time = objects.now_iso()
        self.sandbox_ready = False   # PodReadyToStartContainers: volumes mounted, sandbox created
        self.volume_dirs: dict[str, pathlib.Path] = {}   # volume name -> host folder (PVC data, emptyDir), once mounted
        self.persistent_volumes: set[str] = set()         # names of the PersistentVolumes this pod mounted
        self._lock = asyncio.Lock()

    # -- contract ------------------------------------------------------------------------------------------------------
    @property
    def pod(self) -> dict:
        cur = self._k.emu.store.get_raw(R.POD.key, self.namespace, self.name)
        if cur is not None and cur["metadata"]["uid"] == self.uid:
            self._last_pod = cur
        return copy.deepcopy(self._last_pod)

    def container_root(self, container: str) -> pathlib.Path:
        p = self.sandbox / container
        p.mkdir(parents=True, exist_ok=True)
        return p

    def volume_path(self, volume: str) -> pathlib.Path | None:
        """The host folder behind a pod volume once the volumes are set up: a bound claim's PersistentVolume data
        (``<state>/volumes/<pv>``, shared by every pod that mounts it and kept across pods) or a disk emptyDir
        (``<sandbox>/volumes/<name>``: survives container restarts, goes with the pod); None for other volumes."""
        return self.volume_dirs.get(volume)

    def mounts(self, container: str) -> list[tuple[str, pathlib.Path]]:
        """(mountPath, host folder) of the container's mounts of volumes that have a folder (see ``volume_path``)."""
        spec = next((c for c in (self.pod["spec"].get("containers") or []) + (self.pod["spec"].get("initContainers") or [])
                     if c["name"] == container), {})
        out = []
        for m in spec.get("volumeMounts") or []:
            src = self.volume_dirs.get(m.get("name"))
            if src is not None and m.get("mountPath"):
                out.append((m["mountPath"], src / m["subPath"] if m.get("subPath") else src))
        return out

    def _cs(self, container: str) -> ContainerState:
        for c in self.init + self.containers:
            if c.name == container:
                return c
        raise KeyError(f"pod {self.namespace}/{self.name} has no container {container!r}")

    def log_path(self, container: str, restart: int | None = None) -> pathlib.Path:
        cs = self._cs(container)
        n = cs.restart_count if restart is None else restart
        d = self.sandbox / ".logs" / container
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{n}.log"

    async def set_container_state(self, container: str, state: str, *, reason: str | None = None, message: str | None = None,
                                  exit_code: int | None = None, ready: bool = False, restart: bool = False) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, not {state!r}")
        cs = self._cs(container)
        events = []
        if restart:
            prev = cs.state
            if "running" in prev:
                prev = {"terminated": {"exitCode": 0 if exit_code is None else exit_code, "reason": "Completed",
                                       "startedAt": prev["running"].get("startedAt"), "finishedAt": objects.now_iso(),
                                       "containerID": cs.container_id}}
            cs.last_state = prev
            cs.restart_count += 1
            self.log_path(container).touch()
        now = objects.now_iso()
        if state == "running":
            if "running" not in cs.state or restart:
                cs.container_id = "containerd://" + hashlib.sha256(f"{self.uid}/{container}/{cs.restart_count}".encode()).hexdigest()
                cs.state = {"running": {"startedAt": now}}
                events = [("Created", f"Created container: {container}"), ("Started", f"Started container {container}")]
            cs.started = True
            cs.ever_ran = True
            cs.ready = bool(ready)
        elif state == "waiting":
            w: dict = {}
            if reason:
                w["reason"] = reason
            if message:
                w["message"] = message
            cs.state = {"waiting": w}
            cs.ready = False
            cs.started = False
        else:
            code = 0 if exit_code is None else int(exit_code)
            started = (cs.state.get("running") or {}).get("startedAt") or now
            t = {"exitCode": code, "reason": reason or ("Completed" if code == 0 else "Error"), "startedAt": started,
                 "finishedAt": now}
            if message:
                t["message"] = message
            if cs.container_id:
                t["containerID"] = cs.container_id
            cs.state = {"terminated": t}
            cs.ready = False
            cs.started = False
        for r, m in events:
            await self.event(r, m, field_path=self._field_path(container))
        await self._k.write_status(self)

    def _field_path(self, container: str) -> str:
        cs = self._cs(container)
        return f"spec.{'initContainers' if cs.init else 'containers'}{{{container}}}"

    async def set_ready(self, container: str, ready: bool) -> None:
        cs = self._cs(container)
        cs.ready = bool(ready) and "running" in cs.state
        await self._k.write_status(self)

    async def event(self, reason: str, message: str, type: str = "Normal", field_path: str | None = None) -> None:
        pod = self.pod
        self._k.emu.record_event(pod, reason, message, type, "kubelet", host=self.node_name, field_path=field_path)

    def log(self, container: str, text: str) -> None:
        if not text:
            return
        lines = text.splitlines()
        stamp = _ts()
        with self.log_path(container).open("a") as f:
            for line in lines:
                f.write(f"{stamp} {line}\n")

    def expose(self, container_port: int, host: str, port: int) -> None:
        self.exposed[int(container_port)] = (host, int(port))

    async def evict(self, reason: str, message: str) -> None:
        self.evicted = (reason, message)
        for cs in self.init + self.containers:
            if "running" in cs.state:
                cs.state = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown" if reason != "Evicted" else "Error",
                                           "startedAt": cs.state["running"].get("startedAt"),
                                           "finishedAt": objects.now_iso()}}
            cs.ready = False
            cs.started = False
        await self.event(reason, message, "Warning")
        await self._k.write_status(self)

    # -- status --------------------------------------------------------------------------------------------------------
    def phase(self, restart_policy: str) -> str:
        if self.evicted:
            return "Failed"
        for c in self.init:
            t = c.state.get("terminated")
            if t is None or t.get("exitCode", 0) != 0:
                if t is not None and restart_policy == "Never":
                    return "Failed"
                return "Pending"
        running = waiting = stopped = succeeded = 0
        for c in self.containers:
            if "running" in c.state:
                running += 1
            elif "terminated" in c.state:
                stopped += 1
                if c.state["terminated"].get("exitCode", 0) == 0:
                    succeeded += 1
            elif c.last_state.get("terminated"):
                stopped += 1
            else:
                waiting += 1
        if waiting:
            return "Pending"
        if running:
            return "Running"
        if stopped:
            if restart_policy == "Always":
                return "Running"
            if stopped == succeeded:
                return "Succeeded"
            return "Running" if restart_policy == "OnFailure" else "Failed"
        return "Pending"

    def status(self, pod: dict) -> dict:
        spec = pod.get("spec") or {}
        now = objects.now_iso()
        old = pod.get("status") or {}
        phase = self.phase(spec.get("restartPolicy", "Always"))
        initialized = all((c.state.get("terminated") or {}).get("exitCode", 1) == 0 for c in self.init)
        unready = [c.name for c in self.containers if not c.ready]
        if phase in ("Succeeded", "Failed"):
            ready_status, ready_reason = "False", "PodCompleted"
        else:
            ready_status, ready_reason = ("True", None) if not unready else ("False", "ContainersNotReady")
        unready_msg = f"containers with unready status: [{' '.join(unready)}]" if ready_reason == "ContainersNotReady" else None
        conds = [("PodReadyToStartContainers", "True" if self.sandbox_ready else "False", None, None),
                 ("Initialized", "True" if initialized else "False", None if initialized else "ContainersNotInitialized",
                  None if initialized else "containers with incomplete status: [" + " ".join(
                      c.name for c in self.init if (c.state.get("terminated") or {}).get("exitCode", 1) != 0) + "]"),
                 ("Ready", ready_status, ready_reason, unready_msg),
                 ("ContainersReady", ready_status, ready_reason, unready_msg),
                 ("PodScheduled", "True", None, None)]
        old_conds = {c.get("type"): c for c in old.get("conditions") or []}
        out_conds = []
        for t, s, r, m in conds:
            c = {"type": t, "status": s, "lastProbeTime": None}
            prev = old_conds.get(t)
            c["lastTransitionTime"] = prev.get("lastTransitionTime", now) if prev and prev.get("status") == s else now
            if r:
                c["reason"] = r
            if m:
                c["message"] = m
            out_conds.append(c)
        st = {"phase": phase, "conditions": out_conds, "hostIP": self._host_ip(), "hostIPs": [{"ip": self._host_ip()}],
              "podIP": self.pod_ip, "podIPs": [{"ip": self.pod_ip}], "startTime": self.start_time,
              "qosClass": old.get("qosClass") or objects.qos_class(spec),
              "containerStatuses": [c.status() for c in self.containers]}
        if self.init:
            st["initContainerStatuses"] = [c.status() for c in self.init]
        if self.evicted:
            st["reason"], st["message"] = self.evicted
        return st

    def _host_ip(self) -> str:
        node = self._k.emu.store.get_raw(R.NODE.key, "", self.node_name)
        for a in ((node or {}).get("status") or {}).get("addresses") or []:
            if a.get("type") == "InternalIP":
                return a["address"]
        return "172.18.0.2"


class DefaultRuntime(PodRuntime):
    """Every container runs and becomes ready after ~0.2 s; readiness probes are ignored."""

    def handles(self, pod: dict) -> bool:
        return True

    async def run(self, pod: dict, handle: PodHandle) -> None:
        spec = pod.get("spec") or {}
        for c in spec.get("initContainers") or []:
            await handle.set_container_state(c["name"], "running")
            handle.log(c["name"], f"twin: init container {c['name']} ran (image {c.get('image')})\n")
            await asyncio.sleep(0.05)
            await handle.set_container_state(c["name"], "terminated", reason="Completed", exit_code=0)
        for c in spec.get("containers") or []:
            handle.log(c["name"], f"twin: container {c['name']} started (image {c.get('image')})\n")
            await handle.set_container_state(c["name"], "running", ready=False)
        await asyncio.sleep(0.2)
        for c in spec.get("containers") or []:
            await handle.set_ready(c["name"], True)
        await asyncio.Event().wait()


class Kubelet:
    def __init__(self, emu: Emulator):
        self.emu = emu
        self.handles: dict[str, KubeletPodHandle] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.default_runtime = DefaultRuntime()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._cleanup: set[asyncio.Task] = set()
        emu.store.add_listener(self._on_event)
        self.errors: list[str] = []

    def _on_event(self, ev) -> None:
        if ev.key != R.POD.key:
            return
        if ev.type == "DELETED":
            uid = ev.obj["metadata"]["uid"]
            if uid in self.handles:
                self._start_cleanup(uid)
        elif ev.obj["spec"].get("nodeName") and ev.obj["metadata"]["uid"] not in self.handles:
            self._wake.set()

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for pod in list(self.emu.store.list_raw(R.POD.key)):
                uid = pod["metadata"]["uid"]
                if pod["spec"].get("nodeName") and uid not in self.handles and \
                        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    h = KubeletPodHandle(self, pod)
                    self.handles[uid] = h
                    self.tasks[uid] = asyncio.get_running_loop().create_task(self._run_pod(h))

    def handle_for(self, namespace: str, name: str) -> KubeletPodHandle | None:
        pod = self.emu.store.get_raw(R.POD.key, namespace, name)
        if pod is None:
            return None
        return self.handles.get(pod["metadata"]["uid"])

    async def write_status(self, h: KubeletPodHandle) -> None:
        if h.deleted:
            return
        async with h._lock:
            pod = self.emu.store.get_raw(R.POD.key, h.namespace, h.name)
            if pod is None or pod["metadata"]["uid"] != h.uid:
                return
            new = copy.deepcopy(pod)
            new["status"] = h.status(pod)
            try:
                self.emu.store.update(R.POD, new, h.namespace, h.name, subresource="status", manager="kubelet", validate=False)
            except ApiError as e:
                if e.code != 404:
                    raise

    async def _pull(self, h: KubeletPodHandle, pod: dict) -> None:
        spec = pod["spec"]
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            image = c.get("image", "")
            fp = h._field_path(c["name"])
            policy = c.get("imagePullPolicy", "IfNotPresent")
            if policy != "Always":
                if self.emu.image_exists(image):
                    await h.event("Pulled", f'Container image "{image}" already present on machine', field_path=fp)
                    continue
            await h.event("Pulling", f'Pulling image "{image}"', field_path=fp)
            delay = 0.3
            while not self.emu.image_exists(image):
                err = (f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
                       f'{image}: not found')
                await h.set_container_state(c["name"], "waiting", reason="ErrImagePull", message=f"rpc error: code = NotFound desc = {err}")
                await h.event("Failed", f'Failed to pull image "{image}": rpc error: code = NotFound desc = {err}', "Warning", field_path=fp)
                await h.event("Failed", "Error: ErrImagePull", "Warning", field_path=fp)
                await asyncio.sleep(delay)
                await h.set_container_state(c["name"], "waiting", reason="ImagePullBackOff", message=f'Back-off pulling image "{image}"')
                await h.event("BackOff", f'Back-off pulling image "{image}"', field_path=fp)
                await h.event("Failed", "Error: ImagePullBackOff", "Warning", field_path=fp)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            await h.event("Pulled", f'Successfully pulled image "{image}" in 10ms (10ms including waiting). Image size: 0 bytes.',
                          field_path=fp)
            await h.set_container_state(c["name"], "waiting", reason="PodInitializing" if h.init and not h._cs(c["name"]).init
                                        else "ContainerCreating")

    def volume_errors(self, pod: dict) -> list[tuple[str, str]]:
        """(volume, error) for each configMap/secret volume (or projected source) that cannot be set up: the object is
        missing and not ``optional``, or an ``items`` key is not in it.  Texts as pkg/volume/{configmap,secret}."""
        ns = pod["metadata"]["namespace"]
        out = []
        for v in (pod.get("spec") or {}).get("volumes") or []:
            sources = []
            if isinstance(v.get("configMap"), dict):
                sources.append(("configmap", v["configMap"].get("name"), v["configMap"]))
            if isinstance(v.get("secret"), dict):
                sources.append(("secret", v["secret"].get("secretName"), v["secret"]))
            for src in ((v.get("projected") or {}).get("sources") or []):
                if isinstance(src.get("configMap"), dict):
                    sources.append(("configmap", src["configMap"].get("name"), src["configMap"]))
                if isinstance(src.get("secret"), dict):
                    sources.append(("secret", src["secret"].get("name"), src["secret"]))
            claim = v.get("persistentVolumeClaim")
            if isinstance(claim, dict) and self._claim_volume(ns, claim.get("claimName") or "") is None:
                out.append((v.get("name", ""), f'persistentvolumeclaim "{claim.get("claimName")}" is not bound'))
            for kind, name, src in sources:
                rt = R.CONFIGMAP if kind == "configmap" else R.SECRET
                obj = self.emu.store.get_raw(rt.key, ns, name or "")
                if obj is None:
                    if not src.get("optional"):
                        out.append((v.get("name", ""), f'{kind} "{name}" not found'))
                    continue
                keys = set(obj.get("data") or {}) | set(obj.get("binaryData") or {})
                for item in src.get("items") or []:
                    if item.get("key") not in keys and not src.get("optional"):
                        what = "configmap references non-existent config key" if kind == "configmap" \
                            else "references non-existent secret key"
                        out.append((v.get("name", ""), f"{what}: {item.get('key')}"))
                        break
        return out

    def _claim_volume(self, ns: str, claim: str) -> str | None:
        pvc = self.emu.store.get_raw(R.PVC.key, ns, claim)
        if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound":
            return None
        return (pvc.get("spec") or {}).get("volumeName") or None

    def _set_up_dirs(self, h: KubeletPodHandle) -> None:
        """The folders behind the pod's claims and disk emptyDirs (``KubeletPodHandle.volume_path``)."""
        for v in (h.pod.get("spec") or {}).get("volumes") or []:
            name = v.get("name", "")
            if isinstance(v.get("persistentVolumeClaim"), dict):
                pv = self._claim_volume(h.namespace, v["persistentVolumeClaim"].get("claimName") or "")
                if pv:
                    path = self.emu.volumes_dir / pv
                    path.mkdir(parents=True, exist_ok=True)
                    h.volume_dirs[name] = path
                    h.persistent_volumes.add(pv)
            elif isinstance(v.get("emptyDir"), dict) and v["emptyDir"].get("medium") != "Memory":
                path = h.sandbox / "volumes" / name
                path.mkdir(parents=True, exist_ok=True)
                h.volume_dirs[name] = path

    def mounted_volumes(self) -> set[str]:
        """PersistentVolumes a pod on this kubelet still mounts (pods being torn down included)."""
        return {pv for h in list(self.handles.values()) for pv in h.persistent_volumes}

    async def _mount_volumes(self, h: KubeletPodHandle) -> None:
        """WaitForAttachAndMount: the pod stays Pending/ContainerCreating (no image pull yet) and gets a Warning
        FailedMount event per failed attempt until every volume can be set up."""
        await asyncio.sleep(MOUNT_POPULATOR_DELAY)
        delay = MOUNT_BACKOFF_INITIAL
        while True:
            errors = self.volume_errors(h.pod)
            if not errors:
                break
            for vol, err in errors:
                await h.event("FailedMount", f'MountVolume.SetUp failed for volume "{vol}" : {err}', "Warning")
            await asyncio.sleep(delay)
            delay = min(delay * 2, MOUNT_BACKOFF_MAX)
        self._set_up_dirs(h)
        h.sandbox_ready = True
        await self.write_status(h)

    async def _run_pod(self, h: KubeletPodHandle) -> None:
        try:
            await self.write_status(h)
            await self._mount_volumes(h)
            await self._pull(h, h.pod)
            pod = h.pod
            runtime = next((rt for rt in self.emu.runtimes if _safe_handles(rt, pod)), self.default_runtime)
            await runtime.run(pod, h)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("pod runtime failed for %s/%s", h.namespace, h.name)
            self.errors.append(f"{h.namespace}/{h.name}: {type(e).__name__}: {e}")

    def _start_cleanup(self, uid: str) -> None:
        h = self.handles.get(uid)
        task = self.tasks.get(uid)
        if h:
            h.deleted = True
        t = asyncio.get_running_loop().create_task(self._teardown(uid, h, task))
        self._cleanup.add(t)
        t.add_done_callback(self._cleanup.discard)

    async def _teardown(self, uid: str, h: KubeletPodHandle | None, task: asyncio.Task | None) -> None:
        if task and not task.done():
            task.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=2.0)
            except (asyncio.CancelledError, TimeoutError, Exception):
                pass
        self.handles.pop(uid, None)
        self.tasks.pop(uid, None)
        if h is not None:
            shutil.rmtree(h.sandbox, ignore_errors=True)
            parent = h.sandbox.parent
            try:
                parent.rmdir()
            except OSError:
                pass

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
        tasks = [t for t in self.tasks.values() if not t.done()]
        for t in tasks:
            t.cancel()
        for t in tasks + list(self._cleanup):
            try:
                await asyncio.wait_for(t, timeout=2.0)
            except (asyncio.CancelledError, TimeoutError, Exception):
                pass
        if self._loop_task:
            try:
                await self._loop_task
            except (asyncio.CancelledError, Exception):
                pass
        self.handles.clear()
        self.tasks.clear()


def _safe_handles(rt: PodRuntime, pod: dict) -> bool:
    try:
        return bool(rt.handles(pod))
    except Exception:
        log.exception("runtime %r handles() failed", rt)
        return False
