# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LLM endpoints of the model-engine REST API (``/v1/llm/model-endpoints``): reads and derived facts."""

from __future__ import annotations

from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineClient, ModelEngineError

LLM_ENDPOINTS = "/v1/llm/model-endpoints"
STATUSES = ("READY", "UPDATE_PENDING", "UPDATE_IN_PROGRESS", "UPDATE_FAILED", "DELETE_IN_PROGRESS")


def resource_name(endpoint_id):
    """Kubernetes name of the endpoint's Deployment/Service/HPA (facts §5): derive it from the id,
    never from ``spec.deployment_name`` (that holds a legacy name until the cacher ran)."""
    return "launch-endpoint-id-%s" % endpoint_id.replace("_", "-")


def available_workers(record):
    spec = record.get("spec") or {}
    return int((spec.get("deployment_state") or {}).get("available_workers") or 0)


def is_serving(record):
    """READY only means the objects were applied; a worker must also be available (facts §9.3)."""
    return record.get("status") == "READY" and available_workers(record) >= 1


def annotate(record):
    """The API record plus the derived fields playbooks branch on."""
    out = dict(record)
    if record.get("id"):
        out["k8s_resource_name"] = resource_name(record["id"])
    spec = record.get("spec") or {}
    out["status_reason"] = spec.get("status_reason")
    out["available_workers"] = available_workers(record)
    out["serving"] = is_serving(record)
    return out


def get_endpoint(client: ModelEngineClient, name, retry=True):
    """The endpoint record by name, or None when the gateway answers 404."""
    try:
        return client.get("%s/%s" % (LLM_ENDPOINTS, client.quote(name)), retry=retry)
    except ModelEngineError as e:
        if e.status == 404:
            return None
        raise


def list_endpoints(client: ModelEngineClient, name=None, order_by=None):
    body = client.get(LLM_ENDPOINTS, params={"name": name, "order_by": order_by})
    return (body or {}).get("model_endpoints", [])
