# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every Kubernetes object the endpoint builder writes for an endpoint, found by its labels, of every kind.

The builder writes, named ``launch-endpoint-id-<id>`` and labelled ``endpoint_id``/``created_by``/
``managed-by=model-engine``: the Deployment (its ReplicaSets and pods follow it), the Service, the HPA or (scaling from
zero) a KEDA ScaledObject, a PodDisruptionBudget, a VerticalPodAutoscaler (``optimize_costs``), the two ConfigMaps
and, with the model cache, a PersistentVolumeClaim. The runbook's cleanup (Deployment, Service, HPA) and
``kubectl get all`` miss the PDB, the ConfigMaps, the VPA, the ScaledObject and the claim; this module does not.
Kinds whose API the cluster does not serve (an add-on's CRD not installed) are skipped.
"""

from __future__ import annotations

# (kind, apiVersion, plural); the built-in kinds go through kube.Kube, the custom resources through CustomObjectsApi.
KINDS = (
    ("Deployment", "apps/v1", "deployments"),
    ("Service", "v1", "services"),
    ("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers"),
    ("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets"),
    ("ConfigMap", "v1", "configmaps"),
    ("PersistentVolumeClaim", "v1", "persistentvolumeclaims"),
    ("VerticalPodAutoscaler", "autoscaling.k8s.io/v1", "verticalpodautoscalers"),
    ("ScaledObject", "keda.sh/v1alpha1", "scaledobjects"),
)
CUSTOM = {"VerticalPodAutoscaler", "ScaledObject"}
SELECTOR = "managed-by=model-engine"


def _custom(kube, api_version, plural, namespace, selector):
    from kubernetes.client import CustomObjectsApi

    from ansible_collections.odp.model_engine.plugins.module_utils.kube import MISSING

    group, version = api_version.split("/")
    found = kube.call_or_missing("Listing %s in %s" % (plural, namespace), CustomObjectsApi(kube.client).list_namespaced_custom_object,
                                 group, version, namespace, plural, label_selector=selector)
    return [] if found is MISSING else found.get("items", [])  # MISSING: the add-on (VPA, KEDA) is not installed


def find(kube, namespace, selector=SELECTOR):
    """[{kind, api_version, name, endpoint_id, created_by}] of every endpoint object matching ``selector``."""
    out = []
    for kind, api_version, plural in KINDS:
        items = _custom(kube, api_version, plural, namespace, selector) if kind in CUSTOM else kube.list(kind, namespace, selector)
        for item in items:
            meta = item.get("metadata") or {}
            labels = meta.get("labels") or {}
            if labels.get("app.kubernetes.io/managed-by") == "keda-operator":
                continue  # KEDA's own HPA of a ScaledObject: it goes with its owner
            out.append({"kind": kind, "api_version": api_version, "name": meta.get("name"), "endpoint_id": labels.get("endpoint_id"),
                        "created_by": labels.get("created_by")})
    return out


def delete(kube, namespace, obj):
    """Delete one object found by ``find`` (404 counts as already gone); returns True when it was deleted."""
    from kubernetes.client import CustomObjectsApi

    kind, name = obj["kind"], obj["name"]
    if kind not in CUSTOM:
        return kube.delete(kind, name, namespace)
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import MISSING

    group, version = obj["api_version"].split("/")
    plural = next(p for k, _v, p in KINDS if k == kind)
    return kube.call_or_missing("Deleting %s %s/%s" % (kind, namespace, name), CustomObjectsApi(kube.client).delete_namespaced_custom_object,
                                group, version, namespace, plural, name) is not MISSING


def remove_leftovers(kube, namespace, endpoint_id, check_mode=False):
    """Delete (or, in check mode, list) every object still labelled with ``endpoint_id``; ["Kind/name", ...]."""
    found = find(kube, namespace, "endpoint_id=%s" % endpoint_id)
    removed = []
    for obj in found:
        if check_mode or delete(kube, namespace, obj):
            removed.append("%s/%s" % (obj["kind"], obj["name"]))
    return removed
