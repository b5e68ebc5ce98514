# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one judge of an LLM endpoint: an ordered table of small rules over one observation (``observe.py``).

Every wait, progress line, health check, diagnosis, report and clean-up asks ``judge(observation)`` and
gets one ``Verdict``: a state, the cause (the rule that fired), a summary, the evidence and the fix.

States:

* ``serving``: READY, the rollout finished, a pod of the current ReplicaSet is Ready, nothing known is wrong.
* ``progressing``: on its way (building, scheduling, installing the S3 tool, downloading with rate and ETA,
  vLLM loading, a rollout whose new pods are coming up); keep waiting.
* ``degraded``: something is wrong that waiting will not fix, but a pod still serves (a blocked rollout, an
  update that failed, files that differ from S3 on a serving pod). Never cleaned up.
* ``failed``: something is wrong that waiting will not fix, and nothing serves. Cleanup deletes only these.
* ``absent``: the gateway has no such endpoint.

A rule returns a Verdict or None; the first one that answers wins. The table ``CAUSES`` gives each cause's
state and fix; ``docs/verdicts.md`` is generated from it (``scripts/verdict_table.py``) and tested against it.
"""

from __future__ import annotations

import re

from ansible_collections.odp.model_engine.plugins.module_utils import model_cache
from ansible_collections.odp.model_engine.plugins.module_utils.observe import unschedulable_message
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import (
    TERMINAL_WAITING,
    container_spec,
    container_status,
    is_ready,
    parse_timestamp,
    pod_rs,
)
from ansible_collections.odp.model_engine.plugins.module_utils.quantity import format_bytes

SERVING, PROGRESSING, DEGRADED, FAILED, ABSENT = "serving", "progressing", "degraded", "failed", "absent"
TERMINAL = (DEGRADED, FAILED)

# The runbook's figures: the AWS CLI install takes 5-10 min, the download 30-60 min at about 4 MB/s, and
# progress comes in bursts. Defaults are sized to them, not to a test.
DEFAULT_LIMITS = {
    "pending_timeout": 600,       # UPDATE_PENDING with a running builder before the build counts as stuck
    "install_timeout": 1200,      # S3 tool install allowance (runbook: 5-10 min; "30+ min" is its failure)
    "stall_timeout": 600,         # a window without one new byte in the model folder
    "min_download_rate": 2000000,  # bytes/s the wait timeout is sized for (half the runbook's 4 MB/s)
    "rate_window": 300,           # seconds of samples a rate is computed over
    "claim_bind_timeout": 120,    # a model-cache claim Pending with no provisioner event before the provisioner counts as missing
    "lock_fresh_seconds": 90,     # a model-cache lock heartbeat (rewritten every 30 s) older than this has lost its holder
}


class Cause(object):
    def __init__(self, state, title, fix):
        self.state = state
        self.title = title
        self.fix = fix


CAUSES = {
    "serving": Cause(SERVING, "The endpoint serves", "Nothing to fix."),
    "absent": Cause(ABSENT, "The endpoint does not exist", "Create it (playbooks/create_endpoint.yml) or check the name."),
    "image_not_found_on_create": Cause(FAILED, "The gateway could not find the image in the registry", (
        "Check that the repository and tag exist in the registry. On-prem set config.values.infra.docker_registry_type: onprem "
        "(otherwise the gateway probes the registry anonymously).")),
    "update_failed": Cause(FAILED, "The endpoint build failed (UPDATE_FAILED)", (
        "Read status_reason and fix its cause; an endpoint that never got a Deployment cannot be repaired by an update: "
        "delete it and create it again.")),
    "builder_down": Cause(FAILED, "No endpoint builder is running, so the build task is never consumed", (
        "Bring model-engine-endpoint-builder back (kubectl scale deployment model-engine-endpoint-builder -n <ns> --replicas=1, "
        "or fix its pods); the endpoint builds as soon as it runs.")),
    "stuck_pending": Cause(FAILED, "The build task is not being consumed (UPDATE_PENDING for too long)", (
        "The builder runs but does not take the task: on-prem set celery_broker_type_redis: true so that it reads the broker the "
        "gateway writes to, and read the builder's log (kubectl logs deployment/model-engine-endpoint-builder).")),
    "objects_missing": Cause(FAILED, "The gateway says READY but the endpoint's Deployment does not exist", (
        "The Kubernetes objects were deleted behind model-engine's back; delete the endpoint through the API and create it again.")),
    "unschedulable_gpu": Cause(FAILED, "No node has a free GPU of the endpoint's type", (
        "Free a GPU (delete or scale down an idle endpoint), add a GPU node, or lower gpus. An update rolls out with one extra pod "
        "(maxSurge 1, maxUnavailable 0), so it needs one more free GPU than the endpoint uses.")),
    "unschedulable_cpu": Cause(FAILED, "The GPU node does not have the CPU the pod requests", (
        "Lower cpus (the runbook's endpoint uses 4) or free CPU requests on the GPU node; labels are not the problem.")),
    "unschedulable_memory": Cause(FAILED, "The GPU node does not have the memory the pod requests", (
        "Lower memory (the runbook's endpoint uses 16Gi) or free memory requests on the GPU node.")),
    "unschedulable_storage": Cause(FAILED, "The GPU node does not have the ephemeral storage the pod requests", (
        "Lower storage (50Gi for nvidia-tesla-t4, not 100Gi+) or free ephemeral storage on the GPU node.")),
    "unschedulable_selector": Cause(FAILED, "No node matches the pod's node selector (GPU type and node labels)", (
        "Set gpu_type to a type the cluster has, or label the GPU node k8s.amazonaws.com/accelerator=<gpu_type> (and the "
        "chart's nodeSelector labels, node-lifecycle=normal by default).")),
    "unschedulable_taint": Cause(FAILED, "The matching nodes carry a taint the pod does not tolerate", (
        "Add the toleration (chart gpuTolerations) or remove the taint from the GPU node.")),
    "unschedulable_cordoned": Cause(FAILED, "The matching nodes are cordoned", "Uncordon the node (kubectl uncordon <node>) once its maintenance is over."),
    "unschedulable_other": Cause(FAILED, "The pod cannot be scheduled", "Read the scheduler's message in the evidence."),
    "failed_mount": Cause(FAILED, "A volume of the pod cannot be mounted: a ConfigMap or Secret it needs does not exist", (
        "Create the ConfigMap or Secret the evidence names in the endpoint namespace (default-config is the chart's AWS config: "
        "its aws block, serviceTemplate.awsConfigMapName; model-engine-service-config is the chart's service config); the pod "
        "starts by itself once it exists, nothing needs a restart.")),
    "image_pull": Cause(FAILED, "An image of the pod cannot be pulled", (
        "Check the repository and tag in the registry (vLLM: vllm-onprem), the registry credentials and the pull secret.")),
    "storage_exceeded": Cause(FAILED, "A container was evicted for exceeding its ephemeral-storage limit (exit 137)", (
        "The storage request must hold the model files: use the platform's tested size (50Gi for nvidia-tesla-t4, not 100Gi+) "
        "with a checkpoint that fits it; it will be evicted again at the same point otherwise.")),
    "oom_killed": Cause(FAILED, "A container was killed for exceeding its memory limit (OOMKilled)", (
        "Raise memory for the model (or lower max_model_len / max_num_seqs).")),
    "unsupported_architecture": Cause(FAILED, "The vLLM image does not support the model's architecture", (
        "Use the vllm-onprem tag, which has the architecture fixes (Qwen3ForCausalLM), not a version-specific tag.")),
    "premature_start": Cause(FAILED, "vLLM started before the model download finished", (
        "Add the wait guard (the runbook's while loop on config.json, every .safetensors and no temp suffixes) or use "
        "roles/llm_endpoint/files/start_vllm.sh as the command.")),
    "download_failed": Cause(FAILED, "The model download failed", (
        "Check `which aws`/s5cmd in the image, the S3 credentials (the extraPodEnvFrom Secret) and the S3 endpoint.")),
    "crash_loop": Cause(FAILED, "A container keeps crashing", "Read the log lines in the evidence."),
    "slow_tool_install": Cause(FAILED, "The S3 tool install takes longer than the allowance", (
        "Verify --no-cache-dir in the pip install of the command, or pre-install the tool in the vLLM image (or use s5cmd). "
        "The pod has downloaded nothing yet, so re-creating it loses nothing.")),
    "download_stalled": Cause(FAILED, "The download stopped: no new bytes over the stall window", (
        "Check the S3 endpoint and the network from the GPU node (aws s3 ls from the pod) first. Restarting the pod throws the "
        "downloaded bytes away (ephemeral storage) and starts from zero: do it only once S3 answers again.")),
    "corrupt_files": Cause(FAILED, "The last verification found model files whose content differs from S3", (
        "The pod serves wrong weights. Delete the pod so that it downloads again (it is not downloading, nothing is lost), then "
        "verify again; if it recurs, check the objects in S3.")),
    "incomplete_files": Cause(FAILED, "The last verification found model files missing or of the wrong size", (
        "Delete the pod so that it downloads again, then verify again; check the download command's filters.")),
    "cache_emptydir_fallback": Cause(DEGRADED, "The model cache fell back to an EmptyDir: no claim (the async hardware-config bug)", (
        "The endpoint builder's PVC code path does not await _get_recommended_hardware_config_map (RuntimeWarning: coroutine ... was "
        "never awaited in its log), so the pod gets an EmptyDir and downloads again on every restart. Deploy a model-engine image "
        "whose builder awaits it (the PVC rework), then delete and create the endpoint (cache mode is fixed per bundle); until "
        "then size storage for the checkpoint on ephemeral storage.")),
    "cache_claim_missing": Cause(FAILED, "The pod mounts the model-cache claim, but the claim does not exist", (
        "The builder writes <name>-model-cache only when the chart renders persistent-volume-claim.yaml (modelCache.enabled on the "
        "control plane); if it was deleted, delete and create the endpoint so that the builder writes it again.")),
    "cache_claim_no_class": Cause(FAILED, "The model-cache claim's StorageClass does not exist (or none is set, no default)", (
        "Set model_engine_model_cache.storage_class to a class the cluster has (kubectl get sc), redeploy model-engine "
        "(deploy_model_engine.yml, helm method), then delete and create the endpoint: a claim's class cannot change.")),
    "cache_claim_no_provisioner": Cause(FAILED, "No provisioner answers for the model-cache claim's StorageClass", (
        "The class's provisioner (named in the evidence) is not running or not registered: check its CSI controller pods "
        "(kubectl get pods -A | grep csi) and kubectl get csidrivers, or use a class whose provisioner runs; the claim binds by "
        "itself once it answers.")),
    "cache_claim_access_mode": Cause(FAILED, "The model-cache claim asks for an access mode its storage cannot provide", (
        "Ceph RBD (rbd.csi.ceph.com) serves ReadWriteOnce filesystem volumes only: a ReadWriteMany claim never binds. Use a CephFS "
        "class (cephfs.csi.ceph.com) for ReadWriteMany, or model_engine_model_cache.access_mode: ReadWriteOnce with one replica "
        "per endpoint; redeploy model-engine, then delete and create the endpoint.")),
    "cache_claim_capacity": Cause(FAILED, "The storage pool cannot hold the model-cache claim", (
        "Free space in the pool (delete claims nobody uses: kubectl get pvc -A), raise the pool's quota, or lower "
        "model_engine_model_cache.storage (it must still hold the largest checkpoint with headroom).")),
    "cache_claim_pending": Cause(FAILED, "The model-cache claim cannot be provisioned", (
        "Read the provisioner's error in the evidence (kubectl describe pvc <name>-model-cache) and fix the StorageClass or the "
        "storage behind it.")),
    "cache_volume_node_conflict": Cause(FAILED, "The model-cache volume is on a node the pod cannot run on (volume node affinity)", (
        "A node-local (ReadWriteOnce) volume bound with volumeBindingMode Immediate lands on whichever node the provisioner picks, "
        "here not the GPU node. Use a StorageClass with volumeBindingMode: WaitForFirstConsumer, or network storage (CephFS, RBD), "
        "then delete and create the endpoint so that its claim is provisioned again.")),
    "cache_lock_stale": Cause(FAILED, "A stale model-cache download lock: its heartbeat stopped and nothing breaks it", (
        "Remove it: kubectl exec <pod> -c main -- rm -rf <model dir>/.download.lock (a replica that runs the download protocol "
        "breaks a lock older than modelCache.lockStaleSeconds by itself; the next pod then downloads into a clean folder).")),
    "cache_lock_orphaned": Cause(PROGRESSING, "A replica waits on a stale model-cache lock: its holder is gone", (
        "Nothing is lost by waiting: the replica breaks the lock once it is modelCache.lockStaleSeconds old. To go faster remove "
        "it: kubectl exec <pod> -c main -- rm -rf <model dir>/.download.lock (the waiting replica takes it within 10 s).")),
    "cache_waiting": Cause(PROGRESSING, "A replica waits for another replica's download into the model cache", (
        "Nothing to fix: it starts once the other replica has written the marker (the lock's heartbeat is fresh).")),
    "cache_hit": Cause(PROGRESSING, "Cache hit: the claim's model files are complete, nothing downloaded; vLLM loads them", (
        "Nothing to fix yet.")),
    "building": Cause(PROGRESSING, "The endpoint builder is building the endpoint", "Nothing to fix yet."),
    "update_queued": Cause(PROGRESSING, "An update is being built; the current pods keep serving", "Nothing to fix yet."),
    "scheduling": Cause(PROGRESSING, "The pod is being scheduled or its containers created", "Nothing to fix yet."),
    "installing": Cause(PROGRESSING, "The S3 tool is being installed in the main container", "Nothing to fix yet (the runbook's install takes 5-10 min)."),
    "downloading": Cause(PROGRESSING, "The model is downloading", "Nothing to fix: do not restart a downloading pod, its bytes would be lost."),
    "loading": Cause(PROGRESSING, "The model files are complete; vLLM is loading them", "Nothing to fix yet."),
    "rollout_pending": Cause(PROGRESSING, "An update is rolling out: the new pods are not ready yet, the old ones serve", "Nothing to fix yet."),
    "starting": Cause(PROGRESSING, "The pods are starting", "Nothing to fix yet."),
}


class Verdict(object):
    """A rule's answer. ``details``: ``container`` (the one the cause concerns), ``download`` (the download's
    facts while a pod downloads)."""

    def __init__(self, cause, summary, evidence=None, serving_pods=0, **details):
        self.cause = cause
        base = CAUSES[cause]
        self.state = DEGRADED if base.state == FAILED and serving_pods else base.state
        self.summary = summary or base.title
        self.evidence = list(evidence or [])
        self.fix = base.fix
        self.container = details.get("container")
        self.phase = cause
        self.download = details.get("download")
        self.serving_pods = serving_pods

    @property
    def terminal(self):
        return self.state in TERMINAL

    def to_result(self):
        return {"state": self.state, "cause": self.cause, "summary": self.summary, "evidence": self.evidence, "fix": self.fix,
                "container": self.container, "phase": self.phase, "download": self.download, "serving_pods": self.serving_pods}


class View(object):
    """Facts derived once from an observation for the rules."""

    def __init__(self, obs, limits):
        self.obs = obs
        self.limits = dict(DEFAULT_LIMITS, **{k: v for k, v in (limits or {}).items() if v is not None})
        rec = obs.record or {}
        self.status = rec.get("status")
        self.spec = rec.get("spec") or {}
        self.rs = obs.current_replicaset()
        rs_name = (self.rs or {}).get("metadata", {}).get("name")
        self.current = [p for p in obs.pods if rs_name is None or pod_rs(p) == rs_name]
        self.serving = [p for p in obs.pods if is_ready(p)]
        self.desired = ((obs.deployment or {}).get("spec") or {}).get("replicas", 1)
        ready_current = [p for p in self.current if is_ready(p)]
        # Pods that show a problem: not-ready pods of the rollout's target, and its failed (evicted) pods while
        # the target lacks ready pods (an evicted pod next to serving replacements is history).
        self.problem_pods = [p for p in self.current if not is_ready(p) and (p.get("status") or {}).get("phase") != "Failed"]
        if len(ready_current) < max(1, self.desired):
            self.problem_pods += [p for p in self.current if (p.get("status") or {}).get("phase") == "Failed"]

    def verdict(self, cause, summary=None, evidence=None, **kw):
        return Verdict(cause, summary, evidence, serving_pods=len(self.serving), **kw)

    def api_line(self):
        dep = self.spec.get("deployment_state") or {}
        return "API status %s, %s available worker(s)" % (self.status, dep.get("available_workers", 0))

    def age(self, *timestamps):
        for ts in timestamps:
            t = parse_timestamp(ts)
            if t is not None:
                return self.obs.now - t
        return None


def _events(view, pod, needle=None):
    return ["%s %s: %s" % (e.get("type"), e.get("reason"), e.get("message")) for e in view.obs.events.get(pod["metadata"]["name"], [])
            if needle is None or needle in (e.get("reason") or "") + (e.get("message") or "")]


def _logs(view, pod, container):
    return (view.obs.logs.get(pod["metadata"]["name"]) or {}).get(container) or []


# ---------------------------------------------------------------------------------------------- gateway rules
def rule_absent(view):
    """No record: `absent`, or `image_not_found_on_create` when the create was refused for the image."""
    if view.obs.record is not None:
        return None
    err = view.obs.api_error or ""
    if "docker image could not be found" in err:
        return view.verdict("image_not_found_on_create", "Creating the endpoint failed: the image was not found", ["API: %s" % err])
    return view.verdict("absent", "Endpoint %s does not exist" % view.obs.name, ["GET by name answered 404"])


def rule_update_failed(view):
    """`UPDATE_FAILED`, with the gateway's status_reason (degraded while the previous pods serve)."""
    if view.status != "UPDATE_FAILED":
        return None
    reason = view.spec.get("status_reason") or "no status_reason given"
    evidence = [view.api_line(), "status_reason: %s" % reason]
    if view.serving:
        evidence.append("%d pod(s) of the previous build still serve" % len(view.serving))
    if "docker image" in reason.lower() and "not be found" in reason.lower():
        return view.verdict("image_not_found_on_create", "The build failed: the image was not found", evidence)
    return view.verdict("update_failed", "The endpoint build failed: %s" % reason, evidence)


