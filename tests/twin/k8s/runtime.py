"""The pod runtime contract between the emulator's kubelet and pod simulators.

This interface is a contract other code is written against: members may be added, none changed.
"""

from __future__ import annotations

import pathlib


class PodRuntime:
    """Base class; the twin's pod simulators subclass it and register with ``Emulator.register_runtime``."""

    def handles(self, pod: dict) -> bool:
        """Whether this runtime runs ``pod``. The first registered runtime that says yes wins."""
        return False

    async def run(self, pod: dict, handle: PodHandle) -> None:
        """Called once per pod after it is bound and its images pulled. Runs the pod's whole lifecycle.

        The task is cancelled when the pod is deleted (after a SIGTERM-like grace the sandbox is kept until deletion
        completes, then removed)."""
        raise NotImplementedError


class PodHandle:
    """What a runtime uses to drive one pod. Implemented by the kubelet (``tests.twin.k8s.kubelet.KubeletPodHandle``)."""

    namespace: str
    name: str
    uid: str
    node_name: str
    sandbox: pathlib.Path  # <state_dir>/pods/<namespace>/<pod name>/ (created by the kubelet)

    @property
    def pod(self) -> dict:  # latest stored pod object (refreshed on each access)
        raise NotImplementedError

    def container_root(self, container: str) -> pathlib.Path:
        """sandbox/<container>/ (created); exec runs here."""
        raise NotImplementedError

    def volume_path(self, volume: str) -> pathlib.Path | None:
        """Host folder behind the pod volume ``volume`` (a bound PersistentVolumeClaim's data, kept across pods; a disk
        emptyDir, kept across container restarts), None for other volume kinds. Exec sees it at the mountPath."""
        raise NotImplementedError

    async def set_container_state(self, container: str, state: str, *, reason: str | None = None,
                                  message: str | None = None, exit_code: int | None = None,
                                  ready: bool = False, restart: bool = False) -> None:
        """state in {"waiting", "running", "terminated"}; restart=True moves the current state to lastState,
        increments restartCount and starts a fresh log file for the container (previous=true serves the old one).
        The emulator then recomputes pod phase, conditions, containerStatuses, the owning ReplicaSet/Deployment
        status, and sends watch events."""
        raise NotImplementedError

    async def set_ready(self, container: str, ready: bool) -> None:
        raise NotImplementedError

    async def event(self, reason: str, message: str, type: str = "Normal") -> None:
        """An Event on the pod."""
        raise NotImplementedError

    def log(self, container: str, text: str) -> None:
        """Append text (newline-terminated lines) to the container's current log."""
        raise NotImplementedError

    def expose(self, container_port: int, host: str, port: int) -> None:
        """Proxy target for that container port (pods/proxy, services/proxy)."""
        raise NotImplementedError

    async def evict(self, reason: str, message: str) -> None:
        """Phase Failed with the given reason (e.g. Evicted)."""
        raise NotImplementedError
