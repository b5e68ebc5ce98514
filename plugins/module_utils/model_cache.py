# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-endpoint PVC model cache of model-engine (chart ``modelCache``): its settings, what the cluster must offer
for it, what its pods leave in the claim, and how it fails.

Upstream design (facts §4.1, §6, §7): with ``modelCache.enabled`` the gateway and builder get ``MODEL_CACHE_ENABLED``,
``MODEL_CACHE_MOUNT_PATH`` and ``MODEL_CACHE_LOCK_STALE_SECONDS``; every vLLM endpoint created afterwards records
``_llm.model_cache_enabled``, gets the claim ``launch-endpoint-id-<id>-model-cache`` (``modelCache.storage``,
``storageClassName``, ``accessMode``, RWX by default) mounted as volume ``model-cache`` at the mount path, and downloads
into ``<mountPath>/model_files`` inside a lock/marker protocol: ``.complete`` holds the bundle's fingerprint once the
files are there; ``.download.lock/heartbeat`` is rewritten every 30 s by the replica that downloads, the others print
"Another replica is downloading model files; waiting..."; a lock older than ``lockStaleSeconds`` is broken.

Pure functions over what was read (settings, StorageClass, claim and its events, a pod, the marker the agent read),
so that they are tested without a cluster; ``model_cache_preflight``, the observer/judge and ``s3_sync_verify`` do
the reading.
"""

from __future__ import annotations

import re
import shlex

from ansible_collections.odp.model_engine.plugins.module_utils.errors import SpecError
from ansible_collections.odp.model_engine.plugins.module_utils.quantity import format_bytes, quantity_to_bytes

VOLUME = "model-cache"
CLAIM_SUFFIX = "-model-cache"
MARKER = ".complete"
LOCK = ".download.lock"
HEARTBEAT_SECONDS = 30          # upstream's heartbeat loop
WAIT_SECONDS = 10               # a waiting replica's sleep
WAITING_LINE = "Another replica is downloading model files; waiting..."
ASYNC_BUG = "coroutine '_get_recommended_hardware_config_map' was never awaited"
ACCESS_MODES = ("ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod")
DEFAULTS = {"enabled": False, "storage": "100Gi", "storage_class": "", "access_mode": "ReadWriteMany",
            "mount_path": "/mnt/model-cache", "lock_stale_seconds": 600}
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"

ALL_MODES = frozenset(ACCESS_MODES)
RWO_ONLY = frozenset({"ReadWriteOnce", "ReadWriteOncePod"})
# provisioner name pattern -> (storage, access modes of its filesystem volumes, node-local)
PROVISIONERS = (
    (re.compile(r"(^|\.)rbd\.csi\.ceph\.com$|^kubernetes\.io/rbd$|^ceph\.rook\.io/block$"), "Ceph RBD",
     frozenset({"ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany"}), False),
    (re.compile(r"(^|\.)cephfs\.csi\.ceph\.com$|^kubernetes\.io/cephfs$"), "CephFS", ALL_MODES, False),
    (re.compile(r"nfs"), "NFS", ALL_MODES, False),
    (re.compile(r"^rancher\.io/local-path$|^kubernetes\.io/no-provisioner$|topolvm|^local\.csi|lvm\.csi|openebs\.io/local"),
     "node-local", RWO_ONLY, True),
    (re.compile(r"^ebs\.csi\.aws\.com$|^kubernetes\.io/aws-ebs$|^pd\.csi\.storage\.gke\.io$|^disk\.csi\.azure\.com$|"
                r"^cinder\.csi\.openstack\.org$|longhorn"), "block disk", RWO_ONLY | {"ReadOnlyMany"}, False),
)
# ProvisioningFailed texts of a real cluster, by what they mean
ACCESS_MODE_ERRORS = re.compile(r"multi node access modes are only supported|access ?mode|only supports? ReadWriteOnce|"
                                r"doesn't support Block volume", re.I)
CAPACITY_ERRORS = re.compile(r"ResourceExhausted|quota exceeded|Disk quota|No space left|insufficient (capacity|storage)|"
                             r"not enough (free )?space|exceeded quota|OutOfRange", re.I)
NO_CLASS_ERROR = re.compile(r'storageclass\.storage\.k8s\.io "[^"]*" not found|no storage class is set')


CHART_KEYS = {"storageClassName": "storage_class", "accessMode": "access_mode", "mountPath": "mount_path",
              "lockStaleSeconds": "lock_stale_seconds"}


def settings(value):
    """The inventory's ``model_engine_model_cache`` with defaults filled in, checked (SpecError names the key). The
    chart's names (``storageClassName``, ``accessMode``, ``mountPath``, ``lockStaleSeconds``: a recorded state) are
    accepted too."""
    value = {CHART_KEYS.get(k, k): v for k, v in (value or {}).items()}
    unknown = sorted(set(value) - set(DEFAULTS))
    if unknown:
        raise SpecError("model_engine_model_cache: unknown key(s) %s (known: %s)" % (", ".join(unknown), ", ".join(sorted(DEFAULTS))))
    out = dict(DEFAULTS, **{k: v for k, v in value.items() if v is not None})
    out["enabled"] = bool(out["enabled"])
    quantity_to_bytes(out["storage"], "model_engine_model_cache.storage")
    if out["access_mode"] not in ACCESS_MODES:
        raise SpecError("model_engine_model_cache.access_mode %r is not one of %s" % (out["access_mode"], ", ".join(ACCESS_MODES)))
    if not str(out["mount_path"]).startswith("/"):
        raise SpecError("model_engine_model_cache.mount_path %r must be an absolute path" % out["mount_path"])
    try:
        out["lock_stale_seconds"] = int(out["lock_stale_seconds"])
    except (TypeError, ValueError):
        raise SpecError("model_engine_model_cache.lock_stale_seconds %r is not a number of seconds" % out["lock_stale_seconds"])
    if out["lock_stale_seconds"] <= 0:
        raise SpecError("model_engine_model_cache.lock_stale_seconds must be positive")
    return out


def chart_values(value):
    """The chart's ``modelCache`` values of the inventory setting."""
    s = settings(value)
    return {"enabled": s["enabled"], "storage": str(s["storage"]), "storageClassName": s["storage_class"] or "",
            "accessMode": s["access_mode"], "mountPath": s["mount_path"], "lockStaleSeconds": s["lock_stale_seconds"]}


