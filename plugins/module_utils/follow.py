# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Following an endpoint until it serves: the observer a module builds, the wait timeout the checkpoint's
size implies, and the one step the Waiter runs (observe, judge, decide). ``llm_endpoint`` (``wait``) and
``llm_endpoint_progress`` (one step per call; its action plugin loops and prints) share it.
"""

from __future__ import annotations

from ansible_collections.odp.model_engine.plugins.module_utils import waiter
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import annotate
from ansible_collections.odp.model_engine.plugins.module_utils.judge import ABSENT, DEFAULT_LIMITS, SERVING, TERMINAL, judge
from ansible_collections.odp.model_engine.plugins.module_utils.observe import Observer

LOAD_ALLOWANCE = 900   # seconds for vLLM to load a large model once its files are complete
FALLBACK_TIMEOUT = 4 * 3600  # when the checkpoint's size cannot be read (no S3 credentials)
ABSENT_GRACE = 30      # seconds a just-created endpoint may be invisible to GET (gateway caches)


def limits(params):
    return {k: params.get(k) for k in DEFAULT_LIMITS if params.get(k) is not None}


def make_observer(module, measure_download=True):
    """An Observer from the module's gateway, Kubernetes and (when given) S3 options."""
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    params = dict(module.params, measure_download=measure_download and module.params.get("measure_download", True))
    return Observer(params, gateway=module.model_engine_client(), kube=Kube(module.params))


def auto_timeout(observer, record, lim):
    """Seconds a wait may take: install allowance + checkpoint bytes at the minimum expected rate + load allowance.

    At the runbook's ~4 MB/s a 16 GB checkpoint takes about 67 min; sized at half that rate, the wait gives it
    2 h 13 min plus the allowances, instead of timing out a normal download at 30 min.
    """
    lim = dict(DEFAULT_LIMITS, **lim)
    try:
        expected = observer.expected_files(record.get("checkpoint_path")) if record and record.get("checkpoint_path") else None
    except Exception:  # pylint: disable=broad-except  # no S3 access: the fallback applies
        expected = None
    if not expected:
        return FALLBACK_TIMEOUT
    size = sum(v["size"] for v in expected.values())
    return int(lim["install_timeout"] + size / float(lim["min_download_rate"]) + LOAD_ALLOWANCE)


class Follow(object):
    """The wait's step: observe, judge, and say done / keep waiting / failed now.

    ``baseline`` (after an update) is the Deployment generation before the PUT: the wait is not done until the
    update shows (status left READY, or the generation moved) or ``lim["transition_timeout"]`` passed, since
    the gateway may still report the previous state for a while.
    """

    def __init__(self, observer, name, lim, baseline=None, history=None):
        self.observer = observer
        self.name = name
        self.record = None   # set to a record just read elsewhere: the first observation judges it instead of reading it again
        self.limits = {k: v for k, v in lim.items() if k != "transition_timeout"}
        self.baseline = baseline
        self.transition_timeout = lim.get("transition_timeout", 0)
        self.history = dict(history or {})
        self.obs = None
        self.verdict = None

    def observe(self):
        record, self.record = self.record, None
        self.obs = self.observer.observe(self.name, history=self.history, record=record, read_record=record is None)
        self.history = self.obs.history
        rec = self.obs.record or {}
        if rec.get("status") == "UPDATE_PENDING":
            self.history.setdefault("pending_since", self.obs.now)
        else:
            self.history.pop("pending_since", None)
        if rec.get("status") not in (None, "READY") or self._generation() > (self.baseline or {}).get("generation", 1 << 62):
            self.history["transition_seen"] = True
        self.verdict = judge(self.obs, self.limits)
        return self.verdict

    def _generation(self):
        return ((self.obs.deployment or {}).get("metadata") or {}).get("generation") or 0

    def line(self):
        return "%s: %s" % (self.name, self.verdict.summary)

    def result(self):
        out = {"verdict": self.verdict.to_result(), "state": self.verdict.state, "cause": self.verdict.cause}
        if self.obs.record:
            ann = annotate(self.obs.record)
            out.update(endpoint=ann, endpoint_id=ann.get("id"), k8s_resource_name=ann.get("k8s_resource_name"))
        return out

    def step(self, elapsed):
        verdict = self.observe()
        msg, res = self.line(), self.result()
        if verdict.state == SERVING:
            if self.baseline is None or self.history.get("transition_seen") or elapsed >= self.transition_timeout:
                return waiter.done(verdict, msg, result=res)
            return waiter.keep_waiting(verdict, "%s (waiting for the update to show)" % msg, result=res)
        if verdict.state in TERMINAL:
            return waiter.failed(verdict, "Endpoint %s will not serve: %s. Fix: %s" % (self.name, verdict.summary, verdict.fix),
                                 result=res, reason=verdict.cause)
        if verdict.state == ABSENT and elapsed >= ABSENT_GRACE:
            return waiter.failed(verdict, "Endpoint %s does not exist" % self.name, result=res, reason="absent")
        return waiter.keep_waiting(verdict, msg, result=res)


def wait_until_serving(module, observer, name, baseline=None, record=None):
    """Wait with the module's wait options; returns (Follow, elapsed, lines). WaitError when it will not serve."""
    p = module.params
    lim = limits(p)
    timeout = p.get("wait_timeout") or auto_timeout(observer, record, lim)
    follow = Follow(observer, name, dict(lim, transition_timeout=max(30, 3 * p["wait_sleep"])), baseline=baseline)
    w = waiter.Waiter(timeout, sleep=p["wait_sleep"], initial_sleep=min(1.0, p["wait_sleep"]),
                      progress=lambda elapsed, message: module.log("[%5.0fs] %s" % (elapsed, message)))
    _value, elapsed = w.wait(follow.step)
    return follow, elapsed, w.lines