def _builder_state(view):
    builder = view.obs.builder
    if builder is None:
        return "absent"
    replicas = (builder.get("spec") or {}).get("replicas", 1)
    available = (builder.get("status") or {}).get("availableReplicas") or 0
    if replicas == 0:
        return "scaled to 0"
    if available == 0 and view.obs.builder_pods and all(_pod_problem(p) for p in view.obs.builder_pods):
        return "0/%d available, its pods fail: %s" % (replicas, _pod_problem(view.obs.builder_pods[0]))
    if available == 0 and not view.obs.builder_pods:
        return "0/%d available, no pod" % replicas
    return None


def rule_builder_down(view):
    """`UPDATE_PENDING` and the endpoint builder scaled to 0, absent, or without a working pod: fails at once."""
    if view.status != "UPDATE_PENDING":
        return None
    state = _builder_state(view)
    if state is None:
        return None
    return view.verdict("builder_down", "No endpoint builder runs (model-engine-endpoint-builder %s): the build task waits for ever" % state,
                        [view.api_line(), "model-engine-endpoint-builder: %s" % state])


def rule_stuck_pending(view):
    """`UPDATE_PENDING` longer than `pending_timeout` while a builder runs."""
    if view.status != "UPDATE_PENDING":
        return None
    age = view.age(view.spec.get("last_updated_at"), view.spec.get("created_at"))
    first_seen = view.obs.history.get("pending_since")
    if first_seen is not None:
        age = max(age or 0, view.obs.now - first_seen)
    if age is None or age < view.limits["pending_timeout"]:
        return None
    return view.verdict("stuck_pending", "UPDATE_PENDING for %ds (allowance %ds): no builder takes the task" % (age, view.limits["pending_timeout"]),
                        [view.api_line(), "UPDATE_PENDING for %ds" % age])


