# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One snapshot of an endpoint on its way to serving, and the verdict a wait loop acts on.

The runbook's "Monitor Endpoint Progress" (kubectl get pods, ls/du of model_files, logs) in one call:
the gateway's status, each pod as ``kubectl get pods`` shows it (0/2 → 2/2), and the bytes downloaded
against the checkpoint, with rate and ETA computed from the previous snapshot a loop passes back in.
"""

from __future__ import annotations

import time

from ansible_collections.odp.model_engine.plugins.module_utils import kube, s3
from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineError
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import annotate, get_endpoint
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import pod_summary
from ansible_collections.odp.model_engine.plugins.module_utils.quantity import format_bytes
from ansible_collections.odp.model_engine.plugins.module_utils.sync_verify import compare, run_agent_in_pod

SERVING, PROGRESSING, FAILED, ABSENT = "serving", "progressing", "failed", "absent"


def verdict(record, pods, download, previous, now, pending_timeout, stall_timeout):
    """(verdict, reason) from a snapshot; ``previous`` is the last snapshot's ``sample``."""
    if record is None:
        return ABSENT, "the endpoint does not exist"
    status = record.get("status")
    if status == "UPDATE_FAILED":
        return FAILED, "UPDATE_FAILED: %s" % ((record.get("spec") or {}).get("status_reason") or "no status_reason")
    if status == "READY" and annotate(record)["available_workers"] >= 1:
        return SERVING, "READY with %d available worker(s)" % annotate(record)["available_workers"]
    pending_since = previous.get("pending_since")
    if status == "UPDATE_PENDING":
        pending_since = pending_since if pending_since is not None else now
        if now - pending_since >= pending_timeout:
            return FAILED, ("UPDATE_PENDING for %ds: no endpoint builder consumes the build task (check the "
                            "model-engine-endpoint-builder Deployment; on-prem, celery_broker_type_redis)" % (now - pending_since))
    for pod in pods:
        if pod["problem"]:
            return FAILED, "pod %s: %s" % (pod["name"], pod["problem"])
    if download and not download.get("complete") and pods:
        last_growth = previous.get("last_growth", now)
        if download["bytes_present"] > previous.get("bytes_present", -1):
            last_growth = now
        if now - last_growth >= stall_timeout:
            return FAILED, "download stalled: no new bytes for %ds at %.1f%%" % (now - last_growth, download["percent"])
    return PROGRESSING, status or "unknown"


def _download(api, namespace, pod_name, container, model_dir, python, expected):
    """Quick listing of the pod's model folder through exec, compared with the checkpoint."""
    answer = run_agent_in_pod(api, namespace, pod_name, container, python, {"root": model_dir, "files": {}}, timeout=120)
    return compare(expected, answer["files"] if answer["exists"] else {}, None)


def _short(pod_name):
    """The ReplicaSet hash and pod suffix of ``launch-endpoint-id-end-...-<hash>-<suffix>``."""
    parts = (pod_name or "?").rsplit("-", 2)
    return "-".join(parts[-2:]) if len(parts) == 3 else pod_name


def snapshot(module):
    p = module.params
    client = module.model_engine_client()
    now = time.time()
    previous = p.get("previous") or {}
    try:
        record = get_endpoint(client, p["name"])
    except ModelEngineError as e:
        module.fail_from_exception(e, msg="Could not read endpoint %s" % p["name"])
    result = {"changed": False, "endpoint": annotate(record) if record else None, "status": record.get("status") if record else None,
              "pods": [], "download": None}
    pods_raw = []
    if record:
        try:
            api = kube.core_api(p)
            pods_raw = kube.endpoint_pods(api, p["namespace"], record["id"])
        except kube.KubeError as e:
            module.fail_json(msg=str(e), **result)
        result["pods"] = [pod_summary(x) for x in pods_raw]
        running = [x for x in pods_raw if any(
            cs.get("name") == p["container"] and "running" in (cs.get("state") or {})
            for cs in (x.get("status") or {}).get("containerStatuses") or [])]
        ckpt = p.get("checkpoint_path") or record.get("checkpoint_path")
        if running and ckpt and p["measure_download"]:
            module.require("boto3")
            try:
                bucket, prefix = s3.parse_s3_url(ckpt)
                s3c = s3.client_from_params(p)
                listing = s3.list_prefix(s3c, bucket, prefix)
                expected = {k: v for k, v in listing.items() if s3.is_model_file(k)}
                result["download"] = _download(api, p["namespace"], running[0]["metadata"]["name"], p["container"],
                                               p["model_dir"], p["python"], expected)
            except (s3.S3Error, kube.KubeError) as e:
                result["download_error"] = str(e)
    dl = result["download"]
    started = previous.get("started", now)
    verdict_, reason = verdict(record, result["pods"], dl, previous, now, p["pending_timeout"], p["stall_timeout"])
    sample = {"started": started, "time": now}
    if record and record.get("status") == "UPDATE_PENDING":
        sample["pending_since"] = previous.get("pending_since", now)
    if dl:
        rate = 0.0
        if previous.get("bytes_present") is not None and now > previous.get("time", now):
            rate = max(0.0, (dl["bytes_present"] - previous["bytes_present"]) / (now - previous["time"]))
        grew = dl["bytes_present"] > previous.get("bytes_present", -1)
        sample.update(bytes_present=dl["bytes_present"], last_growth=now if grew else previous.get("last_growth", now))
        eta = (dl["bytes_expected"] - dl["bytes_present"]) / rate if rate > 0 else None
        result["download"] = {"percent": dl["percent"], "bytes_present": dl["bytes_present"], "bytes_expected": dl["bytes_expected"],
                              "complete": dl["complete"], "in_progress": dl["in_progress"], "rate": round(rate, 1),
                              "eta_seconds": round(eta) if eta is not None else None, "temp_files": dl["temp_files"]}
    pods_text = ", ".join("%s %s" % (_short(x["name"]), x["display"]) for x in result["pods"]) or "no pod yet"
    dl_text = ""
    if result["download"]:
        d = result["download"]
        dl_text = "; download %.1f%% (%s of %s%s%s)" % (
            d["percent"], format_bytes(d["bytes_present"]), format_bytes(d["bytes_expected"]),
            ", %s/s" % format_bytes(d["rate"]) if d["rate"] else "", ", ETA %ds" % d["eta_seconds"] if d["eta_seconds"] else "")
    result.update(verdict=verdict_, reason=reason, elapsed=round(now - started, 1), sample=sample,
                  line="[%5.0fs] %s: %s; pods: %s%s" % (now - started, p["name"], result["status"] or "absent", pods_text, dl_text))
    return result
