# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes access for the domain modules, built on kubernetes.core's client factory.

The options keep kubernetes.core's names and K8S_AUTH_* environment fallbacks, except that TLS
verification of the cluster API is ``k8s_validate_certs`` / ``k8s_ca_cert`` so that it does not
collide with the model-engine gateway's ``validate_certs`` in modules that talk to both.
"""

from __future__ import annotations

import json
import re

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import K8S_AUTH_SPEC  # noqa: F401 pylint: disable=unused-import
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import resource_name
from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError
from ansible_collections.odp.model_engine.plugins.module_utils.quantity import QuantityError, quantity_to_bytes, quantity_to_cores


class _NoClient(Exception):
    """What ``client_error()`` gives without the kubernetes package (reported by ModelEngineModule(requires=...))."""

    status = None


def client_error():
    """kubernetes.client's ApiException, for ``except client_error() as e`` (evaluated only when something was raised).
    Imported on first use: the kubernetes package costs 0.2 s of CPU to import, which the modules and filters that only
    use this file's helpers (names, capacity arithmetic) never need."""
    try:
        from kubernetes.client.exceptions import ApiException
    except ImportError:
        return _NoClient
    return ApiException


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


def stream(configuration, url, headers):
    """The WebSocket client of an exec request (``kubernetes.stream``'s transport, imported on first use), unstarted."""
    from kubernetes.stream.ws_client import websocket_call

    return websocket_call(configuration, "GET", url, headers=headers, _preload_content=False)


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


# kind -> (API path, plural, namespaced). Kube asks the REST paths itself: the generated CoreV1Api, AppsV1Api and
# StorageV1Api build some 300 pydantic models when imported (0.5, 0.17 and 0.16 s of CPU per module run), for objects
# the collection only ever reads as plain JSON.
KINDS = {
    "Pod": ("api/v1", "pods", True),
    "Service": ("api/v1", "services", True),
    "ConfigMap": ("api/v1", "configmaps", True),
    "Secret": ("api/v1", "secrets", True),
    "Event": ("api/v1", "events", True),
    "Endpoints": ("api/v1", "endpoints", True),
    "PersistentVolumeClaim": ("api/v1", "persistentvolumeclaims", True),
    "PersistentVolume": ("api/v1", "persistentvolumes", False),
    "Node": ("api/v1", "nodes", False),
    "StorageClass": ("apis/storage.k8s.io/v1", "storageclasses", False),
    "Deployment": ("apis/apps/v1", "deployments", True),
    "ReplicaSet": ("apis/apps/v1", "replicasets", True),
    "HorizontalPodAutoscaler": ("apis/autoscaling/v2", "horizontalpodautoscalers", True),
    "PodDisruptionBudget": ("apis/policy/v1", "poddisruptionbudgets", True),
}


def resource_path(kind, namespace=None, name=None, subresource=None):
    """``/api/v1/namespaces/ns/pods/name/log`` and the like, for a kind of KINDS."""
    prefix, plural, namespaced = KINDS[kind]
    parts = ["", prefix] + (["namespaces", quote(namespace, safe="")] if namespaced and namespace else []) + [plural]
    return "/".join(parts + [quote(x, safe="") for x in (name, subresource) if x])


MISSING = object()  # what Kube.call_or_missing returns for a 404


