"""OpenAPI documents for the served kinds: ``/openapi/v2`` (JSON and the protobuf encoding kubectl/helm request) and
``/openapi/v3`` (root index + one document per group/version).

The schemas are reduced but structurally faithful for the parts clients compute patches on (ObjectMeta, PodSpec,
Container, Deployment/ReplicaSet/Service specs): fields are typed, lists carry ``x-kubernetes-patch-strategy`` /
``x-kubernetes-patch-merge-key`` / ``x-kubernetes-list-type`` like upstream, and every top-level kind carries
``x-kubernetes-group-version-kind``. Sub-objects the twin does not model are open maps.
"""

from __future__ import annotations

import hashlib
import json
import struct

from .resources import RESOURCES, ResourceType

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
CORE = "io.k8s.api.core.v1"

S = {"type": "string"}
I32 = {"type": "integer", "format": "int32"}
I64 = {"type": "integer", "format": "int64"}
B = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
MICRO_TIME = {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"}   # RFC3339 with exactly 6 fraction digits
STRMAP = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
OPEN = {"type": "object", "additionalProperties": {"description": "arbitrary"}}  # an open object
INT_OR_STRING = {"type": "string", "format": "int-or-string"}
QUANTITY = {"type": "string", "format": "quantity"}


def ref(name: str) -> dict:
    return {"$ref": f"#/definitions/{name}"}


def arr(items: dict, strategy: str | None = None, key: str | None = None, list_type: str | None = None,
        map_keys: list[str] | None = None) -> dict:
    d = {"type": "array", "items": items}
    if strategy:
        d["x-kubernetes-patch-strategy"] = strategy
    if key:
        d["x-kubernetes-patch-merge-key"] = key
    if list_type:
        d["x-kubernetes-list-type"] = list_type
    if map_keys:
        d["x-kubernetes-list-map-keys"] = map_keys
    return d


def obj(props: dict, required: list[str] | None = None, desc: str = "") -> dict:
    d: dict = {"type": "object", "properties": props}
    if required:
        d["required"] = required
    if desc:
        d["description"] = desc
    return d


def _open_fields(*names: str) -> dict:
    return {n: OPEN for n in names}


def _definitions() -> dict:
    d: dict = {}
    d[f"{META}.OwnerReference"] = obj({"apiVersion": S, "kind": S, "name": S, "uid": S, "controller": B,
                                       "blockOwnerDeletion": B}, ["apiVersion", "kind", "name", "uid"])
    d[f"{META}.ManagedFieldsEntry"] = obj({"apiVersion": S, "fieldsType": S, "fieldsV1": OPEN, "manager": S,
                                           "operation": S, "subresource": S, "time": TIME})
    d[f"{META}.ObjectMeta"] = obj({
        "annotations": STRMAP, "creationTimestamp": TIME, "deletionGracePeriodSeconds": I64, "deletionTimestamp": TIME,
        "finalizers": arr(S, "merge", None, "set"), "generateName": S, "generation": I64, "labels": STRMAP,
        "managedFields": arr(ref(f"{META}.ManagedFieldsEntry"), list_type="atomic"), "name": S, "namespace": S,
        "ownerReferences": arr(ref(f"{META}.OwnerReference"), "merge", "uid", "map", ["uid"]),
        "resourceVersion": S, "selfLink": S, "uid": S})
    d[f"{META}.MicroTime"] = {"type": "string", "format": "date-time",
                              "description": "MicroTime is version of Time with microsecond level precision."}
    d[f"{META}.LabelSelectorRequirement"] = obj({"key": S, "operator": S, "values": arr(S, list_type="atomic")},
                                                ["key", "operator"])
    d[f"{META}.LabelSelector"] = obj({"matchExpressions": arr(ref(f"{META}.LabelSelectorRequirement"), list_type="atomic"),
                                      "matchLabels": STRMAP})
    d[f"{META}.Condition"] = obj({"lastTransitionTime": TIME, "message": S, "observedGeneration": I64, "reason": S,
                                  "status": S, "type": S}, ["type", "status"])
    d[f"{CORE}.ConfigMapKeySelector"] = obj({"key": S, "name": S, "optional": B}, ["key"])
    d[f"{CORE}.SecretKeySelector"] = obj({"key": S, "name": S, "optional": B}, ["key"])
    d[f"{CORE}.ObjectFieldSelector"] = obj({"apiVersion": S, "fieldPath": S}, ["fieldPath"])
    d[f"{CORE}.ResourceFieldSelector"] = obj({"containerName": S, "divisor": QUANTITY, "resource": S}, ["resource"])
    d[f"{CORE}.EnvVarSource"] = obj({"configMapKeyRef": ref(f"{CORE}.ConfigMapKeySelector"), "fieldRef": ref(f"{CORE}.ObjectFieldSelector"),
                                     "resourceFieldRef": ref(f"{CORE}.ResourceFieldSelector"),
                                     "secretKeyRef": ref(f"{CORE}.SecretKeySelector")})
    d[f"{CORE}.EnvVar"] = obj({"name": S, "value": S, "valueFrom": ref(f"{CORE}.EnvVarSource")}, ["name"])
    d[f"{CORE}.ConfigMapEnvSource"] = obj({"name": S, "optional": B})
    d[f"{CORE}.SecretEnvSource"] = obj({"name": S, "optional": B})
    d[f"{CORE}.EnvFromSource"] = obj({"configMapRef": ref(f"{CORE}.ConfigMapEnvSource"), "prefix": S,
                                      "secretRef": ref(f"{CORE}.SecretEnvSource")})
    d[f"{CORE}.ContainerPort"] = obj({"containerPort": I32, "hostIP": S, "hostPort": I32, "name": S, "protocol": S},
                                     ["containerPort"])
    d[f"{CORE}.VolumeMount"] = obj({"mountPath": S, "mountPropagation": S, "name": S, "readOnly": B,
                                    "recursiveReadOnly": S, "subPath": S, "subPathExpr": S}, ["name", "mountPath"])
    d[f"{CORE}.VolumeDevice"] = obj({"devicePath": S, "name": S}, ["name", "devicePath"])
    d[f"{CORE}.ResourceRequirements"] = obj({"claims": arr(OPEN, list_type="map", map_keys=["name"]),
                                             "limits": {"type": "object", "additionalProperties": QUANTITY},
                                             "requests": {"type": "object", "additionalProperties": QUANTITY}})
    d[f"{CORE}.Probe"] = obj({"exec": OPEN, "failureThreshold": I32, "grpc": OPEN, "httpGet": OPEN,
                              "initialDelaySeconds": I32, "periodSeconds": I32, "successThreshold": I32,
                              "tcpSocket": OPEN, "terminationGracePeriodSeconds": I64, "timeoutSeconds": I32})
    container = {
        "args": arr(S, list_type="atomic"), "command": arr(S, list_type="atomic"),
        "env": arr(ref(f"{CORE}.EnvVar"), "merge", "name", "map", ["name"]),
        "envFrom": arr(ref(f"{CORE}.EnvFromSource"), list_type="atomic"), "image": S, "imagePullPolicy": S, "lifecycle": OPEN,
        "livenessProbe": ref(f"{CORE}.Probe"), "name": S,
        "ports": arr(ref(f"{CORE}.ContainerPort"), "merge", "containerPort", "map", ["containerPort", "protocol"]),
        "readinessProbe": ref(f"{CORE}.Probe"), "resizePolicy": arr(OPEN, list_type="atomic"),
        "resources": ref(f"{CORE}.ResourceRequirements"), "restartPolicy": S, "restartPolicyRules": arr(OPEN, list_type="atomic"),
        "securityContext": OPEN, "startupProbe": ref(f"{CORE}.Probe"), "stdin": B, "stdinOnce": B,
        "terminationMessagePath": S, "terminationMessagePolicy": S, "tty": B,
        "volumeDevices": arr(ref(f"{CORE}.VolumeDevice"), "merge", "devicePath", "map", ["devicePath"]),
        "volumeMounts": arr(ref(f"{CORE}.VolumeMount"), "merge", "mountPath", "map", ["mountPath"]),
        "workingDir": S,
    }
    d[f"{CORE}.Container"] = obj(container, ["name"])
    d[f"{CORE}.EphemeralContainer"] = obj({**container, "targetContainerName": S}, ["name"])
    d[f"{CORE}.Volume"] = obj({"name": S, **_open_fields(
        "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "configMap", "csi", "downwardAPI", "emptyDir",
        "ephemeral", "fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "hostPath", "image", "iscsi",
        "nfs", "persistentVolumeClaim", "photonPersistentDisk", "portworxVolume", "projected", "quobyte", "rbd", "scaleIO",
        "secret", "storageos", "vsphereVolume")}, ["name"])
    d[f"{CORE}.LocalObjectReference"] = obj({"name": S})
    d[f"{CORE}.Toleration"] = obj({"effect": S, "key": S, "operator": S, "tolerationSeconds": I64, "value": S})
    d[f"{CORE}.HostAlias"] = obj({"hostnames": arr(S, list_type="atomic"), "ip": S}, ["ip"])
    d[f"{CORE}.TopologySpreadConstraint"] = obj({"labelSelector": ref(f"{META}.LabelSelector"),
                                                 "matchLabelKeys": arr(S, list_type="atomic"), "maxSkew": I32,
                                                 "minDomains": I32, "nodeAffinityPolicy": S, "nodeTaintsPolicy": S,
                                                 "topologyKey": S, "whenUnsatisfiable": S},
                                                ["maxSkew", "topologyKey", "whenUnsatisfiable"])
    d[f"{CORE}.PodSpec"] = obj({
        "activeDeadlineSeconds": I64, "affinity": OPEN, "automountServiceAccountToken": B,
        "containers": arr(ref(f"{CORE}.Container"), "merge", "name", "map", ["name"]),
        "dnsConfig": OPEN, "dnsPolicy": S, "enableServiceLinks": B,
        "ephemeralContainers": arr(ref(f"{CORE}.EphemeralContainer"), "merge", "name", "map", ["name"]),
        "hostAliases": arr(ref(f"{CORE}.HostAlias"), "merge", "ip", "map", ["ip"]), "hostIPC": B, "hostNetwork": B,
        "hostPID": B, "hostUsers": B, "hostname": S, "hostnameOverride": S,
        "imagePullSecrets": arr(ref(f"{CORE}.LocalObjectReference"), "merge", "name", "map", ["name"]),
        "initContainers": arr(ref(f"{CORE}.Container"), "merge", "name", "map", ["name"]),
        "nodeName": S, "nodeSelector": STRMAP, "os": OPEN, "overhead": {"type": "object", "additionalProperties": QUANTITY},
        "preemptionPolicy": S, "priority": I32, "priorityClassName": S, "readinessGates": arr(OPEN, list_type="atomic"),
        "resourceClaims": arr(OPEN, "merge,retainKeys", "name", "map", ["name"]), "resources": ref(f"{CORE}.ResourceRequirements"),
        "restartPolicy": S, "runtimeClassName": S, "schedulerName": S,
        "schedulingGates": arr(OPEN, "merge", "name", "map", ["name"]), "securityContext": OPEN, "serviceAccount": S,
        "serviceAccountName": S, "setHostnameAsFQDN": B, "shareProcessNamespace": B, "subdomain": S,
        "terminationGracePeriodSeconds": I64, "tolerations": arr(ref(f"{CORE}.Toleration"), list_type="atomic"),
        "topologySpreadConstraints": arr(ref(f"{CORE}.TopologySpreadConstraint"), "merge", "topologyKey", "map",
                                         ["topologyKey", "whenUnsatisfiable"]),
        "volumes": arr(ref(f"{CORE}.Volume"), "merge,retainKeys", "name", "map", ["name"]),
    }, ["containers"])
    d[f"{CORE}.PodTemplateSpec"] = obj({"metadata": ref(f"{META}.ObjectMeta"), "spec": ref(f"{CORE}.PodSpec")})
    d[f"{CORE}.ServicePort"] = obj({"appProtocol": S, "name": S, "nodePort": I32, "port": I32, "protocol": S,
                                    "targetPort": INT_OR_STRING}, ["port"])
    d[f"{CORE}.ServiceSpec"] = obj({
        "allocateLoadBalancerNodePorts": B, "clusterIP": S, "clusterIPs": arr(S, list_type="atomic"),
        "externalIPs": arr(S, list_type="atomic"), "externalName": S, "externalTrafficPolicy": S, "healthCheckNodePort": I32,
        "internalTrafficPolicy": S, "ipFamilies": arr(S, list_type="atomic"), "ipFamilyPolicy": S, "loadBalancerClass": S,
        "loadBalancerIP": S, "loadBalancerSourceRanges": arr(S, list_type="atomic"),
        "ports": arr(ref(f"{CORE}.ServicePort"), "merge", "port", "map", ["port", "protocol"]),
        "publishNotReadyAddresses": B, "selector": STRMAP, "sessionAffinity": S, "sessionAffinityConfig": OPEN,
        "trafficDistribution": S, "type": S})
    d["io.k8s.api.apps.v1.RollingUpdateDeployment"] = obj({"maxSurge": INT_OR_STRING, "maxUnavailable": INT_OR_STRING})
    d["io.k8s.api.apps.v1.DeploymentStrategy"] = obj({"rollingUpdate": ref("io.k8s.api.apps.v1.RollingUpdateDeployment"),
                                                      "type": S})
    d["io.k8s.api.apps.v1.DeploymentSpec"] = obj({
        "minReadySeconds": I32, "paused": B, "progressDeadlineSeconds": I32, "replicas": I32, "revisionHistoryLimit": I32,
        "selector": ref(f"{META}.LabelSelector"),
        "strategy": {**ref("io.k8s.api.apps.v1.DeploymentStrategy"), "x-kubernetes-patch-strategy": "retainKeys"},
        "template": ref(f"{CORE}.PodTemplateSpec")}, ["selector", "template"])
    d["io.k8s.api.apps.v1.ReplicaSetSpec"] = obj({"minReadySeconds": I32, "replicas": I32,
                                                  "selector": ref(f"{META}.LabelSelector"),
                                                  "template": ref(f"{CORE}.PodTemplateSpec")}, ["selector"])
    d["io.k8s.api.autoscaling.v2.CrossVersionObjectReference"] = obj({"apiVersion": S, "kind": S, "name": S}, ["kind", "name"])
    d["io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec"] = obj({
        "behavior": OPEN, "maxReplicas": I32, "metrics": arr(OPEN, list_type="atomic"), "minReplicas": I32,
        "scaleTargetRef": ref("io.k8s.api.autoscaling.v2.CrossVersionObjectReference")}, ["scaleTargetRef", "maxReplicas"])
    d["io.k8s.api.coordination.v1.LeaseSpec"] = obj({
        "acquireTime": MICRO_TIME, "holderIdentity": S, "leaseDurationSeconds": I32, "leaseTransitions": I32,
        "preferredHolder": S, "renewTime": MICRO_TIME, "strategy": S})
    d["io.k8s.api.policy.v1.PodDisruptionBudgetSpec"] = obj({
        "maxUnavailable": INT_OR_STRING, "minAvailable": INT_OR_STRING, "selector": ref(f"{META}.LabelSelector"),
        "unhealthyPodEvictionPolicy": S})
    return d


# kind -> (definition name, extra top-level properties)
def definition_name(rt: ResourceType) -> str:
    """Upstream's definition names: io.k8s.api.<pkg>.<v>.<Kind> for built-ins; a CRD's reversed group for CRs
    (autoscaling.k8s.io -> io.k8s.autoscaling.v1.VerticalPodAutoscaler, keda.sh -> sh.keda.v1alpha1.ScaledObject)."""
    if rt.custom:
        return ".".join(reversed(rt.group.split("."))) + f".{rt.version}.{rt.kind}"
    if rt.group == "apiextensions.k8s.io":
        return f"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{rt.version}.{rt.kind}"
    group_pkg = {"": "core", "apps": "apps", "autoscaling": "autoscaling", "policy": "policy",
                 "events.k8s.io": "events", "authorization.k8s.io": "authorization", "coordination.k8s.io": "coordination",
                 "storage.k8s.io": "storage",
                 "authentication.k8s.io": "authentication"}[rt.group]
    return f"io.k8s.api.{group_pkg}.{rt.version}.{rt.kind}"


def _kind_props(rt: ResourceType) -> tuple[str, dict]:
    name = definition_name(rt)
    status = OPEN
    spec: dict = OPEN
    extra: dict = {}
    k = rt.kind
    if k == "Pod":
        spec = ref(f"{CORE}.PodSpec")
    elif k == "Service":
        spec = ref(f"{CORE}.ServiceSpec")
    elif k == "Deployment":
        spec = ref("io.k8s.api.apps.v1.DeploymentSpec")
    elif k == "ReplicaSet":
        spec = ref("io.k8s.api.apps.v1.ReplicaSetSpec")
    elif k == "HorizontalPodAutoscaler":
        spec = ref("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec")
    elif k == "PodDisruptionBudget":
        spec = ref("io.k8s.api.policy.v1.PodDisruptionBudgetSpec")
    elif k == "Lease":
        spec = ref("io.k8s.api.coordination.v1.LeaseSpec")
    if k == "ConfigMap":
        extra = {"binaryData": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
                 "data": STRMAP, "immutable": B}
    elif k == "Secret":
        extra = {"data": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
                 "immutable": B, "stringData": STRMAP, "type": S}
    elif k == "ServiceAccount":
        extra = {"automountServiceAccountToken": B,
                 "imagePullSecrets": arr(ref(f"{CORE}.LocalObjectReference"), list_type="atomic"),
                 "secrets": arr(OPEN, "merge", "name", "map", ["name"])}
    elif k == "Event" and rt.group == "":
        extra = {"action": S, "count": I32, "eventTime": {"type": "string", "format": "date-time"},
                 "firstTimestamp": TIME, "involvedObject": OPEN, "lastTimestamp": TIME, "message": S, "reason": S,
                 "related": OPEN, "reportingComponent": S, "reportingInstance": S, "series": OPEN, "source": OPEN, "type": S}
    elif k == "Event":
        extra = {"action": S, "deprecatedCount": I32, "deprecatedFirstTimestamp": TIME, "deprecatedLastTimestamp": TIME,
                 "deprecatedSource": OPEN, "eventTime": TIME, "note": S, "reason": S, "regarding": OPEN, "related": OPEN,
                 "reportingController": S, "reportingInstance": S, "series": OPEN, "type": S}
    elif k == "Endpoints":
        extra = {"subsets": arr(OPEN, list_type="atomic")}
    elif k == "StorageClass":
        extra = {"allowVolumeExpansion": B, "allowedTopologies": arr(OPEN, list_type="atomic"),
                 "mountOptions": arr(S, list_type="atomic"), "parameters": STRMAP, "provisioner": S, "reclaimPolicy": S,
                 "volumeBindingMode": S}
    props = {"apiVersion": S, "kind": S, "metadata": ref(f"{META}.ObjectMeta"), **extra}
    if k not in ("ConfigMap", "Secret", "ServiceAccount", "Event", "Endpoints", "StorageClass"):
        props["spec"] = spec
        if k != "Lease":   # a Lease has no status
            props["status"] = status
    return name, props


def _gvk(rt: ResourceType) -> dict:
    return {"group": rt.group, "kind": rt.kind, "version": rt.version}


def build_v2() -> dict:
    defs = _definitions()
    defs[f"{META}.Status"] = obj({"apiVersion": S, "code": I32, "details": OPEN, "kind": S, "message": S,
                                  "metadata": OPEN, "reason": S, "status": S})
    defs[f"{META}.Status"]["x-kubernetes-group-version-kind"] = [{"group": "", "kind": "Status", "version": "v1"}]
    paths: dict = {}
    for rt in RESOURCES:
        name, props = _kind_props(rt)
        defs[name] = {**obj(props, desc=f"{rt.kind} (twin schema)"), "x-kubernetes-group-version-kind": [_gvk(rt)]}
        defs[name + "List"] = {**obj({"apiVersion": S, "kind": S, "items": arr(ref(name)), "metadata": OPEN}, ["items"]),
                               "x-kubernetes-group-version-kind": [{**_gvk(rt), "kind": rt.list_kind}]}
        paths.update(_paths(rt, name))
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": paths, "definitions": defs}


_COMMON_WRITE_PARAMS = ["dryRun", "fieldManager", "fieldValidation"]


def _qparam(name: str, typ: str = "string") -> dict:
    return {"name": name, "in": "query", "type": typ, "uniqueItems": True}


def _op(rt: ResourceType, action: str, verb: str, name: str, params: list[str], consumes=None, response: str | None = None):
    op = {
        "operationId": f"{verb}{rt.kind}",
        "consumes": consumes or ["*/*"],
        "produces": ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"],
        "schemes": ["https"],
        "tags": [rt.group.replace(".", "_") + "_" + rt.version if rt.group else "core_v1"],
        "parameters": [_qparam(p, "boolean" if p == "force" else "string") for p in params],
        "responses": {"200": {"description": "OK", "schema": ref(response or name)}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rt),
    }
    return op


# The server accepts application/strategic-merge-patch+json for every kind, but the documents do not advertise it:
# kubectl then computes strategic merge patches from its compiled-in Go types (the exact patch metadata of upstream)
# instead of from these reduced schemas, which would make it print "error calculating patch from openapi" warnings
# whenever a field inside an open sub-object changes. See README "Knowing differences".
PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]


