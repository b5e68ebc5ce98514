"""Controllers beyond the core ones: the disruption controller (PodDisruptionBudget status) and a small KEDA operator.

Both run inside the ControllerManager's level-triggered pass and write only when something differs.

* Disruption controller (kube-controller-manager ``disruption.go``): for every PDB it finds the pods its selector
  matches, the expected count (the scale of the pods' controllers for ``maxUnavailable`` / a percent
  ``minAvailable``, the pod count for an integer ``minAvailable``), and writes ``currentHealthy`` (Ready pods),
  ``desiredHealthy``, ``disruptionsAllowed``, ``expectedPods``, ``observedGeneration`` and the ``DisruptionAllowed``
  condition (SufficientPods / InsufficientPods). A PDB without pods gets the Normal event ``NoPods``.
* KEDA operator (kedacore/keda ``scaledobject_controller.go``): for every ScaledObject whose target Deployment exists it
  owns an HPA ``keda-hpa-<name>`` (an External metric per trigger, min ``max(minReplicaCount, 1)``), fills the status
  (scaleTargetKind, hpaName, triggersTypes, conditions Ready/Active/Fallback/Paused) and, since the twin has no event
  source, treats every trigger as inactive: with ``minReplicaCount: 0`` the target is scaled to 0 like KEDA does after
  the cooldown.  A missing target leaves Ready False.
"""

from __future__ import annotations

import copy
import math
import re
from typing import TYPE_CHECKING

from . import objects
from . import resources as R
from .errors import ApiError
from .selectors import SelectorError, labels_match, selector_from_label_selector

if TYPE_CHECKING:
    from .controllers import ControllerManager

