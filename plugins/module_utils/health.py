# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which endpoints are failed (to clean up), which are healthy, and which Kubernetes objects are orphans."""

from __future__ import annotations

from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import annotate, list_endpoints, resource_name
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import age_seconds, pod_summary

ENDPOINT_KINDS = ("Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap")


def judge(record, pods, crashloop_restarts, pending_seconds, updating_seconds, now=None):
    """(verdict, reason): failed (with why), healthy, or progressing."""
    status = record.get("status")
    spec = record.get("spec") or {}
    if status == "UPDATE_FAILED":
        return "failed", "UPDATE_FAILED: %s" % (spec.get("status_reason") or "no status_reason")
    if status in ("UPDATE_PENDING", "UPDATE_IN_PROGRESS"):
        age = age_seconds(spec.get("last_updated_at") or spec.get("created_at"), now)
        if age is not None and age >= updating_seconds:
            return "failed", "%s for %ds" % (status, age)
    for pod in pods:
        s = pod_summary(pod)
        if s["restarts"] >= crashloop_restarts and s["ready"] < s["total"]:
            return "failed", "pod %s crash-looping (%d restarts): %s" % (s["name"], s["restarts"], s["problem"] or s["display"])
        if s["phase"] == "Pending" and (s["age_seconds"] or 0) >= pending_seconds:
            return "failed", "pod %s Pending for %ds: %s" % (s["name"], s["age_seconds"], s["unschedulable"] or s["display"])
        if s["phase"] == "Failed":
            return "failed", "pod %s failed: %s" % (s["name"], s["problem"] or s["display"])
    if annotate(record)["serving"]:
        return "healthy", "serving"
    return "progressing", status or "unknown"


def run(module):
    from ansible_collections.odp.model_engine.plugins.module_utils import kube
    from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineError

    p = module.params
    client = module.model_engine_client()
    try:
        all_records = list_endpoints(client)
    except ModelEngineError as e:
        module.fail_from_exception(e, msg="Could not list endpoints")
    # Every endpoint the API shows (any owner) keeps its objects; only this user's are judged.
    visible = {resource_name(r["id"]) for r in all_records}
    records = [r for r in all_records if (r.get("spec") or {}).get("created_by") == p["user_id"]] if p["only_created_by"] else all_records
    ns = p["namespace"]
    try:
        api = kube.core_api(p)
        all_pods = api.api_client.sanitize_for_serialization(
            api.list_namespaced_pod(ns, label_selector="managed-by=model-engine")).get("items", [])
        objects = kube.endpoint_objects(p, ns)
    except kube.KubeError as e:
        module.fail_json(msg=str(e))
    except kube.ApiException as e:
        module.fail_json(msg=str(kube.api_error(e, "Listing endpoint objects")))
    endpoints = []
    known = set()
    for rec in records:
        name = resource_name(rec["id"])
        known.add(name)
        pods = [x for x in all_pods if (x["metadata"].get("labels") or {}).get("app") == name]
        verdict, reason = judge(rec, pods, p["crashloop_restarts"], p["pending_seconds"], p["updating_seconds"])
        if rec["name"] in (p["names"] or []):
            verdict, reason = "failed", "named for clean-up" if verdict != "failed" else reason
        endpoints.append({
            "name": rec["name"], "id": rec["id"], "status": rec.get("status"), "verdict": verdict, "reason": reason,
            "k8s_resource_name": name, "pods": [pod_summary(x) for x in pods],
            "objects": sorted("%s/%s" % (o["kind"], o["name"]) for o in objects if o["name"] in (name, name + "-endpoint-config")),
        })
    # An orphan is an object made for this user (label created_by) whose endpoint the API no longer
    # has; objects of other users, or of endpoints the API does not show us, are never candidates.
    orphans = [o for o in objects if o["created_by"] == p["user_id"]
               and o["name"].replace("-endpoint-config", "") not in known | visible]
    module.exit_json(
        changed=False, endpoints=endpoints,
        failed_endpoints=[e for e in endpoints if e["verdict"] == "failed"],
        healthy=[e["name"] for e in endpoints if e["verdict"] == "healthy"],
        orphans=orphans,
    )