def _paths(rt: ResourceType, name: str) -> dict:
    base = rt.prefix + ("/namespaces/{namespace}" if rt.namespaced else "")
    coll = f"{base}/{rt.plural}"
    item = coll + "/{name}"
    out: dict = {}
    verbs = set(rt.verbs)
    c: dict = {}
    if "list" in verbs:
        c["get"] = _op(rt, "list", "list", name, ["labelSelector", "fieldSelector", "limit", "continue", "watch"],
                       response=name + "List")
    if "create" in verbs:
        c["post"] = _op(rt, "post", "create", name, _COMMON_WRITE_PARAMS)
    if "deletecollection" in verbs:
        c["delete"] = _op(rt, "deletecollection", "deletecollection", name, ["labelSelector", "fieldSelector", "dryRun"],
                          response=f"{META}.Status")
    if c:
        out[coll] = c
    i: dict = {}
    if "get" in verbs:
        i["get"] = _op(rt, "get", "read", name, [])
    if "update" in verbs:
        i["put"] = _op(rt, "put", "replace", name, _COMMON_WRITE_PARAMS)
    if "patch" in verbs:
        i["patch"] = _op(rt, "patch", "patch", name, [*_COMMON_WRITE_PARAMS, "force"], consumes=PATCH_TYPES)
    if "delete" in verbs:
        i["delete"] = _op(rt, "delete", "delete", name, ["dryRun", "gracePeriodSeconds", "propagationPolicy"],
                          response=f"{META}.Status")
    if i:
        out[item] = i
    return out