KEDA_VERSION = "2.16.1"
TERMINAL = ("Succeeded", "Failed")


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def _controller(obj: dict) -> dict | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def _resolve(value, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    s = str(value)
    if s.endswith("%"):
        x = float(s[:-1]) / 100.0 * total
        return math.ceil(x) if round_up else math.floor(x)
    return int(s)


def _condition(old: list, ctype: str, status: str, reason: str, message: str, generation: int | None = None) -> dict:
    prev = next((c for c in old or [] if c.get("type") == ctype), None)
    c = {"type": ctype, "status": status, "reason": reason, "message": message}
    if generation is not None:
        c["observedGeneration"] = generation
    c["lastTransitionTime"] = prev["lastTransitionTime"] if prev and prev.get("status") == status and \
        prev.get("lastTransitionTime") else objects.now_iso()
    return c


class AddOnControllers:
    def __init__(self, cm: ControllerManager):
        self.cm = cm
        self.store = cm.store

    KEYS = {R.PDB.key, R.SCALEDOBJECT.key, R.HPA.key}

    def reconcile(self) -> None:
        for pdb in self.store.list_raw(R.PDB.key):
            self.sync_pdb(pdb)
        for so in self.store.list_raw(R.SCALEDOBJECT.key):
            self.sync_scaled_object(so)

    # -- disruption controller -----------------------------------------------------------------------------------------
    def _pods_for(self, pdb: dict) -> list[dict]:
        sel = (pdb.get("spec") or {}).get("selector")
        if sel is None:
            return []          # policy/v1: a null selector selects nothing, an empty one everything
        try:
            reqs = selector_from_label_selector(sel) or []
        except SelectorError:
            return []
        return [p for p in self.store.list_raw(R.POD.key, pdb["metadata"]["namespace"])
                if labels_match(reqs, p["metadata"].get("labels"))]

    def _expected_scale(self, ns: str, pods: list[dict]) -> int:
        """Sum of the scales of the pods' controllers (a ReplicaSet's Deployment counts once, with its replicas)."""
        scales: dict[str, int] = {}
        for p in pods:
            ref = _controller(p)
            rs = self.store.get_raw(R.REPLICASET.key, ns, ref.get("name")) if ref and ref.get("kind") == "ReplicaSet" else None
            if rs is None:
                continue          # unmanaged pods do not count
            owner = _controller(rs)
            dep = self.store.get_raw(R.DEPLOYMENT.key, ns, owner.get("name")) \
                if owner and owner.get("kind") == "Deployment" else None
            top = dep or rs
            scales[top["metadata"]["uid"]] = int((top.get("spec") or {}).get("replicas", 1))
        return sum(scales.values())

    def sync_pdb(self, pdb: dict) -> None:
        meta, spec = pdb["metadata"], pdb.get("spec") or {}
        ns = meta["namespace"]
        pods = self._pods_for(pdb)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        if "maxUnavailable" in spec or str(spec.get("minAvailable", "")).endswith("%"):
            expected = self._expected_scale(ns, pods)
            if "maxUnavailable" in spec:
                desired = max(0, expected - _resolve(spec["maxUnavailable"], expected, True))
            else:
                desired = _resolve(spec["minAvailable"], expected, True)
        else:
            expected = len(pods)
            desired = int(spec.get("minAvailable", 0) or 0)
        healthy = sum(1 for p in live if _ready(p) and (p.get("status") or {}).get("phase") not in TERMINAL)
        allowed = max(0, healthy - desired)
        gen = meta.get("generation", 1)
        old = pdb.get("status") or {}
        st = {"observedGeneration": gen, "disruptionsAllowed": allowed, "currentHealthy": healthy,
              "desiredHealthy": desired, "expectedPods": expected,
              "conditions": [_condition(old.get("conditions"), "DisruptionAllowed", "True" if allowed > 0 else "False",
                                        "SufficientPods" if allowed > 0 else "InsufficientPods", "", gen)]}
        if st == old:
            return
        if not pods:
            self.cm.emu.record_event(pdb, "NoPods", "No matching pods found", "Normal", "controllermanager")
        new = copy.deepcopy(pdb)
        new["status"] = st
        self.cm._update(R.PDB, new, "status", manager="kube-controller-manager")

    # -- KEDA operator -------------------------------------------------------------------------------------------------
    @staticmethod
    def _metric_name(index: int, trigger: dict) -> str:
        md = trigger.get("metadata") or {}
        base = f"{trigger.get('type')}-{md.get('listName') or md.get('queueName') or md.get('metricName') or ''}".rstrip("-")
        return f"s{index}-" + re.sub(r"[/.:%()]", "-", base)

    def _keda_hpa(self, so: dict, target: dict) -> dict:
        name, ns = so["metadata"]["name"], so["metadata"]["namespace"]
        spec = so.get("spec") or {}
        hpa_name = f"keda-hpa-{name}"
        labels = {"app.kubernetes.io/managed-by": "keda-operator", "app.kubernetes.io/name": hpa_name,
                  "app.kubernetes.io/part-of": name, "app.kubernetes.io/version": KEDA_VERSION,
                  "scaledobject.keda.sh/name": name}
        labels.update(so["metadata"].get("labels") or {})
        metrics = []
        for i, trig in enumerate(spec.get("triggers") or []):
            md = trig.get("metadata") or {}
            metrics.append({"type": "External", "external": {
                "metric": {"name": self._metric_name(i, trig),
                           "selector": {"matchLabels": {"scaledobject.keda.sh/name": name}}},
                "target": {"type": "AverageValue", "averageValue": str(md.get("listLength") or md.get("targetValue") or "5")}}})
        min_r = spec.get("minReplicaCount")
        return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": hpa_name, "namespace": ns, "labels": labels,
                             "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": name,
                                                  "uid": so["metadata"]["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]},
                "spec": {"scaleTargetRef": {"apiVersion": target["apiVersion"], "kind": target["kind"], "name": target["name"]},
                         "minReplicas": min_r if isinstance(min_r, int) and min_r > 0 else 1,
                         "maxReplicas": spec.get("maxReplicaCount", 100), "metrics": metrics}}

    def _apply_hpa(self, want: dict) -> None:
        ns, name = want["metadata"]["namespace"], want["metadata"]["name"]
        cur = self.store.get_raw(R.HPA.key, ns, name)
        if cur is None:
            try:
                self.store.create(R.HPA, want, ns, manager="keda")
            except ApiError:
                pass
            return
        if cur.get("spec") != {**cur.get("spec", {}), **want["spec"]} or \
                (cur["metadata"].get("labels") or {}) != want["metadata"]["labels"]:
            new = copy.deepcopy(cur)
            new["spec"].update(want["spec"])
            new["metadata"]["labels"] = want["metadata"]["labels"]
            self.cm._update(R.HPA, new, manager="keda")

    def sync_scaled_object(self, so: dict) -> None:
        meta, spec = so["metadata"], so.get("spec") or {}
        ns = meta["namespace"]
        ref = spec.get("scaleTargetRef") or {}
        target = {"apiVersion": ref.get("apiVersion") or "apps/v1", "kind": ref.get("kind") or "Deployment",
                  "name": ref.get("name")}
        dep = self.store.get_raw(R.DEPLOYMENT.key, ns, target["name"]) if target["kind"] == "Deployment" else None
        old = so.get("status") or {}
        conds = old.get("conditions") or []
        st: dict = {}
        if dep is None:
            st["conditions"] = [
                _condition(conds, "Ready", "False", "ScaledObjectCheckFailed",
                           "ScaledObject doesn't have correct scaleTargetRef specification"),
                _condition(conds, "Active", "Unknown", "", ""), _condition(conds, "Fallback", "Unknown", "", ""),
                _condition(conds, "Paused", "Unknown", "", "")]
        else:
            triggers = spec.get("triggers") or []
            self._apply_hpa(self._keda_hpa(so, target))
            replicas = int((dep.get("spec") or {}).get("replicas", 1))
            st = {"scaleTargetKind": f"{target['apiVersion']}.{target['kind']}",
                  "scaleTargetGVKR": {"group": target["apiVersion"].rpartition("/")[0], "kind": target["kind"],
                                      "resource": target["kind"].lower() + "s",
                                      "version": target["apiVersion"].rpartition("/")[2]},
                  "originalReplicaCount": old.get("originalReplicaCount", replicas),
                  "externalMetricNames": [self._metric_name(i, t) for i, t in enumerate(triggers)],
                  "hpaName": f"keda-hpa-{meta['name']}",
                  "triggersTypes": ",".join(str(t.get("type")) for t in triggers),
                  "conditions": [
                      _condition(conds, "Ready", "True", "ScaledObjectReady",
                                 "ScaledObject is defined correctly and is ready for scaling"),
                      _condition(conds, "Active", "False", "ScalerNotActive",
                                 "Scaling is not performed because triggers are not active"),
                      _condition(conds, "Fallback", "False", "NoFallbackFound",
                                 "No fallbacks are active on this scaled object"),
                      _condition(conds, "Paused", "Unknown", "", "")]}
            auth = [t["authenticationRef"]["name"] for t in triggers if (t.get("authenticationRef") or {}).get("name")]
            if auth:
                st["authenticationsTypes"] = ",".join(auth)
            if spec.get("minReplicaCount") == 0 and replicas > 0:   # every trigger is inactive in the twin
                new_dep = copy.deepcopy(dep)
                new_dep["spec"]["replicas"] = 0
                if self.cm._update(R.DEPLOYMENT, new_dep, manager="keda") is not None:
                    self.cm.emu.record_event(so, "KEDAScaleTargetDeactivated",
                                             f"Deactivated {target['apiVersion']}.{target['kind']} {ns}/{target['name']} "
                                             f"from {replicas} to 0", "Normal", "keda-operator")
        if st == old:
            return
        was_ready = next((c for c in conds if c.get("type") == "Ready"), {}).get("status") == "True"
        if st.get("hpaName") and not was_ready:
            self.cm.emu.record_event(so, "ScaledObjectReady", "ScaledObject is ready for scaling", "Normal", "keda-operator")
        new = copy.deepcopy(so)
        new["status"] = st
        self.cm._update(R.SCALEDOBJECT, new, "status", manager="keda")
