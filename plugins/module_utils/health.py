# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""endpoint_health_info: the judge's verdict on every endpoint of this user, and the orphaned objects.

One listing per kind for all endpoints (``Observer.observe_many``), one verdict each. Clean-up deletes only
what the judge calls ``failed`` (nothing serves, and waiting will not change it) and that has been so for
``min_age`` seconds since its last update; ``degraded`` (a pod still serves) and ``progressing`` (an update or
a download on its way) are never candidates.
"""

from __future__ import annotations

from ansible_collections.odp.model_engine.plugins.module_utils import endpoint_objects
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import list_endpoints, resource_name
from ansible_collections.odp.model_engine.plugins.module_utils.follow import limits
from ansible_collections.odp.model_engine.plugins.module_utils.judge import DEGRADED, FAILED, SERVING, judge
from ansible_collections.odp.model_engine.plugins.module_utils.observe import Observer
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import age_seconds, pod_summary


def _entry(obs, verdict, objects, min_age):
    rec = obs.record
    name = resource_name(rec["id"])
    spec = rec.get("spec") or {}
    age = age_seconds(spec.get("last_updated_at") or spec.get("created_at"), obs.now)
    return {
        "name": rec["name"], "id": rec["id"], "status": rec.get("status"), "owner": spec.get("created_by"),
        "state": verdict.state, "cause": verdict.cause, "summary": verdict.summary, "fix": verdict.fix, "evidence": verdict.evidence,
        "container": verdict.container, "download": verdict.download, "serving_pods": verdict.serving_pods,
        "verdict": verdict.state, "reason": verdict.summary,
        "age_seconds": age, "cleanup": verdict.state == FAILED and (age is None or age >= min_age),
        "k8s_resource_name": name, "pods": [pod_summary(x) for x in obs.pods],
        "objects": sorted("%s/%s" % (o["kind"], o["name"]) for o in objects if o["endpoint_id"] == rec["id"]),
    }


def run(module):
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    p = module.params
    client = module.model_engine_client()
    all_records = list_endpoints(client)
    # Every endpoint the API shows (any owner) keeps its objects; only this user's are judged.
    visible = {r["id"] for r in all_records}
    records = [r for r in all_records if (r.get("spec") or {}).get("created_by") == p["user_id"]] if p["only_created_by"] else all_records
    if p["names"]:
        records = [r for r in records if r["name"] in p["names"]]
    kube = Kube(p)
    observer = Observer(p, gateway=client, kube=kube)
    objects = endpoint_objects.find(kube, p["namespace"])
    lim = limits(p)
    endpoints = [_entry(obs, judge(obs, lim), objects, p["min_age"]) for obs in observer.observe_many(records)]
    # An orphan is an object made for this user (label created_by) whose endpoint the API no longer has;
    # objects of other users, or of endpoints the API shows us, are never candidates.
    orphans = [o for o in objects if o["created_by"] == p["user_id"] and o["endpoint_id"] and o["endpoint_id"] not in visible]
    return dict(
        changed=False, endpoints=endpoints, orphans=orphans,
        failed_endpoints=[e for e in endpoints if e["cleanup"]],
        healthy=[e["name"] for e in endpoints if e["state"] == SERVING],
        degraded=[e["name"] for e in endpoints if e["state"] == DEGRADED],
    )