def rule_building(view):
    """`UPDATE_PENDING`/`UPDATE_IN_PROGRESS` and no Deployment yet: the builder is at work."""
    if view.obs.deployment is not None or view.status not in ("UPDATE_PENDING", "UPDATE_IN_PROGRESS"):
        return None
    return view.verdict("building", "%s: waiting for the endpoint builder" % view.status, [view.api_line()])


def rule_objects_missing(view):
    """`READY` but no Deployment: the objects were deleted behind model-engine's back."""
    if view.obs.deployment is not None or view.status != "READY":
        return None
    return view.verdict("objects_missing", None, [view.api_line(), "no Deployment %s" % view.obs.resource_name])


# ---------------------------------------------------------------------------------------------- the model cache
CLAIM_CAUSES = {"no_class": "cache_claim_no_class", "access_mode": "cache_claim_access_mode", "capacity": "cache_claim_capacity",
                "failed": "cache_claim_pending", "no_provisioner": "cache_claim_no_provisioner"}
VOLUME_CONFLICT = "volume node affinity conflict"


def _cache_fallback(view, c):
    """The async-bug fallback: the pod template has an EmptyDir (or no cache volume at all) and no claim came, or the
    builder logged the RuntimeWarning and no claim came."""
    tmpl = c["template"]
    if not (tmpl.get("volume") == "emptyDir" or (c["claim"] is None and (c["builder_warning"] or tmpl.get("volume") is None))):
        return None
    evidence = ["endpoint builder log: %s" % c["builder_warning"]] if c["builder_warning"] else []
    if tmpl.get("volume") == "emptyDir":
        evidence.append("the pod template mounts volume %s at %s as an EmptyDir" % (model_cache.VOLUME, tmpl.get("mount_path")))
    elif tmpl.get("volume") is None:
        evidence.append("the pod template has no %s volume: the files go to ephemeral storage" % model_cache.VOLUME)
    if c["claim"] is None:
        evidence.append("no claim %s exists" % c["claim_name"])
    evidence.append("the gateway's record says _llm.model_cache_enabled: true")
    return view.verdict("cache_emptydir_fallback", "The model cache fell back to %s: every pod restart downloads again" % (
        "an EmptyDir" if tmpl.get("volume") == "emptyDir" else "ephemeral storage"), evidence)


