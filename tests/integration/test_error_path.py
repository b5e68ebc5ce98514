"""Issue 12: one error path. Every module, run against the twin with its calls failing from the k-th one on (for
every k up to the number of calls a successful run makes), ends in a clean failure — ``fail_json`` with a message
and the right ``changed`` (true once a write went through) — or, where a failed optional read is tolerated by
design, in a normal exit; never in a traceback.

The failures are injected at the transports every client uses: the gateway's HTTP requests (``open_url``), the
Kubernetes client's REST requests and its exec streams, and boto3's API calls.
"""

from __future__ import annotations

import copy
import importlib
import json
import threading
from urllib.error import URLError

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from tests.integration.conftest import create_endpoint
from tests.twin.tests.conftest_platform import RUNBOOK_BODY

WRITES = ("POST", "PUT", "PATCH", "DELETE")


class Ended(Exception):
    def __init__(self, kind, result):
        super().__init__(kind)
        self.kind = kind
        self.result = result


class Injector:
    """Counts every call the module makes across the transports; from call ``fail_from`` on, each one fails.
    Only the module's thread is counted: the twin runs in this process too, on its own threads."""

    def __init__(self, fail_from=None):
        self.fail_from = fail_from
        self.calls = []
        self.wrote = False
        self.thread = threading.get_ident()

    def hit(self, transport, method):
        if threading.get_ident() != self.thread:
            return False
        self.calls.append("%s %s" % (transport, method))
        if self.fail_from is not None and len(self.calls) >= self.fail_from:
            return True
        if method in WRITES:
            self.wrote = True
        return False


@pytest.fixture
def inject(monkeypatch):
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError
    from kubernetes.client import rest
    from kubernetes.client.exceptions import ApiException

    from ansible_collections.odp.model_engine.plugins.module_utils import api_client, kube

    state = {"injector": Injector()}
    state["injector"].thread = None  # outside run(): count nothing
    real_open, real_rest, real_stream, real_boto = api_client.open_url, rest.RESTClientObject.request, kube.stream, BaseClient._make_api_call

    def open_url(url, method="GET", **kw):
        if state["injector"].hit("gateway", method):
            raise URLError(ConnectionRefusedError(111, "Connection refused (injected)"))
        return real_open(url, method=method, **kw)

    def rest_request(self, method, url, *a, **kw):
        if state["injector"].hit("k8s", method):
            raise ApiException(status=403, reason="Forbidden (injected)")
        return real_rest(self, method, url, *a, **kw)

    def stream(*a, **kw):
        if state["injector"].hit("k8s-exec", "POST"):
            raise ApiException(status=403, reason="Forbidden (injected)")
        return real_stream(*a, **kw)

    def make_api_call(self, operation, params):
        if state["injector"].hit("s3", "GET" if operation.startswith(("List", "Get", "Head")) else "PUT"):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied (injected)"}}, operation)
        return real_boto(self, operation, params)

    monkeypatch.setattr(api_client, "open_url", open_url)
    monkeypatch.setattr(rest.RESTClientObject, "request", rest_request)
    monkeypatch.setattr(kube, "stream", stream)
    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)

    def exit_json(self, **kw):
        raise Ended("exit", kw)

    def fail_json(self, msg, **kw):
        raise Ended("fail", dict(kw, msg=msg))

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(module, args, fail_from=None):
        state["injector"] = Injector(fail_from)
        mod = importlib.import_module("ansible_collections.odp.model_engine.plugins.modules.%s" % module)
        try:
            with patch_module_args(args):
                mod.main()
        except Ended as e:
            return e.kind, e.result, state["injector"]
        finally:
            state["injector"].thread = None
        raise AssertionError("%s returned without exit_json/fail_json" % module)

    return run


@pytest.fixture
def conn(twin_vars):
    import yaml

    v = yaml.safe_load(twin_vars.read_text())
    return {
        "gateway": {"url": v["model_engine_url"], "user_id": v["model_engine_user"], "validate_certs": False, "retries": 0},
        "k8s": {"kubeconfig": v["k8s_kubeconfig"]},
        "s3": {"s3_endpoint_url": v["s3_endpoint_url"], "s3_access_key": v["s3_access_key"], "s3_secret_key": v["s3_secret_key"]},
    }


