# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vLLM readiness of an endpoint pod, through the Kubernetes pod proxy (no port-forward process).

/health on the main container's port, then /v1/models must list the served model, then optionally a
smoke completion, directly or through the model-engine gateway's /v2/chat/completions. A wait polls
with a short backoff and stops at once when the pod is in a state it cannot leave by itself.
"""

from __future__ import annotations

import json
import re
import time

from ansible_collections.odp.model_engine.plugins.module_utils import waiter
from ansible_collections.odp.model_engine.plugins.module_utils.errors import ModelEngineError, WaitError
from ansible_collections.odp.model_engine.plugins.module_utils.judge import DEFAULT_LIMITS, download_rate, judge_pods
from ansible_collections.odp.model_engine.plugins.module_utils.kube import resource_path
from ansible_collections.odp.model_engine.plugins.module_utils.observe import Observer
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import container_status, pod_summary


class NotReady(Exception):
    """A readiness step has not passed yet; ``step`` names it; ``sleep`` is the pause before looking again."""

    def __init__(self, step, detail, sleep=None):
        super(NotReady, self).__init__("%s: %s" % (step, detail))
        self.step = step
        self.detail = detail
        self.sleep = sleep


def pod_proxy(kube, namespace, pod, port):
    """A request function for ``pod:port`` through the API server's pod proxy: ``request(method, path, body,
    timeout)`` returns (status, text) of whatever answered (vLLM, or the API server for a pod not listening yet)."""
    base = resource_path("Pod", namespace, "%s:%s" % (pod, port), "proxy")

    def request(method, path, body=None, timeout=30):
        return kube.request("%s %s on pod %s/%s port %s" % (method, path, namespace, pod, port), method,
                            "%s/%s" % (base, path.lstrip("/")), body=body, returns="answer", timeout=timeout)

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


# Adaptive polling: while the files are not all there vLLM cannot be up, so the pod is looked at every SLOW seconds
# (sooner when the download's ETA is near); once they are complete, /health is asked every FAST seconds. The pod itself
# is read at most every POD_RECHECK seconds (a crash while loading still stops the wait). While no rate is known yet (one
# sample, or no bytes over the rate window: the tool still installs), the pause starts at NO_RATE_FIRST and doubles up
# to SLOW, so that a short download is seen at once and a long install costs few looks. The download container's log
# (what explains a download that failed while its container runs on) is read when the bytes stopped between two
# looks, at most every LOG_EVERY seconds.
FAST, SLOW, POD_RECHECK, NO_RATE_FIRST, LOG_EVERY = 0.2, 60.0, 2.0, 0.5, 60.0
TEMP_NAME_RE = re.compile(r"\.(safetensors|json|model|txt|bin)(\.[A-Za-z0-9]{8}|\d+)$|\.(tmp|part|download|incomplete)$")


def files_look_complete(files):
    """The runbook's guard, on a listing: config.json, at least one .safetensors, and no file under a download tool's
    temporary name (awscli ``<name>.<8 chars>``, s5cmd ``<name><digits>``, ``.tmp``/``.part``)."""
    names = list(files or {})
    return "config.json" in names and any(n.endswith(".safetensors") for n in names) and not any(TEMP_NAME_RE.search(n) for n in names)


class Readiness(object):
    """The vllm_ready wait's step: find the pod, stop at once on a pod problem the judge names, wait slowly while the
    model downloads and quickly while vLLM loads, then run the readiness steps not passed yet. ``requests`` counts
    what the wait asked: the API server (pods, events, logs), the model folder (exec), vLLM (pod proxy)."""

    def __init__(self, module, kube, observer, gateway):
        self.p = module.params
        self.kube = kube
        self.observer = observer
        self.steps = Steps(self.p, None, gateway, time.monotonic())
        self.timings = self.steps.timings
        self.summary = None
        self.pod = None
        self.last = None
        self.files_complete = False
        self.history = {}
        self.pod_checked = None
        self.no_rate_pause = None  # the pause while no rate is known (doubles each look)
        self.log_read = None       # when the download container's log was last read
        self.counts = {"exec": 0, "proxy": 0}

    @property
    def requests(self):
        """What the wait asked, from the client's own count: the API server (pods, events, logs), the model folder
        (exec), vLLM (pod proxy)."""
        return dict(kubernetes=self.kube.requests - self.counts["exec"] - self.counts["proxy"], **self.counts)

    def _pods(self):
        p = self.p
        return self.kube.find_pods(p["namespace"], p.get("pod"), p.get("endpoint_id"), p.get("endpoint_name"))

    def result(self, ready, logs=False):
        """The module's result; ``logs``: with the main container's last log lines (a wait that failed)."""
        out = dict(ready=ready, pod=self.summary, timings=_out(self.timings), served_models=self.timings.get("served_models"),
                   completion=self.timings.get("completion"))
        if logs and not ready and self.summary:
            out["main_logs"] = self.kube.logs(self.p["namespace"], self.pod, self.p["container"], 20)
        out["requests"] = self.requests
        return out

    def _download_log_due(self):
        """Whether this look reads the download container's log: not once the files are complete, not while the last
        two samples show bytes arriving (the log would explain nothing more), and at most every LOG_EVERY seconds."""
        samples = self.history.get("samples") or []
        if self.files_complete or (len(samples) >= 2 and samples[-1][1] > samples[-2][1]):
            return False
        now = time.monotonic()
        if self.log_read is not None and now - self.log_read < LOG_EVERY:
            return False
        self.log_read = now
        return True

    def _look_at_pod(self):
        """Read the pod (and what the judge needs of it); a Poll when the wait must end or the pod is not there."""
        p = self.p
        obs = self.observer.observe_pods(self._pods(), p["namespace"], name=_what(p), download_log=self._download_log_due())
        problem = judge_pods(obs)
        self.pod = next((x for x in obs.pods if (x.get("status") or {}).get("phase") == "Running"), obs.pods[0] if obs.pods else None)
        self.summary = pod_summary(self.pod) if self.pod else None
        self.pod_checked = time.monotonic()
        if problem is not None:
            res = dict(self.result(False, logs=True), verdict=problem.to_result(), state=problem.state, cause=problem.cause)
            return waiter.failed(None, "vLLM cannot become ready: %s. Fix: %s" % (problem.summary, problem.fix), result=res,
                                 reason="terminal")
        return None

    def _download_pause(self):
        """How long to wait while the model is still downloading (None once the files are complete)."""
        if self.files_complete or container_status(self.pod, self.p["container"]).get("ready"):
            self.files_complete = True
            return None
        dl = {"pod": self.summary["name"]}
        self.counts["exec"] += 1
        self.observer.measure_pod_download(self.pod, dl, self.p.get("checkpoint_path"), self.history)
        if dl.get("error") and not dl.get("listing"):
            return None  # cannot look inside (no python, exec refused): poll /health as before
        if dl.get("complete") or (dl.get("complete") is None and files_look_complete(dl.get("listing"))):
            self.files_complete = True
            return None
        rate = download_rate(self.history.get("samples"), DEFAULT_LIMITS["rate_window"])
        if not dl.get("bytes_expected"):
            return self.p["wait_sleep"]  # no ETA without the checkpoint's size: look again at the usual pace
        if not rate:
            self.no_rate_pause = min(SLOW, 2 * self.no_rate_pause) if self.no_rate_pause else NO_RATE_FIRST
            return self.no_rate_pause
        self.no_rate_pause = None
        eta = max(0.0, dl["bytes_expected"] - dl["bytes_present"]) / rate
        return max(FAST, min(SLOW, 0.8 * eta))

    def _probe(self):
        p = self.p
        try:
            if self.pod is None:
                raise NotReady("pod", "no pod found for %s" % _what(p))
            if self.summary["phase"] != "Running":
                raise NotReady("pod", "pod %s is %s" % (self.summary["name"], self.summary["display"]))
            pause = self._download_pause() if p["adaptive"] else None
            if pause is not None:
                raise NotReady("download", "the model files in pod %s are not complete yet" % self.summary["name"], pause)
            request = pod_proxy(self.kube, p["namespace"], self.summary["name"], p["port"])

            def counted(*args, **kwargs):
                self.counts["proxy"] += 1
                return request(*args, **kwargs)

            self.steps.request = counted
            self.steps.run()
        except NotReady as e:
            self.last = e
            sleep = e.sleep if e.sleep is not None else (FAST if self.files_complete and p["adaptive"] else None)
            return waiter.keep_waiting(None, str(e), result=dict(self.result(False), failure=e.step), sleep=sleep)
        return waiter.done(None, "ready")

    def step(self, _elapsed):
        # the pod itself at most every POD_RECHECK seconds: near the download's end the folder is looked at more often
        due = self.pod is None or time.monotonic() - (self.pod_checked or 0) >= POD_RECHECK
        if due:
            stop = self._look_at_pod()
            if stop is not None:
                return stop
        return self._probe()


def run(module):
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    p = module.params
    kube = Kube(p)
    gateway = module.model_engine_client() if p["smoke"] == "gateway" else None
    ready = Readiness(module, kube, Observer(p, kube=kube), gateway)
    w = waiter.Waiter(p.get("wait_timeout") or 1800, sleep=p["wait_sleep"], initial_sleep=0.1)
    if not p["wait"]:
        poll = ready.step(0)
        result = poll.result if poll.outcome == waiter.FAIL else ready.result(poll.outcome == waiter.DONE, logs=True)
        if poll.outcome == waiter.WAIT:
            result["failure"] = poll.result.get("failure")
        if poll.outcome == waiter.FAIL or (poll.outcome == waiter.WAIT and p["fail_on_not_ready"]):
            raise WaitError(poll.message, **dict(result, attempts=1))
        return dict(result, ready=poll.outcome == waiter.DONE, attempts=1, msg=poll.message if poll.outcome != waiter.DONE else "ready")
    try:
        w.wait(ready.step)
    except WaitError as e:
        if "main_logs" not in e.result:  # a timeout: what the main container said last
            e.result.update(ready.result(False, logs=True))
        e.result["attempts"] = w.steps
        raise
    return dict(ready.result(True), attempts=w.steps)


def _out(timings):
    return {k: timings[k] for k in ("healthy", "model_listed", "first_completion") if k in timings}


def _what(p):
    return p.get("pod") or p.get("endpoint_id") or p.get("endpoint_name")