def _pending_lines(view):
    return ["pod %s Pending: %s" % (p["metadata"]["name"], unschedulable_message(p)) for p in view.problem_pods if unschedulable_message(p)]


def _node_conflict(view, c):
    msgs = [m for m in _pending_lines(view) if VOLUME_CONFLICT in m]
    if not msgs:
        return None
    sc = c.get("storage_class") or {}
    evidence = [*msgs[:2], "volume %s may only be used on node(s) %s" % (
        (c["claim"].get("spec") or {}).get("volumeName"), ", ".join(model_cache.pv_nodes(c["pv"]) or ["?"]))]
    if sc:
        evidence.append("StorageClass %s: provisioner %s, volumeBindingMode %s" % (
            sc["metadata"]["name"], sc.get("provisioner"), sc.get("volumeBindingMode") or "Immediate"))
    return view.verdict("cache_volume_node_conflict", "The model-cache claim %s is bound to a volume on %s, where the pod cannot "
                        "run" % (c["claim_name"], ", ".join(model_cache.pv_nodes(c["pv"]) or ["another node"])), evidence)


def rule_cache_claim(view):
    """The model cache's claim (an endpoint whose record says `model_cache_enabled`): the async-bug EmptyDir fallback
    (`cache_emptydir_fallback`), the claim missing, Pending for a reason its events name (no class, no provisioner,
    access mode, capacity), or bound to a volume on another node than the pod can use."""
    c = view.obs.cache
    if not c or view.obs.deployment is None:
        return None
    verdict = _cache_fallback(view, c)
    if verdict is not None:
        return verdict
    if c["claim"] is None:
        return view.verdict("cache_claim_missing", "The model-cache claim %s does not exist" % c["claim_name"],
                            _pending_lines(view) or ["no claim %s" % c["claim_name"]])
    state, evidence = model_cache.claim_state(c["claim"], c["claim_events"], now=view.obs.now, bind_timeout=view.limits["claim_bind_timeout"])
    if state in CLAIM_CAUSES:
        return view.verdict(CLAIM_CAUSES[state], "The model-cache claim %s stays Pending: %s" % (
            c["claim_name"], CAUSES[CLAIM_CAUSES[state]].title.lower()), evidence + _pending_lines(view)[:2])
    if state == "pending" and view.problem_pods:
        return view.verdict("scheduling", "The model-cache claim %s is being provisioned; the pod waits for it" % c["claim_name"],
                            evidence)
    return _node_conflict(view, c) if state == "bound" else None


def _waiting(view, pod_name):
    """Whether the pod's main log says it waits for another replica's lock (its last protocol line)."""
    lines = [x for x in _logs(view, {"metadata": {"name": pod_name}}, "main")
             if model_cache.WAITING_LINE in x or "cp s3://" in x or "download: s3://" in x or "stale model cache lock" in x]
    return bool(lines) and model_cache.WAITING_LINE in lines[-1]


def cache_evaluation(view):
    """The marker check of the cache folder (see model_cache.evaluate_marker), or None when it was not read."""
    c = view.obs.cache
    if not c or c.get("marker") is None:
        return None
    return model_cache.evaluate_marker(c["marker"], c["pod"].get("fingerprint"), view.limits["lock_fresh_seconds"],
                                       c["pod"].get("lock_stale_seconds"))


