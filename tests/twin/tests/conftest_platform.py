"""Pytest fixtures of the platform twin (S3, model-engine API, builder, pod simulator, faults).

Loaded by the root ``tests/conftest.py`` via ``pytest_plugins``, so every test suite can use them:

* ``twin_s3`` (session): a seeded moto S3 server (``S3Server``) plus its manifest.
* ``odp_twin`` (session): the whole twin started in a background thread (``Twin``); faults are cleared and
  leftover endpoints deleted after every test that uses ``me``.
* ``me``: a small HTTP client for the twin's model-engine API (basic auth as ``test-user-id``).
* ``runbook_body``: the runbook's create-endpoint JSON body (a fresh copy per test).
* ``twin_kubectl``: runs the real kubectl (``.venv/bin/kubectl``) against the twin.
* ``download_form``: parametrises a test over the ``awscli`` (default) and ``s5cmd`` download forms.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
KUBECTL = str(Path(sys.executable).parent / "kubectl")

RUNBOOK_BODY = {
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
    "labels": {"team": "test", "product": "llm-engine"},
}


class Response:
    def __init__(self, status: int, body: bytes, headers):
        self.status = status
        self.body = body
        self.headers = headers

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class ModelEngineClient:
    """urllib-based client: basic auth with the user id as username and an empty password."""

    def __init__(self, url: str, user: str | None = "test-user-id"):
        self.url = url.rstrip("/")
        self.user = user
        self.created: list[str] = []

    def as_user(self, user: str | None) -> ModelEngineClient:
        c = ModelEngineClient(self.url, user)
        c.created = self.created
        return c

    def request(self, method: str, path: str, body=None, headers=None, raw: bytes | None = None,
                timeout: float = 30) -> Response:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        if self.user is not None:
            hdrs["Authorization"] = "Basic " + base64.b64encode(f"{self.user}:".encode()).decode()
        hdrs.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Response(r.status, r.read(), r.headers)
        except urllib.error.HTTPError as e:
            return Response(e.code, e.read(), e.headers)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def create(self, body: dict) -> Response:
        r = self.post("/v1/llm/model-endpoints", body)
        if r.status == 200:
            self.created.append(body["name"])
        return r

    def endpoint(self, name: str) -> dict:
        r = self.get(f"/v1/llm/model-endpoints/{name}")
        assert r.status == 200, r
        return r.json()

    def wait(self, name: str, predicate, timeout: float = 30, interval: float = 0.1) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.endpoint(name)
            if predicate(last):
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out waiting on {name}; last: {json.dumps(last)[:2000]}")


@pytest.fixture(scope="session")
def twin_s3(tmp_path_factory):
    from tests.twin.platform.s3 import S3Server
    from tests.twin.platform.seed import seed

    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    try:
        t0 = time.monotonic()
        manifest = seed(server.client())
        server.seed_seconds = time.monotonic() - t0
        server.manifest = manifest
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def odp_twin(tmp_path_factory):
    from tests.twin.platform.twin import Twin

    t = Twin(tmp_path_factory.mktemp("twin")).start()
    try:
        yield t
    finally:
        t.stop()


@pytest.fixture
def me(odp_twin):
    client = ModelEngineClient(odp_twin.api_url)
    yield client
    odp_twin.faults.clear()
    for name in list(dict.fromkeys(client.created)):
        for rec in list(odp_twin.engine.records.values()):
            if rec["name"] == name:
                client.as_user(rec["owner"]).delete(f"/v1/model-endpoints/{rec['id']}")
    _wait_no_endpoint_pods(odp_twin)


def _wait_no_endpoint_pods(odp_twin, timeout: float = 20) -> None:
    """Endpoint pods hold GPUs; the next test must find the node free again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = odp_twin.call(odp_twin.kube.list_pods(odp_twin.config.endpoint_namespace, "managed-by=model-engine"))
        if not pods:
            return
        time.sleep(0.1)


@pytest.fixture(params=["awscli", "s5cmd"])
def download_form(request, odp_twin):
    """Parametrises a test over both download forms of the main container, set in the twin's service config
    (``awscli`` + wait guard is the on-prem default, ``s5cmd`` upstream's); restored afterwards."""
    old = (odp_twin.config.download_tool, odp_twin.config.wait_guard)
    odp_twin.config.set_download_form(request.param)
    yield request.param
    odp_twin.config.download_tool, odp_twin.config.wait_guard = old


@pytest.fixture
def runbook_body():
    return copy.deepcopy(RUNBOOK_BODY)


@pytest.fixture
def twin_kubectl(odp_twin, tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), KUBECACHEDIR=str(tmp_path / "kcache"))

    def run(*args, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        p = subprocess.run([KUBECTL, "--kubeconfig", str(odp_twin.emulator.kubeconfig_path), *args], env=env,
                           capture_output=True, text=True, timeout=timeout, check=False)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    return run
