# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One observation of an LLM endpoint: everything the judge (``judge.py``) needs, read in one place.

What the runbook reads by hand, in one pass: the gateway's record; the endpoint's Deployment with its
ReplicaSets (which one is the rollout's target) and pods with container states and last terminations;
the Warning events of pods that are not ready; the logs of containers that crashed; the endpoint builder
when a build is pending; node capacity when a pod cannot be scheduled; the bytes already in the model
folder of the pod that downloads (with the newest file time, so a stall is a window without bytes, not
one slow sample); and the last deep verification recorded on the pods.

Reads that fail are raised (KubeError, ModelEngineError, S3Error): a verdict is never made on a partial
view. Only the download measurement may be missing (no S3 credentials, no python in the image): the
judge then says what it cannot know.
"""

from __future__ import annotations

import json
import time

from ansible_collections.odp.model_engine.plugins.module_utils import cache_observe, model_cache
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import get_endpoint, resource_name
from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError, S3Error
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import container_status, is_ready

BUILDER = "model-engine-endpoint-builder"
VERIFICATION_ANNOTATION = "odp.model-engine/verification"
REVISION = "deployment.kubernetes.io/revision"
# The beginning of a download container's log that is read too: an S3 error comes early, then the runbook's guard
# prints "Waiting for model files..." every 5 s for as long as the pod lives.
HEAD_BYTES = 64 * 1024
# Samples kept between steps of a wait (enough for a rate over several minutes at one sample per 10-30 s).
MAX_SAMPLES = 40


class Observation(object):
    """What was seen of one endpoint at ``now`` (seconds since the epoch)."""

    def __init__(self, name, record=None, now=None):
        self.name = name
        self.record = record
        self.now = now if now is not None else time.time()
        self.api_error = None          # why a create was refused (diagnose of an endpoint that never existed)
        self.deployment = None
        self.replicasets = []
        self.pods = []                 # newest first, pods being deleted left out
        self.events = {}               # pod name -> Warning events, oldest first
        self.logs = {}                 # pod name -> container -> lines
        self.builder = None            # the builder Deployment, read while the build is pending
        self.builder_pods = []
        self.nodes = None              # node capacity, read when a pod cannot be scheduled
        self.download = None           # see Observer.measure_download
        self.cache = None              # the model cache (cache_observe.py), for an endpoint that uses it
        self.history = {}              # carried between the steps of a wait (samples, first seen states)

    @property
    def resource_name(self):
        return resource_name(self.record["id"]) if self.record and self.record.get("id") else None

    def current_replicaset(self):
        """The ReplicaSet of the Deployment's newest revision (the rollout's target), or None."""
        owned = [rs for rs in self.replicasets if rs.get("metadata")]
        if not owned:
            return None
        return max(owned, key=lambda rs: int(((rs["metadata"].get("annotations") or {}).get(REVISION)) or 0))

    def verification(self, pod):
        """The last verification recorded on ``pod`` (see ``record_verification``), or None."""
        raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(VERIFICATION_ANNOTATION)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None


class Observer(object):
    """Reads observations through one gateway client, one Kubernetes client and (optionally) S3.

    ``params`` are the module's: ``namespace``, ``gateway_namespace``, ``container``, ``model_dir``, ``python``,
    ``log_lines``, ``measure_download`` and the S3 connection options.
    """

    def __init__(self, params, gateway=None, kube=None, s3_client=None):
        self.p = params
        self.gateway = gateway
        self.kube = kube
        self._s3 = s3_client
        self._expected = {}

    # ------------------------------------------------------------------------------------ one endpoint
    def observe(self, name, history=None, logs="crashed", record=None, read_record=True):
        obs = Observation(name, record)
        obs.history = dict(history or {})
        if read_record:
            obs.record = get_endpoint(self.gateway, name)
            obs.now = time.time()
        if obs.record is None or not obs.record.get("id"):
            return obs
        ns = self.p.get("namespace") or "llm-core"
        app = "app=%s" % obs.resource_name
        obs.deployment = self.kube.get("Deployment", obs.resource_name, ns)
        obs.replicasets = self.kube.list("ReplicaSet", ns, app) if obs.deployment else []
        obs.pods = live_pods(self.kube.list("Pod", ns, app))
        self._details(obs, ns, logs)
        return obs

    def _details(self, obs, ns, logs, shared=None):
        """Builder, events, logs, capacity and the download. ``shared`` holds callables ``events(pod)``,
        ``builder()`` and ``capacity()`` that a bulk observation shares between endpoints (each read once)."""
        shared = shared or {}
        if obs.record.get("status") == "UPDATE_PENDING" or obs.deployment is None:
            obs.builder, obs.builder_pods = shared["builder"]() if "builder" in shared else self.read_builder(ns)
        for pod in obs.pods:
            pname = pod["metadata"]["name"]
            if not is_ready(pod):
                obs.events[pname] = shared["events"](pname) if "events" in shared else self.kube.events(ns, involved=pname, warning_only=True)
            self._read_logs(obs, pod, ns, logs)
        if any(unschedulable_message(p) for p in obs.pods):
            obs.nodes = shared["capacity"]() if "capacity" in shared else self.kube.capacity()
        cache_observe.observe(self, obs, ns)
        if self.p.get("measure_download", True):
            self.measure_download(obs)
            cache_observe.marker(self, obs, ns)

    def _read_logs(self, obs, pod, ns, logs, download_log=True):
        """The logs the judge needs of ``pod``: the download container's from its beginning too (HEAD_BYTES).
        ``download_log=False``: the caller knows the download moves or is done (its log explains nothing more)."""
        pname = pod["metadata"]["name"]
        download = self.p.get("container") or "main"
        for cname in containers_to_read(pod, logs, download if download_log else None):
            head = HEAD_BYTES if cname == download and not container_status(pod, cname).get("ready") else None
            obs.logs.setdefault(pname, {})[cname] = self.kube.logs(ns, pod, cname, self.p.get("log_lines") or 30, head_bytes=head)

    def read_builder(self, ns):
        gw_ns = self.p.get("gateway_namespace") or ns
        builder = self.kube.get("Deployment", BUILDER, gw_ns)
        return builder, (live_pods(self.kube.list("Pod", gw_ns, "app=%s" % BUILDER)) if builder else [])

    def observe_pods(self, pods, namespace, logs="crashed", name=None, download_log=True):
        """An observation of pods alone (no endpoint record): events of those not ready, logs of those that crashed
        (and of the download container while it runs unless ``download_log=False``)."""
        obs = Observation(name)
        obs.pods = live_pods(pods)
        for pod in obs.pods:
            pname = pod["metadata"]["name"]
            if (pod.get("status") or {}).get("phase") != "Running":  # scheduling, mounts, pulls: what events explain
                obs.events[pname] = self.kube.events(namespace, involved=pname, warning_only=True)
            self._read_logs(obs, pod, namespace, logs, download_log)
        return obs

    # ------------------------------------------------------------------------------------ many endpoints
    def observe_many(self, records, logs="crashed"):
        """Observations of many endpoints from one listing per kind (cleanup, reports): a constant number of
        requests plus one log read per crashed container and one exec per downloading pod."""
        ns = self.p.get("namespace") or "llm-core"
        sel = "managed-by=model-engine"
        deployments = {d["metadata"]["name"]: d for d in self.kube.list("Deployment", ns, sel)}
        rss, pods = self.kube.list("ReplicaSet", ns, sel), live_pods(self.kube.list("Pod", ns, sel))
        by_object = {}
        for ev in self.kube.events(ns, warning_only=True) if any(not is_ready(p) for p in pods) else []:
            by_object.setdefault((ev.get("involvedObject") or {}).get("name"), []).append(ev)
        shared = {}

        def once(key, fn):
            def get():
                if key not in shared:
                    shared[key] = fn()
                return shared[key]
            return get

        out = []
        for rec in records:
            obs = Observation(rec.get("name"), rec)
            name = obs.resource_name
            obs.deployment = deployments.get(name)
            obs.replicasets = [r for r in rss if ((r["metadata"].get("labels") or {}).get("app")) == name]
            obs.pods = [p for p in pods if ((p["metadata"].get("labels") or {}).get("app")) == name]
            self._details(obs, ns, logs, {"events": lambda pname: by_object.get(pname, []),
                                          "builder": once("builder", lambda: self.read_builder(ns)),
                                          "capacity": once("capacity", self.kube.capacity)})
            out.append(obs)
        return out

    # ------------------------------------------------------------------------------------ the download
    def downloading_pod(self, obs):
        """The newest pod whose download container runs and is not ready: the one whose bytes are measured."""
        cname = self.p.get("container") or "main"
        for pod in obs.pods:
            cs = container_status(pod, cname)
            if "running" in (cs.get("state") or {}) and not cs.get("ready"):
                return pod
        return None

    def expected_files(self, checkpoint):
        """{name: {size, etag}} of the model files in the checkpoint, or None without S3 access."""
        if checkpoint in self._expected:
            return self._expected[checkpoint]
        expected = None
        if self._s3 is not None or self.p.get("s3_endpoint_url") or self.p.get("s3_access_key"):
            from ansible_collections.odp.model_engine.plugins.module_utils import s3

            if self._s3 is None:
                self._s3 = s3.client_from_params(self.p)
            bucket, prefix = s3.parse_s3_url(checkpoint)
            listing = s3.list_prefix(self._s3, bucket, prefix)
            expected = {k: v for k, v in listing.items() if s3.is_model_file(k)}
        self._expected[checkpoint] = expected
        return expected

    def measure_download(self, obs):
        """``obs.download``: bytes in the downloading pod's model folder against the checkpoint, the newest
        file time (pod clock), and the samples of earlier steps for a rate."""
        pod = self.downloading_pod(obs)
        if pod is None:
            return
        obs.download = {"pod": pod["metadata"]["name"], "error": None}
        self.measure_pod_download(pod, obs.download, obs.record.get("checkpoint_path"), obs.history,
                                  cache_dir=(obs.cache or {}).get("model_dir"))

    def measure_pod_download(self, pod, dl, checkpoint=None, history=None, cache_dir=None):
        """Fill ``dl`` with the model folder of ``pod`` (one exec): ``exists``, ``files`` (count), ``listing``,
        ``pod_now``, ``newest_mtime``, bytes present/expected, ``percent``, ``complete``, ``temp_files``; append a
        sample to ``history["samples"]``. An exec that cannot run sets ``dl["error"]`` (no python, exec refused).
        ``cache_dir``: the model cache's folder (measured instead of ``model_dir``, with its marker in ``dl["marker"]``)."""
        from ansible_collections.odp.model_engine.plugins.module_utils.sync_verify import compare, run_agent_in_pod

        pname = pod["metadata"]["name"]
        request = {"root": cache_dir or self.p.get("model_dir") or "model_files", "files": {}, "marker": bool(cache_dir)}
        try:
            target = {"namespace": self.p.get("namespace") or "llm-core", "pod": pname, "container": self.p.get("container") or "main",
                      "python": self.p.get("python") or "python3"}
            answer = run_agent_in_pod(self.kube, target, request, timeout=120)
        except KubeError as e:
            dl["error"] = str(e)  # the judge says it cannot measure
            return
        files = answer.get("files") or {} if answer.get("exists") else {}
        if cache_dir:
            files = model_cache.strip_protocol_files(files)
            dl["marker"] = answer.get("marker")
        now = answer.get("now") or time.time()
        dl.update(exists=bool(answer.get("exists")), files=len(files), listing=files, pod_now=now,
                  newest_mtime=max([f.get("mtime") or 0 for f in files.values()] or [None], key=lambda x: x or 0))
        try:
            checkpoint = self.p.get("checkpoint_path") or checkpoint
            expected = self.expected_files(checkpoint) if checkpoint else None
        except S3Error as e:
            expected, dl["error"] = None, "cannot read the checkpoint listing: %s" % e
        if expected:
            cmp_ = compare(expected, files, None)
            dl.update(bytes_present=cmp_["bytes_present"], bytes_expected=cmp_["bytes_expected"], percent=cmp_["percent"],
                      complete=cmp_["complete"], temp_files=cmp_["temp_files"])
        else:
            dl.update(bytes_present=sum(f.get("size") or 0 for f in files.values()), bytes_expected=None, percent=None,
                      complete=None, temp_files=[])
        if history is not None:
            samples = [x for x in history.get("samples") or [] if x[2] == pname]
            samples.append([round(now, 3), dl["bytes_present"], pname])
            history["samples"] = samples[-MAX_SAMPLES:]