def rule_cache_lock(view):
    """The cache folder's download lock: a replica waiting on a fresh lock (`cache_waiting`), on an orphaned one
    (`cache_lock_orphaned`: its heartbeat stopped, it is broken at lockStaleSeconds), or a stale lock nothing breaks."""
    ev = cache_evaluation(view)
    if ev is None or not ev["lock"]:
        return None
    c = view.obs.cache
    pod, stale = c["marker_pod"], c["pod"].get("lock_stale_seconds")
    waiting = _waiting(view, pod) and any(p["metadata"]["name"] == pod for p in view.problem_pods)
    where = "%s/%s" % (c["model_dir"], model_cache.LOCK)
    if ev["fresh"]:
        if not waiting:
            return None
        return view.verdict("cache_waiting", "Pod %s waits for another replica's download into the model cache (lock heartbeat %ss old)" % (
            pod, ev["lock_age"]), ["pod %s main log: %s" % (pod, model_cache.WAITING_LINE), "lock %s, heartbeat %ss old" % (where, ev["lock_age"])])
    evidence = ["lock %s: heartbeat %ss old (fresh: at most %ds; broken after lockStaleSeconds %s)" % (
        where, ev["lock_age"], view.limits["lock_fresh_seconds"], stale)]
    if waiting and not ev["stale"]:
        left = (stale or 0) - (ev["lock_age"] or 0)
        evidence.append("pod %s main log: %s" % (pod, model_cache.WAITING_LINE))
        return view.verdict("cache_lock_orphaned", "Stale model-cache lock: pod %s waits on a lock whose holder stopped %ss ago; it breaks "
                            "it in about %s" % (pod, ev["lock_age"], duration(max(0, left))), evidence)
    return view.verdict("cache_lock_stale", "Stale model-cache lock %s (heartbeat %ss old) and no replica breaks it" % (where, ev["lock_age"]),
                        evidence)


def cache_hit(view, pod_name):
    """Whether ``pod_name``'s files came from the cache (the marker matched before its main container started)."""
    ev = cache_evaluation(view)
    c = view.obs.cache
    return bool(ev and c.get("marker_pod") == pod_name and model_cache.cache_hit(ev, c.get("started_at"), c.get("downloaded_lines")))


# ---------------------------------------------------------------------------------------------- scheduling
SCHEDULER_CAUSES = (
    ("Insufficient nvidia.com/gpu", "unschedulable_gpu"),
    ("Insufficient ephemeral-storage", "unschedulable_storage"),
    ("Insufficient memory", "unschedulable_memory"),
    ("Insufficient cpu", "unschedulable_cpu"),
    ("untolerated taint", "unschedulable_taint"),
    ("were unschedulable", "unschedulable_cordoned"),
    ("didn't match Pod's node affinity/selector", "unschedulable_selector"),
)


def parse_scheduler_message(message):
    """{reason text: node count} of "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match ...".

    The scheduler counts, per node, every filter that node failed; only the part before "preemption:" counts.
    """
    head = (message or "").split(" preemption:")[0]
    body = head.split("nodes are available: ", 1)[-1].rstrip(". ")
    out = {}
    for part in re.split(r", (?=\d+ )", body):
        m = re.match(r"^(\d+) (.+)$", part.strip())
        if m:
            out[m.group(2).rstrip(".")] = int(m.group(1))
    return out


def unschedulable_cause(message):
    """The cause a scheduler message points at: a resource shortage on the nodes that passed the selector
    and taints wins over the nodes that never could have taken the pod."""
    reasons = parse_scheduler_message(message)
    for needle, cause in SCHEDULER_CAUSES:
        if any(needle in r for r in reasons):
            return cause, reasons
    return "unschedulable_other", reasons


def _requests(pod):
    total = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        for k, v in dict(res.get("limits") or {}, **(res.get("requests") or {})).items():
            total.setdefault(k, []).append("%s=%s" % (c.get("name"), v))
    return total


def _node_lines(view, pod):
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    lines = []
    for node in sorted((view.obs.nodes or {}).values(), key=lambda n: n["name"]):
        if any(node["labels"].get(k) != v for k, v in selector.items()):
            continue
        lines.append("node %s: GPU %d/%d requested%s; CPU %.1f of %.1f free; memory %s of %s free; ephemeral storage %s of %s free" % (
            node["name"], node["gpu_requested"], node["gpu_allocatable"],
            " (by %s)" % ", ".join(node["gpu_holders"]) if node["gpu_holders"] else "",
            node["cpu_free"], node["cpu_allocatable"], format_bytes(node["memory_free"]), format_bytes(node["memory_allocatable"]),
            format_bytes(node["ephemeral_free"]), format_bytes(node["ephemeral_allocatable"])))
    return lines or ["no node matches the pod's node selector %s" % selector]


# The VolumeBinding PreFilter's text while a claim of an Immediate class is not bound yet: the scheduler tries again once
# it binds, so the pod waits (a claim that cannot bind is judged by the claim's own rules, from its events).
CLAIM_NOT_BOUND_YET = "pod has unbound immediate PersistentVolumeClaims"


def rule_unschedulable(view):
    """A pod of the rollout's target is Unschedulable: the cause from the scheduler's text (GPU, storage, memory, CPU, taint, cordon, selector)."""
    for pod in view.problem_pods:
        message = unschedulable_message(pod)
        if not message:
            continue
        if CLAIM_NOT_BOUND_YET in message and not parse_scheduler_message(message):
            return view.verdict("scheduling", "pod %s waits for its volume claims to bind" % pod["metadata"]["name"],
                                ["pod %s Pending: %s" % (pod["metadata"]["name"], message)])
        cause, reasons = unschedulable_cause(message)
        req = _requests(pod)
        wanted = {"unschedulable_gpu": "nvidia.com/gpu", "unschedulable_cpu": "cpu", "unschedulable_memory": "memory",
                  "unschedulable_storage": "ephemeral-storage"}.get(cause)
        evidence = ["pod %s Pending: %s" % (pod["metadata"]["name"], message)]
        if wanted:
            evidence.append("the pod requests %s: %s" % (wanted, ", ".join(req.get(wanted, ["?"]))))
        evidence += _node_lines(view, pod)
        summary = "pod %s cannot be scheduled: %s" % (pod["metadata"]["name"], ", ".join("%d %s" % (n, r) for r, n in sorted(reasons.items())))
        if view.serving:
            summary = "The update cannot roll out: %s; the old pod(s) still serve" % summary
        return view.verdict(cause, summary, evidence)
    return None


