# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""gateway_info: is the model-engine gateway ready (``/readyz``), reached by URL or through the Kubernetes API."""

from __future__ import annotations

from ansible_collections.odp.model_engine.plugins.module_utils import waiter
from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError, ModelEngineError, WaitError


def check(client):
    """{ready, status, detail, route}: /readyz answers 200 when a gateway replica runs a known-good image."""
    try:
        body = client.get("/readyz", retry=False)
        return {"ready": True, "status": 200, "detail": body, "route": "/readyz"}
    except ModelEngineError as e:
        return {"ready": False, "status": e.status, "detail": e.detail or str(e), "route": "/readyz"}
    except KubeError as e:  # connection: kubernetes and the Service has no ready endpoint, or the tunnel was refused
        return {"ready": False, "status": e.status, "detail": str(e), "route": "/readyz"}


def run(module):
    p = module.params
    client = module.model_engine_client(retries=0, require_user=False)

    def step(_elapsed):
        state = check(client)
        line = "GET %s answered %s: %s" % (state["route"], state["status"] or "nothing", state["detail"])
        if state["ready"]:
            return waiter.done(state, line)
        if not p["wait"]:
            return waiter.failed(state, "The model-engine gateway is not ready: %s" % line, result=state, reason="not_ready")
        return waiter.keep_waiting(state, line, result=state)

    try:
        state, elapsed = waiter.Waiter(p.get("wait_timeout") or 300, sleep=p["wait_sleep"], initial_sleep=min(1.0, p["wait_sleep"])).wait(step)
    except WaitError as e:
        if e.result.get("failure") == "timeout":
            e.args = ("The model-engine gateway did not become ready: %s" % e,)
        raise
    return dict(state, changed=False, elapsed=round(elapsed, 1))
