"""Controllers: Deployment, ReplicaSet, scheduler, service account and endpoints controllers.

They run as one level-triggered loop: every store change (and a 0.2 s tick for time-based conditions) triggers a
full reconcile pass. Writes happen only when something differs, so the loop settles."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import math
import re
import time
from collections import Counter
from typing import TYPE_CHECKING

from . import objects
from . import resources as R
from .addons import AddOnControllers
from .errors import ApiError
from .selectors import labels_match, selector_from_label_selector
from .storage import VolumeControllers
from .store import random_suffix

if TYPE_CHECKING:
    from .emulator import Emulator

log = logging.getLogger("tests.twin.k8s")

_ALNUM = "bcdfghjklmnpqrstvwxz2456789"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
NOT_COPIED = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY, DESIRED, MAX_REPLICAS,
              "deprecated.deployment.rollback.to"}
TERMINAL = ("Succeeded", "Failed")


# ---------------------------------------------------------------------------------------------------------------------
# quantities

_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "n": 1e-9, "u": 1e-6, "m": 1e-3,
           "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def parse_quantity(q) -> float:
    if q is None:
        return 0.0
    if isinstance(q, (int, float)):
        return float(q)
    m = re.fullmatch(r"\s*([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*", str(q))
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"invalid quantity {q!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def pod_requests(pod: dict) -> dict[str, float]:
    spec = pod.get("spec") or {}

    def container_req(c):
        res = c.get("resources") or {}
        req = dict(res.get("limits") or {})
        req.update(res.get("requests") or {})
        return {k: parse_quantity(v) for k, v in req.items()}

    total: Counter = Counter()
    for c in spec.get("containers") or []:
        total.update(container_req(c))
    for c in spec.get("initContainers") or []:
        for k, v in container_req(c).items():
            total[k] = max(total[k], v)
    for k, v in (spec.get("overhead") or {}).items():
        total[k] += parse_quantity(v)
    out = dict(total)
    out["pods"] = 1
    return out


# ---------------------------------------------------------------------------------------------------------------------
# helpers


def owner_ref(obj: dict) -> dict:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def controller_uid(obj: dict) -> str | None:
    for r in obj["metadata"].get("ownerReferences") or []:
        if r.get("controller"):
            return r.get("uid")
    return None


def pod_is_ready(pod: dict) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pod_template_hash(template: dict, collision_count: int = 0) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode() + str(collision_count).encode()).digest()
    n = int.from_bytes(digest[:4], "big")
    return "".join(_ALNUM[ord(ch) % len(_ALNUM)] for ch in str(n))


def _strip_hash(template: dict) -> dict:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop("pod-template-hash", None)
    return t


def resolve_int_or_percent(value, total: int, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    s = str(value)
    if s.endswith("%"):
        pct = float(s[:-1]) / 100.0 * total
        return math.ceil(pct) if round_up else math.floor(pct)
    return int(s)


def _cond(obj_status: dict, ctype: str) -> dict | None:
    for c in obj_status.get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def _set_cond(conds: list, ctype: str, status: str, reason: str, message: str, *, touch: bool = False,
              with_update_time: bool = True) -> list:
    now = objects.now_iso()
    old = next((c for c in conds if c.get("type") == ctype), None)
    new = {"type": ctype, "status": status}
    if with_update_time:
        new["lastUpdateTime"] = now
    new["lastTransitionTime"] = now
    new["reason"], new["message"] = reason, message
    if old is not None:
        same = old.get("status") == status and old.get("reason") == reason and old.get("message") == message
        if same and not touch:
            return conds
        if old.get("status") == status:
            new["lastTransitionTime"] = old.get("lastTransitionTime", now)
    out = [c for c in conds if c.get("type") != ctype]
    out.append(new)
    order = {"Available": 0, "Progressing": 1, "ReplicaFailure": 2}
    out.sort(key=lambda c: order.get(c.get("type"), 9))
    return out


class ControllerManager:
    def __init__(self, emu: Emulator):
        self.emu = emu
        self.store = emu.store
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._sched_sig: dict[str, str] = {}
        self.store.add_listener(self._on_event)
        self.errors: list[str] = []
        self.addons = AddOnControllers(self)
        self.volumes = VolumeControllers(self)
        self._volume_wait: dict[str, str] = {}   # pod uid -> node chosen while its WaitForFirstConsumer claims bind

    _KEYS = {R.POD.key, R.REPLICASET.key, R.DEPLOYMENT.key, R.NODE.key, R.NAMESPACE.key, R.SERVICE.key}

    def _on_event(self, ev) -> None:
        if ev.key in self._KEYS or ev.key in AddOnControllers.KEYS or ev.key in VolumeControllers.KEYS:
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=0.2)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                self.reconcile()
            except Exception as e:  # keep the control loop alive; surface the bug in the log and errors list
                log.exception("controller pass failed")
                self.errors.append(f"{type(e).__name__}: {e}")
            await asyncio.sleep(0)

    def reconcile(self) -> None:
        self.sync_service_accounts()
        for d in self.store.list_raw(R.DEPLOYMENT.key):
            self.sync_deployment(d)
        for rs in self.store.list_raw(R.REPLICASET.key):
            self.sync_replicaset(rs)
        self.volumes.reconcile()
        self.schedule()
        self.sync_endpoints()
        self.addons.reconcile()

    # -- small writers -------------------------------------------------------------------------------------------------
    def _update(self, rt, obj: dict, sub: str = "", manager: str = "kube-controller-manager") -> dict | None:
        m = obj["metadata"]
        try:
            return self.store.update(rt, obj, m.get("namespace"), m["name"], subresource=sub, manager=manager, validate=False)
        except ApiError as e:
            if e.code not in (404, 409):
                raise
            return None

    def _event(self, obj, reason, message, type="Normal", component="deployment-controller"):
        self.emu.record_event(obj, reason, message, type, component)

    # -- service accounts ----------------------------------------------------------------------------------------------
    def sync_service_accounts(self) -> None:
        for ns in self.store.list_raw(R.NAMESPACE.key):
            name = ns["metadata"]["name"]
            if self.store.get_raw(R.SERVICEACCOUNT.key, name, "default") is None:
                try:
                    self.store.create(R.SERVICEACCOUNT, {"metadata": {"name": "default", "namespace": name}}, name,
                                      manager="kube-controller-manager")
                except ApiError:
                    pass

    # -- deployments ---------------------------------------------------------------------------------------------------
    def _owned_rs(self, d: dict) -> list[dict]:
        uid = d["metadata"]["uid"]
        return [rs for rs in self.store.list_raw(R.REPLICASET.key, d["metadata"]["namespace"]) if controller_uid(rs) == uid]

    @staticmethod
    def _rev(rs: dict) -> int:
        try:
            return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
        except ValueError:
            return 0

    def _scale_rs(self, d: dict, rs: dict, replicas: int, surge: int) -> dict:
        old = rs["spec"].get("replicas", 0)
        new = copy.deepcopy(rs)
        new["spec"]["replicas"] = replicas
        ann = new["metadata"].setdefault("annotations", {})
        ann[DESIRED] = str(d["spec"].get("replicas", 1))
        ann[MAX_REPLICAS] = str(d["spec"].get("replicas", 1) + surge)
        res = self._update(R.REPLICASET, new) or rs
        if old != replicas:
            word = "up" if replicas > old else "down"
            self._event(d, "ScalingReplicaSet", f"Scaled {word} replica set {rs['metadata']['name']} from {old} to {replicas}")
        return res

    def sync_deployment(self, d: dict) -> None:
        d = copy.deepcopy(d)
        spec = d["spec"]
        replicas = spec.get("replicas", 1)
        strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
        ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge = resolve_int_or_percent(ru.get("maxSurge", "25%"), replicas, True) if strategy == "RollingUpdate" else 0
        unavail = resolve_int_or_percent(ru.get("maxUnavailable", "25%"), replicas, False) if strategy == "RollingUpdate" else 0
        if strategy == "RollingUpdate" and surge == 0 and unavail == 0:
            unavail = 1
        owned = self._owned_rs(d)
        template = _strip_hash(spec.get("template") or {})
        new_rs = next((rs for rs in sorted(owned, key=lambda r: r["metadata"]["creationTimestamp"])
                       if _strip_hash(rs["spec"].get("template") or {}) == template), None)
        olds = [rs for rs in owned if new_rs is None or rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        max_old_rev = max([self._rev(rs) for rs in olds] or [0])
        progressing_event: tuple[str, str] | None = None
        paused = bool(spec.get("paused"))
        if not paused:
            if new_rs is None:
                new_rs = self._create_new_rs(d, template, max_old_rev + 1, replicas, surge, olds, strategy)
                if new_rs is not None:
                    progressing_event = ("NewReplicaSetCreated", f'Created new replica set "{new_rs["metadata"]["name"]}"')
            elif self._rev(new_rs) <= max_old_rev or self._needs_annotation_sync(d, new_rs):
                new_rs = self._bump_revision(d, new_rs, max(max_old_rev + 1, self._rev(new_rs)), olds)
                progressing_event = ("FoundNewReplicaSet", f'Found new replica set "{new_rs["metadata"]["name"]}"')
            if new_rs is not None:
                if strategy == "Recreate":
                    new_rs = self._recreate(d, new_rs, olds, replicas)
                else:
                    new_rs, olds = self._rolling(d, new_rs, olds, replicas, surge, unavail)
            self._cleanup(d, olds)
        self._deployment_status(d, new_rs, replicas, unavail, progressing_event)

    def _needs_annotation_sync(self, d: dict, rs: dict) -> bool:
        want = {k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in NOT_COPIED}
        have = {k: v for k, v in (rs["metadata"].get("annotations") or {}).items() if k not in NOT_COPIED}
        return want != have or (d["metadata"].get("annotations") or {}).get(REVISION) != str(self._rev(rs))

    def _create_new_rs(self, d, template, revision, replicas, surge, olds, strategy) -> dict | None:
        meta, spec = d["metadata"], d["spec"]
        collision = (d.get("status") or {}).get("collisionCount", 0)
        h = pod_template_hash(template, collision)
        rs_template = copy.deepcopy(template)
        rs_template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
        sel = copy.deepcopy(spec.get("selector") or {})
        sel.setdefault("matchLabels", {})["pod-template-hash"] = h
        ann = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in NOT_COPIED}
        ann.update({DESIRED: str(replicas), MAX_REPLICAS: str(replicas + surge), REVISION: str(revision)})
        if strategy == "Recreate" or not olds:
            initial = replicas if not any(rs["spec"].get("replicas", 0) for rs in olds) else 0
        else:
            current = sum(rs["spec"].get("replicas", 0) for rs in olds)
            initial = max(0, min(replicas, replicas + surge - current))
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{meta['name']}-{h}", "namespace": meta["namespace"],
                           "labels": copy.deepcopy(rs_template["metadata"]["labels"]), "annotations": ann,
                           "ownerReferences": [owner_ref(d)]},
              "spec": {"replicas": initial, "minReadySeconds": spec.get("minReadySeconds", 0), "selector": sel,
                       "template": rs_template}}
        try:
            created = self.store.create(R.REPLICASET, rs, meta["namespace"], manager="kube-controller-manager", validate=False)
        except ApiError as e:
            if e.reason == "AlreadyExists":
                st = copy.deepcopy(d.get("status") or {})
                st["collisionCount"] = collision + 1
                d2 = copy.deepcopy(d)
                d2["status"] = st
                self._update(R.DEPLOYMENT, d2, "status")
                return None
            raise
        if initial:
            self._event(d, "ScalingReplicaSet", f"Scaled up replica set {created['metadata']['name']} from 0 to {initial}")
        self._set_deployment_revision(d, revision)
        return created

    def _set_deployment_revision(self, d: dict, revision: int) -> None:
        cur = self.store.get_raw(R.DEPLOYMENT.key, d["metadata"]["namespace"], d["metadata"]["name"])
        if cur is None:
            return
        if (cur["metadata"].get("annotations") or {}).get(REVISION) == str(revision):
            return
        new = copy.deepcopy(cur)
        new["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
        updated = self._update(R.DEPLOYMENT, new)
        if updated:
            d["metadata"] = updated["metadata"]

    def _bump_revision(self, d: dict, rs: dict, revision: int, olds: list) -> dict:
        new = copy.deepcopy(rs)
        ann = new["metadata"].setdefault("annotations", {})
        old_rev = ann.get(REVISION)
        for k in [k for k in ann if k not in NOT_COPIED]:
            del ann[k]
        ann.update({k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in NOT_COPIED})
        if old_rev and int(old_rev) < revision:
            hist = [x for x in ann.get(REVISION_HISTORY, "").split(",") if x]
            hist.append(old_rev)
            ann[REVISION_HISTORY] = ",".join(hist)
        ann[REVISION] = str(revision)
        res = self._update(R.REPLICASET, new) or rs
        self._set_deployment_revision(d, revision)
        return res

    def _rs_pods(self, rs: dict) -> list[dict]:
        uid = rs["metadata"]["uid"]
        return [p for p in self.store.list_raw(R.POD.key, rs["metadata"]["namespace"]) if controller_uid(p) == uid]

    def _recreate(self, d, new_rs, olds, replicas) -> dict:
        active_old = False
        for rs in olds:
            if rs["spec"].get("replicas", 0) > 0:
                self._scale_rs(d, rs, 0, 0)
                active_old = True
            if any((p.get("status") or {}).get("phase") not in TERMINAL for p in self._rs_pods(rs)):
                active_old = True
        if active_old:
            return new_rs
        if new_rs["spec"].get("replicas", 0) != replicas:
            new_rs = self._scale_rs(d, new_rs, replicas, 0)
        return new_rs

    def _rolling(self, d, new_rs, olds, replicas, surge, unavail):
        # scale up the new replica set
        cur_new = new_rs["spec"].get("replicas", 0)
        target = cur_new
        if cur_new > replicas:
            target = replicas
        elif cur_new < replicas:
            total = cur_new + sum(rs["spec"].get("replicas", 0) for rs in olds)
            max_total = replicas + surge
            if total < max_total:
                target = min(cur_new + max_total - total, replicas)
        if target != cur_new or (new_rs["metadata"].get("annotations") or {}).get(DESIRED) != str(replicas):
            new_rs = self._scale_rs(d, new_rs, target, surge)
        # scale down old replica sets
        olds = sorted(olds, key=lambda r: (self._rev(r), r["metadata"]["creationTimestamp"]))
        old_total = sum(rs["spec"].get("replicas", 0) for rs in olds)
        if old_total > 0:
            min_available = replicas - unavail
            all_pods = new_rs["spec"].get("replicas", 0) + old_total
            new_unavailable = new_rs["spec"].get("replicas", 0) - (new_rs.get("status") or {}).get("availableReplicas", 0)
            max_down = all_pods - min_available - new_unavailable
            result = []
            for old in olds:
                spec_r = old["spec"].get("replicas", 0)
                unhealthy = spec_r - (old.get("status") or {}).get("availableReplicas", 0)
                if max_down > 0 and unhealthy > 0 and spec_r > 0:
                    down = min(max_down, unhealthy)
                    old = self._scale_rs(d, old, spec_r - down, surge)  # noqa: PLW2901
                    max_down -= down
                result.append(old)
            olds = result
            available = sum((rs.get("status") or {}).get("availableReplicas", 0) for rs in [new_rs, *olds])
            budget = available - min_available
            result = []
            for old in olds:
                spec_r = old["spec"].get("replicas", 0)
                if budget > 0 and spec_r > 0:
                    down = min(spec_r, budget)
                    old = self._scale_rs(d, old, spec_r - down, surge)  # noqa: PLW2901
                    budget -= down
                result.append(old)
            olds = result
        return new_rs, olds

    def _cleanup(self, d: dict, olds: list) -> None:
        limit = d["spec"].get("revisionHistoryLimit", 10)
        dead = [rs for rs in olds if rs["spec"].get("replicas", 0) == 0 and (rs.get("status") or {}).get("replicas", 0) == 0
                and not self._rs_pods(rs)]
        dead.sort(key=self._rev)
        for rs in dead[: max(0, len(dead) - limit)]:
            try:
                self.store.delete(R.REPLICASET, rs["metadata"]["namespace"], rs["metadata"]["name"])
            except ApiError:
                pass

    def _deployment_status(self, d: dict, new_rs: dict | None, replicas: int, unavail: int, progressing_event) -> None:
        cur = self.store.get_raw(R.DEPLOYMENT.key, d["metadata"]["namespace"], d["metadata"]["name"])
        if cur is None:
            return
        owned = self._owned_rs(cur)
        old_status = cur.get("status") or {}
        total_spec = sum(rs["spec"].get("replicas", 0) for rs in owned)
        st_replicas = sum((rs.get("status") or {}).get("replicas", 0) for rs in owned)
        ready = sum((rs.get("status") or {}).get("readyReplicas", 0) for rs in owned)
        available = sum((rs.get("status") or {}).get("availableReplicas", 0) for rs in owned)
        updated = (new_rs.get("status") or {}).get("replicas", 0) if new_rs else 0
        if new_rs is not None:
            new_rs = self.store.get_raw(R.REPLICASET.key, new_rs["metadata"]["namespace"], new_rs["metadata"]["name"]) or new_rs
            updated = (new_rs.get("status") or {}).get("replicas", 0)
        st = {"observedGeneration": cur["metadata"].get("generation", 1)}
        for k, v in (("replicas", st_replicas), ("updatedReplicas", updated), ("readyReplicas", ready),
                     ("availableReplicas", available), ("unavailableReplicas", max(total_spec - available, 0))):
            if v:
                st[k] = v
        if old_status.get("collisionCount"):
            st["collisionCount"] = old_status["collisionCount"]
        conds = copy.deepcopy(old_status.get("conditions") or [])
        min_avail = replicas - unavail
        if available >= min_avail:
            conds = _set_cond(conds, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            conds = _set_cond(conds, "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        rs_name = new_rs["metadata"]["name"] if new_rs else ""
        prog = _cond(old_status, "Progressing")
        complete = (new_rs is not None and updated == replicas and available == replicas and st_replicas == replicas
                    and (new_rs["spec"].get("replicas", 0) == replicas))
        progressed = any(old_status.get(k, 0) != st.get(k, 0) for k in ("replicas", "updatedReplicas", "readyReplicas",
                                                                          "availableReplicas"))
        deadline = cur["spec"].get("progressDeadlineSeconds", 600)
        if cur["spec"].get("paused"):
            conds = _set_cond(conds, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        elif progressing_event and progressing_event[0] == "NewReplicaSetCreated" and not complete:
            conds = _set_cond(conds, "Progressing", "True", progressing_event[0], progressing_event[1], touch=True)
        elif complete:
            conds = _set_cond(conds, "Progressing", "True", "NewReplicaSetAvailable",
                              f'ReplicaSet "{rs_name}" has successfully progressed.')
        elif progressing_event and progressing_event[0] == "FoundNewReplicaSet":
            conds = _set_cond(conds, "Progressing", "True", "FoundNewReplicaSet", progressing_event[1], touch=True)
        elif progressed or prog is None or (prog.get("reason") == "NewReplicaSetAvailable"):
            conds = _set_cond(conds, "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.',
                              touch=True)
        elif prog.get("reason") != "ProgressDeadlineExceeded" and deadline is not None:
            last = objects.parse_time(prog.get("lastUpdateTime"))
            if last and time.time() - last > deadline:
                conds = _set_cond(conds, "Progressing", "False", "ProgressDeadlineExceeded",
                                  f'ReplicaSet "{rs_name}" has timed out progressing.')
        st["conditions"] = conds
        if st == old_status:
            return
        new = copy.deepcopy(cur)
        new["status"] = st
        self._update(R.DEPLOYMENT, new, "status")

    # -- replica sets --------------------------------------------------------------------------------------------------
    def sync_replicaset(self, rs: dict) -> None:
        meta, spec = rs["metadata"], rs["spec"]
        ns = meta["namespace"]
        pods = [p for p in self._rs_pods(rs) if (p.get("status") or {}).get("phase") not in TERMINAL]
        want = spec.get("replicas", 1)
        diff = want - len(pods)
        if diff > 0:
            for _ in range(min(diff, 500)):
                pods.append(self._create_pod(rs))
        elif diff < 0:
            def rank(p):
                st = p.get("status") or {}
                return (bool(p["spec"].get("nodeName")), st.get("phase") == "Running", pod_is_ready(p),
                        -objects.parse_time(p["metadata"].get("creationTimestamp")))
            for p in sorted(pods, key=rank)[: -diff]:
                try:
                    self.store.delete(R.POD, ns, p["metadata"]["name"])
                    self._event(rs, "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}",
                                component="replicaset-controller")
                except ApiError:
                    pass
            pods = [p for p in self._rs_pods(rs) if (p.get("status") or {}).get("phase") not in TERMINAL]
        ready = sum(1 for p in pods if pod_is_ready(p))
        sel = selector_from_label_selector(spec.get("selector")) or []
        labeled = sum(1 for p in pods if labels_match(sel, p["metadata"].get("labels")))
        st = {"replicas": len(pods), "observedGeneration": meta.get("generation", 1)}
        for k, v in (("fullyLabeledReplicas", labeled), ("readyReplicas", ready), ("availableReplicas", ready)):
            if v:
                st[k] = v
        if st != (rs.get("status") or {}):
            cur = self.store.get_raw(R.REPLICASET.key, ns, meta["name"])
            if cur is None:
                return
            new = copy.deepcopy(cur)
            new["status"] = st
            self._update(R.REPLICASET, new, "status")

    def _create_pod(self, rs: dict) -> dict:
        tmpl = rs["spec"].get("template") or {}
        tm = tmpl.get("metadata") or {}
        name = f"{rs['metadata']['name']}-{random_suffix()}"
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "generateName": rs["metadata"]["name"] + "-", "namespace": rs["metadata"]["namespace"],
                            "labels": copy.deepcopy(tm.get("labels") or {}), "ownerReferences": [owner_ref(rs)]},
               "spec": copy.deepcopy(tmpl.get("spec") or {})}
        if tm.get("annotations"):
            pod["metadata"]["annotations"] = copy.deepcopy(tm["annotations"])
        try:
            created = self.store.create(R.POD, pod, rs["metadata"]["namespace"], manager="kube-controller-manager", validate=False)
        except ApiError as e:
            self._event(rs, "FailedCreate", f"Error creating: {e.message}", "Warning", component="replicaset-controller")
            raise
        self._event(rs, "SuccessfulCreate", f"Created pod: {name}", component="replicaset-controller")
        return created

    # -- scheduler -----------------------------------------------------------------------------------------------------
    def schedule(self) -> None:
        pods = self.store.list_raw(R.POD.key)
        pending = [p for p in pods if not p["spec"].get("nodeName") and (p.get("status") or {}).get("phase", "Pending") == "Pending"
                   and p["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"]
        if not pending:
            return
        pending.sort(key=lambda p: (-(p["spec"].get("priority") or 0), p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
        nodes = sorted(self.store.list_raw(R.NODE.key), key=lambda n: n["metadata"]["name"])
        used: dict[str, Counter] = {n["metadata"]["name"]: Counter() for n in nodes}
        for p in pods:
            nn = p["spec"].get("nodeName") or self._volume_wait.get(p["metadata"]["uid"])   # assumed while volumes bind
            if nn in used and (p.get("status") or {}).get("phase") not in TERMINAL:
                used[nn].update(pod_requests(p))
        pending_uids = {p["metadata"]["uid"] for p in pending}
        for uid in [u for u in self._volume_wait if u not in pending_uids]:
            del self._volume_wait[uid]
        sig_base = json.dumps([[n["metadata"]["name"], n["metadata"]["resourceVersion"]] for n in nodes] +
                              sorted([k, sorted(v.items())] for k, v in used.items()))
        for pod in pending:
            self._schedule_one(pod, nodes, used, sig_base)

    def _schedule_one(self, pod: dict, nodes: list[dict], used: dict[str, Counter], sig_base: str) -> None:
        uid = pod["metadata"]["uid"]
        rejection, bound, delayed = self.volumes.prefilter(pod)
        if rejection:
            sig = sig_base + rejection + self._claims_sig(pod)
            if self._sched_sig.get(uid) != sig:
                self._sched_sig[uid] = sig
                self._unschedulable(pod, self._prefilter_message(len(nodes), rejection))
            return
        waiting = self._volume_wait.get(uid)
        if waiting:   # PreBind: the pod is bound once the provisioner has bound its claims on the chosen node
            if self.volumes.select_node(delayed, waiting):
                del self._volume_wait[uid]
                self._bind(pod, waiting)
            return
        ok_nodes, reasons = [], []
        req = pod_requests(pod)
        for n in nodes:
            why = self._node_unfit(pod, n, req, used[n["metadata"]["name"]], bound)
            if why is None:
                ok_nodes.append(n)
            else:
                reasons.append(why)
        if ok_nodes:
            def score(n):
                alloc = n["status"].get("allocatable") or {}
                u = used[n["metadata"]["name"]]
                fr = [u[r] / parse_quantity(alloc[r]) for r in ("cpu", "memory") if parse_quantity(alloc.get(r, 0))]
                return (sum(fr), n["metadata"]["name"])
            node = min(ok_nodes, key=score)["metadata"]["name"]
            used[node].update(req)
            self._sched_sig.pop(uid, None)
            if delayed and not self.volumes.select_node(delayed, node):
                self._volume_wait[uid] = node
                return
            self._bind(pod, node)
            return
        sig = sig_base + self._claims_sig(pod)
        if self._sched_sig.get(uid) == sig:
            return
        self._sched_sig[uid] = sig
        self._unschedulable(pod, self._fit_message(len(nodes), reasons))

    def _claims_sig(self, pod: dict) -> str:
        ns = pod["metadata"]["namespace"]
        return json.dumps([(c, (self.store.get_raw(R.PVC.key, ns, c) or {}).get("metadata", {}).get("resourceVersion"))
                           for c in self.volumes.pod_claims(pod)])

    @staticmethod
    def _prefilter_message(n_nodes: int, rejection: str) -> str:
        """A PreFilter rejection (VolumeBinding) names no node: ``0/2 nodes are available: <reason>. preemption: ...``."""
        return (f"0/{n_nodes} nodes are available: {rejection}. preemption: 0/{n_nodes} nodes are available: "
                f"{n_nodes} Preemption is not helpful for scheduling.")

    @staticmethod
    def _tolerates(tols: list, taint: dict) -> bool:
        for t in tols or []:
            if t.get("effect") and t.get("effect") != taint.get("effect"):
                continue
            op = t.get("operator", "Equal")
            if not t.get("key"):
                if op == "Exists":
                    return True
                continue
            if t.get("key") != taint.get("key"):
                continue
            if op == "Exists" or t.get("value", "") == taint.get("value", ""):
                return True
        return False

    def _node_unfit(self, pod: dict, node: dict, req: dict, used: Counter, volumes: list | tuple = ()) -> tuple[str, list[str]] | None:
        """None when the pod fits, else (kind, reasons) with kind 'unresolvable' or 'resources'."""
        spec = pod["spec"]
        nspec = node.get("spec") or {}
        ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
        if nspec.get("unschedulable") and not self._tolerates(spec.get("tolerations"), {"key": "node.kubernetes.io/unschedulable",
                                                                                          "effect": "NoSchedule"}):
            return ("unresolvable", ["node(s) were unschedulable"])
        taints = list(nspec.get("taints") or [])
        if ready.get("status") != "True":
            taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
        for taint in taints:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not self._tolerates(spec.get("tolerations"), taint):
                return ("unresolvable", [f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"])
        labels = node["metadata"].get("labels") or {}
        if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()) or not self._affinity_ok(spec, labels):
            return ("unresolvable", ["node(s) didn't match Pod's node affinity/selector"])
        alloc = (node.get("status") or {}).get("allocatable") or {}
        missing = []
        for r, amount in sorted(req.items()):
            if amount <= 0:
                continue
            cap = parse_quantity(alloc.get(r, 0)) if r in alloc else (0 if r not in ("cpu", "memory", "ephemeral-storage") else None)
            if cap is None:
                continue
            if used.get(r, 0) + amount > cap + 1e-9:
                missing.append("Too many pods" if r == "pods" else f"Insufficient {r}")
        if missing:
            return ("resources", missing)
        if volumes and VolumeControllers.node_conflict(list(volumes), labels):
            return ("unresolvable", ["node(s) had volume node affinity conflict"])
        return None

    @staticmethod
    def _affinity_ok(spec: dict, labels: dict) -> bool:
        na = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        if not na:
            return True
        terms = na.get("nodeSelectorTerms") or []
        for term in terms:
            ok = True
            for e in term.get("matchExpressions") or []:
                k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
                v = labels.get(k)
                if op == "In":
                    ok = v in vals
                elif op == "NotIn":
                    ok = v not in vals
                elif op == "Exists":
                    ok = k in labels
                elif op == "DoesNotExist":
                    ok = k not in labels
                elif op in ("Gt", "Lt"):
                    try:
                        ok = v is not None and (int(v) > int(vals[0]) if op == "Gt" else int(v) < int(vals[0]))
                    except ValueError:
                        ok = False
                if not ok:
                    break
            if ok:
                return True
        return not terms

    @staticmethod
    def _fit_message(n_nodes: int, reasons: list) -> str:
        if n_nodes == 0:
            return "no nodes available to schedule pods"
        hist: Counter = Counter()
        pre: Counter = Counter()
        for kind, rs in reasons:
            for r in rs:
                hist[r] += 1
            pre["No preemption victims found for incoming pod" if kind == "resources" else
                "Preemption is not helpful for scheduling"] += 1
        parts = sorted(f"{v} {k}" for k, v in hist.items())
        pparts = sorted(f"{v} {k}" for k, v in pre.items())
        return (f"0/{n_nodes} nodes are available: " + ", ".join(parts) + ". preemption: "
                f"0/{n_nodes} nodes are available: " + ", ".join(pparts) + ".")

    def _bind(self, pod: dict, node: str) -> None:
        new = copy.deepcopy(pod)
        new["spec"]["nodeName"] = node
        st = new.setdefault("status", {})
        st["conditions"] = [c for c in st.get("conditions") or [] if c.get("type") != "PodScheduled"]
        st["conditions"].append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                 "lastTransitionTime": objects.now_iso()})
        res = self.store.update(R.POD, new, pod["metadata"]["namespace"], pod["metadata"]["name"], manager="kube-scheduler",
                                validate=False)
        res2 = copy.deepcopy(res)
        res2["status"] = st
        res = self.store.update(R.POD, res2, pod["metadata"]["namespace"], pod["metadata"]["name"], subresource="status",
                                manager="kube-scheduler", validate=False)
        self.emu.record_event(res, "Scheduled", f"Successfully assigned {pod['metadata']['namespace']}/{pod['metadata']['name']} "
                              f"to {node}", "Normal", "default-scheduler")

    def _unschedulable(self, pod: dict, message: str) -> None:
        new = copy.deepcopy(pod)
        st = new.setdefault("status", {})
        old = next((c for c in st.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if not (old and old.get("message") == message and old.get("status") == "False"):
            st["conditions"] = [c for c in st.get("conditions") or [] if c.get("type") != "PodScheduled"]
            st["conditions"].append({"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                                     "lastTransitionTime": objects.now_iso(), "reason": "Unschedulable", "message": message})
            self.store.update(R.POD, new, pod["metadata"]["namespace"], pod["metadata"]["name"], subresource="status",
                              manager="kube-scheduler", validate=False)
        self.emu.record_event(pod, "FailedScheduling", message, "Warning", "default-scheduler")

    # -- endpoints -----------------------------------------------------------------------------------------------------
    def sync_endpoints(self) -> None:
        services = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in self.store.list_raw(R.SERVICE.key)}
        for (ns, name), svc in services.items():
            sel = (svc.get("spec") or {}).get("selector")
            if not sel:
                continue
            pods = [p for p in self.store.list_raw(R.POD.key, ns)
                    if labels_match(selector_from_label_selector({"matchLabels": sel}) or [], p["metadata"].get("labels"))
                    and (p.get("status") or {}).get("podIP") and (p.get("status") or {}).get("phase") not in TERMINAL]
            ready, not_ready = [], []
            for p in sorted(pods, key=lambda p: p["metadata"]["name"]):
                addr = {"ip": p["status"]["podIP"], "nodeName": p["spec"].get("nodeName"),
                        "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]}}
                (ready if pod_is_ready(p) else not_ready).append(addr)
            ports = []
            for sp in svc["spec"].get("ports") or []:
                tp = sp.get("targetPort", sp.get("port"))
                if isinstance(tp, str) and pods:
                    tp = next((cp.get("containerPort") for c in pods[0]["spec"].get("containers") or []
                               for cp in c.get("ports") or [] if cp.get("name") == tp), None)
                if tp is None or (isinstance(tp, str) and not tp.isdigit()):
                    continue
                port = {"port": int(tp), "protocol": sp.get("protocol", "TCP")}
                if sp.get("name"):
                    port["name"] = sp["name"]
                ports.append(port)
            subset = {}
            if ready:
                subset["addresses"] = ready
            if not_ready:
                subset["notReadyAddresses"] = not_ready
            if subset:
                subset["ports"] = ports
            want = {"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": ns, "labels": dict(svc["metadata"].get("labels") or {})}}
            if subset:
                want["subsets"] = [subset]
            cur = self.store.get_raw(R.ENDPOINTS.key, ns, name)
            if cur is None:
                try:
                    self.store.create(R.ENDPOINTS, want, ns, manager="endpoint-controller", validate=False)
                except ApiError:
                    pass
            elif cur.get("subsets") != want.get("subsets") or cur["metadata"].get("labels") != want["metadata"]["labels"]:
                new = copy.deepcopy(cur)
                new["metadata"]["labels"] = want["metadata"]["labels"]
                if "subsets" in want:
                    new["subsets"] = want["subsets"]
                else:
                    new.pop("subsets", None)
                self._update(R.ENDPOINTS, new, manager="endpoint-controller")
        for ep in self.store.list_raw(R.ENDPOINTS.key):
            key = (ep["metadata"]["namespace"], ep["metadata"]["name"])
            svc = services.get(key)
            if svc is None or not (svc.get("spec") or {}).get("selector"):
                if (ep["metadata"].get("annotations") or {}).get("twin.managed") == "false":
                    continue
                if svc is None and ep["metadata"].get("managedFields") and all(
                        m.get("manager") == "endpoint-controller" for m in ep["metadata"]["managedFields"]):
                    try:
                        self.store.delete(R.ENDPOINTS, key[0], key[1])
                    except ApiError:
                        pass