# ---------------------------------------------------------------------------------------------- containers
def _pod_problem(pod):
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in TERMINAL_WAITING:
            return "container %s %s" % (cs.get("name"), waiting["reason"])
    if (pod.get("status") or {}).get("phase") == "Failed":
        return "pod Failed: %s" % ((pod.get("status") or {}).get("reason") or "")
    return None


def rule_image_pull(view):
    """A container waits in ErrImagePull / ImagePullBackOff / InvalidImageName (names the container and image)."""
    for pod in view.problem_pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
                image = container_spec(pod, cs.get("name")).get("image") or cs.get("image")
                evidence = ["pod %s container %s %s: %s" % (pod["metadata"]["name"], cs.get("name"), waiting["reason"], waiting.get("message") or image)]
                evidence += _events(view, pod, "ull")[:2]
                return view.verdict("image_pull", "The image %s of container %s cannot be pulled (%s)" % (image, cs.get("name"), waiting["reason"]),
                                    evidence, container=cs.get("name"))
    return None


MOUNT_RE = re.compile(r'MountVolume.SetUp failed for volume "(?P<volume>[^"]+)" : (?P<error>.+)')
# A ConfigMap written right after its pod gives one FailedMount; a missing one gives them again and again.
MOUNT_REPEATS, MOUNT_SPAN = 3, 30


def _persistent_mount_failure(event):
    span = (parse_timestamp(event.get("lastTimestamp")) or 0) - (parse_timestamp(event.get("firstTimestamp")) or 0)
    return int(event.get("count") or 1) >= MOUNT_REPEATS or span >= MOUNT_SPAN


def rule_failed_mount(view):
    """A pod stuck in ContainerCreating because a ConfigMap/Secret volume does not exist (repeated FailedMount events)."""
    for pod in view.problem_pods:
        events = [e for e in view.obs.events.get(pod["metadata"]["name"], []) if e.get("reason") == "FailedMount"]
        bad = [e for e in events if _persistent_mount_failure(e) and MOUNT_RE.search(e.get("message") or "")]
        if not bad:
            continue
        m = MOUNT_RE.search(bad[-1]["message"])
        phase = (pod.get("status") or {}).get("phase")
        evidence = ["pod %s %s: Warning FailedMount (x%s): %s" % (pod["metadata"]["name"], phase, e.get("count") or 1, e.get("message"))
                    for e in bad[-3:]]
        return view.verdict("failed_mount", "Pod %s cannot start: volume %s: %s" % (pod["metadata"]["name"], m.group("volume"), m.group("error")),
                            evidence)
    return None


EVICTION_CONTAINER_RE = re.compile(r"Container (\S+) exceeded its local ephemeral storage limit")


def _evicted_for_storage(view, pod):
    status = pod.get("status") or {}
    texts = [status.get("message") or "", *_events(view, pod, "Evict")]
    if not any("ephemeral" in t and ("exceed" in t or "usage" in t) for t in texts):
        return None
    for t in texts:
        m = EVICTION_CONTAINER_RE.search(t)
        if m:
            return m.group(1), texts
    # The pod-level message names no container: it is the one with the ephemeral-storage limit that holds the
    # model (main), not the forwarder's small one.

    def limit(c):
        from ansible_collections.odp.model_engine.plugins.module_utils.kube import _bytes

        return _bytes(((c.get("resources") or {}).get("limits") or {}).get("ephemeral-storage"))

    containers = (pod.get("spec") or {}).get("containers") or []
    return (max(containers, key=limit).get("name") if containers else "main"), texts


def rule_storage_exceeded(view):
    """A pod was evicted for ephemeral storage (names the container that holds the model)."""
    for pod in view.problem_pods:
        found = _evicted_for_storage(view, pod)
        if not found:
            continue
        container, texts = found
        limit = (((container_spec(pod, container).get("resources") or {}).get("limits")) or {}).get("ephemeral-storage")
        evicted = [p["metadata"]["name"] for p in view.current if (p.get("status") or {}).get("reason") == "Evicted"]
        evidence = ["pod %s: %s" % (pod["metadata"]["name"], t) for t in texts if t][:3]
        evidence.append("container %s ephemeral-storage limit %s; %d evicted pod(s) of this ReplicaSet" % (container, limit, len(evicted)))
        exit_code = _terminated(container_status(pod, container)).get("exitCode")
        return view.verdict("storage_exceeded", "Container %s was Evicted%s for exceeding its ephemeral-storage limit %s" % (
            container, " (exit code %s)" % exit_code if exit_code is not None else "", limit), evidence, container=container)
    return None


def _terminated(cs):
    state = cs.get("state") or {}
    return state.get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}


def rule_oom_killed(view):
    """A container was OOMKilled."""
    for pod in view.problem_pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if _terminated(cs).get("reason") == "OOMKilled":
                limit = (((container_spec(pod, cs["name"]).get("resources") or {}).get("limits")) or {}).get("memory")
                return view.verdict("oom_killed", "Container %s was OOMKilled (memory limit %s)" % (cs["name"], limit),
                                    ["pod %s container %s OOMKilled, restarts %s" % (pod["metadata"]["name"], cs["name"], cs.get("restartCount"))],
                                    container=cs["name"])
    return None


ARCH_RE = re.compile(r"Model architectures \[.*\] are not supported")
PREMATURE_RE = re.compile(r"No (supported )?config format found|Cannot find any model weights")
DOWNLOAD_ERROR_RE = re.compile(r"(AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|NoSuchBucket|Unable to locate credentials|"
                               r"aws: command not found|s5cmd: command not found|ERROR .*(cp|sync) s3://|download failed|fatal error)", re.I)
CRASH_SIGNATURES = (
    (ARCH_RE, "unsupported_architecture", "vLLM does not support the model's architecture"),
    (PREMATURE_RE, "premature_start", "vLLM started before the model download finished"),
    (DOWNLOAD_ERROR_RE, "download_failed", "The model download failed"),
)


def _has_crashed(cs):
    return cs.get("restartCount", 0) > 0 or bool((cs.get("state") or {}).get("terminated"))


def _keeps_crashing(cs):
    """Crash-looping without a known signature: the kubelet backs off, or it restarted more than once."""
    waiting = (cs.get("state") or {}).get("waiting") or {}
    return waiting.get("reason") == "CrashLoopBackOff" or cs.get("restartCount", 0) >= 2