# ---------------------------------------------------------------------------------------------------------------------
# v3


def _to_v3_schema(s):
    if isinstance(s, dict):
        out = {}
        for k, v in s.items():
            if k == "$ref":
                out["allOf"] = [{"$ref": v.replace("#/definitions/", "#/components/schemas/")}]
            elif k == "format" and v == "int-or-string":
                out["x-kubernetes-int-or-string"] = True
            else:
                out[k] = _to_v3_schema(v)
        if "x-kubernetes-int-or-string" in out:
            out.pop("type", None)
        if out.get("type") == "object" and out.get("additionalProperties") == {"description": "arbitrary"}:
            out.pop("additionalProperties")
            out["x-kubernetes-preserve-unknown-fields"] = True
        return out
    if isinstance(s, list):
        return [_to_v3_schema(x) for x in s]
    return s


def _referenced(defs: dict, roots: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if n in seen or n not in defs:
            continue
        seen.add(n)
        text = json.dumps(defs[n])
        for part in text.split('"#/definitions/')[1:]:
            stack.append(part.split('"', 1)[0])
    return seen


def build_v3(group: str, version: str, v2: dict) -> dict:
    defs = v2["definitions"]
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    paths = {}
    roots = [f"{META}.Status"]
    for p, item in v2["paths"].items():
        if not p.startswith(prefix + "/"):
            continue
        v3item = {}
        for method, op in item.items():
            rname = op["responses"]["200"]["schema"]["$ref"].split("/")[-1]
            roots.append(rname)
            o = {k: v for k, v in op.items() if k not in ("consumes", "produces", "schemes", "parameters", "responses")}
            o["parameters"] = [{"name": q["name"], "in": "query", "schema": {"type": q["type"]}, "uniqueItems": True}
                               for q in op["parameters"]]
            o["responses"] = {"200": {"description": "OK", "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{rname}"}}}}}
            if method in ("post", "put", "patch"):
                types = op["consumes"] if method == "patch" else ["*/*"]
                body_schema = {"$ref": f"#/components/schemas/{rname}"} if method != "patch" else {"type": "object"}
                o["requestBody"] = {"content": {t: {"schema": body_schema} for t in types}, "required": True}
            v3item[method] = o
        paths[p] = v3item
    schemas = {n: _to_v3_schema(defs[n]) for n in sorted(_referenced(defs, roots))}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": paths,
            "components": {"schemas": schemas}}


