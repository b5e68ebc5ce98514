# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The model-cache part of an observation (``observe.py``), read only for an endpoint whose record says
``_llm.model_cache_enabled``: the claim ``<resource name>-model-cache`` with its events, its PersistentVolume and
StorageClass, the cache volume the pods really mount, the builder's async-bug warning when no claim came, and the
marker/lock of the cache folder (one exec, shared with the download measurement while a pod downloads).

``obs.cache`` holds it for the judge's cache rules; ``obs.cache["model_dir"]`` is where the download is measured.
"""

from __future__ import annotations

from ansible_collections.odp.model_engine.plugins.module_utils import model_cache
from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import container_status

BUILDER_LOG_LINES = 300
DOWNLOAD_LINE_MARKERS = ("cp s3://", "download: s3://")


def _template(deployment):
    return ((deployment or {}).get("spec") or {}).get("template") or {}


def observe(observer, obs, ns):
    """Fill ``obs.cache`` (None when the endpoint does not use the model cache)."""
    if not model_cache.cache_enabled(obs.record):
        return
    kube = observer.kube
    name = obs.resource_name + model_cache.CLAIM_SUFFIX
    pod = obs.pods[0] if obs.pods else _template(obs.deployment)
    info = model_cache.pod_cache(pod, observer.p.get("container") or "main")
    template = model_cache.pod_cache(_template(obs.deployment)) if obs.deployment else info
    claim = kube.get("PersistentVolumeClaim", name, ns)
    cache = {"claim_name": name, "claim": claim, "claim_events": [], "pv": None, "storage_class": None, "pod": info,
             "template": template, "builder_warning": None, "marker": None, "marker_pod": None, "started_at": None,
             "downloaded_lines": None,
             "model_dir": info.get("model_dir") or model_cache.model_dir(info.get("mount_path") or model_cache.DEFAULTS["mount_path"])}
    if claim is not None:
        cache["claim_events"] = kube.events(ns, involved=name)
        spec = claim.get("spec") or {}
        if spec.get("volumeName"):
            cache["pv"] = kube.get("PersistentVolume", spec["volumeName"])
        if spec.get("storageClassName"):
            cache["storage_class"] = kube.get("StorageClass", spec["storageClassName"])
    if obs.deployment is not None and (claim is None or template.get("volume") == "emptyDir"):
        cache["builder_warning"] = builder_warning(observer, ns)
    obs.cache = cache


def builder_warning(observer, ns):
    """The RuntimeWarning of the async hardware-config bug in the endpoint builder's log, or None."""
    builder, pods = observer.read_builder(ns)
    if builder is None:
        return None
    container = (((builder.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [{}])[0].get("name")
    for pod in pods:
        try:
            lines = observer.kube.logs(observer.p.get("gateway_namespace") or ns, pod["metadata"]["name"], container, BUILDER_LOG_LINES)
        except KubeError:
            continue
        line = next((x for x in lines if model_cache.ASYNC_BUG in x), None)
        if line:
            return "pod %s: %s" % (pod["metadata"]["name"], line.strip())
    return None


def _running_pod(obs, container):
    for pod in obs.pods:
        if "running" in (container_status(pod, container).get("state") or {}):
            return pod
    return None


def marker(observer, obs, ns):
    """The marker and lock of the cache folder, from the download measurement's exec or one of its own on the newest
    running pod; with the container's start time and its download log lines (for the cache-hit decision)."""
    cache = obs.cache
    if cache is None or cache["pod"].get("fingerprint") is None:
        return
    cname = observer.p.get("container") or "main"
    dl = obs.download or {}
    pod = next((p for p in obs.pods if p["metadata"]["name"] == dl.get("pod")), None) if dl.get("marker") else None
    found = dl.get("marker")
    if pod is None:
        pod = _running_pod(obs, cname)
        if pod is None:
            return
        from ansible_collections.odp.model_engine.plugins.module_utils.sync_verify import run_agent_in_pod

        try:
            target = {"namespace": ns, "pod": pod["metadata"]["name"], "container": cname, "python": observer.p.get("python") or "python3"}
            answer = run_agent_in_pod(observer.kube, target, {"root": cache["model_dir"], "files": {}, "marker": True}, timeout=120)
        except KubeError as e:
            cache["marker_error"] = str(e)
            return
        found = answer.get("marker")
    cache.update(marker=found, marker_pod=pod["metadata"]["name"],
                 started_at=((container_status(pod, cname).get("state") or {}).get("running") or {}).get("startedAt"))
    logs = (obs.logs.get(pod["metadata"]["name"]) or {}).get(cname)
    if logs is None:
        logs = observer.kube.logs(ns, pod, cname, observer.p.get("log_lines") or 30)
        obs.logs.setdefault(pod["metadata"]["name"], {})[cname] = logs
    if "--- current instance ---" in logs:
        logs = logs[logs.index("--- current instance ---") + 1:]
    cache["downloaded_lines"] = sum(1 for x in logs if any(m in x for m in DOWNLOAD_LINE_MARKERS))
