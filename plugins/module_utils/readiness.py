# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vLLM readiness of an endpoint pod, through the Kubernetes pod proxy (no port-forward process).

/health on the main container's port, then /v1/models must list the served model, then optionally a
smoke completion, directly or through the model-engine gateway's /v2/chat/completions. A wait polls
with a short backoff and stops at once when the pod is in a state it cannot leave by itself.
"""

from __future__ import annotations

import json
import time

from ansible_collections.odp.model_engine.plugins.module_utils import kube
from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineError
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import pod_summary


class NotReady(Exception):
    """A readiness step has not passed yet; ``step`` names it."""

    def __init__(self, step, detail):
        super(NotReady, self).__init__("%s: %s" % (step, detail))
        self.step = step
        self.detail = detail


def proxy_request(api, namespace, pod, port, method, path, body=None, timeout=30):
    """(status, text) of an HTTP request to ``pod:port/path`` through the API server's pod proxy."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    client = api.api_client
    try:
        # the generated client's own request plumbing: base URL, auth headers, TLS settings
        serialized = client.param_serialize(
            method=method, resource_path="/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}",
            path_params={"namespace": namespace, "name": "%s:%s" % (pod, port), "path": path.lstrip("/")},
            header_params=headers, body=body, auth_settings=["BearerToken"])
        resp = client.call_api(*serialized, _request_timeout=timeout)
        data = resp.read()
    except kube.ApiException as e:
        return e.status, (e.body.decode("utf-8", "replace") if isinstance(e.body, bytes) else e.body) or e.reason
    return resp.status, (data or b"").decode("utf-8", "replace")


def served_names(models_body):
    try:
        return [m.get("id") for m in json.loads(models_body).get("data", [])]
    except (ValueError, AttributeError):
        return []


def check_once(api, namespace, pod, port, model, smoke, prompt, max_tokens, gateway, endpoint_name, timings, start):
    """Run the steps not passed yet; raise NotReady at the first one that fails."""
    def now():
        return round(time.monotonic() - start, 3)

    if "healthy" not in timings:
        status, text = proxy_request(api, namespace, pod, port, "GET", "health", timeout=10)
        if status != 200:
            raise NotReady("health", "GET /health on port %s answered %s %s" % (port, status, (text or "")[:200]))
        timings["healthy"] = now()
    if "model_listed" not in timings:
        status, text = proxy_request(api, namespace, pod, port, "GET", "v1/models", timeout=10)
        names = served_names(text) if status == 200 else []
        if status != 200 or (model and model not in names):
            raise NotReady("models", "GET /v1/models answered %s, serving %s, expected %s" % (status, names or "nothing", model))
        timings["model_listed"] = now()
        timings["served_models"] = names
    if smoke != "none" and "first_completion" not in timings:
        if smoke == "direct":
            payload = {"model": model or timings["served_models"][0], "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
            status, text = proxy_request(api, namespace, pod, port, "POST", "v1/completions", body=payload, timeout=60)
            if status != 200:
                raise NotReady("completion", "POST /v1/completions answered %s %s" % (status, (text or "")[:200]))
            answer = json.loads(text)
            timings["completion"] = (answer.get("choices") or [{}])[0].get("text")
        else:
            body = {"model": endpoint_name, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0}
            try:
                answer = gateway.post("/v2/chat/completions", body, retry=False, timeout=60)
            except ModelEngineError as e:
                raise NotReady("completion", "POST /v2/chat/completions through the gateway: %s" % e)
            timings["completion"] = ((answer or {}).get("choices") or [{}])[0].get("message", {}).get("content")
        timings["first_completion"] = now()


def run(module):
    p = module.params
    try:
        api = kube.core_api(p)
    except kube.KubeError as e:
        module.fail_json(msg=str(e))
    gateway = module.model_engine_client() if p["smoke"] == "gateway" else None
    start = time.monotonic()
    timings = {}
    delay = 0.1
    attempts = 0
    last = None
    while True:
        attempts += 1
        try:
            pods = kube.find_pods(api, p["namespace"], p.get("pod"), p.get("endpoint_id"), p.get("endpoint_name"))
        except kube.KubeError as e:
            module.fail_json(msg=str(e))
        summaries = [pod_summary(x) for x in pods]
        pod = next((x for x, s in zip(pods, summaries) if s["phase"] == "Running"), pods[0] if pods else None)
        summary = pod_summary(pod) if pod else None
        # A pod that cannot recover, or replacements of pods that failed (an eviction loop) with none ready
        failed = [s for s in summaries if s["phase"] == "Failed" and s["problem"]]
        culprit = summary if summary and summary["problem"] else (failed[0] if failed and not any(
            s["ready"] == s["total"] for s in summaries) else None)
        if culprit:
            logs = kube.container_logs(api, p["namespace"], culprit["name"], p["container"], 20)
            extra = " (%d pod(s) of this endpoint failed)" % len(failed) if len(failed) > 1 else ""
            module.fail_json(msg="vLLM cannot become ready: pod %s: %s%s" % (culprit["name"], culprit["problem"], extra),
                             failure="terminal", pod=culprit, main_logs=logs, timings=_out(timings), attempts=attempts, ready=False)
        try:
            if pod is None:
                raise NotReady("pod", "no pod found for %s" % _what(p))
            if summary["phase"] != "Running":
                raise NotReady("pod", "pod %s is %s" % (summary["name"], summary["display"]))
            check_once(api, p["namespace"], summary["name"], p["port"], p.get("model"), p["smoke"], p["prompt"], p["max_tokens"],
                       gateway, p.get("endpoint_name"), timings, start)
            module.exit_json(changed=False, ready=True, pod=summary, timings=_out(timings), attempts=attempts,
                             served_models=timings.get("served_models"), completion=timings.get("completion"))
        except NotReady as e:
            last = e
        elapsed = time.monotonic() - start
        if not p["wait"] or elapsed >= p["wait_timeout"]:
            result = dict(ready=False, pod=summary, timings=_out(timings), attempts=attempts, failure=last.step)
            if summary:
                result["main_logs"] = kube.container_logs(api, p["namespace"], summary["name"], p["container"], 20)
            if p["wait"]:
                module.fail_json(msg="vLLM not ready after %ds: %s" % (elapsed, last), **result)
            if p["fail_on_not_ready"]:
                module.fail_json(msg="vLLM not ready: %s" % last, **result)
            module.exit_json(changed=False, msg=str(last), **result)
        time.sleep(min(delay, max(0.0, p["wait_timeout"] - elapsed)))
        delay = min(p["wait_sleep"], delay * 2)


def _out(timings):
    return {k: timings[k] for k in ("healthy", "model_listed", "first_completion") if k in timings}


def _what(p):
    return p.get("pod") or p.get("endpoint_id") or p.get("endpoint_name")
