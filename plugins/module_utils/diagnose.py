# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Why an LLM endpoint does not serve: the runbook's "Common Issues" table, encoded.

``collect`` gathers the evidence (model-engine record, Kubernetes objects, pods, events, logs, the
``main`` command, the model folder); ``classify`` is a pure function from that evidence to one
cause with a summary, the evidence lines that prove it, and the fix.
"""

from __future__ import annotations

import re
import time

from ansible_collections.odp.model_engine.plugins.module_utils.podstate import parse_timestamp

# cause code -> fix (the runbook's "Solution" column where it has one)
FIXES = {
    "healthy": "Nothing to fix.",
    "progressing": "Nothing is wrong yet; the endpoint is still building or downloading. Check again later.",
    "not_found": "Create the endpoint (playbooks/create_endpoint.yml) or check the name.",
    "image_not_found_on_create": (
        "The gateway could not find the image in the registry. On-prem set config.values.infra.docker_registry_type: onprem "
        "(otherwise the gateway probes the registry anonymously), and check the repository and tag exist."),
    "update_failed": "Read status_reason, fix the cause, then delete the endpoint and create it again (PUT cannot repair it).",
    "stuck_pending": (
        "No endpoint builder consumes the build task. Check the model-engine-endpoint-builder Deployment, and on-prem set "
        "celery_broker_type_redis: true so the builder reads the same broker the gateway writes to."),
    "unschedulable_gpu": "No node has a free GPU of that type: delete an idle endpoint, add a GPU node, or lower gpus.",
    "unschedulable_storage": "No GPU node has that much free ephemeral storage: lower storage (50Gi for nvidia-tesla-t4) or free the node.",
    "unschedulable_selector": "No node carries the label k8s.amazonaws.com/accelerator=<gpu_type>: fix gpu_type or label the GPU node.",
    "image_pull": "The image cannot be pulled: check the vLLM repository and tag (vllm-onprem), registry credentials and pull secrets.",
    "storage_exceeded": (
        "The container was killed for exceeding its ephemeral-storage limit (exit 137). The storage request must hold the model: "
        "use the platform's tested size (50Gi for nvidia-tesla-t4, not 100Gi+), and a checkpoint that fits it."),
    "unsupported_architecture": "The vLLM image does not support the model's architecture: use the vllm-onprem tag, which has the fixes.",
    "premature_start": (
        "vLLM started before the download finished. Add the wait guard (the runbook's while loop on config.json, the .safetensors "
        "files and no temp suffixes) or use roles/llm_endpoint/files/start_vllm.sh as the command."),
    "download_failed": "The model download failed: check `which aws`/s5cmd in the image, and the S3 credentials (extraPodEnvFrom secret) and endpoint.",
    "slow_tool_install": ("The S3 tool is still being installed: pre-install it in the vLLM image (or use s5cmd), and always pass "
                          "--no-cache-dir to pip install."),
    "download_stalled": "The download stopped growing: check the S3 endpoint's health and network, then restart the pod.",
    "crash_loop": "The main container keeps crashing: read the log lines in the evidence.",
    "not_ready": "The pods run but are not ready: read the evidence (probes, logs).",
}

DOWNLOAD_ERROR_RE = re.compile(r"(AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|NoSuchBucket|Unable to locate credentials|"
                               r"aws: command not found|s5cmd: command not found|ERROR .*(cp|sync) s3://|download failed|fatal error)", re.I)
ARCH_RE = re.compile(r"Model architectures \[.*\] are not supported")
PREMATURE_RE = re.compile(r"No (supported )?config format found|Cannot find any model weights")


def _cs(pod, name):
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == name:
            return cs
    return {}


def classify(ev, now=None, pending_timeout=600, install_timeout=300):
    """(cause, summary, evidence) from the collected evidence ``ev`` (see ``collect``)."""
    now = now or time.time()
    evidence = []
    rec = ev.get("record")
    if rec is None:
        if ev.get("api_error") and "docker image could not be found" in ev["api_error"]:
            return "image_not_found_on_create", "Creating the endpoint failed: the image was not found", ["API: %s" % ev["api_error"]]
        return "not_found", "The endpoint does not exist", ["GET by name answered 404"]
    spec = rec.get("spec") or {}
    status = rec.get("status")
    evidence.append("API status %s, %s available worker(s)" % (status, (spec.get("deployment_state") or {}).get("available_workers", 0)))
    if status == "UPDATE_FAILED":
        reason = spec.get("status_reason") or "no status_reason"
        evidence.append("status_reason: %s" % reason)
        if "docker image" in reason.lower() and "not be found" in reason.lower():
            return "image_not_found_on_create", "The build failed: the image was not found", evidence
        return "update_failed", "The endpoint build failed: %s" % reason, evidence
    if status == "UPDATE_PENDING" and not ev.get("deployment"):
        since = parse_timestamp(spec.get("last_updated_at") or spec.get("created_at"))
        age = now - since if since else None
        builder = ev.get("builder")
        if builder is not None:
            evidence.append("model-engine-endpoint-builder: %s/%s available" % (
                (builder.get("status") or {}).get("availableReplicas", 0), (builder.get("spec") or {}).get("replicas", 1)))
        if age is not None:
            evidence.append("UPDATE_PENDING for %ds, no Deployment %s" % (age, ev.get("resource_name")))
        if age is None or age >= pending_timeout or (builder is not None and not (builder.get("status") or {}).get("availableReplicas")):
            return "stuck_pending", "The build task is not being consumed (UPDATE_PENDING, no Deployment)", evidence
        return "progressing", "Waiting for the endpoint builder", evidence

    pods = ev.get("pods") or []
    events = ev.get("events") or {}
    logs = ev.get("logs") or {}
    if not pods and ev.get("deployment"):
        evidence.append("Deployment %s exists but has no pod" % ev.get("resource_name"))
    for pod in pods:
        name = pod["metadata"]["name"]
        st = pod.get("status") or {}
        main = _cs(pod, "main")
        main_logs = (logs.get(name) or {}).get("main") or []
        log_text = "\n".join(main_logs)
        pod_events = events.get(name) or []
        ev_text = ["%s %s: %s" % (e.get("type"), e.get("reason"), e.get("message")) for e in pod_events]

        for cond in st.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
                msg = cond.get("message") or ""
                evidence.append("pod %s Pending: %s" % (name, msg))
                evidence += [t for t in ev_text if "FailedScheduling" in t][:1]
                if "nvidia.com/gpu" in msg:
                    return "unschedulable_gpu", "The pod cannot be scheduled: not enough free GPUs", evidence
                if "ephemeral-storage" in msg:
                    return "unschedulable_storage", "The pod cannot be scheduled: not enough ephemeral storage", evidence
                if "affinity/selector" in msg or "node selector" in msg.lower():
                    return "unschedulable_selector", "The pod cannot be scheduled: no node matches its GPU type", evidence
                return "unschedulable_gpu", "The pod cannot be scheduled: %s" % msg, evidence

        for cname in ("main", "http-forwarder"):
            waiting = ((_cs(pod, cname).get("state") or {}).get("waiting") or {})
            if waiting.get("reason") in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
                image = next((c.get("image") for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == cname), "?")
                evidence += ["container %s %s: %s" % (cname, waiting["reason"], waiting.get("message") or image)]
                evidence += [t for t in ev_text if "Failed" in t and "pull" in t.lower()][:1]
                return "image_pull", "The image %s cannot be pulled" % image, evidence

        terminated = (main.get("state") or {}).get("terminated") or (main.get("lastState") or {}).get("terminated") or {}
        storage_msg = " ".join([st.get("message") or "", *ev_text])
        if terminated.get("exitCode") == 137 or ("ephemeral" in storage_msg and "exceeds" in storage_msg):
            evidence.append("pod %s: %s %s, main exit code %s" % (name, st.get("phase"), st.get("reason") or "", terminated.get("exitCode")))
            evidence += [t for t in ev_text if "Evicted" in t or "ephemeral" in t][:1]
            evidence.append("storage request %s" % ev.get("storage"))
            return "storage_exceeded", "The main container was killed for exceeding its storage limit (exit 137)", evidence

        if ARCH_RE.search(log_text):
            line = next(x for x in main_logs if ARCH_RE.search(x))
            evidence += ["main log: %s" % line, "image %s" % ev.get("main_image")]
            return "unsupported_architecture", "The vLLM image does not support the model's architecture", evidence
        if PREMATURE_RE.search(log_text):
            line = next(x for x in main_logs if PREMATURE_RE.search(x))
            evidence += ["main log: %s" % line]
            if ev.get("command") and "while" not in ev["command"]:
                evidence.append("the main command has no wait loop before starting vLLM")
            return "premature_start", "vLLM started before the model download finished", evidence
        if DOWNLOAD_ERROR_RE.search(log_text) or (terminated and not ev.get("model_files_exists") and main.get("restartCount", 0) > 0):
            line = next((x for x in main_logs if DOWNLOAD_ERROR_RE.search(x)), None)
            evidence += ["main log: %s" % line] if line else []
            evidence.append("model_files %s" % ("exists" if ev.get("model_files_exists") else "does not exist"))
            return "download_failed", "The model download failed", evidence

        running = (main.get("state") or {}).get("running")
        if running:
            started = parse_timestamp(running.get("startedAt"))
            cmd = ev.get("command") or ""
            if (not ev.get("model_files_exists") and "pip install" in cmd and started and now - started >= install_timeout):
                evidence += ["main running for %ds and no model_files yet" % (now - started),
                             "command installs the S3 tool: %s" % re.search(r"pip install[^;&|]*", cmd).group(0).strip()]
                if "--no-cache-dir" not in cmd:
                    evidence.append("the pip install lacks --no-cache-dir")
                return "slow_tool_install", "The S3 tool is still being installed", evidence
            growth = ev.get("download_growth")
            if growth is not None and growth <= 0 and ev.get("download_complete") is False:
                evidence.append("model_files did not grow in %ds (%s bytes, temp files: %s)" % (
                    ev.get("sample_seconds"), ev.get("download_bytes"), ", ".join(ev.get("temp_files") or []) or "none"))
                return "download_stalled", "The model download stalled", evidence
        if (main.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff":
            evidence += ["main CrashLoopBackOff, restarts %s, last exit code %s" % (main.get("restartCount"), terminated.get("exitCode"))]
            evidence += ["main log: %s" % x for x in main_logs[-3:]]
            return "crash_loop", "The main container keeps crashing", evidence

    avail = (spec.get("deployment_state") or {}).get("available_workers", 0) or 0
    ready_pods = [p for p in pods if all(cs.get("ready") for cs in (p.get("status") or {}).get("containerStatuses") or [{}])]
    if status == "READY" and avail >= 1 and ready_pods:
        evidence.append("pod %s 2/2 ready" % ready_pods[0]["metadata"]["name"])
        return "healthy", "The endpoint serves", evidence
    if ev.get("download_bytes") is not None:
        evidence.append("download %s of %s bytes" % (ev.get("download_bytes"), ev.get("download_expected") or "?"))
    return "progressing", "The endpoint is still on its way (%s)" % status, evidence


def collect(module):
    """Gather the evidence for ``classify`` through the gateway and the Kubernetes API."""
    from ansible_collections.odp.model_engine.plugins.module_utils import kube
    from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineError
    from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import get_endpoint, resource_name
    from ansible_collections.odp.model_engine.plugins.module_utils.podstate import pod_summary
    from ansible_collections.odp.model_engine.plugins.module_utils.sync_verify import run_agent_in_pod

    p = module.params
    client = module.model_engine_client()
    ns = p["namespace"]
    ev = {"api_error": p.get("api_error")}
    try:
        if p.get("endpoint_id"):
            try:
                rec = client.get("/v1/model-endpoints/%s" % client.quote(p["endpoint_id"]))
                rec = get_endpoint(client, rec["name"]) if rec and rec.get("name") else rec
            except ModelEngineError as e:
                if e.status != 404:
                    raise
                rec = None
        else:
            rec = get_endpoint(client, p["name"])
    except ModelEngineError as e:
        module.fail_from_exception(e, msg="Could not read the endpoint from the gateway")
    ev["record"] = rec
    if rec is None:
        return ev
    api = kube.core_api(p)
    apps = kube.apps_api(p)
    name = resource_name(rec["id"])
    ev["resource_name"] = name
    ev["storage"] = ((rec.get("spec") or {}).get("resource_state") or {}).get("storage")
    ev["deployment"] = kube.read_or_none(apps.read_namespaced_deployment, name, ns, api_client=api.api_client)
    ev["builder"] = kube.read_or_none(apps.read_namespaced_deployment, "model-engine-endpoint-builder", p["gateway_namespace"],
                                      api_client=api.api_client)
    ev["objects"] = {
        "deployment": ev["deployment"] is not None,
        "service": kube.read_or_none(api.read_namespaced_service, name, ns, api_client=api.api_client) is not None,
        "hpa": kube.read_or_none(kube.autoscaling_api(p).read_namespaced_horizontal_pod_autoscaler, name, ns,
                                 api_client=api.api_client) is not None,
    }
    pods = kube.endpoint_pods(api, ns, rec["id"])
    ev["pods"] = pods
    ev["events"], ev["logs"] = {}, {}
    for pod in pods:
        pname = pod["metadata"]["name"]
        ev["events"][pname] = kube.pod_events(api, ns, pname)
        ev["logs"][pname] = {c: kube.container_logs(api, ns, pname, c, p["log_lines"]) for c in ("main", "http-forwarder")}
    template = (ev["deployment"] or {}).get("spec", {}).get("template", {}).get("spec", {}) if ev["deployment"] else \
        (pods[0].get("spec") if pods else {})
    main = next((c for c in (template or {}).get("containers") or [] if c.get("name") == "main"), {})
    ev["command"] = " ".join((main.get("command") or []) + (main.get("args") or []))
    ev["main_image"] = main.get("image")
    running = [x for x in pods if "running" in (_cs(x, "main").get("state") or {})]
    if running:
        pname = running[0]["metadata"]["name"]
        samples = []
        for i in range(2 if p["stall_sample_seconds"] > 0 else 1):
            if i:
                time.sleep(p["stall_sample_seconds"])
            try:
                answer = run_agent_in_pod(api, ns, pname, "main", p["python"], {"root": p["model_dir"], "files": {}}, timeout=120)
            except kube.KubeError as e:
                ev["model_files_error"] = str(e)
                break
            samples.append(answer)
        if samples:
            last = samples[-1]
            ev["model_files_exists"] = last["exists"]
            total = sum(f["size"] for f in last["files"].values())
            ev["download_bytes"] = total
            ev["temp_files"] = sorted(n for n in last["files"] if re.search(r"\.[A-Za-z0-9]{8}$|\d{6,}$|\.tmp$", n))
            ev["download_complete"] = bool(last["exists"] and last["files"] and not ev["temp_files"] and
                                           any(n.endswith(".safetensors") for n in last["files"]))
            if len(samples) == 2:
                ev["download_growth"] = total - sum(f["size"] for f in samples[0]["files"].values())
                ev["sample_seconds"] = p["stall_sample_seconds"]
    ev["pod_summaries"] = [pod_summary(x) for x in pods]
    return ev


def run(module):
    from ansible_collections.odp.model_engine.plugins.module_utils import kube

    p = module.params
    try:
        ev = collect(module)
    except kube.KubeError as e:
        module.fail_json(msg="Could not collect the evidence: %s" % e)
    except kube.ApiException as e:
        module.fail_json(msg="Could not collect the evidence: %s" % kube.api_error(e, "Kubernetes API"))
    cause, summary, evidence = classify(ev, pending_timeout=p["pending_timeout"], install_timeout=p["install_timeout"])
    rec = ev.get("record") or {}
    result = {
        "changed": False, "cause": cause, "summary": summary, "evidence": evidence, "fix": FIXES[cause],
        "healthy": cause == "healthy",
        "endpoint": {"name": rec.get("name"), "id": rec.get("id"), "status": rec.get("status"),
                     "status_reason": (rec.get("spec") or {}).get("status_reason")} if rec else None,
        "k8s_resource_name": ev.get("resource_name"), "objects": ev.get("objects"),
        "pods": ev.get("pod_summaries", []), "command": ev.get("command"),
        "model_files": {"exists": ev.get("model_files_exists"), "bytes": ev.get("download_bytes"),
                        "temp_files": ev.get("temp_files"), "complete": ev.get("download_complete")} if "model_files_exists" in ev else (
                            {"error": ev["model_files_error"]} if "model_files_error" in ev else None),
        "logs": ev.get("logs", {}),
        "events": {k: ["%s %s: %s" % (e.get("type"), e.get("reason"), e.get("message")) for e in v] for k, v in ev.get("events", {}).items()},
    }
    module.exit_json(**result)
