# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a pod's status says, in the words an operator uses (``kubectl get pods``: READY 0/2, STATUS)."""

from __future__ import annotations

import datetime
import time

# Waiting reasons after which a container will not come up without a change.
TERMINAL_WAITING = ("CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                    "CreateContainerConfigError", "CreateContainerError")


def _get(obj, *keys):
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def container_problem(pod, container, include_phase=True):
    """Why ``container`` of ``pod`` cannot be making progress, or None (``include_phase``: also a
    pod that has Failed or Succeeded as a whole)."""
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") != container:
            continue
        state = cs.get("state") or {}
        if "terminated" in state and state["terminated"] is not None:
            t = state["terminated"]
            return "container %s terminated (exit code %s, %s)" % (container, t.get("exitCode"), t.get("reason") or "no reason")
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in TERMINAL_WAITING:
            last = _get(cs, "lastState", "terminated") or {}
            extra = ", last exit code %s %s" % (last.get("exitCode"), last.get("reason") or "") if last else ""
            return "container %s is %s (restarts %s%s)" % (container, waiting["reason"], cs.get("restartCount", 0), extra)
    if include_phase and status.get("phase") in ("Failed", "Succeeded"):
        return "pod is %s: %s" % (status["phase"], status.get("reason") or status.get("message") or "")
    return None


def container_status(pod, name):
    """The containerStatuses entry of container ``name`` ({} when it has none yet)."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == name:
            return cs
    return {}


def container_spec(pod, name):
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c.get("name") == name:
            return c
    return {}


def is_ready(pod):
    """Running with every container ready (what READY n/n means in ``kubectl get pods``)."""
    status = pod.get("status") or {}
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    return status.get("phase") == "Running" and bool(names) and all(container_status(pod, n).get("ready") for n in names)


def pod_rs(pod):
    """Name of the ReplicaSet that owns the pod, or None."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "ReplicaSet":
            return ref.get("name")
    return None


def parse_timestamp(timestamp):
    """Seconds since the epoch of an RFC 3339 timestamp (``2026-11-27T01:46:20Z``, fractions ignored), or None."""
    if not timestamp:
        return None
    try:
        then = datetime.datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    return then.timestamp()


def age_seconds(timestamp, now=None):
    """Seconds since an RFC 3339 timestamp, or None."""
    then = parse_timestamp(timestamp)
    return None if then is None else int((now or time.time()) - then)


def pod_summary(pod):
    """{phase, ready, total, restarts, display, unschedulable, problem}: the kubectl view plus why it is stuck."""
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    statuses = {cs.get("name"): cs for cs in status.get("containerStatuses") or []}
    ready = sum(1 for n in names if (statuses.get(n) or {}).get("ready"))
    restarts = sum((statuses.get(n) or {}).get("restartCount", 0) for n in names)
    display = status.get("reason") if status.get("phase") == "Failed" and status.get("reason") else status.get("phase") or "Unknown"
    for n in names:  # kubectl shows the first waiting/terminated reason instead of the phase
        st = (statuses.get(n) or {}).get("state") or {}
        reason = _get(st, "waiting", "reason") or _get(st, "terminated", "reason")
        if reason and reason not in ("ContainerCreating", "PodInitializing", "Completed"):
            display = reason
            break
    unschedulable = None
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
            unschedulable = cond.get("message") or "Unschedulable"
    problem = None
    for n in names:
        problem = container_problem(pod, n, include_phase=False)
        if problem:
            break
    if not problem and status.get("phase") in ("Failed", "Succeeded"):
        problem = "pod is %s: %s" % (status["phase"], status.get("reason") or status.get("message") or "")
    if unschedulable and not problem:
        problem = "pod cannot be scheduled: %s" % unschedulable
    return {
        "name": _get(pod, "metadata", "name"),
        "age_seconds": age_seconds(_get(pod, "metadata", "creationTimestamp")),
        "phase": status.get("phase"),
        "ready": ready,
        "total": len(names),
        "restarts": restarts,
        "display": "%d/%d %s" % (ready, len(names), display),
        "unschedulable": unschedulable,
        "problem": problem,
    }
