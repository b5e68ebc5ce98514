"""Discovery documents (/api, /apis, /apis/<g>/<v>, /version) and server-side printing (meta.k8s.io Table)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time

from . import resources as R
from .objects import parse_time
from .resources import ResourceType

SERVER_VERSION = {
    "major": "1",
    "minor": "33",
    "emulationMajor": "1",
    "emulationMinor": "33",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "32",
    "gitVersion": "v1.33.1",
    "gitCommit": "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828",
    "gitTreeState": "clean",
    "buildDate": "2025-05-15T08:19:08Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_SUB_VERBS = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "log": ["get"],
    "exec": ["create", "get"],
    "portforward": ["create", "get"],
    "proxy": ["create", "delete", "get", "patch", "update"],
    "binding": ["create"],
    "eviction": ["create"],
    "finalize": ["update"],
}
_SUB_KIND = {"log": "Pod", "exec": "PodExecOptions", "portforward": "PodPortForwardOptions", "proxy": None, "binding": "Binding", "eviction": "Eviction",
             "scale": "Scale"}


def _hash(rt: ResourceType) -> str:
    return base64.b64encode(hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).digest()[:8]).decode()


def api_resource(rt: ResourceType) -> dict:
    d = {"name": rt.plural, "singularName": rt.singular_name, "namespaced": rt.namespaced, "kind": rt.kind,
         "verbs": sorted(rt.verbs), "storageVersionHash": _hash(rt)}
    if rt.short_names:
        d["shortNames"] = list(rt.short_names)
    if rt.categories:
        d["categories"] = list(rt.categories)
    return d


def sub_resource(rt: ResourceType, sub: str) -> dict:
    kind = _SUB_KIND.get(sub, rt.kind)
    if sub == "proxy":
        kind = {"Pod": "PodProxyOptions", "Service": "ServiceProxyOptions", "Node": "NodeProxyOptions"}[rt.kind]
    d = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced, "kind": kind,
         "verbs": _SUB_VERBS[sub]}
    if sub == "scale":
        d["group"], d["version"] = "autoscaling", "v1"
    if sub == "eviction":
        d["group"], d["version"] = "policy", "v1"
    return d


def resource_list(group: str, version: str) -> dict:
    items = []
    for rt in R.in_group_version(group, version):
        items.append(api_resource(rt))
        items.extend(sub_resource(rt, s) for s in rt.subresources)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}


def api_versions(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group(group: str) -> dict:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in R.GROUP_VERSIONS[group]]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict:
    groups = [api_group(g) for g in R.GROUP_VERSIONS if g]
    for g in groups:
        g.pop("kind")
        g.pop("apiVersion")
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


# ---------------------------------------------------------------------------------------------------------------------
# Tables


def human_duration(seconds: float) -> str:
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y"


def age(obj: dict) -> str:
    ts = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return human_duration(time.time() - ts) if ts else "<unknown>"


def _col(name, typ="string", fmt="", prio=0, desc=""):
    return {"name": name, "type": typ, "format": fmt, "description": desc or name, "priority": prio}


def pod_status_reason(pod: dict) -> tuple[str, int, int, int]:
    """(status text, ready containers, total containers, restarts) the way kubectl's printPod computes them."""
    spec, st = pod.get("spec") or {}, pod.get("status") or {}
    reason = st.get("reason") or st.get("phase") or "Pending"
    restarts = 0
    total = len(spec.get("containers") or [])
    ready = 0
    initializing = False
    n_init = len(spec.get("initContainers") or [])
    for i, cs in enumerate(st.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode", 0) == 0:
            continue
        if term:
            reason = "Init:" + (term.get("reason") or (f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode')}"))
        elif wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break
    if not initializing:
        has_running = False
        for cs in reversed(st.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            state = cs.get("state") or {}
            if state.get("waiting", {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated"):
                t = state["terminated"]
                reason = t.get("reason") or (f"Signal:{t['signal']}" if t.get("signal") else f"ExitCode:{t.get('exitCode')}")
            elif state.get("running") and cs.get("ready"):
                has_running = True
                ready += 1
            elif state.get("running"):
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason, ready, total, restarts


def _selector_text(sel) -> str:
    from .selectors import format_label_selector

    return format_label_selector(sel) or "<none>"


_JP_TOKEN = re.compile(r"""\.([A-Za-z0-9_-]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_]+)==['"]([^'"]*)['"]\)\]""")


def jsonpath(obj, path: str) -> list:
    """The results of the simple JSONPath of a CRD printer column (fields, [n], [*], [?(@.k=='v')])."""
    cur = [obj]
    pos = 0
    while pos < len(path):
        m = _JP_TOKEN.match(path, pos)
        if not m:
            return []
        pos = m.end()
        field, index, fkey, fval = m.groups()
        nxt = []
        for c in cur:
            if field is not None and isinstance(c, dict) and field in c:
                nxt.append(c[field])
            elif index == "*" and isinstance(c, list):
                nxt.extend(c)
            elif index is not None and index != "*" and isinstance(c, list) and int(index) < len(c):
                nxt.append(c[int(index)])
            elif fkey is not None and isinstance(c, list):
                nxt.extend(x for x in c if isinstance(x, dict) and str(x.get(fkey)) == fval)
        cur = nxt
    return cur


def custom_cells(rt: ResourceType, o: dict) -> list:
    """Cells as apiextensions-apiserver's table convertor computes them: nil when the path finds nothing, strings
    printed (several results joined by a space), dates as a human duration."""
    cells: list = [(o.get("metadata") or {}).get("name")]
    for _name, typ, path in rt.printer_columns or (("Age", "date", ".metadata.creationTimestamp"),):
        found = jsonpath(o, path)
        if not found:
            cells.append(None)
        elif typ == "date":
            ts = parse_time(found[0]) if isinstance(found[0], str) else 0
            cells.append(human_duration(time.time() - ts) if ts else "<invalid>")
        elif typ == "integer":
            cells.append(found[0] if isinstance(found[0], int) else None)
        else:
            cells.append(" ".join(x if isinstance(x, str) else json.dumps(x, separators=(",", ":")) for x in found))
    return cells


def table_for(rt: ResourceType, objs: list[dict], include_object: str, list_meta: dict) -> dict:
    kind = rt.kind
    if rt.custom:
        columns = rt.printer_columns or (("Age", "date", ".metadata.creationTimestamp"),)
        cols = [_col("Name", fmt="name")] + [_col(n, t) for n, t, _p in columns]
        return _table(cols, [(custom_cells(rt, o), o) for o in objs], include_object, list_meta)
    cols = [_col("Name", fmt="name")]
    rows_cells = []
    for o in objs:
        m, spec, st = o.get("metadata") or {}, o.get("spec") or {}, o.get("status") or {}
        name = m.get("name")
        if kind == "Pod":
            reason, ready, total, restarts = pod_status_reason(o)
            cells = [name, f"{ready}/{total}", reason, restarts, age(o), st.get("podIP") or "<none>",
                     spec.get("nodeName") or "<none>", st.get("nominatedNodeName") or "<none>", "<none>"]
        elif kind in ("Deployment", "ReplicaSet"):
            cs = (spec.get("template") or {}).get("spec", {}).get("containers") or []
            names = ",".join(c.get("name", "") for c in cs)
            images = ",".join(c.get("image", "") for c in cs)
            if kind == "Deployment":
                cells = [name, f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}", st.get("updatedReplicas", 0),
                         st.get("availableReplicas", 0), age(o), names, images, _selector_text(spec.get("selector"))]
            else:
                cells = [name, spec.get("replicas", 0), st.get("replicas", 0), st.get("readyReplicas", 0), age(o), names,
                         images, _selector_text(spec.get("selector"))]
        elif kind == "Service":
            ports = ",".join(f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
                             for p in spec.get("ports") or []) or "<none>"
            sel = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
            ext = "<pending>" if spec.get("type") == "LoadBalancer" else (",".join(spec.get("externalIPs") or []) or "<none>")
            cells = [name, spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), ext, ports, age(o), sel]
        elif kind == "ConfigMap":
            cells = [name, len(o.get("data") or {}) + len(o.get("binaryData") or {}), age(o)]
        elif kind == "Secret":
            cells = [name, o.get("type", "Opaque"), len(o.get("data") or {}), age(o)]
        elif kind == "Namespace":
            cells = [name, st.get("phase", "Active"), age(o)]
        elif kind == "Node":
            ready = next((c for c in st.get("conditions") or [] if c.get("type") == "Ready"), {})
            status = "Ready" if ready.get("status") == "True" else "NotReady"
            if spec.get("unschedulable"):
                status += ",SchedulingDisabled"
            roles = ",".join(sorted(k.split("/", 1)[1] for k in (m.get("labels") or {})
                                    if k.startswith("node-role.kubernetes.io/"))) or "<none>"
            addr = next((a.get("address") for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), "<none>")
            cells = [name, status, roles, age(o), (st.get("nodeInfo") or {}).get("kubeletVersion", ""), addr]
        elif kind == "Event":
            inv = o.get("involvedObject") or {}
            last = o.get("lastTimestamp") or o.get("eventTime") or m.get("creationTimestamp")
            cells = [human_duration(time.time() - parse_time(last)), o.get("type", ""), o.get("reason", ""),
                     f"{(inv.get('kind') or '').lower()}/{inv.get('name', '')}", o.get("message", "")]
        elif kind == "ServiceAccount":
            cells = [name, len(o.get("secrets") or []), age(o)]
        elif kind == "PersistentVolumeClaim":
            cap = ",".join(f"{v}" for v in (st.get("capacity") or {}).values())
            cells = [name, st.get("phase", "Pending"), spec.get("volumeName", ""), cap, _modes(st.get("accessModes")),
                     spec.get("storageClassName", "<unset>"), spec.get("volumeAttributesClassName") or "<unset>", age(o)]
        elif kind == "PersistentVolume":
            ref = spec.get("claimRef") or {}
            claim = f"{ref.get('namespace')}/{ref.get('name')}" if ref else ""
            cells = [name, (spec.get("capacity") or {}).get("storage", ""), _modes(spec.get("accessModes")),
                     spec.get("persistentVolumeReclaimPolicy", "Retain"), st.get("phase", "Pending"), claim,
                     spec.get("storageClassName", ""), spec.get("volumeAttributesClassName") or "<unset>",
                     st.get("reason", ""), age(o), spec.get("volumeMode", "Filesystem")]
        elif kind == "StorageClass":
            default = (m.get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
            cells = [name + (" (default)" if default else ""), o.get("provisioner", ""), o.get("reclaimPolicy", "Delete"),
                     o.get("volumeBindingMode", "Immediate"), bool(o.get("allowVolumeExpansion")), age(o)]
        elif kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef") or {}
            cells = [name, f"{ref.get('kind')}/{ref.get('name')}", "<unknown>", spec.get("minReplicas", 1),
                     spec.get("maxReplicas"), st.get("currentReplicas", 0), age(o)]
        elif kind == "PodDisruptionBudget":
            cells = [name, spec.get("minAvailable", "N/A"), spec.get("maxUnavailable", "N/A"), st.get("disruptionsAllowed", 0), age(o)]
        elif kind == "Lease":
            cells = [name, spec.get("holderIdentity") or "", age(o)]
        else:
            cells = [name, m.get("creationTimestamp")]
        rows_cells.append((cells, o))
    if kind == "Pod":
        cols += [_col("Ready"), _col("Status"), _col("Restarts", "string"), _col("Age"), _col("IP", prio=1),
                 _col("Node", prio=1), _col("Nominated Node", prio=1), _col("Readiness Gates", prio=1)]
    elif kind == "Deployment":
        cols += [_col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"), _col("Age"),
                 _col("Containers", prio=1), _col("Images", prio=1), _col("Selector", prio=1)]
    elif kind == "ReplicaSet":
        cols += [_col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"), _col("Age"),
                 _col("Containers", prio=1), _col("Images", prio=1), _col("Selector", prio=1)]
    elif kind == "Service":
        cols += [_col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), _col("Age"), _col("Selector", prio=1)]
    elif kind == "ConfigMap":
        cols += [_col("Data", "integer"), _col("Age")]
    elif kind == "Secret":
        cols += [_col("Type"), _col("Data", "integer"), _col("Age")]
    elif kind == "Namespace":
        cols += [_col("Status"), _col("Age")]
    elif kind == "Node":
        cols += [_col("Status"), _col("Roles"), _col("Age"), _col("Version"), _col("Internal-IP", prio=1)]
    elif kind == "Event":
        cols = [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")]
    elif kind == "ServiceAccount":
        cols += [_col("Secrets", "integer"), _col("Age")]
    elif kind == "PersistentVolumeClaim":
        cols += [_col("Status"), _col("Volume"), _col("Capacity"), _col("Access Modes"), _col("StorageClass"),
                 _col("VolumeAttributesClass"), _col("Age")]
    elif kind == "PersistentVolume":
        cols += [_col("Capacity"), _col("Access Modes"), _col("Reclaim Policy"), _col("Status"), _col("Claim"),
                 _col("StorageClass"), _col("VolumeAttributesClass"), _col("Reason"), _col("Age"),
                 _col("VolumeMode", prio=1)]
    elif kind == "StorageClass":
        cols += [_col("Provisioner"), _col("ReclaimPolicy"), _col("VolumeBindingMode"),
                 _col("AllowVolumeExpansion", "boolean"), _col("Age")]
    elif kind == "HorizontalPodAutoscaler":
        cols += [_col("Reference"), _col("Targets"), _col("MinPods", "integer"), _col("MaxPods", "integer"),
                 _col("Replicas", "integer"), _col("Age")]
    elif kind == "PodDisruptionBudget":
        cols += [_col("Min Available"), _col("Max Unavailable"), _col("Allowed Disruptions", "integer"), _col("Age")]
    elif kind == "Lease":
        cols += [_col("Holder"), _col("Age")]
    else:
        cols += [_col("Created At", "date")]
    return _table(cols, rows_cells, include_object, list_meta)


def _modes(modes) -> str:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
    return ",".join(short.get(a, a) for a in modes or [])


def _table(cols: list, rows_cells: list, include_object: str, list_meta: dict) -> dict:
    rows = []
    for cells, o in rows_cells:
        row: dict = {"cells": cells}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata", {})}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": cols, "rows": rows}