class OpenAPI:
    """Builds the documents once and caches their encodings."""

    def __init__(self):
        self.v2 = build_v2()
        self.v2_json = json.dumps(self.v2).encode()
        self.v2_pb = encode_v2(self.v2)
        self.v2_etag = hashlib.sha512(self.v2_json).hexdigest()[:32].upper()
        self.v3: dict[str, bytes] = {}
        self.v3_hash: dict[str, str] = {}
        gvs = sorted({(rt.group, rt.version) for rt in RESOURCES})
        for g, v in gvs:
            key = f"apis/{g}/{v}" if g else f"api/{v}"
            body = json.dumps(build_v3(g, v, self.v2)).encode()
            self.v3[key] = body
            self.v3_hash[key] = hashlib.sha512(body).hexdigest()[:128].upper()

    def v3_root(self) -> dict:
        return {"paths": {k: {"serverRelativeURL": f"/openapi/v3/{k}?hash={h}"} for k, h in self.v3_hash.items()}}


# ---------------------------------------------------------------------------------------------------------------------
# protobuf encoding of gnostic's openapi_v2.Document (github.com/google/gnostic-models/openapiv2/OpenAPIv2.proto)


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _ld(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _str(field: int, s: str) -> bytes:
    return _ld(field, s.encode())


def _bool(field: int, v: bool) -> bytes:
    return _key(field, 0) + _varint(1 if v else 0) if v else b""


def _int(field: int, v: int) -> bytes:
    return _key(field, 0) + _varint(int(v))


def _double(field: int, v: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", float(v))


def _any(value) -> bytes:
    """openapi_v2.Any{yaml=2}: JSON is valid YAML."""
    return _str(2, json.dumps(value))


def _named_any(name: str, value) -> bytes:
    return _str(1, name) + _ld(2, _any(value))


def _schema(s: dict) -> bytes:
    out = b""
    if "$ref" in s:
        out += _str(1, s["$ref"])
    if "format" in s:
        out += _str(2, s["format"])
    if "description" in s:
        out += _str(4, s["description"])
    if "default" in s:
        out += _ld(5, _any(s["default"]))
    for r in s.get("required", []):
        out += _str(19, r)
    if "additionalProperties" in s:
        ap = s["additionalProperties"]
        out += _ld(21, _ld(1, _schema(ap)) if isinstance(ap, dict) else _bool(2, bool(ap)))
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        out += _ld(22, b"".join(_str(1, t) for t in types))
    if "items" in s:
        out += _ld(23, _ld(1, _schema(s["items"])))
    for sub in s.get("allOf", []):
        out += _ld(24, _schema(sub))
    if "properties" in s:
        props = b"".join(_ld(1, _str(1, k) + _ld(2, _schema(v))) for k, v in s["properties"].items())
        out += _ld(25, props)
    for k, v in s.items():
        if k.startswith("x-"):
            out += _ld(31, _named_any(k, v))
    return out


def _operation(op: dict) -> bytes:
    out = b""
    for t in op.get("tags", []):
        out += _str(1, t)
    if "operationId" in op:
        out += _str(5, op["operationId"])
    for p in op.get("produces", []):
        out += _str(6, p)
    for c in op.get("consumes", []):
        out += _str(7, c)
    for p in op.get("parameters", []):
        qp = _bool(1, p.get("required", False)) + _str(2, p["in"]) + _str(4, p["name"]) + _str(6, p.get("type", "string"))
        if p.get("uniqueItems"):
            qp += _bool(20, True)
        non_body = _ld(3, qp)  # NonBodyParameter.query_parameter_sub_schema
        parameter = _ld(2, non_body)  # Parameter.non_body_parameter
        out += _ld(8, _ld(1, parameter))  # ParametersItem.parameter
    if "responses" in op:
        codes = b""
        for code, resp in op["responses"].items():
            r = _str(1, resp.get("description", ""))
            if "schema" in resp:
                r += _ld(2, _ld(1, _schema(resp["schema"])))  # SchemaItem.schema
            codes += _ld(1, _str(1, code) + _ld(2, _ld(1, r)))  # NamedResponseValue{name, ResponseValue.response}
        out += _ld(9, codes)
    for s in op.get("schemes", []):
        out += _str(10, s)
    for k, v in op.items():
        if k.startswith("x-"):
            out += _ld(13, _named_any(k, v))
    return out


_METHOD_FIELD = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def encode_v2(doc: dict) -> bytes:
    out = _str(1, doc["swagger"])
    out += _ld(2, _str(1, doc["info"]["title"]) + _str(2, doc["info"]["version"]))
    paths = b""
    for p, item in doc["paths"].items():
        pi = b"".join(_ld(_METHOD_FIELD[m], _operation(op)) for m, op in item.items())
        paths += _ld(2, _str(1, p) + _ld(2, pi))
    out += _ld(8, paths)
    defs = b"".join(_ld(1, _str(1, n) + _ld(2, _schema(s))) for n, s in doc["definitions"].items())
    out += _ld(9, defs)
    return out

