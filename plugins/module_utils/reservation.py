# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GPU reservation of a create: parallel creates must not all pass a free-GPU check that only some can satisfy.

Two parts, both in the cluster so that forks, AWX job slices and concurrent jobs on other machines share them:

* **A Lease** (coordination.k8s.io/v1, in the endpoint namespace) makes "count what is free, then POST" atomic.
  It is taken the way client-go's leader election takes a lock: create it, or replace it with the resourceVersion
  read (a 409 means somebody else won: read again), when it is free, expired (``renewTime`` +
  ``leaseDurationSeconds`` in the past: its holder died) or already ours; released by clearing the holder. It is
  held only for the check and the ``POST`` (a fraction of a second), not until the pod is scheduled, which on a
  real cluster may take minutes behind the builder's queue.
* **A ledger** of the creates that passed, in the Lease's annotation ``odp.model-engine/reservations``. The
  gateway cannot say what an endpoint being created will take: until its Deployment exists, the record's
  ``resource_state`` is null. So each create that passed writes its GPUs, storage and workers there (under the
  Lease), and each check counts, besides the GPUs bound pods request (the preflight's count), the pods that
  wait for a node and the ledger entries whose pods do not exist yet. An entry leaves the ledger once the
  endpoint's pods exist (they are counted as pods then), its record is failed or gone, or after 30 minutes
  (the builder task's hard limit).

Endpoints created outside this collection are counted from the moment their pods exist.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from datetime import datetime, timezone

from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import create_endpoint, list_endpoints
from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError, OdpError
from ansible_collections.odp.model_engine.plugins.module_utils.quantity import format_bytes, quantity_to_bytes

LEASE_NAME = "odp-model-engine-gpu-reservation"
LEDGER_ANNOTATION = "odp.model-engine/reservations"
LEASE_SECONDS = 60          # a holder that died frees the lock after this
LEDGER_TTL = 1800           # the builder's Celery task has a 30-minute hard limit
RECORD_GRACE = 10           # a record POSTed a moment ago may not be listed yet; a deleted one leaves the ledger after this
GONE_STATUSES = ("UPDATE_FAILED", "DELETE_IN_PROGRESS")
GPU = "nvidia.com/gpu"
ACCELERATOR = "k8s.amazonaws.com/accelerator"


class ReservationError(OdpError):
    """The endpoint would not fit once the creates in flight are counted, or the Lease could not be taken."""


def micro_now():
    """Now in UTC for a MicroTime field. The Python client serializes datetimes with isoformat(), which drops the
    fraction at microsecond 0, and the apiserver refuses a MicroTime without exactly six fraction digits."""
    now = datetime.now(timezone.utc)
    return now if now.microsecond else now.replace(microsecond=1)


def micro(value):
    """A MicroTime read back (a datetime, or its isoformat text) in the form micro_now() gives."""
    value = parse_time(value)
    if value is None:
        return None
    return value if value.microsecond else value.replace(microsecond=1)


def parse_time(value):
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------------------------- the Lease
class Lease(object):
    """One coordination.k8s.io/v1 Lease used as a lock, through ``kube`` (a ``kube.Kube``)."""

    def __init__(self, kube, namespace, name=LEASE_NAME, holder=None, duration=LEASE_SECONDS):
        from kubernetes.client import CoordinationV1Api

        self.kube, self.namespace, self.name, self.duration = kube, namespace, name, duration
        self.holder = holder or "%s@%s/%d" % ("odp.model_engine", socket.gethostname(), os.getpid())
        self.api = CoordinationV1Api(kube.client)
        self.obj = None   # the Lease as we last wrote it (while we hold it)

    def _what(self, verb):
        return "%s Lease %s/%s" % (verb, self.namespace, self.name)

    def read(self):
        try:
            return self.kube.call(self._what("Reading"), self.api.read_namespaced_lease, self.name, self.namespace)
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    def held_by_other(self, lease, now):
        spec = (lease or {}).get("spec") or {}
        holder = spec.get("holderIdentity")
        if not holder or holder == self.holder:
            return None
        renewed = parse_time(spec.get("renewTime") or spec.get("acquireTime"))
        if renewed is None or (now - renewed).total_seconds() > float(spec.get("leaseDurationSeconds") or self.duration):
            return None   # expired: its holder died without releasing it
        return holder

    def _taken(self, lease, now):
        spec = dict((lease or {}).get("spec") or {})
        changed_hands = spec.get("holderIdentity") != self.holder
        spec.update(holderIdentity=self.holder, leaseDurationSeconds=self.duration, renewTime=now,
                    acquireTime=now if changed_hands else micro(spec.get("acquireTime")) or now)
        if changed_hands:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if lease else 0)
        meta = {"name": self.name, "namespace": self.namespace,
                "annotations": dict(((lease or {}).get("metadata") or {}).get("annotations") or {})}
        if lease:
            meta["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    def try_take(self):
        """One attempt: (True, None) when we hold it now, (False, holder) when somebody else does."""
        lease, now = self.read(), micro_now()
        other = self.held_by_other(lease, now)
        if other:
            return False, other
        body = self._taken(lease, now)
        try:
            if lease is None:
                self.obj = self.kube.call(self._what("Creating"), self.api.create_namespaced_lease, self.namespace, body)
            else:
                self.obj = self.kube.call(self._what("Taking"), self.api.replace_namespaced_lease, self.name, self.namespace, body)
        except KubeError as e:
            if e.status == 409:   # AlreadyExists or Conflict: another taker was faster; read again
                return False, "another taker"
            raise
        return True, None

    def acquire(self, timeout, sleep=time.sleep, clock=time.monotonic):
        """Take the Lease, waiting up to ``timeout`` seconds; returns the seconds waited."""
        start = clock()
        while True:
            taken, holder = self.try_take()
            if taken:
                return clock() - start
            if clock() - start >= timeout:
                raise ReservationError("Could not take the GPU reservation Lease %s/%s within %ds: held by %s. It frees itself %ds after "
                                       "its holder's last renewal" % (self.namespace, self.name, timeout, holder, self.duration),
                                       reservation={"lease": self.name, "holder": holder})
            sleep(random.uniform(0.05, 0.25))

    def ledger(self):
        raw = (((self.obj or {}).get("metadata") or {}).get("annotations") or {}).get(LEDGER_ANNOTATION)
        try:
            entries = json.loads(raw) if raw else []
        except ValueError:
            entries = []
        return [e for e in entries if isinstance(e, dict) and e.get("name")]

    def release(self, ledger):
        """Give the Lease back (holder cleared, as client-go's release does) with ``ledger`` written."""
        if self.obj is None:
            return
        spec = dict(self.obj.get("spec") or {}, holderIdentity=None, leaseDurationSeconds=1, renewTime=micro_now())
        spec["acquireTime"] = micro(spec.get("acquireTime"))
        body = dict(self.obj, spec=spec)
        meta = dict(body.get("metadata") or {})
        meta["annotations"] = dict(meta.get("annotations") or {}, **{LEDGER_ANNOTATION: json.dumps(ledger, sort_keys=True)})
        meta.pop("managedFields", None)
        body["metadata"] = meta
        self.kube.call(self._what("Releasing"), self.api.replace_namespaced_lease, self.name, self.namespace, body)
        self.obj = None


# ---------------------------------------------------------------------------------------------------- demand
def _requests(pod):
    gpus, storage = 0, 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        req = dict(res.get("limits") or {}, **(res.get("requests") or {}))
        gpus += int(quantity_to_bytes(req[GPU])) if req.get(GPU) else 0
        storage += quantity_to_bytes(req["ephemeral-storage"]) if req.get("ephemeral-storage") else 0
    return gpus, storage


def _live(pod):
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def waiting_pods(pods, gpu_type):
    """GPU pods of ``gpu_type`` (by node selector) not bound to a node yet: they take a GPU as soon as one frees."""
    out = []
    for pod in pods:
        spec = pod.get("spec") or {}
        if not _live(pod) or spec.get("nodeName") or spec.get("node_name"):
            continue
        selector = spec.get("nodeSelector") or spec.get("node_selector") or {}
        gpus, storage = _requests(pod)
        if gpus and selector.get(ACCELERATOR) == gpu_type:
            out.append({"name": (pod.get("metadata") or {}).get("name"), "gpus": gpus, "storage": storage})
    return out


def prune_ledger(entries, pods, records, now):
    """(entries still in flight, the pods they stand for). An entry covers an endpoint whose pods do not exist yet."""
    by_name = {r.get("name"): r for r in records or []}
    kept, demand = [], []
    for entry in entries:
        age = now - float(entry.get("at") or 0)
        record = by_name.get(entry["name"])
        if age > LEDGER_TTL or (record is None and age > RECORD_GRACE) or (record or {}).get("status") in GONE_STATUSES:
            continue
        existing = sum(1 for p in pods if _live(p) and ((p.get("metadata") or {}).get("labels") or {}).get("endpoint_name") == entry["name"])
        missing = max(0, int(entry.get("pods") or 0) - existing)
        if missing:
            kept.append(entry)
            demand.extend([{"name": entry["name"], "gpus": int(entry["gpus"]), "storage": int(entry.get("storage") or 0)}] * missing)
    return kept, demand


def place(nodes, demand):
    """Put each demanded pod on the node with the most free GPUs that holds it (what does not fit would wait)."""
    free = {n["name"]: [n["gpu_free"], n["ephemeral_free"]] for n in nodes}
    for pod in demand:
        fits = [name for name, (g, s) in free.items() if g >= pod["gpus"] and s >= pod["storage"]]
        if fits:
            best = max(fits, key=lambda name: free[name][0])
            free[best][0] -= pod["gpus"]
            free[best][1] -= pod["storage"]
    return free


def shape(body):
    """The pods a new endpoint needs now: min_workers x nodes_per_worker pods of ``gpus`` GPUs and ``storage``."""
    gpus = int(body.get("gpus") or 0)
    pods = int(body.get("min_workers") or 0) * int(body.get("nodes_per_worker") or 1)
    storage = quantity_to_bytes(body["storage"], "storage") if body.get("storage") is not None else 0
    return {"name": body["name"], "gpu_type": body.get("gpu_type"), "gpus": gpus, "pods": pods, "storage": storage}


def check_fit(want, nodes, in_flight, waiting):
    """Problems (empty when the endpoint's pods fit after the creates in flight and the waiting pods are placed)."""
    matching = [n for n in nodes if n["gpu_type"] == want["gpu_type"] and n["schedulable"]]
    if not want["gpus"] or not want["pods"] or not matching:
        return []   # no GPU wanted now, or no such node: the preflight names that
    free = place(matching, list(waiting) + list(in_flight))
    for pod in [want] * want["pods"]:
        fits = [name for name, (g, s) in free.items() if g >= pod["gpus"] and s >= pod["storage"]]
        if not fits:
            return [_no_fit_message(want, matching, in_flight, waiting)]
        best = max(fits, key=lambda name: free[name][0])
        free[best][0] -= pod["gpus"]
        free[best][1] -= pod["storage"]
    return []


def _no_fit_message(want, nodes, in_flight, waiting):
    names = sorted({d["name"] for d in in_flight})
    counted = ["the pods on the nodes"]
    if names:
        counted.append("the %d endpoint(s) being created (%s: %d GPU)" % (len(names), ", ".join(names), sum(d["gpus"] for d in in_flight)))
    if waiting:
        counted.append("%d pod(s) waiting for a node (%d GPU)" % (len(waiting), sum(d["gpus"] for d in waiting)))
    counted = ", ".join(counted[:-1]) + " and " + counted[-1] if len(counted) > 1 else counted[0]
    detail = ", ".join("%s: %d of %d GPU free now, %s ephemeral free"
                       % (n["name"], n["gpu_free"], n["gpu_allocatable"], format_bytes(n["ephemeral_free"])) for n in nodes)
    return ("no free GPU for %s: no %s node can take %d pod(s) of %d nvidia.com/gpu and %s ephemeral storage after counting %s (%s); "
            "free a GPU (delete an idle endpoint) or create it again once those serve"
            % (want["name"], want["gpu_type"], want["pods"], want["gpus"], format_bytes(want["storage"]),
               counted, detail))


# ---------------------------------------------------------------------------------------------------- the create
def _view(kube, client, namespace):
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import node_capacity

    nodes = kube.list("Node")
    pods = kube.list_all_pods()
    capacity = node_capacity(nodes, pods)
    endpoint_pods = [p for p in pods if (p.get("metadata") or {}).get("namespace") == namespace]
    return list(capacity.values()), pods, endpoint_pods, list_endpoints(client)


def reserve_and_create(module, client, body):
    """Create the endpoint under the GPU reservation Lease; refuse (ReservationError) when it would not fit.
    Returns what ``endpoints.create_endpoint`` returns."""
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    p = module.params
    want = shape(body)
    lease = Lease(Kube(p), p["namespace"], p.get("reservation_lease") or LEASE_NAME,
                  holder="%s@%s/%d" % (want["name"], socket.gethostname(), os.getpid()))
    waited = lease.acquire(p.get("reservation_timeout") or 300)
    info = {"lease": lease.name, "holder": lease.holder, "waited": round(waited, 3)}
    module.result["reservation"] = info
    ledger = lease.ledger()
    try:
        nodes, pods, endpoint_pods, records = _view(lease.kube, client, p["namespace"])
        ledger, in_flight = prune_ledger(ledger, endpoint_pods, records, time.time())
        waiting = waiting_pods(pods, want["gpu_type"])
        info.update(being_created=sorted({d["name"] for d in in_flight}), waiting_pods=len(waiting))
        problems = check_fit(want, nodes, in_flight, waiting)
        if problems:
            raise ReservationError("Endpoint %s was not created: %s" % (want["name"], problems[0]), problems=problems, reservation=info)
        created = create_endpoint(client, body)
        if want["gpus"] and want["pods"]:
            ledger = [*ledger, dict(want, at=round(time.time(), 3))]
        return created
    finally:
        _release(module, lease, ledger)


def _release(module, lease, ledger):
    try:
        lease.release(ledger)
    except KubeError as e:   # the Lease expires by itself; do not hide the create's own outcome
        module.warn("Could not release the GPU reservation Lease (it frees itself within %ds): %s" % (lease.duration, e))