def container_restarted(pod, name):
    """Whether container ``name`` of ``pod`` has a previous instance (a log of it to read)."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == name:
            return cs.get("restartCount", 0) > 0
    return False


def _or_missing(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except KubeError as e:
        if e.status == 404:
            return MISSING
        raise


def newest_first(items):
    return sorted(items, key=lambda x: (x.get("metadata") or {}).get("creationTimestamp") or "", reverse=True)


class Kube(object):
    """The Kubernetes calls the domain modules make, every one guarded: an API or connection error is raised as
    KubeError naming what was asked; objects come back as plain dicts (the API server's JSON)."""

    core = _LazyApi("CoreV1Api")  # for the port-forward of gateway_tunnel only

    def __init__(self, params=None, client=None):
        self.client = client if client is not None else api_client(params or {})
        self.requests = 0  # every HTTP request made through the client (reads, writes, logs, exec, pod proxy)
        call_api = getattr(self.client, "call_api", None)
        if call_api is not None:
            def counted(*args, **kwargs):
                self.requests += 1
                return call_api(*args, **kwargs)

            self.client.call_api = counted

    def request(self, what, method, path, **options):
        """One REST request through the client (its base URL, credentials, TLS settings and retries). ``options``:
        ``query`` (dict), ``body`` (JSON; a PATCH is a strategic merge patch, as kubectl's), ``timeout`` (seconds),
        ``returns``: "json" (default), the decoded answer (the text when it is not JSON); "text", the answer's text;
        "answer", ``(status, text)`` of any HTTP answer (a pod proxy's 503 is an answer, not an error). Otherwise
        KubeError naming ``what`` (with the HTTP status) when it fails."""
        query, body, returns = options.get("query"), options.get("body"), options.get("returns", "json")
        headers = {"Accept": "application/json, */*"}
        if body is not None:
            headers["Content-Type"] = "application/strategic-merge-patch+json" if method == "PATCH" else "application/json"
        serialized = self.client.param_serialize(method=method, resource_path=path, query_params=list((query or {}).items()),
                                                 header_params=headers, body=body, auth_settings=["BearerToken"])
        resp, data = self._guard(what, self._send, serialized, options.get("timeout"))
        text = (data or b"").decode("utf-8", "replace")
        if returns == "answer":
            return resp.status, text
        if not 200 <= resp.status <= 299:
            raise http_error(what, resp.status, resp.reason, text)
        if returns == "text" or "json" not in (resp.getheader("Content-Type") or "application/json"):
            return text
        try:
            return json.loads(text) if text else None
        except ValueError:
            return text

    def _send(self, serialized, timeout):
        resp = self.client.call_api(*serialized, _request_timeout=timeout)
        return resp, resp.read()

    def _guard(self, what, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, its failure raised as KubeError naming ``what`` (the one place a client error
        becomes the collection's error)."""
        try:
            return fn(*args, **kwargs)
        except client_error() as e:
            raise api_error(e, what)
        except Exception as e:  # urllib3 connection errors, TLS errors, a kubeconfig that points nowhere
            raise KubeError("%s failed: %s" % (what, e))

    def request_or_missing(self, what, method, path, **kwargs):
        """``request``, but an object that does not exist (404) is ``MISSING`` instead of an error."""
        return _or_missing(self.request, what, method, path, **kwargs)

    def call(self, what, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` of a generated API (CustomObjects, Coordination: cheap to import) as plain data."""
        return self.client.sanitize_for_serialization(self._guard(what, fn, *args, **kwargs))

    def call_or_missing(self, what, fn, *args, **kwargs):
        """``call``, but an object that does not exist (404) is ``MISSING`` instead of an error."""
        return _or_missing(self.call, what, fn, *args, **kwargs)

    def create(self, kind, body, namespace=None):
        """Create an object (a dict body); the created object."""
        what = "Creating %s %s/%s" % (kind, namespace or "", (body.get("metadata") or {}).get("name"))
        return self.request(what, "POST", resource_path(kind, namespace), body=body)

    def delete(self, kind, name, namespace=None):
        """Delete an object; False when it was already gone."""
        what = "Deleting %s %s/%s" % (kind, namespace or "", name)
        return self.request_or_missing(what, "DELETE", resource_path(kind, namespace, name)) is not MISSING

    def get(self, kind, name, namespace=None):
        """The object, or None when it does not exist."""
        found = self.request_or_missing("Reading %s %s/%s" % (kind, namespace or "", name), "GET", resource_path(kind, namespace, name))
        return None if found is MISSING else found

    def list(self, kind, namespace=None, selector=None, field_selector=None):
        """The objects of a kind (in ``namespace``; every namespace without one), by label and field selectors."""
        query = {k: v for k, v in (("labelSelector", selector), ("fieldSelector", field_selector)) if v}
        where = " in %s" % namespace if namespace and KINDS[kind][2] else (" in all namespaces" if KINDS[kind][2] else "")
        what = "Listing %ss%s%s" % (kind, where, " (%s)" % selector if selector else "")
        return (self.request(what, "GET", resource_path(kind, namespace), query=query) or {}).get("items", [])

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
        the same line every few seconds for hours). ``pod``: its name, or the pod as read (then a container that
        never restarted costs no request for a previous instance that cannot exist; but when its current log is
        empty, the previous one is asked after all: the container may have crashed and restarted since the read)."""
        restarted = True
        if isinstance(pod, dict):
            pod, restarted = pod["metadata"]["name"], container_restarted(pod, container)
        out = self._head(namespace, pod, container, head_bytes) if head_bytes else []
        current = self._log(namespace, pod, container, tailLines=lines, previous="false")
        if restarted or not (current or "").strip():
            previous = self._log(namespace, pod, container, tailLines=lines, previous="true")
            if previous and previous.strip():
                out += ["--- previous instance ---", *previous.splitlines(), "--- current instance ---"]
        return out + (current.splitlines() if current and current.strip() else [])

    def _head(self, namespace, pod, container, head_bytes):
        text = self._log(namespace, pod, container, limitBytes=head_bytes)
        return [*text.splitlines(), "--- last lines ---"] if text is not None else []

    def _log(self, namespace, pod, container, **query):
        """The text of a log request; None when there is none (no previous instance: 400, or not started yet);
        KubeError when the credentials are refused or the API server cannot be reached."""
        try:
            return self.request("Reading the log of %s/%s container %s" % (namespace, pod, container), "GET",
                                resource_path("Pod", namespace, pod, "log"), query=dict(query, container=container), returns="text")
        except KubeError as e:
            if e.status is None or e.status in (401, 403):
                raise
            return None

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
        return self.list("Pod")

    def patch_pod_annotations(self, namespace, pod, annotations):
        body = {"metadata": {"annotations": annotations}}
        return self.request("Annotating pod %s/%s" % (namespace, pod), "PATCH", resource_path("Pod", namespace, pod), body=body)

    def exec(self, namespace, pod, container, argv, timeout=300):
        """Run argv in the container through the exec API; return (rc, stdout, stderr)."""
        where = "exec in %s/%s container %s" % (namespace, pod, container)
        self.requests += 1  # the WebSocket transport bypasses call_api
        query = [("command", a) for a in argv] + [("container", container), ("stderr", "true"), ("stdin", "false"),
                                                  ("stdout", "true"), ("tty", "false")]
        _m, url, headers, _b, _p = self.client.param_serialize(method="GET", resource_path=resource_path("Pod", namespace, pod, "exec"),
                                                               query_params=query, header_params={}, auth_settings=["BearerToken"])
        resp = self._guard(where, stream, self.client.configuration, url, headers)  # a refused or failed handshake
        try:
            resp.run_forever(timeout=timeout)
            out, err, status = resp.read_stdout() or "", resp.read_stderr() or "", resp.read_channel(3)
        except Exception as e:  # the websocket broke mid-stream
            raise KubeError("%s failed while running: %s" % (where, e))
        finally:
            resp.close()
        return exit_code(status), out, err


# kubernetes.stream reports a refused WebSocket handshake (exec) as ApiException(status=0) whose reason is the
# websocket client's text: "Handshake status 403 Forbidden -+-+- {headers} -+-+- {body}".
HANDSHAKE_RE = re.compile(r"Handshake status (\d+) ([^-]*?) -\+-\+- .*? -\+-\+- (.*)$", re.S)


def api_error(e, what):
    status, reason, body = getattr(e, "status", None), getattr(e, "reason", None) or str(e), getattr(e, "body", None)
    refused = HANDSHAKE_RE.search(reason) if not status and isinstance(reason, str) else None
    if refused:  # the API server's own status and Status message, as for any other request
        status, reason, body = int(refused.group(1)), refused.group(2), refused.group(3)
    return http_error(what, status, reason, body)


def http_error(what, status, reason, body):
    """KubeError for an API server's refusal: its Status message when the body has one."""
    try:
        detail = json.loads(body).get("message") or reason
    except (TypeError, ValueError, AttributeError):
        detail = reason
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