def model_dir(mount_path):
    return mount_path.rstrip("/") + "/model_files"


def provisioner_info(name):
    """{"storage", "access_modes", "node_local"} of a known provisioner, or None."""
    for regex, storage, modes, node_local in PROVISIONERS:
        if regex.search(name or ""):
            return {"storage": storage, "access_modes": sorted(modes), "node_local": node_local}
    return None


def default_class(classes):
    marked = [c for c in classes if ((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"]
    return max(marked, key=lambda c: (c["metadata"].get("creationTimestamp") or "", c["metadata"]["name"])) if marked else None


# ---------------------------------------------------------------------------------------------- preflight
def _class_problems(s, sc, replicas):
    """Problems and warnings of the StorageClass ``sc`` for the settings ``s``."""
    problems, warnings = [], []
    name, prov = sc["metadata"]["name"], sc.get("provisioner") or ""
    info = provisioner_info(prov)
    mode = s["access_mode"]
    binding = sc.get("volumeBindingMode") or "Immediate"
    if info is None:
        warnings.append("StorageClass %s uses provisioner %s, whose access modes the preflight does not know: run it with "
                        "test_claim: true to see a claim bind" % (name, prov))
    elif mode not in info["access_modes"]:
        if info["storage"] == "Ceph RBD":
            problems.append("StorageClass %s uses %s (Ceph RBD): its filesystem volumes are ReadWriteOnce, so a %s claim never "
                            "binds (ProvisioningFailed: multi node access modes are only supported on rbd `block` type volumes); "
                            "use a CephFS class (provisioner cephfs.csi.ceph.com) for ReadWriteMany, or access_mode: "
                            "ReadWriteOnce with one replica per endpoint" % (name, prov, mode))
        else:
            problems.append("StorageClass %s uses %s (%s), which serves %s, not %s: choose a class that serves %s, or set "
                            "access_mode to one of those" % (name, prov, info["storage"], ", ".join(info["access_modes"]), mode, mode))
    if info and info["node_local"] and binding == "Immediate":
        problems.append("StorageClass %s provisions node-local volumes (%s) with volumeBindingMode Immediate: each claim lands "
                        "on a node chosen before its pod exists, often not the GPU node, and the pod never schedules (volume "
                        "node affinity conflict); use a class with volumeBindingMode: WaitForFirstConsumer" % (name, prov))
    if mode in RWO_ONLY and replicas and max(replicas.values()) > 1:
        many = ", ".join("%s (%d)" % (k, v) for k, v in sorted(replicas.items()) if v > 1)
        warnings.append("access_mode %s mounts the claim on one node only: the replicas of %s must all run on the node that "
                        "mounts it (one replica per endpoint is the safe choice)" % (mode, many))
    return problems, warnings


def check_storage_class(value, classes, replicas=None):
    """(problems, warnings, facts) of the cache settings against the cluster's StorageClasses (a list of objects).
    ``replicas``: {endpoint: max_workers} of the declared endpoints, for the ReadWriteOnce warning."""
    s = settings(value)
    by_name = {c["metadata"]["name"]: c for c in classes}
    facts = {"storage_classes": sorted(by_name)}
    if s["storage_class"]:
        sc = by_name.get(s["storage_class"])
        if sc is None:
            return (["StorageClass %s does not exist (the cluster has: %s); set model_engine_model_cache.storage_class to one of "
                     "them" % (s["storage_class"], ", ".join(sorted(by_name)) or "none")], [], facts)
    else:
        sc = default_class(classes)
        if sc is None:
            return (["model_engine_model_cache.storage_class is empty and the cluster has no default StorageClass, so the claim "
                     "would wait for a PersistentVolume nobody creates; set storage_class (the cluster has: %s)"
                     % (", ".join(sorted(by_name)) or "none")], [], facts)
    facts.update(storage_class=sc["metadata"]["name"], provisioner=sc.get("provisioner"),
                 volume_binding_mode=sc.get("volumeBindingMode") or "Immediate", provisioner_info=provisioner_info(sc.get("provisioner")))
    problems, warnings = _class_problems(s, sc, replicas or {})
    return problems, warnings, facts


def check_size(value, checkpoints, headroom=1.05):
    """Problems and facts of the claim size against the checkpoints ({path: model-file bytes}) it must hold."""
    s = settings(value)
    size = quantity_to_bytes(s["storage"], "model_engine_model_cache.storage")
    facts = {"size_bytes": size, "checkpoints": dict(checkpoints)}
    if not checkpoints:
        return [], facts
    path, largest = max(checkpoints.items(), key=lambda kv: kv[1])
    needed = int(largest * headroom)
    facts.update(largest_checkpoint=path, largest_checkpoint_bytes=largest, needed_bytes=needed)
    if size < needed:
        return (["model_engine_model_cache.storage %s cannot hold %s (%s of model files, %s with headroom); raise storage to at "
                 "least %s" % (s["storage"], path, format_bytes(largest), format_bytes(needed), format_bytes(needed))], facts)
    return [], facts


# ---------------------------------------------------------------------------------------------- a claim's state
def _event_text(e):
    return "%s %s: %s" % (e.get("type") or "Normal", e.get("reason"), e.get("message"))


def _refusal(failed):
    """The state a ProvisioningFailed event's text means."""
    text = failed.get("message") or ""
    for regex, state in ((NO_CLASS_ERROR, "no_class"), (ACCESS_MODE_ERRORS, "access_mode"), (CAPACITY_ERRORS, "capacity")):
        if regex.search(text):
            return state
    return "failed"


def _counted(e):
    return _event_text(e) + (" (x%s)" % e["count"] if e.get("count") else "")


def _decided(latest):
    """(state, event) when the newest event of a kind decides the claim's state, else None."""
    if "ProvisioningFailed" in latest:
        return _refusal(latest["ProvisioningFailed"]), latest["ProvisioningFailed"]
    if "FailedBinding" in latest and NO_CLASS_ERROR.search(latest["FailedBinding"].get("message") or ""):
        return "no_class", latest["FailedBinding"]
    if "WaitForFirstConsumer" in latest and "ExternalProvisioning" not in latest:
        return "wait_first_consumer", latest["WaitForFirstConsumer"]
    return None


def claim_state(pvc, events, now=None, bind_timeout=120):
    """(state, evidence) of a claim from its status and events (as the persistentvolume-controller and the external
    provisioner write them). States: ``bound``, ``no_class`` (class missing, or none set and no volume),
    ``access_mode`` / ``capacity`` / ``failed`` (ProvisioningFailed), ``wait_first_consumer``, ``no_provisioner`` (only
    ExternalProvisioning for ``bind_timeout`` seconds), ``pending`` (still provisioning)."""
    from ansible_collections.odp.model_engine.plugins.module_utils.podstate import parse_timestamp

    if ((pvc or {}).get("status") or {}).get("phase") == "Bound":
        return "bound", ["claim %s Bound to %s" % (pvc["metadata"]["name"], (pvc.get("spec") or {}).get("volumeName"))]
    evidence = ["claim %s Pending (storageClassName %s)" % ((pvc or {}).get("metadata", {}).get("name"),
                                                            ((pvc or {}).get("spec") or {}).get("storageClassName") or "unset")]
    latest = {e.get("reason"): e for e in events or []}
    decided = _decided(latest)
    if decided is not None:
        return decided[0], [*evidence, _counted(decided[1])]
    ext = latest.get("ExternalProvisioning")
    if ext is None or "Provisioning" in latest:
        return "pending", evidence
    created = parse_timestamp(((pvc or {}).get("metadata") or {}).get("creationTimestamp"))
    age = (now - created) if (now is not None and created is not None) else 0
    evidence.append(_counted(ext))
    if age < bind_timeout:
        return "pending", evidence
    evidence.append("Pending for %ds with no event from the provisioner (allowance %ds)" % (age, bind_timeout))
    return "no_provisioner", evidence


def pv_nodes(pv):
    """Node names a PersistentVolume's required node affinity allows (kubernetes.io/hostname In ...), or None."""
    terms = ((((pv or {}).get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms") or []
    nodes = []
    for term in terms:
        for e in term.get("matchExpressions") or []:
            if e.get("key") == "kubernetes.io/hostname" and e.get("operator") == "In":
                nodes += e.get("values") or []
    return nodes or None


# ---------------------------------------------------------------------------------------------- a pod's cache
_FP_RE = re.compile(r"expected_model_cache_fingerprint=([0-9a-f]+)")
_STALE_RE = re.compile(r"-gt (\d+) \]")
_MODEL_RE = re.compile(r"--model (\S+)")


def pod_cache(pod, container="main"):
    """What a pod (or a pod template) says of the model cache: ``volume`` ("claim", "emptyDir", other kind or None),
    ``claim``, ``mount_path``, and from the main command ``model_dir`` (what vLLM loads), ``fingerprint`` and
    ``lock_stale_seconds`` (None when the command does not run the protocol)."""
    spec = (pod or {}).get("spec") or {}
    vol = next((v for v in spec.get("volumes") or [] if v.get("name") == VOLUME), None)
    main = next((c for c in spec.get("containers") or [] if c.get("name") == container), {})
    mount = next((m.get("mountPath") for m in main.get("volumeMounts") or [] if m.get("name") == VOLUME), None)
    script = " ".join((main.get("command") or []) + (main.get("args") or []))
    kind = None
    if vol is not None:
        kind = "claim" if vol.get("persistentVolumeClaim") else ("emptyDir" if "emptyDir" in vol else
                                                                 next((k for k in vol if k != "name"), None))
    fp, stale, model = _FP_RE.search(script), _STALE_RE.search(script), _MODEL_RE.search(script)
    return {"volume": kind, "claim": ((vol or {}).get("persistentVolumeClaim") or {}).get("claimName"), "mount_path": mount,
            "model_dir": shlex.split(model.group(1))[0] if model else None, "fingerprint": fp.group(1) if fp else None,
            "lock_stale_seconds": int(stale.group(1)) if (fp and stale) else None}


def cache_enabled(record):
    """Whether the endpoint's record says its bundle uses the model cache (``_llm.model_cache_enabled``)."""
    for meta in ((record or {}).get("metadata"), ((record or {}).get("spec") or {}).get("metadata")):
        llm = (meta or {}).get("_llm") or {}
        if "model_cache_enabled" in llm:
            return bool(llm["model_cache_enabled"])
    return False


def evaluate_marker(marker, fingerprint, lock_fresh=3 * HEARTBEAT_SECONDS, lock_stale=None):
    """The marker check of a cache folder from the agent's ``marker`` answer: ``.complete`` present and equal to the
    pod's fingerprint, the lock absent or its heartbeat fresh. Returns {complete, matches, lock, lock_age, fresh,
    stale, problems}."""
    marker = marker or {}
    out = {"complete": marker.get("complete") is not None, "matches": None, "lock": bool(marker.get("lock")),
           "lock_age": None, "fresh": None, "stale": None, "complete_mtime": marker.get("complete_mtime"), "problems": []}
    if out["complete"] and fingerprint:
        out["matches"] = marker["complete"].strip() == fingerprint
        if not out["matches"]:
            out["problems"].append({"file": MARKER, "problem": "cache_marker_mismatch",
                                    "detail": "holds another bundle's fingerprint: the next pod downloads again"})
    if out["lock"]:
        beat = marker.get("heartbeat")
        if beat is None:
            beat = marker.get("lock_mtime")
        now = marker.get("now")
        out["lock_age"] = round(now - beat, 1) if (now is not None and beat is not None) else None
        out["fresh"] = out["lock_age"] is not None and out["lock_age"] <= lock_fresh
        out["stale"] = bool(lock_stale) and out["lock_age"] is not None and out["lock_age"] > lock_stale
        if not out["fresh"]:
            out["problems"].append({"file": LOCK + "/heartbeat", "problem": "cache_lock_stale",
                                    "detail": "a download lock whose heartbeat is %ss old (fresh: at most %ds)" % (out["lock_age"], lock_fresh)})
    return out


def strip_protocol_files(files):
    """A cache folder's listing without the protocol's own files (the marker, the lock and its heartbeat): their
    times would hide a stalled download, and they are not model files."""
    return {k: v for k, v in (files or {}).items() if k != MARKER and not k.startswith(LOCK + "/")}


def cache_hit(marker_eval, started_at, downloaded_lines=0):
    """Whether the pod's files came from the cache: the marker matched before its main container started (the start
    time has second resolution: a marker written within that second counts only when the log shows no download)."""
    from ansible_collections.odp.model_engine.plugins.module_utils.podstate import parse_timestamp

    mtime, start = (marker_eval or {}).get("complete_mtime"), parse_timestamp(started_at)
    if not (marker_eval or {}).get("matches") or mtime is None or start is None:
        return False
    return mtime < start or (mtime < start + 1 and not downloaded_lines)


# ---------------------------------------------------------------------------------------------- capacity
def _ephemeral_limit(ep, capacity):
    """The most ephemeral storage the endpoint's model may use: its storage request (the container is evicted above
    it), bounded by the largest allocatable ephemeral storage of a node of its GPU type."""
    limits = []
    if ep.get("storage") is not None:
        limits.append(quantity_to_bytes(ep["storage"], "endpoints[%s].storage" % ep.get("name", "?")))
    nodes = [n for n in capacity.values() if ep.get("gpu_type") and n.get("gpu_type") == ep["gpu_type"]]
    if nodes:
        limits.append(max(n["ephemeral_allocatable"] for n in nodes))
    return min(limits) if limits else None


def capacity_plan(endpoints, capacity, sizes, value=None, headroom=1.05):
    """Which endpoints' checkpoints fit ephemeral storage and which need the cache, and the claim storage the declared
    endpoints would take with the cache (one claim of ``storage`` per endpoint). ``sizes``: {checkpoint path: bytes}."""
    s = settings(value)
    size = quantity_to_bytes(s["storage"], "model_engine_model_cache.storage")
    rows, need, fit, unknown, small = [], [], [], [], []
    for ep in endpoints:
        name, ckpt = ep.get("name") or "?", sizes.get(ep.get("checkpoint_path"))
        limit = _ephemeral_limit(ep, capacity)
        row = {"name": name, "checkpoint_path": ep.get("checkpoint_path"), "checkpoint_bytes": ckpt, "ephemeral_limit_bytes": limit,
               "needed_bytes": int(ckpt * headroom) if ckpt is not None else None, "fits_ephemeral": None, "needs_cache": None,
               "cache_holds": None}
        if ckpt is None or limit is None:
            unknown.append(name)
        else:
            row.update(fits_ephemeral=row["needed_bytes"] <= limit, needs_cache=row["needed_bytes"] > limit, cache_holds=row["needed_bytes"] <= size)
            (need if row["needs_cache"] else fit).append(name)
            if not row["cache_holds"]:
                small.append(name)
        rows.append(row)
    total = {"enabled": s["enabled"], "claim_size": str(s["storage"]), "claim_size_bytes": size, "storage_class": s["storage_class"] or None,
             "access_mode": s["access_mode"], "claims": len(endpoints), "claim_bytes_total": size * len(endpoints),
             "need_cache": need, "fit_ephemeral": fit, "unknown": unknown, "claim_too_small_for": small}
    return rows, total
