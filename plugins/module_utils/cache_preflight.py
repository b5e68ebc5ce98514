# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""model_cache_preflight: before the control plane turns the PVC model cache on, check that the cluster can give
every endpoint its claim (the checks themselves are the pure functions of ``model_cache.py``)."""

from __future__ import annotations

import time
import uuid

from ansible_collections.odp.model_engine.plugins.module_utils import model_cache, waiter
from ansible_collections.odp.model_engine.plugins.module_utils.errors import OdpError, S3Error, WaitError
from ansible_collections.odp.model_engine.plugins.module_utils.quantity import format_bytes

TEST_CLAIM_PREFIX = "odp-model-cache-preflight-"
FINAL_STATES = ("access_mode", "capacity", "no_class", "failed")


class PreflightError(OdpError):
    """A check found problems; the result lists each with what to change."""


def checkpoint_sizes(module, paths):
    """{path: bytes of its model files} of the checkpoints; an unreadable one is a problem."""
    from ansible_collections.odp.model_engine.plugins.module_utils import s3

    sizes, problems = {}, []
    if not paths:
        return sizes, problems
    module.require("boto3")
    client = s3.client_from_params(module.params)
    for path in paths:
        bucket, prefix = s3.parse_s3_url(path)
        try:
            listing = s3.list_prefix(client, bucket, prefix)
        except S3Error as e:
            problems.append("%s (checkpoint_path %s)" % (e, path))
            continue
        sizes[path] = sum(v["size"] for k, v in listing.items() if s3.is_model_file(k))
    return sizes, problems


def claim_body(name, s, size=None):
    spec = {"accessModes": [s["access_mode"]], "resources": {"requests": {"storage": str(size or s["storage"])}}}
    if s["storage_class"]:
        spec["storageClassName"] = s["storage_class"]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "odp.model_engine",
                                                  "odp.model-engine/purpose": "model-cache-preflight"}},
            "spec": spec}


class ClaimWatch(object):
    """The wait's step on the test claim: bound (done), a ProvisioningFailed (failed now), still pending."""

    def __init__(self, kube, namespace, name, timeout):
        self.kube, self.namespace, self.name, self.timeout = kube, namespace, name, timeout
        self.state, self.evidence = "pending", []

    def step(self, _elapsed):
        pvc = self.kube.get("PersistentVolumeClaim", self.name, self.namespace) or {}
        events = self.kube.events(self.namespace, involved=self.name)
        self.state, self.evidence = model_cache.claim_state(pvc, events, now=time.time(), bind_timeout=self.timeout)
        text = "test claim %s: %s" % (self.name, self.state)
        if self.state in ("bound", "wait_first_consumer"):
            return waiter.done(self.state, text)
        if self.state in FINAL_STATES:
            return waiter.failed(self.state, text, reason=self.state)
        return waiter.keep_waiting(self.state, text)


def test_claim(module, s, problems):
    """Create a claim like an endpoint's, wait for it to bind, delete it. Returns what was seen."""
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    p = module.params
    if module.check_mode:
        return {"created": False, "state": "skipped", "evidence": ["check mode: no test claim"]}
    kube = Kube(p)
    name = TEST_CLAIM_PREFIX + uuid.uuid4().hex[:8]
    kube.create("PersistentVolumeClaim", claim_body(name, s, p.get("test_claim_size")), p["namespace"])
    module.result["changed"] = True
    watch = ClaimWatch(kube, p["namespace"], name, p["test_claim_timeout"])
    out = {"created": True, "name": name, "namespace": p["namespace"]}
    try:
        _value, elapsed = waiter.Waiter(p["test_claim_timeout"], sleep=2.0, initial_sleep=0.5).wait(watch.step)
        out["elapsed"] = round(elapsed, 1)
    except WaitError:
        problems.append(_claim_problem(watch, s, p["test_claim_timeout"]))
    finally:
        kube.delete("PersistentVolumeClaim", name, p["namespace"])
    out.update(state=watch.state, evidence=watch.evidence)
    if watch.state == "wait_first_consumer":
        out["note"] = ("the class binds when the first pod that uses the claim is scheduled, so a claim alone cannot prove "
                       "binding (the endpoint's first pod will)")
    return out


def _claim_problem(watch, s, timeout):
    where = "the test claim (%s, %s, %s)" % (s["storage_class"] or "default class", s["access_mode"], s["storage"])
    what = {"access_mode": "was refused for its access mode", "capacity": "does not fit in the storage pool",
            "no_class": "names no usable StorageClass", "failed": "failed to provision"}.get(
        watch.state, "did not bind within %ds (is the class's provisioner running?)" % timeout)
    return "%s %s: %s" % (where, what, "; ".join(watch.evidence[1:]) or "no event")


def run(module):
    """Read the StorageClasses (and S3 for the checkpoint sizes), check, optionally bind a test claim."""
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    p = module.params
    s = model_cache.settings(dict(p["model_cache"] or {}, enabled=True))
    result = {"changed": False, "settings": s}
    classes = Kube(p).list("StorageClass")
    problems, warnings, result["storage_class"] = model_cache.check_storage_class(s, classes, p.get("replicas") or {})
    sizes, unreadable = checkpoint_sizes(module, p.get("checkpoint_paths") or [])
    problems += unreadable
    found, result["size"] = model_cache.check_size(s, sizes, p["storage_headroom"])
    problems += found
    if p["test_claim"] and not problems:
        result["test_claim"] = test_claim(module, s, problems)
    result.update(changed=module.result.get("changed", False), ok=not problems, problems=problems, warnings_list=warnings)
    if problems and p["fail_on_problems"]:
        raise PreflightError("Model cache preflight found %d problem(s): %s" % (len(problems), " | ".join(problems)), **result)
    return result


def run_capacity(module):
    """cluster_capacity_info: node capacity and which shapes fit (preflight.run_capacity), plus the model cache's plan
    (which checkpoints fit ephemeral storage, which need the cache, the claim storage of the declared endpoints)."""
    from ansible_collections.odp.model_engine.plugins.module_utils.preflight import run_capacity as base

    p = module.params
    model_cache.settings(p["model_cache"])   # a bad setting fails before anything is read
    result = base(module)
    paths = sorted({ep["checkpoint_path"] for ep in p["endpoints"] if ep.get("checkpoint_path")})
    sizes, unreadable = {}, []
    if paths and p["read_checkpoints"]:
        try:
            sizes, unreadable = checkpoint_sizes(module, paths)
        except OdpError as e:   # no S3 access at all: the plan says what it cannot know
            unreadable = ["%s" % e]
    capacity = {n["name"]: n for n in result["nodes"]}
    rows, total = model_cache.capacity_plan(p["endpoints"], capacity, sizes, p["model_cache"], p["storage_headroom"])
    by_name = {r["name"]: r for r in rows}
    for fit in result["fits"]:
        fit.update({k: v for k, v in by_name.get(fit["name"], {}).items() if k != "name"})
    result["model_cache"] = total
    result["warnings_list"] += ["%s: %s" % ("checkpoint", x) for x in unreadable]
    result["warnings_list"] += ["%s: the checkpoint (%s with headroom) does not fit ephemeral storage (%s): it needs the model cache" % (
        r["name"], format_bytes(r["needed_bytes"]), format_bytes(r["ephemeral_limit_bytes"])) for r in rows if r["needs_cache"]]
    result["warnings_list"] += ["%s: the model cache's claim size %s cannot hold its checkpoint (%s with headroom)" % (
        name, total["claim_size"], format_bytes(by_name[name]["needed_bytes"])) for name in total["claim_too_small_for"]]
    return result
