# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes access for the domain modules, built on kubernetes.core's client factory.

The options keep kubernetes.core's names and K8S_AUTH_* environment fallbacks, except that TLS
verification of the cluster API is ``k8s_validate_certs`` / ``k8s_ca_cert`` so that it does not
collide with the model-engine gateway's ``validate_certs`` in modules that talk to both.
"""

from __future__ import annotations

import json

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client

from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import resource_name
from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError
from ansible_collections.odp.model_engine.plugins.module_utils.quantity import QuantityError, quantity_to_bytes

try:
    from kubernetes.client import AppsV1Api, AutoscalingV2Api, CoreV1Api
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import stream
except ImportError:  # reported by ModelEngineModule(requires=("kubernetes",))
    AppsV1Api = AutoscalingV2Api = CoreV1Api = ApiException = stream = None

K8S_AUTH_SPEC = dict(
    kubeconfig=dict(type="raw", no_log=True),
    context=dict(type="str"),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    k8s_validate_certs=dict(type="bool"),
    k8s_ca_cert=dict(type="path"),
)

GPU = "nvidia.com/gpu"
EPHEMERAL = "ephemeral-storage"
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"


def api_client(params):
    """kubernetes ApiClient from the module's K8S_AUTH_SPEC options (K8S_AUTH_* env vars fill the gaps)."""
    kwargs = {k: params.get(k) for k in ("kubeconfig", "context", "host", "api_key") if params.get(k) is not None}
    if params.get("k8s_validate_certs") is not None:
        kwargs["validate_certs"] = params["k8s_validate_certs"]
    if params.get("k8s_ca_cert"):
        kwargs["ca_cert"] = params["k8s_ca_cert"]
    try:
        client = get_api_client(**kwargs)
    except Exception as e:  # CoreException, ConfigException
        raise KubeError("Could not configure the Kubernetes client: %s" % e)
    # K8SClient.client is kubernetes.core's dynamic client; its .client is the ApiClient.
    return getattr(client.client, "client", client.client)


def core_api(params):
    return CoreV1Api(api_client(params))


def apps_api(params):
    return AppsV1Api(api_client(params))


def autoscaling_api(params):
    return AutoscalingV2Api(api_client(params))


def endpoint_objects(params, namespace):
    """Every Deployment, Service, HPA and ConfigMap an endpoint builder made (label managed-by=model-engine),
    as {kind, name, endpoint_id}."""
    client = api_client(params)
    core, apps, hpa = CoreV1Api(client), AppsV1Api(client), AutoscalingV2Api(client)
    sel = "managed-by=model-engine"
    out = []
    for kind, lister in (("Deployment", apps.list_namespaced_deployment), ("Service", core.list_namespaced_service),
                         ("HorizontalPodAutoscaler", hpa.list_namespaced_horizontal_pod_autoscaler),
                         ("ConfigMap", core.list_namespaced_config_map)):
        try:
            items = client.sanitize_for_serialization(lister(namespace, label_selector=sel)).get("items", [])
        except ApiException as e:
            raise api_error(e, "Listing %ss" % kind)
        for item in items:
            meta = item.get("metadata") or {}
            labels = meta.get("labels") or {}
            out.append({"kind": kind, "name": meta.get("name"), "endpoint_id": labels.get("endpoint_id"),
                        "created_by": labels.get("created_by")})
    return out


def read_or_none(read, name, namespace, api_client):
    """An object as a plain dict, or None when it does not exist."""
    try:
        return api_client.sanitize_for_serialization(read(name, namespace))
    except ApiException as e:
        if e.status == 404:
            return None
        raise api_error(e, "Reading %s/%s" % (namespace, name))


def pod_events(api, namespace, pod):
    """Events about a pod, oldest first, as plain dicts."""
    try:
        raw = api.list_namespaced_event(namespace, field_selector="involvedObject.name=%s" % pod)
    except ApiException as e:
        raise api_error(e, "Listing events of %s" % pod)
    items = api.api_client.sanitize_for_serialization(raw).get("items", [])
    return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")


def container_logs(api, namespace, pod, container, lines=30):
    """Last lines of a container's log, preceded by the previous instance's when it restarted: a
    crash-looping container's error is in the previous log while the new one only starts up."""
    out = []
    for previous in (True, False):
        try:
            text = api.read_namespaced_pod_log(pod, namespace, container=container, tail_lines=lines, previous=previous)
        except ApiException:
            continue  # no previous instance (400), or the container has not started
        if text and text.strip():
            out += (["--- previous instance ---"] if previous else []) + text.splitlines()
            if previous:
                out.append("--- current instance ---")
    return out


def api_error(e, what):
    try:
        body = json.loads(e.body)
        detail = body.get("message") or e.reason
    except (TypeError, ValueError, AttributeError):
        detail = getattr(e, "reason", str(e))
    return KubeError("%s: HTTP %s %s" % (what, getattr(e, "status", "?"), detail))


