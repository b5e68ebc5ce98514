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

from ansible_collections.odp.model_engine.plugins.module_utils import waiter
from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineError
from ansible_collections.odp.model_engine.plugins.module_utils.errors import WaitError
from ansible_collections.odp.model_engine.plugins.module_utils.judge import judge_pods
from ansible_collections.odp.model_engine.plugins.module_utils.kube import ApiException
from ansible_collections.odp.model_engine.plugins.module_utils.observe import Observer
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import pod_summary


class NotReady(Exception):
    """A readiness step has not passed yet; ``step`` names it."""

    def __init__(self, step, detail):
        super(NotReady, self).__init__("%s: %s" % (step, detail))
        self.step = step
        self.detail = detail


def pod_proxy(kube, namespace, pod, port):
    """A request function for ``pod:port`` through the API server's pod proxy: ``request(method, path, body,
    timeout)`` returns (status, text)."""
    client = kube.client

    def request(method, path, body=None, timeout=30):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            # the generated client's own request plumbing: base URL, auth headers, TLS settings
            serialized = client.param_serialize(
                method=method, resource_path="/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}",
                path_params={"namespace": namespace, "name": "%s:%s" % (pod, port), "path": path.lstrip("/")},
                header_params=headers, body=body, auth_settings=["BearerToken"])
            resp = client.call_api(*serialized, _request_timeout=timeout)
            data = resp.read()
        except ApiException as e:
            return e.status, (e.body.decode("utf-8", "replace") if isinstance(e.body, bytes) else e.body) or e.reason
        return resp.status, (data or b"").decode("utf-8", "replace")

    return request


def served_names(models_body):
    try:
        return [m.get("id") for m in json.loads(models_body).get("data", [])]
    except (ValueError, AttributeError):
        return []


class Steps(object):
    """The readiness steps of one pod, each run until it passes once: /health, /v1/models, the smoke completion."""

    def __init__(self, params, request, gateway, start):
        self.p = params
        self.request = request
        self.gateway = gateway
        self.start = start
        self.timings = {}

    def _now(self):
        return round(time.monotonic() - self.start, 3)

    def health(self):
        status, text = self.request("GET", "health", timeout=10)
        if status != 200:
            raise NotReady("health", "GET /health on port %s answered %s %s" % (self.p["port"], status, (text or "")[:200]))
        self.timings["healthy"] = self._now()

    def models(self):
        model = self.p.get("model")
        status, text = self.request("GET", "v1/models", timeout=10)
        names = served_names(text) if status == 200 else []
        if status != 200 or (model and model not in names):
            raise NotReady("models", "GET /v1/models answered %s, serving %s, expected %s" % (status, names or "nothing", model))
        self.timings.update(model_listed=self._now(), served_models=names)

    def completion(self):
        p = self.p
        if p["smoke"] == "direct":
            payload = {"model": p.get("model") or self.timings["served_models"][0], "prompt": p["prompt"], "max_tokens": p["max_tokens"],
                       "temperature": 0}
            status, text = self.request("POST", "v1/completions", body=payload, timeout=60)
            if status != 200:
                raise NotReady("completion", "POST /v1/completions answered %s %s" % (status, (text or "")[:200]))
            self.timings["completion"] = (json.loads(text).get("choices") or [{}])[0].get("text")
        else:
            body = {"model": p.get("endpoint_name"), "messages": [{"role": "user", "content": p["prompt"]}], "max_tokens": p["max_tokens"],
                    "temperature": 0}
            try:
                answer = self.gateway.post("/v2/chat/completions", body, retry=False, timeout=60)
            except ModelEngineError as e:
                raise NotReady("completion", "POST /v2/chat/completions through the gateway: %s" % e)
            self.timings["completion"] = ((answer or {}).get("choices") or [{}])[0].get("message", {}).get("content")
        self.timings["first_completion"] = self._now()

    def run(self):
        """Run the steps not passed yet; raise NotReady at the first one that fails."""
        if "healthy" not in self.timings:
            self.health()
        if "model_listed" not in self.timings:
            self.models()
        if self.p["smoke"] != "none" and "first_completion" not in self.timings:
            self.completion()


class Readiness(object):
    """The vllm_ready wait's step: find the pod, stop at once on a pod problem the judge names, else run the
    readiness steps not passed yet."""

    def __init__(self, module, kube, observer, gateway):
        self.p = module.params
        self.kube = kube
        self.observer = observer
        self.steps = Steps(self.p, None, gateway, time.monotonic())
        self.timings = self.steps.timings
        self.summary = None
        self.last = None

    def _pods(self):
        p = self.p
        return self.kube.find_pods(p["namespace"], p.get("pod"), p.get("endpoint_id"), p.get("endpoint_name"))

    def result(self, ready):
        out = dict(ready=ready, pod=self.summary, timings=_out(self.timings), served_models=self.timings.get("served_models"),
                   completion=self.timings.get("completion"))
        if not ready and self.summary:
            out["main_logs"] = self.kube.logs(self.p["namespace"], self.summary["name"], self.p["container"], 20)
        return out

    def step(self, _elapsed):
        p = self.p
        pods = self._pods()
        obs = self.observer.observe_pods(pods, p["namespace"], name=_what(p))
        problem = judge_pods(obs)
        pod = next((x for x in obs.pods if (x.get("status") or {}).get("phase") == "Running"), obs.pods[0] if obs.pods else None)
        self.summary = pod_summary(pod) if pod else None
        if problem is not None:
            res = dict(self.result(False), verdict=problem.to_result(), state=problem.state, cause=problem.cause)
            return waiter.failed(None, "vLLM cannot become ready: %s. Fix: %s" % (problem.summary, problem.fix), result=res,
                                 reason="terminal")
        try:
            if pod is None:
                raise NotReady("pod", "no pod found for %s" % _what(p))
            if self.summary["phase"] != "Running":
                raise NotReady("pod", "pod %s is %s" % (self.summary["name"], self.summary["display"]))
            self.steps.request = pod_proxy(self.kube, p["namespace"], self.summary["name"], p["port"])
            self.steps.run()
        except NotReady as e:
            self.last = e
            return waiter.keep_waiting(None, str(e), result=dict(self.result(False), failure=e.step))
        return waiter.done(None, "ready")


def run(module):
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    p = module.params
    kube = Kube(p)
    gateway = module.model_engine_client() if p["smoke"] == "gateway" else None
    ready = Readiness(module, kube, Observer(p, kube=kube), gateway)
    w = waiter.Waiter(p.get("wait_timeout") or 1800, sleep=p["wait_sleep"], initial_sleep=0.1)
    if not p["wait"]:
        poll = ready.step(0)
        if poll.outcome == waiter.FAIL or (poll.outcome == waiter.WAIT and p["fail_on_not_ready"]):
            raise WaitError(poll.message, **dict(poll.result, attempts=1))
        return dict(poll.result or ready.result(True), ready=poll.outcome == waiter.DONE, attempts=1,
                    msg=poll.message if poll.outcome != waiter.DONE else "ready")
    try:
        w.wait(ready.step)
    except WaitError as e:
        e.result["attempts"] = w.steps
        raise
    return dict(ready.result(True), attempts=w.steps)


def _out(timings):
    return {k: timings[k] for k in ("healthy", "model_listed", "first_completion") if k in timings}


def _what(p):
    return p.get("pod") or p.get("endpoint_id") or p.get("endpoint_name")
