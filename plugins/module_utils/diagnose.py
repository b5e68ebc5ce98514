# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""endpoint_diagnose: why an LLM endpoint does not serve — the judge's verdict with everything it saw.

The runbook's "Common Issues" table is a set of rules of the one judge (``judge.py``); this module observes the
endpoint with every log (not only the crashed ones), asks the judge, and returns the cause, the evidence, the
fix, and the raw material (pods, events, logs, the main command, the model folder) for a human to read on.
"""

from __future__ import annotations

from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import get_endpoint
from ansible_collections.odp.model_engine.plugins.module_utils.errors import ModelEngineError
from ansible_collections.odp.model_engine.plugins.module_utils.follow import limits
from ansible_collections.odp.model_engine.plugins.module_utils.judge import SERVING, judge
from ansible_collections.odp.model_engine.plugins.module_utils.observe import Observer
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import container_spec, pod_summary


def _record(module, client):
    """The endpoint record, by name or by id (the generic route, then the LLM record by its name)."""
    p = module.params
    if not p.get("endpoint_id"):
        return get_endpoint(client, p["name"])
    try:
        rec = client.get("/v1/model-endpoints/%s" % client.quote(p["endpoint_id"]))
    except ModelEngineError as e:
        if e.status == 404:
            return None
        raise
    return get_endpoint(client, rec["name"]) if rec and rec.get("name") else rec


def _objects(kube, ns, name):
    return {"deployment": kube.get("Deployment", name, ns) is not None, "service": kube.get("Service", name, ns) is not None,
            "hpa": kube.get("HorizontalPodAutoscaler", name, ns) is not None}


def run(module):
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    p = module.params
    client = module.model_engine_client()
    kube = Kube(p)
    observer = Observer(p, gateway=client, kube=kube)
    record = _record(module, client)
    name = p.get("name") or (record or {}).get("name") or p.get("endpoint_id")
    obs = observer.observe(name, logs="all", record=record, read_record=False)
    obs.api_error = p.get("api_error")
    verdict = judge(obs, limits(p))
    result = dict(verdict.to_result(), changed=False, healthy=verdict.state == SERVING, verdict=verdict.to_result())
    if obs.record:
        rec = obs.record
        result.update(endpoint={"name": rec.get("name"), "id": rec.get("id"), "status": rec.get("status"),
                                "status_reason": (rec.get("spec") or {}).get("status_reason"), "owner": (rec.get("spec") or {}).get("created_by")},
                      k8s_resource_name=obs.resource_name, objects=_objects(kube, p["namespace"], obs.resource_name))
    pod = obs.pods[0] if obs.pods else None
    template = (((obs.deployment or {}).get("spec") or {}).get("template") or pod or {})
    main = container_spec(template, "main")
    result.update(
        pods=[pod_summary(x) for x in obs.pods], logs=obs.logs, model_files=obs.download,
        command=" ".join((main.get("command") or []) + (main.get("args") or [])) or None, image=main.get("image"),
        events={k: ["%s %s: %s" % (e.get("type"), e.get("reason"), e.get("message")) for e in v] for k, v in obs.events.items()},
    )
    return result