# ----------------------------------------------------------------------------- capacity
def _bytes(value):
    try:
        return quantity_to_bytes(value) if value is not None else 0
    except QuantityError:
        return 0


def _container_requests(container):
    res = container.get("resources") or {}
    req = dict(res.get("limits") or {})
    req.update(res.get("requests") or {})  # requests default to limits
    return req


def node_capacity(nodes, pods):
    """Per node: GPU and ephemeral-storage allocatable and what bound, non-terminated pods request.

    ``nodes`` and ``pods`` are plain dicts (API objects serialised with to_dict/sanitize).
    """
    out = {}
    for node in nodes:
        meta = node.get("metadata") or {}
        alloc = (node.get("status") or {}).get("allocatable") or {}
        spec = node.get("spec") or {}
        out[meta["name"]] = {
            "name": meta["name"],
            "gpu_type": (meta.get("labels") or {}).get(ACCELERATOR_LABEL),
            "labels": meta.get("labels") or {},
            "schedulable": not spec.get("unschedulable", False),
            "gpu_allocatable": int(_bytes(alloc.get(GPU))),
            "gpu_requested": 0,
            "ephemeral_allocatable": _bytes(alloc.get(EPHEMERAL)),
            "ephemeral_requested": 0,
            "pods": 0,
        }
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("node_name") or (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if node_name not in out or phase in ("Succeeded", "Failed"):
            continue
        entry = out[node_name]
        entry["pods"] += 1
        for c in (pod.get("spec") or {}).get("containers") or []:
            req = _container_requests(c)
            entry["gpu_requested"] += int(_bytes(req.get(GPU)))
            entry["ephemeral_requested"] += _bytes(req.get(EPHEMERAL))
    for entry in out.values():
        entry["gpu_free"] = entry["gpu_allocatable"] - entry["gpu_requested"]
        entry["ephemeral_free"] = entry["ephemeral_allocatable"] - entry["ephemeral_requested"]
    return out


def read_capacity(api):
    try:
        nodes = api.api_client.sanitize_for_serialization(api.list_node()).get("items", [])
        pods = api.api_client.sanitize_for_serialization(api.list_pod_for_all_namespaces()).get("items", [])
    except ApiException as e:
        raise api_error(e, "Listing nodes and pods")
    return node_capacity(nodes, pods)


# ----------------------------------------------------------------------------- endpoint pods
def endpoint_pods(api, namespace, endpoint_id):
    """Pods of an endpoint's Deployment, newest first (selector app=<resource name>)."""
    try:
        pods = api.list_namespaced_pod(namespace, label_selector="app=%s" % resource_name(endpoint_id))
    except ApiException as e:
        raise api_error(e, "Listing pods of endpoint %s" % endpoint_id)
    items = api.api_client.sanitize_for_serialization(pods).get("items", [])
    return sorted(items, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "", reverse=True)


def find_pods(api, namespace, pod=None, endpoint_id=None, endpoint_name=None):
    """The named pod, or an endpoint's pods (by id: the Deployment's app label; by name: the
    ``endpoint_name`` label), newest first; [] when none exists."""
    try:
        if pod:
            return [api.api_client.sanitize_for_serialization(api.read_namespaced_pod(pod, namespace))]
        if endpoint_id:
            return endpoint_pods(api, namespace, endpoint_id)
        raw = api.list_namespaced_pod(namespace, label_selector="endpoint_name=%s" % endpoint_name)
    except ApiException as e:
        if e.status == 404:
            return []
        raise api_error(e, "Reading the pods of %s" % (pod or endpoint_id or endpoint_name))
    items = api.api_client.sanitize_for_serialization(raw).get("items", [])
    return sorted(items, key=lambda x: (x.get("metadata") or {}).get("creationTimestamp") or "", reverse=True)


def exec_in_pod(api, namespace, pod, container, argv, timeout=300):
    """Run argv in the container through the exec API; return (rc, stdout, stderr)."""
    try:
        resp = stream(api.connect_get_namespaced_pod_exec, pod, namespace, command=list(argv), container=container,
                      stdout=True, stderr=True, stdin=False, tty=False, _preload_content=False)
    except ApiException as e:
        raise api_error(e, "exec in %s/%s container %s" % (namespace, pod, container))
    except Exception as e:  # websocket handshake errors
        raise KubeError("exec in %s/%s container %s failed: %s" % (namespace, pod, container, e))
    out, err = [], []
    try:
        resp.run_forever(timeout=timeout)
        out.append(resp.read_stdout() or "")
        err.append(resp.read_stderr() or "")
        status = resp.read_channel(3)
    finally:
        resp.close()
    rc = 0
    if status:
        try:
            st = json.loads(status)
        except ValueError:
            st = {}
        if st.get("status") != "Success":
            causes = (st.get("details") or {}).get("causes") or []
            codes = [c.get("message") for c in causes if c.get("reason") == "ExitCode"]
            rc = int(codes[0]) if codes else 1
    return rc, "".join(out), "".join(err)