def live_pods(pods):
    """Pods not being deleted, newest first."""
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import newest_first

    return newest_first([p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")])


def unschedulable_message(pod):
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
            return cond.get("message") or "Unschedulable"
    return None


def containers_to_read(pod, logs, download_container="main"):
    """Containers whose log the judge needs: every one that started for ``logs="all"``; for "crashed", those
    that crashed and the download container while it runs without being ready (a download that failed in the
    background leaves the container running, its error only in the log)."""
    out = []
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        crashed = cs.get("restartCount", 0) > 0 or state.get("terminated") is not None
        downloading = cs.get("name") == download_container and state.get("running") is not None and not cs.get("ready")
        started = state.get("running") or state.get("terminated") or cs.get("restartCount")
        if (logs == "all" and started) or crashed or downloading:
            out.append(cs.get("name"))
    return out


def record_verification(kube, namespace, pod, result):
    """Record a verification's verdict (``result`` of s3_sync_verify, with its ``mode`` and ``checkpoint``) on the pod
    it checked, as an annotation, so that the judge can tell a serving pod with corrupt files from a healthy one.
    Returns True when the annotation changed."""
    mode, checkpoint = result.get("mode"), result.get("checkpoint")
    problems = [{"file": x.get("file"), "problem": x.get("problem")} for x in (result.get("problems") or [])[:20]]
    started = ((container_status(pod, "main").get("state") or {}).get("running") or {}).get("startedAt")
    value = {"mode": mode, "checkpoint": checkpoint, "complete": bool(result.get("complete")), "problems": problems,
             "bytes_present": result.get("bytes_present"), "bytes_expected": result.get("bytes_expected"), "main_started_at": started}
    text = json.dumps(value, sort_keys=True)
    current = ((pod.get("metadata") or {}).get("annotations") or {}).get(VERIFICATION_ANNOTATION)
    if current == text:
        return False
    try:
        previous = json.loads(current) if current else {}
    except ValueError:
        previous = {}
    if previous.get("mode") == "deep" and mode != "deep" and previous.get("main_started_at") == started:
        return False  # a quick check (names and sizes) never hides what a deep one found in the same files
    kube.patch_pod_annotations(namespace, pod["metadata"]["name"], {VERIFICATION_ANNOTATION: text})
    return True