def sweep(inject, module, args, setup=None, expect_write=False):
    """Run once cleanly, then with calls failing from each k on; return the outcomes."""
    if setup:
        setup()
    kind, clean, injector = inject(module, args)
    assert kind == "exit", clean
    total = len(injector.calls)
    assert total >= 1
    outcomes = []
    for k in range(1, total + 1):
        if setup:
            setup()
        kind, result, inj = inject(module, args, fail_from=k)
        outcomes.append((k, kind, result, inj))
        if kind == "fail":
            assert result["msg"] and "Unexpected error" not in result["msg"], (module, k, inj.calls, result["msg"])
            assert "(injected)" in json.dumps(result) or "injected" in result["msg"], (module, k, result["msg"])
            assert result.get("changed", False) is inj.wrote, (module, k, inj.calls, result.get("changed"))
    assert any(kind == "fail" for _k, kind, _r, _i in outcomes), "no injected failure made %s fail" % module
    if expect_write:
        assert any(inj.wrote and kind == "fail" and result.get("changed") for _k, kind, result, inj in outcomes), \
            "%s never failed after its write with changed=true" % module
    return outcomes


def test_llm_endpoint_create_update_delete(inject, conn, gateway, odp_twin):
    body = dict(copy.deepcopy(RUNBOOK_BODY), name="err-ep")
    args = dict(conn["gateway"], **conn["k8s"], **{k: v for k, v in body.items() if k not in ("endpoint_type",)})

    def absent():
        gateway.delete("/v1/llm/model-endpoints/err-ep")

    outcomes = sweep(inject, "llm_endpoint", args, setup=absent, expect_write=True)
    # the GET after the POST failing is the case that used to lose `changed`
    assert any(r.get("changed") and r.get("request") for _k, kind, r, _i in outcomes if kind == "fail")
    absent()
    create_endpoint(gateway, "err-ep", wait=False)
    gateway.wait("err-ep", lambda e: e["status"] == "READY", timeout=60)  # an update needs the Deployment to exist

    def bronze():
        assert gateway.put("/v1/llm/model-endpoints/err-ep", {"labels": {"team": "test", "product": "llm-engine", "tier": "bronze"}}).status == 200
        gateway.wait("err-ep", lambda e: e["spec"]["labels"].get("tier") == "bronze" and e["status"] == "READY", timeout=30)

    sweep(inject, "llm_endpoint", dict(args, labels={"team": "test", "product": "llm-engine", "tier": "gold"}), expect_write=True,
          setup=bronze)
    gateway.created.append("err-ep")


def test_read_only_modules_fail_cleanly(inject, conn, gateway, odp_twin):
    ep = create_endpoint(gateway, "err-ro")
    ns = {"namespace": odp_twin.config.endpoint_namespace}
    cases = [
        ("llm_endpoint_info", dict(conn["gateway"], name="err-ro")),
        ("llm_endpoint_progress", dict(conn["gateway"], **conn["k8s"], **conn["s3"], **ns, name="err-ro")),
        ("endpoint_health_info", dict(conn["gateway"], **conn["k8s"], **conn["s3"], **ns)),
        ("endpoint_diagnose", dict(conn["gateway"], **conn["k8s"], **conn["s3"], **ns, name="err-ro")),
        ("vllm_ready", dict(conn["k8s"], **ns, endpoint_name="err-ro", model="test-model")),
        ("rollout_verify", dict(conn["k8s"], namespace=odp_twin.config.gateway_namespace)),
        ("s3_sync_verify", dict(conn["k8s"], **conn["s3"], **ns, checkpoint_path=ep["checkpoint_path"], endpoint_id=ep["id"], record=False)),
        ("endpoint_preflight", dict(conn["k8s"], **conn["s3"], checkpoint_path=ep["checkpoint_path"], gpu_type="nvidia-tesla-t4",
                                    storage="50Gi", require_free_gpu=False)),
        ("cluster_capacity_info", dict(conn["k8s"])),
    ]
    for module, args in cases:
        sweep(inject, module, args)
