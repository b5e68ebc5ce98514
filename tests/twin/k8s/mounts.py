"""Volume mounts for exec: the command runs in a private mount namespace where each of the container's volumes that has
a host folder (a bound PersistentVolumeClaim, a disk emptyDir) is bind-mounted at its ``mountPath``, so that
``kubectl exec ... -- ls /mnt/model-cache/model_files`` sees what the pod simulator wrote there.

Exec otherwise runs on the host (no isolation, see README), so an absolute mount path would name a host folder. The
namespace comes from util-linux ``unshare --mount`` (as root) or ``unshare --user --map-root-user --mount``; a mount
path whose parent folders do not exist on the host gets a tmpfs over its deepest existing ancestor (visible only to
that command) to create them in. Without ``unshare`` (or with a mount path right under ``/``) exec runs without the
mount, as before.
"""

from __future__ import annotations

import logging
import os
import pathlib
import shlex
import shutil
import subprocess
import tempfile

log = logging.getLogger("tests.twin.k8s")
_UNSET = object()
_PREFIX: object = _UNSET


def namespace_prefix() -> list[str] | None:
    """argv prefix that runs a command in a private mount namespace, or None when this machine cannot (probed once)."""
    global _PREFIX
    if _PREFIX is not _UNSET:
        return _PREFIX  # type: ignore[return-value]
    _PREFIX = None
    if shutil.which("unshare") and shutil.which("mount"):
        candidates = [["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]]
        if os.geteuid() == 0:
            candidates.insert(0, ["unshare", "--mount", "--propagation", "private"])
        with tempfile.TemporaryDirectory(prefix="twin-mount-probe-") as probe:
            for cand in candidates:
                try:
                    ok = subprocess.run([*cand, "mount", "-t", "tmpfs", "twin-probe", probe], capture_output=True,
                                        timeout=10, check=False).returncode == 0
                except (OSError, subprocess.SubprocessError):
                    ok = False
                if ok:
                    _PREFIX = cand
                    break
    if _PREFIX is None:
        log.warning("exec cannot mount volumes at their mountPath on this machine (no usable `unshare --mount`)")
    return _PREFIX  # type: ignore[return-value]


def _existing_ancestor(path: pathlib.PurePosixPath) -> pathlib.PurePosixPath:
    cur = path
    while not os.path.exists(str(cur)) and cur != cur.parent:
        cur = cur.parent
    return cur


def plan(mounts: list[tuple[str, pathlib.Path]]) -> tuple[list[str], list[tuple[str, str]]]:
    """(tmpfs anchors, (target, source) binds) for ``mounts`` (mountPath, host folder); unusable ones are left out."""
    anchors: list[str] = []
    binds: list[tuple[str, str]] = []
    for target, src in sorted(mounts, key=lambda m: len(pathlib.PurePosixPath(m[0]).parts)):
        t = pathlib.PurePosixPath(target)
        if not t.is_absolute() or not os.path.isdir(src):
            continue
        if not os.path.isdir(str(t)):
            anchor = _existing_ancestor(t.parent)
            if anchor == pathlib.PurePosixPath("/") or str(src).startswith(str(anchor).rstrip("/") + "/"):
                log.warning("exec cannot mount %s at %s (no folder to create it in)", src, target)
                continue
            if str(anchor) not in anchors and not any(str(anchor).startswith(a + "/") for a in anchors):
                anchors.append(str(anchor))
        binds.append((str(t), str(src)))
    return anchors, binds


def wrap(command: list[str], mounts: list[tuple[str, pathlib.Path]]) -> list[str]:
    """``command`` run with the mounts in place (unchanged when there is nothing to mount or no namespace)."""
    if not mounts:
        return command
    anchors, binds = plan(mounts)
    prefix = namespace_prefix() if binds else None
    if not prefix:
        return command
    script = "set -e; " + "".join(f"mount -t tmpfs twin-volumes {shlex.quote(a)}; " for a in anchors)
    script += "".join(f"mkdir -p {shlex.quote(t)}; mount --bind {shlex.quote(s)} {shlex.quote(t)}; " for t, s in binds)
    return [*prefix, "/bin/sh", "-c", script + 'exec "$@"', "twin-exec", *command]