def _signature_verdict(view, pod, cs):
    logs = _logs(view, pod, cs["name"])
    for regex, cause, summary in CRASH_SIGNATURES:
        line = next((x for x in logs if regex.search(x)), None)
        if line:
            evidence = ["pod %s container %s log: %s" % (pod["metadata"]["name"], cs["name"], line.strip())]
            if cause == "unsupported_architecture":
                evidence.append("image %s" % container_spec(pod, cs["name"]).get("image"))
            if cause == "premature_start" and "while" not in " ".join(_command(pod)):
                evidence.append("the main command has no wait loop before starting vLLM")
            return view.verdict(cause, summary, evidence, container=cs["name"])
    return None


def _crash_verdict(view, pod, cs):
    logs = _logs(view, pod, cs["name"])
    term = _terminated(cs)
    evidence = ["pod %s container %s: restarts %s, last exit code %s %s" % (
        pod["metadata"]["name"], cs["name"], cs.get("restartCount"), term.get("exitCode"), term.get("reason") or "")]
    evidence += ["log: %s" % x for x in logs[-3:]]
    waiting = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
    return view.verdict("crash_loop", "Container %s keeps crashing (%sexit code %s, %s restarts)" % (
        cs["name"], "%s, " % waiting if waiting else "", term.get("exitCode"), cs.get("restartCount")), evidence, container=cs["name"])


def rule_crash(view):
    """A crashed container: a known signature in its log decides at once (`unsupported_architecture`,
    `premature_start`, `download_failed`); an unknown crash once it keeps crashing (`crash_loop`)."""
    for pod in view.problem_pods:
        for cs in sorted((pod.get("status") or {}).get("containerStatuses") or [], key=lambda c: c.get("name") != "main"):
            if not _has_crashed(cs):
                continue
            verdict = _signature_verdict(view, pod, cs)
            if verdict is None and _keeps_crashing(cs):
                verdict = _crash_verdict(view, pod, cs)
            if verdict is not None:
                return verdict
    return None


# ---------------------------------------------------------------------------------------------- the download
def _command(pod):
    main = container_spec(pod, "main")
    return (main.get("command") or []) + (main.get("args") or [])


def _running_for(view, pod, container="main"):
    started = parse_timestamp(((container_status(pod, container).get("state") or {}).get("running") or {}).get("startedAt"))
    return None if started is None else view.obs.now - started


def download_rate(samples, window):
    """Bytes/s over the samples of the last ``window`` seconds (None with fewer than two, or no time between)."""
    if not samples:
        return None
    last_t = samples[-1][0]
    recent = [s for s in samples if last_t - s[0] <= window]
    if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
        return None
    return max(0.0, (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0]))


def describe_download(dl, rate):
    if dl.get("bytes_expected"):
        text = "%.1f%% (%s of %s)" % (dl["percent"], format_bytes(dl["bytes_present"]), format_bytes(dl["bytes_expected"]))
    else:
        text = "%s so far (checkpoint size unknown)" % format_bytes(dl["bytes_present"])
    if rate:
        text += ", %s/s" % format_bytes(rate)
        if dl.get("bytes_expected"):
            text += ", ETA %s" % duration(max(0, dl["bytes_expected"] - dl["bytes_present"]) / rate)
    return text


def duration(seconds):
    seconds = int(seconds)
    if seconds < 120:
        return "%ds" % seconds
    if seconds < 7200:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)


def judge_download(dl, samples, limits, running_for=None, installs=False):
    """(cause, summary, evidence, facts) of a model folder being filled — the one stall detector.

    ``dl`` is a download measurement (``bytes_present``, ``bytes_expected``, ``complete``, ``files``, ``pod_now``,
    ``newest_mtime``, ``temp_files``); a stall is ``stall_timeout`` seconds in which no file changed, read off the
    newest file time (pod clock), so one slow sample is never a stall. Used by the endpoint judge and by
    ``s3_sync_verify``'s wait on a folder.
    """
    rate = download_rate(samples, limits["rate_window"])
    eta = (dl["bytes_expected"] - dl["bytes_present"]) / rate if rate and dl.get("bytes_expected") else None
    facts = {k: dl.get(k) for k in ("bytes_present", "bytes_expected", "percent", "complete", "temp_files")}
    facts.update(rate=round(rate, 1) if rate is not None else None, eta_seconds=round(eta) if eta is not None else None)
    if dl.get("complete"):
        return "loading", "The model files are complete (%s); vLLM is loading them" % format_bytes(dl["bytes_present"]), [], facts
    if not dl.get("files"):
        since = running_for or 0
        if installs and since < limits["install_timeout"]:
            return "installing", "Installing the S3 tool for %s (allowance %s)" % (duration(since), duration(limits["install_timeout"])), [], facts
        if installs:
            return "slow_tool_install", "No model file after %s of installing the S3 tool (allowance %s)" % (
                duration(since), duration(limits["install_timeout"])), ["the command installs the S3 tool with pip"], facts
        idle = since
    else:
        idle = max(0.0, (dl.get("pod_now") or 0) - (dl.get("newest_mtime") or 0))
    facts["idle_seconds"] = round(idle)
    if idle >= limits["stall_timeout"]:
        evidence = ["no file in the model folder changed for %s (stall window %s)" % (duration(idle), duration(limits["stall_timeout"])),
                    "%s present; temp files: %s" % (format_bytes(dl["bytes_present"]), ", ".join(dl.get("temp_files") or []) or "none")]
        return "download_stalled", "The download stalled at %s: no new bytes for %s" % (describe_download(dl, None), duration(idle)), evidence, facts
    return "downloading", "Downloading %s" % describe_download(dl, rate), [], facts


def rule_download(view):
    """The downloading pod's model folder: `installing` (within `install_timeout`), `slow_tool_install`,
    `downloading` with rate and ETA, `download_stalled` (no new byte for `stall_timeout`), `loading` (files complete)."""
    dl = view.obs.download
    if not dl or not view.problem_pods:
        return None
    pod = next((p for p in view.problem_pods if p["metadata"]["name"] == dl["pod"]), None)
    if pod is None:
        return None
    line = next((x for x in _logs(view, pod, "main") if DOWNLOAD_ERROR_RE.search(x)), None)
    if line and not dl.get("complete"):
        # the S3 tool failed in the background (the awscli form's `aws s3 sync ... &`): the guard waits for ever
        return view.verdict("download_failed", "The model download failed; the main container keeps waiting for files that will not come",
                            ["pod %s container main log: %s" % (dl["pod"], line.strip()),
                             "model_files %s" % ("has %d file(s)" % dl.get("files", 0) if dl.get("exists") else "does not exist")],
                            container="main")
    if dl.get("error"):
        return view.verdict("starting", "pod %s runs; its download cannot be measured: %s" % (dl["pod"], dl["error"]), [dl["error"]])
    installs = "pip install" in " ".join(_command(pod))
    samples = [s for s in view.obs.history.get("samples") or [] if s[2] == dl["pod"]]
    cause, summary, evidence, facts = judge_download(dl, samples, view.limits, _running_for(view, pod), installs)
    if cause == "loading" and cache_hit(view, dl["pod"]):
        cause, summary = "cache_hit", "Cache hit: the model files in claim %s are complete (%s, fingerprint matches), nothing was " \
            "downloaded; vLLM is loading them" % (view.obs.cache["claim_name"], format_bytes(dl["bytes_present"]))
    if view.serving and CAUSES[cause].state == PROGRESSING:
        summary += " (new pod of a rollout; the old pod(s) still serve)"
    return view.verdict(cause, summary, ["pod %s" % dl["pod"], *evidence], container="main", download=facts)


