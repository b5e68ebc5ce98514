# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Follow a freshly built (or rebuilt) endpoint with the judge to a depth, then check what its builder wrote.

The canary of ``model_engine_deploy`` and the verification of ``rebuild_drifted`` use it. A model-engine image
whose control plane is healthy can still build broken endpoint pods (a start command without the wait-for-files
guard, a main container without its ephemeral-storage request and limit, an old forwarder); only an endpoint built
after the image update shows it.

Depths:

* ``build``: the builder wrote the objects and the pod passed its install and guard stages: the judge says
  ``downloading`` (bytes arrive), ``loading`` or ``serving`` for the current ReplicaSet's pod, with ``main`` running
  and never restarted, held for ``settle_seconds`` (a vLLM started too early crashes within them).
* ``serve``: the judge says ``serving`` (the wait every other module uses).

A terminal verdict on the way fails with the judge's cause, summary, evidence and fix. Then the checks, on the pods
of the current ReplicaSet: the ``http-forwarder`` tag, the ``main`` (vLLM) tag, the wait-for-files guard of the main
command, and main's ephemeral-storage request and limit.
"""

from __future__ import annotations

import re

from ansible_collections.odp.model_engine.plugins.module_utils import waiter
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import get_endpoint
from ansible_collections.odp.model_engine.plugins.module_utils.errors import OdpError, WaitError
from ansible_collections.odp.model_engine.plugins.module_utils.follow import Follow, auto_timeout, limits, make_observer
from ansible_collections.odp.model_engine.plugins.module_utils.judge import SERVING
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import container_spec, container_status, pod_rs, pod_summary
from ansible_collections.odp.model_engine.plugins.module_utils.quantity import quantity_to_bytes
from ansible_collections.odp.model_engine.plugins.module_utils.registry import image_tag

FORWARDER = "http-forwarder"
BUILD_CAUSES = ("downloading", "loading", "serving")
VLLM_START = re.compile(r"python[0-9.]*\s+-m\s+vllm(_server|\.entrypoints)|\bvllm\s+serve\b|start_vllm\.sh")
BACKGROUND_DOWNLOAD = re.compile(r"(aws\s+s3\s+(sync|cp)|s5cmd)[^;|&]*&(?!&)")
WAIT_LOOP = re.compile(r"\b(while|until)\b[^;]*config\.json")

# The checks' causes, named like the judge's (a failure message leads with the cause in capitals).
CHECKS = {
    "forwarder_tag": ("wrong_forwarder", "The endpoint's http-forwarder is not the control plane's", (
        "The builder did not take the new image's forwarder: check image.forwarderRepository and tag of the chart "
        "(the forwarder is {forwarderRepository}:{tag}, fixed when the endpoint is built).")),
    "vllm_tag": ("wrong_vllm_tag", "The endpoint's main container does not run the expected vLLM tag", (
        "Check the latest-tag ConfigMap (model-engine-inference-framework-latest-config) and config.values.launch.vllm_repository.")),
    "wait_guard": ("no_wait_guard", "The main command starts vLLM without waiting for the model files", (
        "The image's endpoint builder writes a start command without the wait-for-files loop (runbook: Premature VLLM Start): "
        "keep the previous model-engine image and fix the builder's command template.")),
    "storage": ("no_storage_request", "The main container lacks the endpoint's ephemeral-storage request or limit", (
        "The image's endpoint builder drops the storage dict: such a pod is scheduled without its reservation and is evicted "
        "for node pressure when a real model fills the disk. Keep the previous model-engine image and fix the builder.")),
}


class BuildCheckError(OdpError):
    """The endpoint did not reach the depth, or what its builder wrote is wrong; the message is the diagnosis."""


def command_text(pod):
    main = container_spec(pod, "main")
    return " ".join((main.get("command") or []) + (main.get("args") or []))


def guard_state(script):
    """(ok, detail): vLLM starts only after the files are complete (a foreground download, or a background one
    followed by a wait loop on config.json, or the start wrapper). ok is None when the command is not understood."""
    start = VLLM_START.search(script)
    if not start:
        return None, "the main command does not start vLLM in a form this check knows"
    if start.group(0) == "start_vllm.sh":
        return True, "the main command runs the start wrapper (it waits for the files)"
    before = script[:start.start()]
    if not BACKGROUND_DOWNLOAD.search(before):
        return True, "the download runs in the foreground before vLLM starts"
    if WAIT_LOOP.search(before):
        return True, "the download runs in the background and a wait loop on config.json holds vLLM"
    return False, "the download runs in the background (&) and nothing waits for model_files/config.json before vLLM starts"


def _check(name, ok, expected, found, detail):
    return {"check": name, "ok": ok, "expected": expected, "found": found, "detail": detail}


def check_pod(pod, expect):
    """The checks of one pod against ``expect`` (``forwarder_tag``, ``vllm_tag``, ``wait_guard``, ``storage``)."""
    name = pod["metadata"]["name"]
    out = []
    if expect.get("forwarder_tag"):
        image = container_status(pod, FORWARDER).get("image") or container_spec(pod, FORWARDER).get("image")
        found = image_tag(image)
        out.append(_check("forwarder_tag", found == expect["forwarder_tag"], expect["forwarder_tag"], found,
                          "pod %s container %s image %s" % (name, FORWARDER, image or "(none)")))
    if expect.get("vllm_tag"):
        image = container_spec(pod, "main").get("image")
        found = image_tag(image)
        out.append(_check("vllm_tag", found == expect["vllm_tag"], expect["vllm_tag"], found, "pod %s container main image %s" % (name, image)))
    if expect.get("wait_guard"):
        ok, detail = guard_state(command_text(pod))
        out.append(_check("wait_guard", ok, "a wait for the model files before vLLM starts", "yes" if ok else "no", "pod %s: %s" % (name, detail)))
    if expect.get("storage") is not None:
        out.append(_storage_check(pod, expect["storage"]))
    return out


def _storage_check(pod, storage):
    resources = container_spec(pod, "main").get("resources") or {}
    found = {part: (resources.get(part) or {}).get("ephemeral-storage") for part in ("requests", "limits")}
    want = quantity_to_bytes(storage, "storage")
    ok = all(v is not None and quantity_to_bytes(v, "ephemeral-storage") == want for v in found.values())
    text = ", ".join("%s %s" % (part, v if v is not None else "none") for part, v in found.items())
    return _check("storage", ok, "requests and limits ephemeral-storage %s" % storage, text,
                  "pod %s container main ephemeral-storage: %s" % (pod["metadata"]["name"], text))


def current_pods(obs):
    rs = obs.current_replicaset()
    rs_name = (rs or {}).get("metadata", {}).get("name")
    return [p for p in obs.pods if rs_name is None or pod_rs(p) == rs_name]


def diagnosis(name, cause, summary, evidence, fix):
    text = "%s: %s: %s" % (name, (cause or "failed").upper(), summary)
    if evidence:
        text += ". Evidence: %s" % "; ".join(evidence)
    return "%s. Fix: %s" % (text.rstrip("."), fix)


class Milestone(object):
    """The build depth: a pod of the current ReplicaSet past install and guard, held for ``settle`` seconds."""

    def __init__(self, settle):
        self.settle = settle
        self.since = None

    def reached(self, follow, elapsed):
        verdict = follow.verdict
        if verdict.state == SERVING:
            return True
        pods = current_pods(follow.obs)
        steady = verdict.cause in BUILD_CAUSES and pods and all(
            "running" in (container_status(p, "main").get("state") or {}) and not container_status(p, "main").get("restartCount")
            for p in pods)
        if verdict.cause == "downloading" and not ((verdict.download or {}).get("bytes_present") or 0):
            steady = False
        if not steady:
            self.since = None
            return False
        if self.since is None:
            self.since = elapsed
        return elapsed - self.since >= self.settle


def follow_to_depth(module, observer):
    """Wait with the judge until the depth is reached; (Follow, elapsed, lines). BuildCheckError on a terminal verdict."""
    p = module.params
    lim = limits(p)
    follow = Follow(observer, p["name"], dict(lim, transition_timeout=0))
    milestone = Milestone(p["settle_seconds"])

    def step(elapsed):
        poll = follow.step(elapsed)
        if poll.outcome == waiter.WAIT and p["depth"] == "build" and milestone.reached(follow, elapsed):
            return waiter.done(follow.verdict, "%s (build depth reached)" % follow.line(), result=poll.result)
        if poll.outcome == waiter.WAIT and milestone.since is not None:
            return waiter.keep_waiting(poll.value, "%s (holding %ds of %ds)" % (follow.line(), elapsed - milestone.since, p["settle_seconds"]),
                                       result=poll.result)
        return poll

    timeout = p.get("wait_timeout") or auto_timeout(observer, get_endpoint(observer.gateway, p["name"]), lim)
    w = waiter.Waiter(timeout, sleep=p["wait_sleep"], initial_sleep=min(1.0, p["wait_sleep"]),
                      progress=lambda elapsed, message: module.log("[%5.0fs] %s" % (elapsed, message)))
    try:
        _value, elapsed = w.wait(step)
    except WaitError as e:
        verdict = e.result.get("verdict") or {}
        module.result.update({k: v for k, v in e.result.items() if k != "msg"})
        if e.result.get("failure") == "timeout":
            raise BuildCheckError(diagnosis(p["name"], "timeout", str(e), verdict.get("evidence"), verdict.get("fix") or "Read the evidence."))
        raise BuildCheckError(diagnosis(p["name"], verdict.get("cause"), verdict.get("summary") or str(e), verdict.get("evidence"),
                                        verdict.get("fix") or ""))
    return follow, elapsed, w.lines


def run(module):
    """endpoint_build_check: follow to the depth, then check the current pods; fails with the diagnosis."""
    p = module.params
    if p.get("storage") is not None:
        quantity_to_bytes(p["storage"], "storage")
    observer = make_observer(module)
    follow, elapsed, lines = follow_to_depth(module, observer)
    pods = current_pods(follow.obs)
    expect = {k: p.get(k) for k in ("forwarder_tag", "vllm_tag", "wait_guard", "storage")}
    checks = [c for pod in pods for c in check_pod(pod, expect)]
    failed = [c for c in checks if c["ok"] is False]
    module.result.update(follow.result(), elapsed=round(elapsed, 1), progress=lines, depth=p["depth"], checks=checks,
                         pods=[pod_summary(x) for x in follow.obs.pods], problems=[c["detail"] for c in failed])
    if failed:
        first = failed[0]
        cause, title, fix = CHECKS[first["check"]]
        raise BuildCheckError(diagnosis(p["name"], cause, "%s (expected %s, found %s)" % (title, first["expected"], first["found"]),
                                        [c["detail"] for c in failed], fix), failure=cause)
    depth = "serves" if follow.verdict.state == SERVING else "passed its install and guard stages"
    return {"changed": False, "msg": "%s %s (%s); %d check(s) passed" % (p["name"], depth, follow.verdict.summary, len(checks))}
