# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LLM endpoints of the model-engine REST API (``/v1/llm/model-endpoints``): reads and derived facts."""

from __future__ import annotations

import time

from ansible_collections.odp.model_engine.plugins.module_utils.api_client import RETRY_STATUSES, ModelEngineClient, ModelEngineError

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
                e.attempts = attempts
                raise
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


# ---------------------------------------------------------------------------- waits
class WaitError(Exception):
    """A wait ended without the endpoint serving; ``record`` is the last one seen."""

    def __init__(self, message, record=None, elapsed=0.0, reason=None):
        super(WaitError, self).__init__(message)
        self.record = record
        self.elapsed = elapsed
        self.reason = reason


def wait_for_serving(client: ModelEngineClient, name, timeout=1800, sleep_s=5.0, pending_timeout=600,
                     transition_timeout=0, clock=None, sleep=None, progress=None):
    """Poll until ``status == READY`` and ``available_workers >= 1`` (facts §9.3).

    * UPDATE_FAILED fails at once with ``spec.status_reason``.
    * UPDATE_PENDING for longer than ``pending_timeout`` fails: no builder consumes the task.
    * ``transition_timeout`` > 0 (after an update): first wait up to that long for the status to leave
      READY, since the gateway may still show the previous state for a while.
    Returns (record, elapsed seconds, list of (elapsed, status, available_workers) transitions).
    """
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    start = clock()
    history = []
    pending_since = None
    transition_seen = transition_timeout <= 0
    record = None
    while True:
        elapsed = clock() - start
        try:
            record = get_endpoint(client, name)
        except ModelEngineError as e:
            if e.status is not None and e.status < 500:
                raise
            record = None  # the gateway is flaky; keep polling within the timeout
        status = record.get("status") if record else None
        workers = available_workers(record) if record else 0
        if not history or history[-1][1:] != (status, workers):
            history.append((round(elapsed, 1), status, workers))
            if progress:
                progress(elapsed, status, workers, record)
        if record is not None:
            if status != "READY":
                transition_seen = True
            if status == "UPDATE_FAILED":
                reason = (record.get("spec") or {}).get("status_reason") or "no status_reason given"
                raise WaitError("Endpoint %s failed to build (UPDATE_FAILED): %s" % (name, reason), record, elapsed, "UPDATE_FAILED")
            if status == "UPDATE_PENDING":
                pending_since = elapsed if pending_since is None else pending_since
                if elapsed - pending_since >= pending_timeout:
                    raise WaitError(
                        "Endpoint %s has been UPDATE_PENDING for %ds: no endpoint builder is consuming the build task "
                        "(check the model-engine-endpoint-builder Deployment and, on-prem, celery_broker_type_redis)"
                        % (name, elapsed - pending_since), record, elapsed, "STUCK_PENDING")
            else:
                pending_since = None
            if is_serving(record) and (transition_seen or elapsed >= transition_timeout):
                return record, elapsed, history
        if elapsed >= timeout:
            state = "%s with %d available worker(s)" % (status, workers) if record else "not found"
            raise WaitError("Timed out after %ds waiting for endpoint %s to serve; it is %s" % (timeout, name, state),
                            record, elapsed, "TIMEOUT")
        sleep(max(0.0, min(sleep_s, timeout - elapsed)))
