"""pods/portforward with the real kubectl (SPDY, and SPDY tunnelled through WebSockets), curl and the Python client."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import time

import pytest
from aiohttp import web

from tests.twin.k8s import EmulatorThread, PodRuntime

from .conftest import assert_healthy, tool_env, wait_for
from .portforward_tools import PortForward, kubectl_binaries

pytestmark = pytest.mark.twin
NS = "pf"
CURL = shutil.which("curl")


class EchoRuntime(PodRuntime):
    """Pods labelled runtime=echo: an HTTP server on container port 8080 that describes each request.
    Container port 9090 is declared but nothing listens there."""

    def handles(self, pod):
        return (pod["metadata"].get("labels") or {}).get("runtime") == "echo"

    async def run(self, pod, handle):
        async def echo(request: web.Request):
            body = await request.read()
            return web.json_response({"method": request.method, "path": request.path, "query": dict(request.query),
                                      "authorization": request.headers.get("Authorization"),
                                      "x_test": request.headers.get("X-Test"), "length": len(body),
                                      "sha256": hashlib.sha256(body).hexdigest()})

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        handle.expose(8080, "127.0.0.1", site._server.sockets[0].getsockname()[1])
        await handle.set_container_state("main", "running", ready=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


class NotReadyRuntime(PodRuntime):
    def handles(self, pod):
        return (pod["metadata"].get("labels") or {}).get("runtime") == "not-ready"

    async def run(self, pod, handle):
        await handle.set_container_state("main", "running", ready=False)
        await asyncio.Event().wait()


@pytest.fixture(scope="module")
def pf_twin(tmp_path_factory):
    from kubernetes import client, config

    t = EmulatorThread(tmp_path_factory.mktemp("k8s-pf")).start()
    t.emulator.register_runtime(EchoRuntime())
    t.emulator.register_runtime(NotReadyRuntime())
    api = config.new_client_from_config(str(t.kubeconfig_path))
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": NS}})
    core.create_namespaced_pod(NS, {"metadata": {"name": "echo", "labels": {"runtime": "echo", "app": "echo"}},
                                    "spec": {"containers": [{"name": "main", "image": "echo:1", "ports": [
                                        {"containerPort": 8080, "name": "http"}, {"containerPort": 9090, "name": "other"}]}]}})
    core.create_namespaced_service(NS, {"metadata": {"name": "echo"}, "spec": {"selector": {"app": "echo"}, "ports": [
        {"name": "web", "port": 80, "targetPort": "http"}]}})
    wait_for(lambda: core.read_namespaced_pod("echo", NS).status.phase == "Running", message="echo pod running")
    try:
        yield t, api
        assert_healthy(t)
    finally:
        api.close()
        t.stop()


def _curl(port: int, *args: str) -> dict:
    out = subprocess.run([CURL, "-sS", "--fail-with-body", *args, f"http://127.0.0.1:{port}/v1/things?x=1&y=two"],
                         check=False, capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _upgrades(t: EmulatorThread) -> list[tuple[str, int]]:
    return [(m, s) for _t, m, p, s in t.emulator.api.request_log if p.startswith(f"/api/v1/namespaces/{NS}/pods/echo/portforward")]


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
@pytest.mark.parametrize("websockets", [True, False], ids=["websocket-tunnel", "spdy"])
@pytest.mark.parametrize("kubectl_bin", kubectl_binaries(), ids=str)
def test_kubectl_port_forward_to_a_pod_carries_http_both_ways(pf_twin, tmp_path, kubectl_bin, websockets):
    t, _ = pf_twin
    before = len(_upgrades(t))
    body = tmp_path / "body.bin"
    body.write_bytes(bytes(range(256)) * 1200)   # 300 KiB: many SPDY frames each way
    env = tool_env(tmp_path, t.kubeconfig_path)
    with PortForward(kubectl_bin, t.kubeconfig_path, "pod/echo", "0:8080", namespace=NS, websockets=websockets, env=env) as pf:
        first = _curl(pf.port, "-u", "test-user-id:", "-X", "POST", "-H", "X-Test: kept", "--data-binary", f"@{body}")
        second = _curl(pf.port)
        assert "-> 8080" in pf.output() and "Handling connection for" in pf.output()
    assert first == {"method": "POST", "path": "/v1/things", "query": {"x": "1", "y": "two"},
                     "authorization": "Basic dGVzdC11c2VyLWlkOg==", "x_test": "kept", "length": 300 * 1024,
                     "sha256": hashlib.sha256(body.read_bytes()).hexdigest()}
    assert second["method"] == "GET" and second["authorization"] is None
    # the session ends when kubectl goes; the upgrade the apiserver answered shows which protocol kubectl used
    wait_for(lambda: len(_upgrades(t)) > before, message="port-forward session logged")
    assert _upgrades(t)[before:] == [("GET" if websockets else "POST", 101)]


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_kubectl_port_forward_to_a_service_picks_the_pod_and_target_port(pf_twin, tmp_path):
    t, _ = pf_twin
    with PortForward(kubectl_binaries()[0], t.kubeconfig_path, "svc/echo", "0:80", namespace=NS,
                     env=tool_env(tmp_path, t.kubeconfig_path)) as pf:
        assert _curl(pf.port)["path"] == "/v1/things"
        assert "-> 8080" in pf.output()


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_a_port_nothing_listens_on_fails_like_the_kubelet(pf_twin, tmp_path):
    t, _ = pf_twin
    with PortForward(kubectl_binaries()[0], t.kubeconfig_path, "pod/echo", "0:9090", namespace=NS,
                     env=tool_env(tmp_path, t.kubeconfig_path)) as pf:
        out = subprocess.run([CURL, "-sS", f"http://127.0.0.1:{pf.port}/"], check=False, capture_output=True, text=True, timeout=20)
        assert out.returncode != 0
        assert pf.wait_exit() == 1
        text = pf.output()
    assert "error forwarding port 9090 to pod" in text
    assert "failed to connect to localhost:9090 inside namespace" in text and "connect: connection refused" in text
    assert "lost connection to pod" in text


def test_python_client_portforward(pf_twin):
    """kubernetes.stream.portforward speaks the kubelet's WebSocket channel protocol (v4.channel.k8s.io)."""
    from kubernetes import client
    from kubernetes.stream import portforward

    _, api = pf_twin
    core = client.CoreV1Api(api)
    pf = portforward(core.connect_get_namespaced_pod_portforward, "echo", NS, ports="8080,9090")
    sock = pf.socket(8080)
    sock.settimeout(10)
    sock.sendall(b"GET /over/websocket HTTP/1.1\r\nHost: echo\r\nAuthorization: Basic dTo=\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(payload)["authorization"] == "Basic dTo=" and json.loads(payload)["path"] == "/over/websocket"
    deadline = time.monotonic() + 10
    while pf.error(9090) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "error forwarding port 9090 to pod" in (pf.error(9090) or "")
    pf.close()


def test_portforward_needs_an_existing_scheduled_pod(pf_twin):
    from kubernetes import client

    _, api = pf_twin
    core = client.CoreV1Api(api)
    with pytest.raises(client.ApiException) as e:
        core.connect_post_namespaced_pod_portforward("nope", NS)
    assert e.value.status == 404 and json.loads(e.value.body)["message"] == 'pods "nope" not found'


def test_service_proxy_forwards_method_query_body_and_headers_but_not_authorization(pf_twin):
    """Like the apiserver's reverse proxy: the client's Authorization was consumed by authentication and is not
    forwarded; other headers, the query and the body are; X-Forwarded-For is added."""
    import urllib.request

    t, _ = pf_twin
    req = urllib.request.Request(f"{t.url}/api/v1/namespaces/{NS}/services/echo:80/proxy/v1/things?x=1&y=two", method="PUT",
                                 data=b"payload", headers={"Authorization": "Basic dTo=", "X-Test": "kept"})
    with urllib.request.urlopen(req, timeout=10) as r:
        seen = json.loads(r.read())
    assert seen == {"method": "PUT", "path": "/v1/things", "query": {"x": "1", "y": "two"}, "authorization": None,
                    "x_test": "kept", "length": 7, "sha256": hashlib.sha256(b"payload").hexdigest()}


def test_service_proxy_errors_follow_the_endpoints(pf_twin):
    import urllib.error
    import urllib.request

    from kubernetes import client

    t, api = pf_twin
    core = client.CoreV1Api(api)

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"{t.url}/api/v1/namespaces/{NS}/services/{path}", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())["message"]

    core.create_namespaced_service(NS, {"metadata": {"name": "nobody"}, "spec": {"selector": {"app": "none"}, "ports": [
        {"name": "web", "port": 80}]}})
    wait_for(lambda: get("nobody:80/proxy/")[0] == 503, message="endpoints of nobody")
    assert get("nobody:80/proxy/") == (503, 'no endpoints available for service "nobody"')
    assert get("echo:81/proxy/") == (503, 'no service port 81 found for service "echo"')
    assert get("echo/proxy/")[1] == 'no endpoints available for service "echo"'   # the port named "" does not exist
    assert get("echo:web/proxy/")[0] == 200
    # a pod that runs but is not ready is a notReadyAddress: the message then names the id as requested
    core.create_namespaced_pod(NS, {"metadata": {"name": "never-ready", "labels": {"runtime": "not-ready", "app": "slow"}},
                                    "spec": {"containers": [{"name": "main", "image": "x"}]}})
    core.create_namespaced_service(NS, {"metadata": {"name": "slow"}, "spec": {"selector": {"app": "slow"}, "ports": [
        {"name": "web", "port": 80}]}})

    def not_ready_address():
        eps = core.list_namespaced_endpoints(NS, field_selector="metadata.name=slow").items
        return eps and eps[0].subsets and eps[0].subsets[0].not_ready_addresses

    wait_for(not_ready_address, message="slow endpoints")
    assert get("slow:80/proxy/") == (503, 'no endpoints available for service "slow:80"')
