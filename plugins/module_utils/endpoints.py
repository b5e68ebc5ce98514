# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LLM endpoints of the model-engine REST API (``/v1/llm/model-endpoints``): reads and derived facts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible_collections.odp.model_engine.plugins.module_utils.errors import RETRY_STATUSES, ModelEngineError

if TYPE_CHECKING:  # the client's module imports ansible's urls (and cryptography): not needed to judge an observation
    from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineClient

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


# ---------------------------------------------------------------------------- writes
def create_endpoint(client: ModelEngineClient, body, sleep=None):
    """POST the endpoint without ever creating a duplicate.

    The POST itself is never retried blindly: after an ambiguous failure (connection error, timeout,
    429 or 5xx other than a mapped 500) the endpoint is looked up by name first, and only re-posted
    when it does not exist. Returns (task_id or None, attempts).
    """
    sleep = sleep or client.sleep
    attempts = 0
    while True:
        attempts += 1
        try:
            resp = client.post(LLM_ENDPOINTS, body, retry=False)
            return (resp or {}).get("endpoint_creation_task_id"), attempts
        except ModelEngineError as e:
            ambiguous = e.status is None or e.status in RETRY_STATUSES
            duplicate = e.status == 400 and "already exists" in (e.detail or "")
            if duplicate and attempts > 1:
                return None, attempts  # an earlier attempt went through
            if not ambiguous or attempts > client.retries:
                raise e.counted(attempts) from e
            if get_endpoint(client, body["name"]) is not None:
                return None, attempts  # the failed-looking POST was in fact accepted
            delay = client.backoff(attempts - 1)
            if client.on_retry:
                client.on_retry("POST", LLM_ENDPOINTS, attempts, e.status or "connection error", delay)
            sleep(delay)


def update_endpoint(client: ModelEngineClient, name, body):
    """PUT is idempotent for the same body, so the client's normal retries apply."""
    return client.put("%s/%s" % (LLM_ENDPOINTS, client.quote(name)), body)


def delete_endpoint(client: ModelEngineClient, name):
    """DELETE by name; True when deleted, False when it was already gone."""
    try:
        client.delete("%s/%s" % (LLM_ENDPOINTS, client.quote(name)))
        return True
    except ModelEngineError as e:
        if e.status == 404:
            return False
        raise


def info(module):
    """llm_endpoint_info: one endpoint by name, or the list, with the derived keys."""
    client = module.model_engine_client()
    if module.params["name"]:
        record = get_endpoint(client, module.params["name"])
        records = [record] if record else []
    else:
        records = list_endpoints(client, order_by=module.params["order_by"])
    return {"changed": False, "endpoints": [annotate(r) for r in records]}
