"""The gateway reached as operators reach it: kubectl port-forward to the model-engine Service, the Kubernetes service
proxy, and a pods/portforward tunnel from the Python client. The model-engine pods' port 5000 is the twin's API."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from .portforward_tools import PortForward, kubectl_binaries
from .test_e2e_runbook import NS, wait_for

pytestmark = pytest.mark.twin
CURL = shutil.which("curl")
PROXY = f"/api/v1/namespaces/{NS}/services/model-engine:80/proxy"

# The runbook's step 2 create call, character for character (onprem-runbook.md, "Create Test Endpoint").
RUNBOOK_CREATE = """curl -X POST -H "Content-Type: application/json" -u "test-user-id:" "http://localhost:5000/v1/llm/model-endpoints" -d '{
  "name": "test-endpoint-v1",
  "model_name": "test-model",
  "endpoint_type": "streaming",
  "inference_framework": "vllm",
  "inference_framework_image_tag": "vllm-onprem",
  "source": "hugging_face",
  "checkpoint_path": "s3://scale-gp-models/intermediate-model-aws/",
  "num_shards": 1,
  "cpus": 4,
  "memory": "16Gi",
  "storage": "50Gi",
  "gpus": 1,
  "gpu_type": "nvidia-tesla-t4",
  "nodes_per_worker": 1,
  "min_workers": 1,
  "max_workers": 1,
  "per_worker": 1,
  "metadata": {"team": "test", "product": "llm-engine"},
  "labels": {"team": "test", "product": "llm-engine"}
}'"""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET6) as s:
        try:
            s.bind(("::1", port))
        except OSError:
            return False
    return True


