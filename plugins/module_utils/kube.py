# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes access for the domain modules, built on kubernetes.core's client factory.

The options keep kubernetes.core's names and K8S_AUTH_* environment fallbacks, except that TLS
verification of the cluster API is ``k8s_validate_certs`` / ``k8s_ca_cert`` so that it does not
collide with the model-engine gateway's ``validate_certs`` in modules that talk to both.
"""

from __future__ import annotations

import json

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import K8S_AUTH_SPEC  # noqa: F401 pylint: disable=unused-import
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import resource_name
from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError
from ansible_collections.odp.model_engine.plugins.module_utils.quantity import QuantityError, quantity_to_bytes, quantity_to_cores

try:
    from kubernetes.client.exceptions import ApiException
except ImportError:  # reported by ModelEngineModule(requires=("kubernetes",))
    class ApiException(Exception):  # so that ``except ApiException`` stays valid without the client
        status = None


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
    # imported here: kubernetes.core's client factory pulls in the dynamic client (0.2 s), which modules that only
    # import this file for its helpers never need
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client

    try:
        client = get_api_client(**kwargs)
    except Exception as e:  # CoreException, ConfigException
        raise KubeError("Could not configure the Kubernetes client: %s" % e)
    # K8SClient.client is kubernetes.core's dynamic client; its .client is the ApiClient.
    return getattr(client.client, "client", client.client)


def generated_api(name, client):
    """``kubernetes.client.<name>(client)``, imported when first asked for: each generated API class builds its
    models at import (CoreV1Api alone costs 0.4-0.7 s of CPU), and most modules need one or two of them."""
    import kubernetes.client

    return getattr(kubernetes.client, name)(client)


def core_api(params):
    return generated_api("CoreV1Api", api_client(params))


def stream(*args, **kwargs):
    """``kubernetes.stream.stream`` (the WebSocket exec), imported on first use."""
    from kubernetes.stream import stream as ws_stream

    return ws_stream(*args, **kwargs)


class _LazyApi(object):
    """A Kube attribute made on first use (a non-data descriptor: the instance's own attribute wins afterwards)."""

    def __init__(self, class_name):
        self.class_name = class_name
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        api = obj.__dict__[self.name] = generated_api(self.class_name, obj.client)
        return api


# kind -> (API attribute of Kube, method suffix of the generated client, namespaced)
KINDS = {
    "Pod": ("core", "pod", True),
    "Service": ("core", "service", True),
    "ConfigMap": ("core", "config_map", True),
    "Event": ("core", "event", True),
    "Endpoints": ("core", "endpoints", True),
    "PersistentVolumeClaim": ("core", "persistent_volume_claim", True),
    "PersistentVolume": ("core", "persistent_volume", False),
    "StorageClass": ("storage", "storage_class", False),
    "Node": ("core", "node", False),
    "Deployment": ("apps", "deployment", True),
    "ReplicaSet": ("apps", "replica_set", True),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontal_pod_autoscaler", True),
    "PodDisruptionBudget": ("policy", "pod_disruption_budget", True),
}


MISSING = object()  # what Kube.call_or_missing returns for a 404


def newest_first(items):
    return sorted(items, key=lambda x: (x.get("metadata") or {}).get("creationTimestamp") or "", reverse=True)


class Kube(object):
    """The Kubernetes calls the domain modules make, every one guarded: an API or connection error is raised as
    KubeError naming what was asked; objects come back as plain dicts (``sanitize_for_serialization``)."""

    core = _LazyApi("CoreV1Api")
    apps = _LazyApi("AppsV1Api")
    autoscaling = _LazyApi("AutoscalingV2Api")
    policy = _LazyApi("PolicyV1Api")
    storage = _LazyApi("StorageV1Api")

    def __init__(self, params=None, client=None):
        self.client = client if client is not None else api_client(params or {})

    def call(self, what, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` as plain data; KubeError (with the HTTP status) when it fails."""
        try:
            return self.client.sanitize_for_serialization(fn(*args, **kwargs))
        except ApiException as e:
            raise api_error(e, what)
        except Exception as e:  # urllib3 connection errors, TLS errors, a kubeconfig that points nowhere
            raise KubeError("%s failed: %s" % (what, e))

    def _method(self, verb, kind):
        api, suffix, namespaced = KINDS[kind]
        return getattr(getattr(self, api), "%s_%s%s" % (verb, "namespaced_" if namespaced else "", suffix)), namespaced

    def call_or_missing(self, what, fn, *args, **kwargs):
        """``call``, but an object that does not exist (404) is ``MISSING`` instead of an error."""
        try:
            return self.call(what, fn, *args, **kwargs)
        except KubeError as e:
            if e.status == 404:
                return MISSING
            raise

    def create(self, kind, body, namespace=None):
        """Create an object (a dict body); the created object."""
        fn, namespaced = self._method("create", kind)
        args = (namespace, body) if namespaced else (body,)
        return self.call("Creating %s %s/%s" % (kind, namespace or "", (body.get("metadata") or {}).get("name")), fn, *args)

    def delete(self, kind, name, namespace=None):
        """Delete an object; False when it was already gone."""
        fn, namespaced = self._method("delete", kind)
        args = (name, namespace) if namespaced else (name,)
        return self.call_or_missing("Deleting %s %s/%s" % (kind, namespace or "", name), fn, *args) is not MISSING

    def get(self, kind, name, namespace=None):
        """The object, or None when it does not exist."""
        fn, namespaced = self._method("read", kind)
        args = (name, namespace) if namespaced else (name,)
        found = self.call_or_missing("Reading %s %s/%s" % (kind, namespace or "", name), fn, *args)
        return None if found is MISSING else found

    def list(self, kind, namespace=None, selector=None, field_selector=None):
        fn, namespaced = self._method("list", kind)
        kwargs = {k: v for k, v in (("label_selector", selector), ("field_selector", field_selector)) if v}
        args = (namespace,) if namespaced else ()
        what = "Listing %ss%s%s" % (kind, " in %s" % namespace if namespaced else "", " (%s)" % selector if selector else "")
        return (self.call(what, fn, *args, **kwargs) or {}).get("items", [])

    def events(self, namespace, involved=None, warning_only=False):
        """Events (about one object when ``involved`` names it), oldest first."""
        fields = ["involvedObject.name=%s" % involved] if involved else []
        if warning_only:
            fields.append("type=Warning")
        items = self.list("Event", namespace, field_selector=",".join(fields) or None)
        return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def logs(self, namespace, pod, container, lines=30, head_bytes=None):
        """Last lines of a container's log, preceded by the previous instance's when it restarted: a
        crash-looping container's error is in the previous log while the new one only starts up. ``head_bytes``
        also reads the current log's beginning (a download tool's error comes early, then a guard loop may print
        the same line every few seconds for hours)."""
        out = self._head(namespace, pod, container, head_bytes) if head_bytes else []
        for previous in (True, False):
            try:
                text = self.core.read_namespaced_pod_log(pod, namespace, container=container, tail_lines=lines, previous=previous)
            except ApiException as e:
                if e.status in (401, 403):
                    raise api_error(e, "Reading the log of %s/%s container %s" % (namespace, pod, container))
                continue  # no previous instance (400), or the container has not started
            except Exception as e:  # connection errors
                raise KubeError("Reading the log of %s/%s container %s failed: %s" % (namespace, pod, container, e))
            if text and text.strip():
                out += (["--- previous instance ---"] if previous else []) + text.splitlines()
                if previous:
                    out.append("--- current instance ---")
        return out

    def _head(self, namespace, pod, container, head_bytes):
        try:
            text = self.core.read_namespaced_pod_log(pod, namespace, container=container, limit_bytes=head_bytes)
        except ApiException as e:
            if e.status in (401, 403):
                raise api_error(e, "Reading the log of %s/%s container %s" % (namespace, pod, container))
            return []
        except Exception as e:  # connection errors
            raise KubeError("Reading the log of %s/%s container %s failed: %s" % (namespace, pod, container, e))
        return [*(text or "").splitlines(), "--- last lines ---"]

    def find_pods(self, namespace, pod=None, endpoint_id=None, endpoint_name=None):
        """The named pod, or an endpoint's pods (by id: the Deployment's app label; by name: the
        ``endpoint_name`` label), newest first; [] when none exists."""
        if pod:
            found = self.get("Pod", pod, namespace)
            return [found] if found else []
        if endpoint_id:
            return newest_first(self.list("Pod", namespace, "app=%s" % resource_name(endpoint_id)))
        return newest_first(self.list("Pod", namespace, "endpoint_name=%s" % endpoint_name))

    def capacity(self):
        """Per node: GPU, CPU, memory and ephemeral storage allocatable and requested (see ``node_capacity``)."""
        return node_capacity(self.list("Node"), self.list_all_pods())

    def list_all_pods(self):
        return (self.call("Listing pods in all namespaces", self.core.list_pod_for_all_namespaces) or {}).get("items", [])

    def patch_pod_annotations(self, namespace, pod, annotations):
        body = {"metadata": {"annotations": annotations}}
        return self.call("Annotating pod %s/%s" % (namespace, pod), self.core.patch_namespaced_pod, pod, namespace, body)

    def exec(self, namespace, pod, container, argv, timeout=300):
        """Run argv in the container through the exec API; return (rc, stdout, stderr)."""
        where = "exec in %s/%s container %s" % (namespace, pod, container)
        try:
            resp = stream(self.core.connect_get_namespaced_pod_exec, pod, namespace, command=list(argv), container=container,
                          stdout=True, stderr=True, stdin=False, tty=False, _preload_content=False)
        except ApiException as e:
            raise api_error(e, where)
        except Exception as e:  # websocket handshake errors
            raise KubeError("%s failed: %s" % (where, e))
        try:
            resp.run_forever(timeout=timeout)
            out, err, status = resp.read_stdout() or "", resp.read_stderr() or "", resp.read_channel(3)
        except Exception as e:  # the websocket broke mid-stream
            raise KubeError("%s failed while running: %s" % (where, e))
        finally:
            resp.close()
        return exit_code(status), out, err


def api_error(e, what):
    try:
        body = json.loads(e.body)
        detail = body.get("message") or e.reason
    except (TypeError, ValueError, AttributeError):
        detail = getattr(e, "reason", str(e))
    status = getattr(e, "status", None)
    hint = {401: " (the credentials were refused: check the kubeconfig/token)",
            403: " (this identity lacks the permission: ask for the RBAC rule, or use another kubeconfig context)"}.get(status, "")
    return KubeError("%s: HTTP %s %s%s" % (what, status or "?", detail, hint), status=status)


# ----------------------------------------------------------------------------- capacity
def _bytes(value):
    try:
        return quantity_to_bytes(value) if value is not None else 0
    except QuantityError:
        return 0


def _cores(value):
    try:
        return quantity_to_cores(value) if value is not None else 0.0
    except QuantityError:
        return 0.0


def _container_requests(container):
    res = container.get("resources") or {}
    req = dict(res.get("limits") or {})
    req.update(res.get("requests") or {})  # requests default to limits
    return req


def node_capacity(nodes, pods):
    """Per node: GPU, ephemeral-storage, CPU (cores) and memory (bytes) allocatable and what bound,
    non-terminated pods request, and which pods hold GPUs.

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
            "cpu_allocatable": _cores(alloc.get("cpu")),
            "cpu_requested": 0.0,
            "memory_allocatable": _bytes(alloc.get("memory")),
            "memory_requested": 0,
            "pods": 0,
            "gpu_holders": [],
        }
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("node_name") or (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if node_name not in out or phase in ("Succeeded", "Failed"):
            continue
        entry = out[node_name]
        entry["pods"] += 1
        gpus = 0
        for c in (pod.get("spec") or {}).get("containers") or []:
            req = _container_requests(c)
            gpus += int(_bytes(req.get(GPU)))
            entry["ephemeral_requested"] += _bytes(req.get(EPHEMERAL))
            entry["cpu_requested"] += _cores(req.get("cpu"))
            entry["memory_requested"] += _bytes(req.get("memory"))
        entry["gpu_requested"] += gpus
        if gpus:
            labels = (pod.get("metadata") or {}).get("labels") or {}
            entry["gpu_holders"].append("%s (%s, %d GPU)" % (labels.get("endpoint_name") or (pod.get("metadata") or {}).get("name"),
                                                             phase, gpus))
    for entry in out.values():
        entry["gpu_free"] = entry["gpu_allocatable"] - entry["gpu_requested"]
        entry["ephemeral_free"] = entry["ephemeral_allocatable"] - entry["ephemeral_requested"]
        entry["cpu_free"] = round(entry["cpu_allocatable"] - entry["cpu_requested"], 3)
        entry["memory_free"] = entry["memory_allocatable"] - entry["memory_requested"]
    return out


def exit_code(status):
    """The exit code in an exec stream's status channel (``{"status": "Success"}`` or a Failure with an ExitCode cause)."""
    if not status:
        return 0
    try:
        st = json.loads(status)
    except ValueError:
        return 1
    if st.get("status") == "Success":
        return 0
    codes = [c.get("message") for c in (st.get("details") or {}).get("causes") or [] if c.get("reason") == "ExitCode"]
    return int(codes[0]) if codes else 1
