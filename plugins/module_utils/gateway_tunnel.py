# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reach the model-engine gateway through the Kubernetes API, as the runbook's ``kubectl port-forward
svc/model-engine -n llm-core 5000:80`` does, with the credentials and TLS of the Kubernetes client and no
background process.

Why a port-forward tunnel and not the API server's service proxy (``/api/v1/namespaces/<ns>/services/<svc>:80/proxy/``):
the API server's authentication filter deletes the ``Authorization`` header once it has authenticated the request,
and model-engine reads the user only from that header (HTTP Basic), so every authenticated route would answer 401
through the proxy. A ``pods/portforward`` stream is raw TCP: the gateway sees the request as sent.

Like kubectl, the Service is resolved to one Ready pod behind it (its Endpoints object) and the Service port to the
pod's target port; a Service with no ready endpoint fails with the API server's own words
(``no endpoints available for service "model-engine"``), so that the operator knows the gateway is down, not
unreachable.
"""

from __future__ import annotations

import http.client
import io

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import urlsplit

from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError


class GatewayTunnel(object):
    """``open(method, url, data, headers, timeout)`` for ModelEngineClient: one HTTP exchange through a port-forward
    to a Ready pod of ``namespace/service``; 4xx/5xx are raised as HTTPError and tunnel failures as URLError, as
    ``open_url`` does, so that the client's retries and messages stay the same."""

    def __init__(self, kube, namespace, service, port=80):
        self.kube = kube
        self.namespace = namespace
        self.service = service
        self.port = int(port)
        self.target = None  # (pod, container port), resolved once and again after a failure

    @property
    def base_url(self):
        return "http://%s.%s.svc:%d" % (self.service, self.namespace, self.port)

    def describe(self):
        return "Service %s/%s port %d through the Kubernetes API (port-forward)" % (self.namespace, self.service, self.port)

    # ----------------------------------------------------------------------------------------------- resolution
    def _service_port(self, svc):
        for sp in (svc.get("spec") or {}).get("ports") or []:
            if sp.get("port") == self.port:
                return sp
        raise KubeError("no service port %d found for service \"%s\" in namespace %s" % (self.port, self.service, self.namespace))

    def resolve(self):
        """(pod name, pod port) behind the Service port, from its Endpoints (ready addresses only)."""
        svc = self.kube.get("Service", self.service, self.namespace)
        if svc is None:
            raise KubeError("Service %s/%s does not exist: check model_engine_service and the control-plane namespace" % (
                self.namespace, self.service), status=404)
        sp = self._service_port(svc)
        endpoints = self.kube.get("Endpoints", self.service, self.namespace) or {}
        for subset in endpoints.get("subsets") or []:
            ports = subset.get("ports") or []
            port = next((p.get("port") for p in ports if p.get("name") == sp.get("name")), ports[0].get("port") if ports else None)
            pods = [a.get("targetRef", {}).get("name") for a in subset.get("addresses") or [] if (a.get("targetRef") or {}).get("kind") == "Pod"]
            if pods and port:
                return pods[0], int(port)
        raise KubeError("no endpoints available for service \"%s\" (namespace %s): no Ready model-engine gateway pod; the "
                        "gateway is down (kubectl get pods -n %s)" % (self.service, self.namespace, self.namespace), status=503)

    # ----------------------------------------------------------------------------------------------- one exchange
    def _connect(self, timeout):
        from kubernetes.stream import portforward

        pod, port = self.target or self.resolve()
        self.target = (pod, port)
        try:
            pf = portforward(self.kube.core.connect_get_namespaced_pod_portforward, pod, self.namespace, ports=str(port))
        except Exception as e:  # ApiException (403 on pods/portforward), websocket handshake errors
            self.target = None
            raise URLError("port-forward to pod %s/%s port %d failed: %s" % (self.namespace, pod, port, getattr(e, "reason", e)))
        sock = pf.socket(port)
        sock.settimeout(timeout)
        return pf, sock, pod, port

    def open(self, method, url, data, headers, timeout):
        parts = urlsplit(url)
        path = parts.path + ("?" + parts.query if parts.query else "")
        pf, sock, pod, port = self._connect(timeout)
        conn = http.client.HTTPConnection("%s.%s.svc" % (self.service, self.namespace), self.port, timeout=timeout)
        conn.sock = sock
        try:
            conn.request(method, path, body=data, headers=dict(headers, Connection="close"))
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.target = None  # the pod may be gone: resolve again next time
            error = pf.error(port)
            detail = " (%s)" % error.strip() if error else ""
            raise URLError("tunnel to pod %s/%s port %d: %s%s" % (self.namespace, pod, port, type(e).__name__, detail))
        finally:
            conn.close()
            pf.close()
        if resp.status >= 400:
            raise HTTPError(url, resp.status, resp.reason, resp.headers, io.BytesIO(body))
        return _Response(resp.status, body)


class _Response(object):
    def __init__(self, status, body):
        self.status = status
        self._body = body

    def read(self):
        return self._body