def k8s(odp_twin, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """A request to the Kubernetes API with the kubeconfig's admin token (what the collection's k8s auth sends)."""
    h = {"Authorization": "Bearer twin-token", **(headers or {})}
    req = urllib.request.Request(odp_twin.emulator.url + path, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
@pytest.mark.parametrize("kubectl_bin", kubectl_binaries(), ids=str)
def test_runbook_port_forward_then_curl_readyz_and_create(odp_twin, me, tmp_path, kubectl_bin):
    """`kubectl port-forward svc/model-engine -n llm-core 5000:80 &` then the runbook's curl, verbatim when 5000 is free."""
    local = 5000 if _port_free(5000) else 0
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    with PortForward(kubectl_bin, odp_twin.emulator.kubeconfig_path, "svc/model-engine", f"{local}:80", namespace=NS,
                     env=env) as pf:
        assert f"Forwarding from 127.0.0.1:{pf.port} -> 5000" in pf.output()
        ready = subprocess.run([CURL, "-sS", f"localhost:{pf.port}/readyz"], capture_output=True, text=True, timeout=20,
                               check=False)
        assert (ready.returncode, ready.stdout) == (0, '"OK"')
        me.created.append("test-endpoint-v1")
        create = subprocess.run(["bash", "-c", RUNBOOK_CREATE.replace("localhost:5000", f"localhost:{pf.port}")],
                                capture_output=True, text=True, timeout=30, check=False)
        assert create.returncode == 0, create.stderr
        assert list(json.loads(create.stdout)) == ["endpoint_creation_task_id"]
    ep = me.endpoint("test-endpoint-v1")
    assert ep["name"] == "test-endpoint-v1" and ep["spec"]["created_by"] == "test-user-id"


def test_service_proxy_reaches_the_gateway_with_method_query_and_body(odp_twin, me):
    for name in ("model-engine:80", "model-engine:http", "http:model-engine:80"):
        status, body, _ = k8s(odp_twin, "GET", f"/api/v1/namespaces/{NS}/services/{name}/proxy/readyz")
        assert (status, body) == (200, b'"OK"'), name
    fault = {"fault": "slow_tool_install", "endpoint": "through-the-proxy", "seconds": 1}
    status, body, _ = k8s(odp_twin, "POST", f"{PROXY}/_twin/faults", json.dumps(fault).encode(),
                          {"Content-Type": "application/json"})
    assert status == 200, body
    status, body, _ = k8s(odp_twin, "GET", f"{PROXY}/_twin/faults")
    assert any(f.get("endpoint") == "through-the-proxy" for f in json.loads(body)["faults"])
    status, body, _ = k8s(odp_twin, "DELETE", f"{PROXY}/_twin/faults?fault=slow_tool_install&endpoint=through-the-proxy")
    assert (status, json.loads(body)) == (200, {"removed": 1})


def test_service_proxy_does_not_forward_authorization(odp_twin, me):
    """A request carries one Authorization header, and through the service proxy it holds the Kubernetes credentials
    (here the kubeconfig's bearer token). The apiserver deletes it once it has authenticated the request, so no
    model-engine user reaches the gateway through services/proxy: every authenticated route answers 401."""
    status, body, headers = k8s(odp_twin, "GET", f"{PROXY}/v1/llm/model-endpoints")
    assert (status, json.loads(body)) == (401, {"detail": "No authentication was passed in"})
    assert headers.get("WWW-Authenticate") == "Bearer"
    # the gateway ignores x-api-key (upstream reads only HTTP Basic, then Bearer, from Authorization)
    status, _, _ = k8s(odp_twin, "GET", f"{PROXY}/v1/llm/model-endpoints", headers={"x-api-key": "test-user-id"})
    assert status == 401


def test_python_client_portforward_carries_basic_auth_to_the_gateway(odp_twin, me):
    """A pods/portforward tunnel (kubernetes.stream.portforward) is raw TCP: the model-engine Basic auth travels intact."""
    from kubernetes import client, config
    from kubernetes.stream import portforward

    api = config.new_client_from_config(str(odp_twin.emulator.kubeconfig_path))
    try:
        core = client.CoreV1Api(api)
        pod = next(p for p in core.list_namespaced_pod(NS, label_selector="app=model-engine").items
                   if p.status.phase == "Running")
        pf = portforward(core.connect_get_namespaced_pod_portforward, pod.metadata.name, NS, ports="5000")
        sock = pf.socket(5000)
        sock.settimeout(20)
        sock.sendall(b"GET /v1/llm/model-endpoints HTTP/1.1\r\nHost: model-engine\r\n"
                     b"Authorization: Basic dGVzdC11c2VyLWlkOg==\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        pf.close()
    finally:
        api.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert "model_endpoints" in json.loads(payload)


def test_service_proxy_answers_503_without_a_ready_gateway_pod(odp_twin, me, twin_kubectl):
    twin_kubectl("scale", "deployment/model-engine", "-n", NS, "--replicas=0")
    try:
        def gone():
            status, body, _ = k8s(odp_twin, "GET", f"{PROXY}/readyz")
            return status == 503 and json.loads(body)

        status = wait_for(gone, timeout=20, what="proxy 503")
        assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": 'no endpoints available for service "model-engine"', "reason": "ServiceUnavailable",
                          "code": 503}
        pf = subprocess.run([str(kubectl_binaries()[0]), "--kubeconfig", str(odp_twin.emulator.kubeconfig_path),
                             "port-forward", "svc/model-engine", "-n", NS, "0:80", "--pod-running-timeout=2s"],
                            capture_output=True, text=True, timeout=30, check=False)
        assert pf.returncode == 1 and "timed out waiting for the condition" in pf.stderr, pf.stderr
    finally:
        twin_kubectl("scale", "deployment/model-engine", "-n", NS, "--replicas=1")
    wait_for(lambda: k8s(odp_twin, "GET", f"{PROXY}/readyz")[0] == 200, timeout=30, what="gateway back")
    wait_for(lambda: me.get("/readyz").status == 200, timeout=30, what="readyz 200")
    time.sleep(0.2)