# ---------------------------------------------------------------------------------------------- serving pods
CONTENT_PROBLEMS = ("content_mismatch", "sha256_mismatch", "bad_safetensors")


def rule_verification(view):
    """A serving pod whose last recorded verification found corrupt (`corrupt_files`) or missing/short (`incomplete_files`) files."""
    for pod in view.serving:
        rec = view.obs.verification(pod)
        if not rec or rec.get("complete"):
            continue
        started = ((container_status(pod, "main").get("state") or {}).get("running") or {}).get("startedAt")
        if rec.get("main_started_at") and rec["main_started_at"] != started:
            continue  # recorded before the container restarted: its files were downloaded again since
        problems = rec.get("problems") or []
        cause = "corrupt_files" if any(p.get("problem") in CONTENT_PROBLEMS for p in problems) else "incomplete_files"
        listed = ", ".join("%s (%s)" % (p.get("file"), p.get("problem")) for p in problems[:5])
        return view.verdict(cause, "Pod %s serves, but its %s verification found: %s" % (pod["metadata"]["name"], rec.get("mode"), listed),
                            ["verification recorded on pod %s: %d problem(s) against %s" % (pod["metadata"]["name"], len(problems), rec.get("checkpoint"))],
                            container="main")
    return None


def rule_update_queued(view):
    """`UPDATE_PENDING`/`UPDATE_IN_PROGRESS` with a Deployment: an update is being built, current pods serve."""
    if view.status not in ("UPDATE_PENDING", "UPDATE_IN_PROGRESS"):
        return None
    return view.verdict("update_queued", "%s: an update is being built; %d pod(s) serve meanwhile" % (view.status, len(view.serving)), [view.api_line()])


def rollout_state(deployment):
    """(complete, text) of a Deployment's rollout, as ``kubectl rollout status`` decides it."""
    meta, spec, status = deployment.get("metadata") or {}, deployment.get("spec") or {}, deployment.get("status") or {}
    want = spec.get("replicas", 1)
    updated, available, total = status.get("updatedReplicas") or 0, status.get("availableReplicas") or 0, status.get("replicas") or 0
    if (status.get("observedGeneration") or 0) < (meta.get("generation") or 0):
        return False, "the Deployment's new spec is not observed yet"
    if updated < want:
        return False, "%d of %d new pod(s) updated" % (updated, want)
    if total > updated:
        return False, "%d old pod(s) still running" % (total - updated)
    if available < want:
        return False, "%d of %d updated pod(s) available" % (available, want)
    return True, "%d of %d pod(s) updated and available" % (available, want)


def rule_rollout_pending(view):
    """An update rolling out: pods of an older ReplicaSet still run (or the new spec is not observed yet)."""
    if view.obs.deployment is None:
        return None
    complete, text = rollout_state(view.obs.deployment)
    old = [p for p in view.obs.pods if p not in view.current]
    meta, status = view.obs.deployment.get("metadata") or {}, view.obs.deployment.get("status") or {}
    if complete or (not old and (status.get("observedGeneration") or 0) >= (meta.get("generation") or 0)):
        return None
    return view.verdict("rollout_pending", "Rolling out: %s" % text, [view.api_line()])


def rule_serving(view):
    """`READY`, the rollout finished, a pod of the current ReplicaSet Ready (or scaled to zero on purpose)."""
    if view.status != "READY":
        return None
    current_ready = [p for p in view.current if is_ready(p)]
    if not current_ready and view.desired:
        return None
    summary = "READY; %d pod(s) ready" % len(current_ready) if view.desired else "READY; scaled to zero"
    hit = [p["metadata"]["name"] for p in current_ready if cache_hit(view, p["metadata"]["name"])]
    if hit:
        summary += "; cache hit on %s: its model files came from claim %s, nothing was downloaded" % (hit[0], view.obs.cache["claim_name"])
    return view.verdict("serving", summary, [view.api_line()] + ["pod %s ready" % p["metadata"]["name"] for p in current_ready[:3]])


def rule_starting(view):
    """Anything else: the pods are being scheduled or started (`scheduling`, `starting`)."""
    pods = view.problem_pods or view.current
    text = ", ".join("%s %s" % (p["metadata"]["name"], (p.get("status") or {}).get("phase")) for p in pods[:3]) or "no pod yet"
    cause = "scheduling" if pods and all((p.get("status") or {}).get("phase") == "Pending" for p in pods) else "starting"
    return view.verdict(cause, "%s: %s" % (CAUSES[cause].title, text), [view.api_line()])


RULES = (
    rule_absent, rule_update_failed, rule_builder_down, rule_stuck_pending, rule_building, rule_objects_missing, rule_cache_claim,
    rule_unschedulable, rule_failed_mount, rule_image_pull, rule_storage_exceeded, rule_oom_killed, rule_crash, rule_cache_lock,
    rule_download, rule_verification, rule_update_queued, rule_rollout_pending, rule_serving, rule_starting,
)


POD_RULES = (rule_unschedulable, rule_failed_mount, rule_image_pull, rule_storage_exceeded, rule_oom_killed, rule_crash)


def judge_pods(obs, limits=None):
    """The first pod problem waiting cannot fix among ``obs.pods``, or None: the pod rules of the table alone,
    for waits that look at pods without an endpoint record (vLLM readiness, control-plane rollouts)."""
    view = View(obs, limits)
    for rule in POD_RULES:
        verdict = rule(view)
        if verdict is not None:
            return verdict
    return None


def judge(obs, limits=None):
    """The verdict on one observation: the first rule of ``RULES`` that answers."""
    view = View(obs, limits)
    for rule in RULES:
        verdict = rule(view)
        if verdict is not None:
            return verdict
    raise AssertionError("rule_starting always answers")  # pragma: no cover
