"""Per-kind defaulting and validation (the parts of the apiserver's registry strategies the twin implements)."""

from __future__ import annotations

import base64
import binascii
import copy
import re
from datetime import UTC, datetime

from .errors import ApiError, invalid
from .resources import ResourceType
from .selectors import SelectorError, labels_match, selector_from_label_selector

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
                 "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end "
             "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
               "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
               "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
                   "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
                   "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_micro_time(ts: str) -> str:
    """A MicroTime the decoder accepted (six fraction digits, Z or an offset) as the apiserver serves it: in UTC."""
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return ts


def parse_time(ts: str | None) -> float:
    if not ts:
        return 0.0
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(ts, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return 0.0


# ---------------------------------------------------------------------------------------------------------------------
# defaulting


def _default_image_pull_policy(image: str) -> str:
    last = (image or "").rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def default_container(c: dict) -> None:
    if "image" in c and "imagePullPolicy" not in c:
        c["imagePullPolicy"] = _default_image_pull_policy(c["image"])
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
    for e in c.get("env") or []:
        fr = (e.get("valueFrom") or {}).get("fieldRef") if isinstance(e, dict) else None
        if isinstance(fr, dict):
            fr.setdefault("apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = c.get(probe)
        if isinstance(p, dict):
            p.setdefault("timeoutSeconds", 1)
            p.setdefault("periodSeconds", 10)
            p.setdefault("successThreshold", 1)
            p.setdefault("failureThreshold", 3)
            if isinstance(p.get("httpGet"), dict):
                p["httpGet"].setdefault("path", "/")
                p["httpGet"].setdefault("scheme", "HTTP")


def default_pod_spec(spec: dict, *, is_pod: bool) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if isinstance(c, dict):
            default_container(c)
    for v in spec.get("volumes") or []:
        if isinstance(v, dict):
            if isinstance(v.get("configMap"), dict):
                v["configMap"].setdefault("defaultMode", 420)
            if isinstance(v.get("secret"), dict):
                v["secret"].setdefault("defaultMode", 420)
    if is_pod:
        if "serviceAccountName" not in spec:
            spec["serviceAccountName"] = spec.get("serviceAccount", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        tols = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(isinstance(t, dict) and t.get("key") == key and t.get("effect") == "NoExecute" for t in tols):
                tols.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})


def apply_defaults(rt: ResourceType, obj: dict, *, cluster) -> None:
    kind = rt.kind
    meta = obj.setdefault("metadata", {})
    if kind == "Namespace":
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    elif kind == "Pod":
        default_pod_spec(obj.setdefault("spec", {}), is_pod=True)
    elif kind in ("Deployment", "ReplicaSet"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        tmpl = spec.setdefault("template", {})
        default_pod_spec(tmpl.setdefault("spec", {}), is_pod=False)
        tmpl.setdefault("metadata", {})
        if kind == "Deployment":
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            strat = spec.setdefault("strategy", {})
            strat.setdefault("type", "RollingUpdate")
            if strat["type"] == "RollingUpdate":
                ru = strat.setdefault("rollingUpdate", {})
                ru.setdefault("maxSurge", "25%")
                ru.setdefault("maxUnavailable", "25%")
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            if not spec.get("clusterIP"):
                spec["clusterIP"] = cluster.allocate_cluster_ip()
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "port" in p:
                    p.setdefault("targetPort", p["port"])
                if spec["type"] in ("NodePort", "LoadBalancer") and "nodePort" not in p:
                    p["nodePort"] = cluster.allocate_node_port()
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if string_data:
            data = obj.setdefault("data", {}) or {}
            obj["data"] = data
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
    elif kind == "PersistentVolumeClaim":
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
    elif kind == "PersistentVolume":
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    elif kind == "StorageClass":
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
    elif kind == "HorizontalPodAutoscaler":
        spec = obj.setdefault("spec", {})
        spec.setdefault("minReplicas", 1)
    elif kind == "Event":
        obj.setdefault("count", 1)
        obj.setdefault("type", "Normal")
    elif kind == "Lease":
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        for field in ("acquireTime", "renewTime"):   # MicroTime is stored and served in UTC: 2006-01-02T15:04:05.000000Z
            if isinstance(spec.get(field), str):
                spec[field] = normalize_micro_time(spec[field])


def initial_status(rt: ResourceType, obj: dict) -> dict | None:
    kind = rt.kind
    if kind == "Namespace":
        return {"phase": "Active"}
    if kind == "Pod":
        return {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}
    if kind in ("Deployment", "ReplicaSet"):
        return {"replicas": 0} if kind == "ReplicaSet" else {}
    if kind == "Service":
        return {"loadBalancer": {}}
    if kind in ("PersistentVolumeClaim", "PersistentVolume"):
        return {"phase": "Pending"}   # the persistentvolume-controller (storage.py) binds it
    if kind == "HorizontalPodAutoscaler":
        return {"currentReplicas": 0, "desiredReplicas": 0}
    if kind == "PodDisruptionBudget":
        return {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}
    return None


def qos_class(spec: dict) -> str:
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# ---------------------------------------------------------------------------------------------------------------------
# validation


def _name_causes(rt: ResourceType, name: str) -> list[tuple[str, str, str]]:
    if rt.kind in ("Namespace",):
        ok, msg = DNS1123_LABEL.match(name) and len(name) <= 63, LABEL_MSG
    elif rt.kind == "Service":
        ok, msg = DNS1035_LABEL.match(name) and len(name) <= 63, DNS1035_MSG
    elif rt.kind == "Event":
        return []
    else:
        ok, msg = DNS1123_SUBDOMAIN.match(name) and len(name) <= 253, SUBDOMAIN_MSG
    if ok:
        return []
    return [("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {msg}')]


def _label_causes(field: str, labels) -> list[tuple[str, str, str]]:
    causes = []
    if labels is None:
        return causes
    if not isinstance(labels, dict):
        return [("FieldValueInvalid", field, "Invalid value: must be a map of strings")]
    for k, v in labels.items():
        name = k.split("/")[-1]
        prefix = k[: -len(name) - 1] if "/" in k else ""
        if not QUALIFIED_NAME.match(name) or len(name) > 63 or (prefix and not DNS1123_SUBDOMAIN.match(prefix)):
            causes.append(("FieldValueInvalid", field, f'Invalid value: "{k}": name part must consist of alphanumeric '
                           "characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
        if field.endswith("labels") and (not isinstance(v, str) or not LABEL_VALUE.match(v) or len(v) > 63):
            causes.append(("FieldValueInvalid", field, f'Invalid value: "{v}": {LABEL_VALUE_MSG}'))
        if field.endswith("annotations") and not isinstance(v, str):
            causes.append(("FieldValueInvalid", field, f"Invalid value: {v!r}: annotation values must be strings"))
    return causes


def _pod_spec_causes(spec, field: str) -> list[tuple[str, str, str]]:
    causes = []
    if not isinstance(spec, dict):
        return [("FieldValueRequired", field, "Required value")]
    containers = spec.get("containers")
    if not containers:
        causes.append(("FieldValueRequired", f"{field}.containers", "Required value"))
    seen = set()
    for kind_name in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(kind_name) or []):
            cf = f"{field}.{kind_name}[{i}]"
            if not isinstance(c, dict):
                causes.append(("FieldValueInvalid", cf, "Invalid value: must be an object"))
                continue
            n = c.get("name")
            if not n:
                causes.append(("FieldValueRequired", f"{cf}.name", "Required value"))
            elif not DNS1123_LABEL.match(n):
                causes.append(("FieldValueInvalid", f"{cf}.name", f'Invalid value: "{n}": {LABEL_MSG}'))
            elif n in seen:
                causes.append(("FieldValueDuplicate", f"{cf}.name", f'Duplicate value: "{n}"'))
            seen.add(n)
            if not c.get("image"):
                causes.append(("FieldValueRequired", f"{cf}.image", "Required value"))
            for j, p in enumerate(c.get("ports") or []):
                cp = p.get("containerPort") if isinstance(p, dict) else None
                if not isinstance(cp, int) or not 0 < cp < 65536:
                    causes.append(("FieldValueInvalid", f"{cf}.ports[{j}].containerPort",
                                   f"Invalid value: {cp}: must be between 1 and 65535, inclusive"))
    return causes


def validate(rt: ResourceType, obj: dict, old: dict | None = None) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes: list[tuple[str, str, str]] = []
    if not name:
        causes.append(("FieldValueRequired", "metadata.name", "Required value: name or generateName is required"))
    else:
        causes += _name_causes(rt, name)
    causes += _label_causes("metadata.labels", meta.get("labels"))
    causes += _label_causes("metadata.annotations", meta.get("annotations"))
    kind = rt.kind
    spec = obj.get("spec")
    if kind == "Pod":
        causes += _pod_spec_causes(spec, "spec")
        if old is not None and not causes:
            causes += _pod_update_causes(old.get("spec") or {}, spec or {})
    elif kind in ("Deployment", "ReplicaSet"):
        spec = spec if isinstance(spec, dict) else {}
        sel = spec.get("selector")
        tmpl = spec.get("template") or {}
        tlabels = (tmpl.get("metadata") or {}).get("labels") or {}
        if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            causes.append(("FieldValueRequired", "spec.selector", "Required value"))
            if kind == "Deployment" and sel is not None:
                causes.append(("FieldValueInvalid", "spec.selector", "Invalid value: \"null\": empty selector is invalid for deployment"))
        else:
            try:
                reqs = selector_from_label_selector(sel)
            except SelectorError as e:
                reqs = None
                causes.append(("FieldValueInvalid", "spec.selector", f"Invalid value: {e}"))
            if reqs is not None and not labels_match(reqs, tlabels):
                shown = "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(tlabels.items())) + "}"
                causes.append(("FieldValueInvalid", "spec.template.metadata.labels",
                               f"Invalid value: {shown}: `selector` does not match template `labels`"))
        causes += _label_causes("spec.template.metadata.labels", tlabels)
        causes += _pod_spec_causes(tmpl.get("spec"), "spec.template.spec")
        replicas = spec.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
            causes.append(("FieldValueInvalid", "spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"))
        if old is not None and (old.get("spec") or {}).get("selector") != sel and kind == "Deployment" and sel:
            causes.append(("FieldValueInvalid", "spec.selector", "Invalid value: " + _go_selector(sel) + ": field is immutable"))
    elif kind in ("ConfigMap", "Secret"):
        for fld in ("data", "binaryData"):
            for k in (obj.get(fld) or {}):
                if not CONFIG_KEY.match(k):
                    causes.append(("FieldValueInvalid", f"{fld}[{k}]", f'Invalid value: "{k}": a valid config key must consist '
                                   "of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
                                   "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"))
        if kind == "Secret":
            for k, v in (obj.get("data") or {}).items():
                try:
                    base64.b64decode(v or "", validate=True)
                except (binascii.Error, TypeError, ValueError):
                    raise ApiError(400, f"Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 0 ({k})")
            if old is not None and old.get("type", "Opaque") != obj.get("type", "Opaque"):
                causes.append(("FieldValueInvalid", "type", f'Invalid value: "{obj.get("type")}": field is immutable'))
    elif kind == "Service":
        spec = spec if isinstance(spec, dict) else {}
        for i, p in enumerate(spec.get("ports") or []):
            port = p.get("port") if isinstance(p, dict) else None
            if not isinstance(port, int) or not 0 < port < 65536:
                causes.append(("FieldValueInvalid", f"spec.ports[{i}].port", f"Invalid value: {port}: must be between 1 and 65535, inclusive"))
        if not spec.get("ports") and spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None":
            causes.append(("FieldValueRequired", "spec.ports", "Required value"))
    elif kind == "Lease":
        causes += _lease_causes(spec if isinstance(spec, dict) else {})
    elif kind in ("PersistentVolumeClaim", "PersistentVolume", "StorageClass"):
        causes += storage_causes(kind, obj, old)
    elif rt.custom:
        causes += custom_resource_causes(rt.kind, obj)
    if causes:
        raise invalid(rt, name, causes)


def _lease_causes(spec: dict) -> list[tuple[str, str, str]]:
    """pkg/apis/coordination/validation ValidateLeaseSpec (strategy values are feature-gated upstream: not checked)."""
    causes = []
    duration, transitions = spec.get("leaseDurationSeconds"), spec.get("leaseTransitions")
    if isinstance(duration, int) and duration <= 0:
        causes.append(("FieldValueInvalid", "spec.leaseDurationSeconds", f"Invalid value: {duration}: must be greater than 0"))
    if isinstance(transitions, int) and transitions < 0:
        causes.append(("FieldValueInvalid", "spec.leaseTransitions", f"Invalid value: {transitions}: must be greater than or equal to 0"))
    if spec.get("preferredHolder") and not spec.get("strategy"):
        causes.append(("FieldValueForbidden", "spec.preferredHolder", "Forbidden: may only be specified if `strategy` is defined"))
    return causes


# The parts of the installed CRDs' openAPIV3Schema the twin checks: required fields (only below a present parent, as
# a structural schema does) and enums.  kubernetes/autoscaler vpa-v1-crd-gen.yaml, kedacore/keda keda.sh_scaledobjects.yaml.
_CR_REQUIRED = {
    "VerticalPodAutoscaler": [("", "spec"), ("spec", "targetRef"), ("spec.targetRef", "kind"), ("spec.targetRef", "name")],
    "ScaledObject": [("", "spec"), ("spec", "scaleTargetRef"), ("spec", "triggers"), ("spec.scaleTargetRef", "name"),
                     ("spec.fallback", "failureThreshold"), ("spec.fallback", "replicas")],
}
_CR_ITEMS_REQUIRED = {"ScaledObject": [("spec.triggers", ["metadata", "type"])]}
_CR_ENUMS = {"VerticalPodAutoscaler": [("spec.updatePolicy.updateMode", ["Off", "Initial", "Recreate", "Auto",
                                                                          "InPlaceOrRecreate"])]}


def _at(obj, dotted: str):
    cur = obj
    for part in [p for p in dotted.split(".") if p]:
        if not isinstance(cur, dict) or part not in cur:
            return _ABSENT
        cur = cur[part]
    return cur


_ABSENT = object()


def custom_resource_causes(kind: str, obj: dict) -> list[tuple[str, str, str]]:
    causes = []
    for parent, fld in _CR_REQUIRED.get(kind, []):
        holder = _at(obj, parent)
        if isinstance(holder, dict) and holder.get(fld) is None:
            causes.append(("FieldValueRequired", f"{parent}.{fld}" if parent else fld, "Required value"))
    for path, fields in _CR_ITEMS_REQUIRED.get(kind, []):
        items = _at(obj, path)
        for i, item in enumerate(items if isinstance(items, list) else []):
            for fld in fields:
                if not isinstance(item, dict) or item.get(fld) is None:
                    causes.append(("FieldValueRequired", f"{path}[{i}].{fld}", "Required value"))
    for path, allowed in _CR_ENUMS.get(kind, []):
        v = _at(obj, path)
        if v is not _ABSENT and v not in allowed:
            shown = ", ".join(f'"{a}"' for a in allowed)
            causes.append(("FieldValueNotSupported", path, f'Unsupported value: "{v}": supported values: {shown}'))
    return causes


def _go_selector(sel: dict) -> str:
    ml = sel.get("matchLabels") or {}
    inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(ml.items()))
    return "v1.LabelSelector{MatchLabels:map[string]string{" + inner + "}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"


_POD_MUTABLE_MSG = ("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                    "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                    "previously negative)")


def _pod_update_causes(old_spec: dict, new_spec: dict) -> list[tuple[str, str, str]]:
    def strip(spec):
        s = copy.deepcopy(spec)
        for key in ("containers", "initContainers"):
            for c in s.get(key) or []:
                c.pop("image", None)
        s.pop("activeDeadlineSeconds", None)
        s.pop("tolerations", None)
        s.pop("nodeName", None)
        return s

    if strip(old_spec) != strip(new_spec):
        return [("FieldValueForbidden", "spec", _POD_MUTABLE_MSG)]
    return []


# ---------------------------------------------------------------------------------------------------------------------
# storage (pkg/apis/core/validation ValidatePersistentVolumeClaim*, ValidatePersistentVolume, storage ValidateStorageClass)
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
PVC_IMMUTABLE_MSG = "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"


def _access_mode_causes(modes, field: str) -> list[tuple[str, str, str]]:
    if not modes:
        return [("FieldValueRequired", field, "Required value: at least 1 access mode is required")]
    shown = ", ".join(f'"{m}"' for m in ACCESS_MODES)
    return [("FieldValueNotSupported", field, f'Unsupported value: "{m}": supported values: {shown}')
            for m in modes if m not in ACCESS_MODES]


def _pvc_update_causes(old: dict, new: dict) -> list[tuple[str, str, str]]:
    def strip(spec):
        s = copy.deepcopy(spec or {})
        s.pop("resources", None)
        s.pop("volumeAttributesClassName", None)
        s.pop("volumeName", None)   # set by the binder
        return s

    if strip(old.get("spec")) != strip(new.get("spec")):
        return [("FieldValueForbidden", "spec", PVC_IMMUTABLE_MSG)]
    return []


def storage_causes(kind: str, obj: dict, old: dict | None) -> list[tuple[str, str, str]]:
    causes: list[tuple[str, str, str]] = []
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if kind == "PersistentVolumeClaim":
        causes += _access_mode_causes(spec.get("accessModes"), "spec.accessModes")
        if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
            causes.append(("FieldValueRequired", "spec.resources[storage]", "Required value"))
        if old is not None and not causes:
            causes += _pvc_update_causes(old, obj)
    elif kind == "PersistentVolume":
        causes += _access_mode_causes(spec.get("accessModes"), "spec.accessModes")
        if not (spec.get("capacity") or {}).get("storage"):
            causes.append(("FieldValueRequired", "spec.capacity", "Required value"))
    elif kind == "StorageClass":
        if not obj.get("provisioner"):
            causes.append(("FieldValueRequired", "provisioner", "Required value"))
        if old is not None and old.get("provisioner") != obj.get("provisioner"):
            causes.append(("FieldValueForbidden", "provisioner", "Forbidden: updates to provisioner are forbidden."))
        if old is not None and old.get("parameters") != obj.get("parameters"):
            causes.append(("FieldValueForbidden", "parameters", "Forbidden: updates to parameters are forbidden."))
        mode = obj.get("volumeBindingMode")
        if mode not in ("Immediate", "WaitForFirstConsumer"):
            causes.append(("FieldValueNotSupported", "volumeBindingMode",
                           f'Unsupported value: "{mode}": supported values: "Immediate", "WaitForFirstConsumer"'))
    return causes


DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def admit_create(rt: ResourceType, obj: dict, *, cluster) -> None:
    """Admission on create: DefaultStorageClass gives a claim without ``storageClassName`` the default class (the newest
    one when several are marked default, as since v1.26)."""
    if rt.kind != "PersistentVolumeClaim":
        return
    spec = obj.setdefault("spec", {})
    if spec.get("storageClassName") is not None:
        return
    defaults = [sc for sc in cluster.list_raw("storage.k8s.io/storageclasses")
                if (sc["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"]
    if defaults:
        newest = max(defaults, key=lambda sc: (sc["metadata"].get("creationTimestamp") or "", sc["metadata"]["name"]))
        spec["storageClassName"] = newest["metadata"]["name"]
