"""What the endpoint builder writes into Kubernetes, compared with the real chart's template and builder code."""

from __future__ import annotations

import copy
import json
import pathlib
import time
import urllib.request

import pytest
import yaml

from tests.twin.platform.bundle import WAIT_GUARD, parse_command, vllm_command
from tests.twin.platform.config import ServiceConfig

pytestmark = pytest.mark.twin
NS = "llm-core"
FIXTURE = yaml.safe_load((pathlib.Path(__file__).parent / "fixtures" / "onprem_endpoint_pod.yaml").read_text())
CKPT = "s3://scale-gp-models/intermediate-model-aws/"


def rname(ep: dict) -> str:
    return "launch-endpoint-id-" + ep["id"].replace("_", "-")


def kget(odp_twin, kind: str, name: str):
    return odp_twin.call(odp_twin.kube.get(kind, name, NS))


@pytest.fixture
def scale_from_zero(odp_twin):
    """``config.values.infra.prometheus_server_address`` set: min_workers 0 is accepted (KEDA)."""
    old = odp_twin.config.prometheus_server_address
    odp_twin.config.prometheus_server_address = "http://prometheus-server.istio-system.svc.cluster.local:80"
    yield
    odp_twin.config.prometheus_server_address = old


def test_default_download_form_is_the_onprem_awscli_with_guard():
    cfg = ServiceConfig()
    assert (cfg.download_form, cfg.download_tool, cfg.wait_guard) == ("awscli", "awscli", True)
    cmd = vllm_command(model_name="test-model", checkpoint_path=CKPT, num_shards=1, quantize=None,
                       chat_template_override=None, additional_args={}, download_tool=cfg.download_tool,
                       wait_guard=cfg.wait_guard, s3_endpoint_url="http://127.0.0.1:9000")
    assert cmd == ["/bin/bash", "-c",
                   "set -euo pipefail;pip install --quiet awscli --no-cache-dir;aws s3 sync "
                   "s3://scale-gp-models/intermediate-model-aws model_files --no-progress --endpoint-url "
                   "http://127.0.0.1:9000 & sync_pid=$!;" + WAIT_GUARD + ";python -m vllm_server --model model_files "
                   '--served-model-name test-model model_files --port 5005 --host "::" --enforce-eager '
                   "--tensor-parallel-size 1 --gpu-memory-utilization 0.9"]
    parsed = parse_command(cmd)
    assert (parsed.tool, parsed.background, parsed.wait_guard, parsed.prefix) == (
        "awscli", True, True, "intermediate-model-aws/")
    with pytest.raises(ValueError, match="download form must be one of"):
        cfg.set_download_form("rclone")


def test_s5cmd_command_matches_upstream_shape():
    cmd = vllm_command(model_name="test-model", checkpoint_path=CKPT, num_shards=1, quantize=None, chat_template_override=None,
                       additional_args={}, download_tool="s5cmd", wait_guard=False, s3_endpoint_url="http://127.0.0.1:9000")
    assert cmd == ["/bin/bash", "-c",
                   'set -euo pipefail;./s5cmd --endpoint-url http://127.0.0.1:9000 --numworkers 512 cp --concurrency 10 '
                   '--include "*.model" --include "*.model.v*" --include "*.json" --include "*.safetensors" '
                   '--include "*.txt" --include "*.jinja" --exclude "optimizer*" '
                   's3://scale-gp-models/intermediate-model-aws/* model_files;python -m vllm_server --model model_files '
                   '--served-model-name test-model model_files --port 5005 --host "::" --enforce-eager '
                   '--tensor-parallel-size 1 --gpu-memory-utilization 0.9']
    parsed = parse_command(cmd)
    assert (parsed.tool, parsed.bucket, parsed.prefix, parsed.wait_guard) == (
        "s5cmd", "scale-gp-models", "intermediate-model-aws/", False)
    assert parsed.served_names == ["test-model", "model_files"] and parsed.port == 5005


def test_large_models_get_095_and_deepseek_trusts_remote_code():
    cmd = vllm_command(model_name="deepseek-llama-70b", checkpoint_path="s3://b/p", num_shards=8, quantize="awq",
                       chat_template_override=None, additional_args={"max_model_len": 8192}, download_tool="s5cmd",
                       wait_guard=False, s3_endpoint_url=None)[2]
    assert "--gpu-memory-utilization 0.95" in cmd and "--trust-remote-code" in cmd and '--include "*.py"' in cmd
    assert "--tensor-parallel-size 8" in cmd and "--quantization awq" in cmd and "--max-model-len 8192" in cmd
    assert "--endpoint-url" not in cmd


CHART_LABELS = {"user_id": "test-user-id", "team": "test", "product": "llm-engine", "created_by": "test-user-id",
                "owner": "test-user-id", "env": "onprem", "managed-by": "model-engine",
                "use_scale_launch_endpoint_network_policy": "true", "tags.datadoghq.com/env": "onprem",
                "tags.datadoghq.com/version": "onprem20", "tags.datadoghq.com/service": "test-endpoint-v1",
                "endpoint_name": "test-endpoint-v1"}


def test_objects_written_like_the_chart(me, runbook_body, odp_twin, download_form):
    runbook_body["optimize_costs"] = True
    assert me.create(runbook_body).status == 200
    ep = me.wait(runbook_body["name"], lambda e: e["status"] == "READY")
    name = rname(ep)
    labels = dict(CHART_LABELS, endpoint_id=ep["id"])
    dep = kget(odp_twin, "Deployment", name)
    assert dep["metadata"]["labels"] == labels
    tpl = dep["spec"]["template"]
    assert tpl["metadata"]["labels"] == dict(labels, app=name, version="v1")
    assert dep["spec"]["selector"]["matchLabels"] == {"app": name, "version": "v1"}
    assert dep["metadata"]["annotations"]["kubernetes.io/change-cause"].startswith("Deployment at ")
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    spec = tpl["spec"]
    assert spec["nodeSelector"] == {"node-lifecycle": "normal", "k8s.amazonaws.com/accelerator": "nvidia-tesla-t4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    fwd, main = spec["containers"]
    assert fwd["name"] == "http-forwarder"
    assert fwd["image"] == "registry.odp.om/odp-development/oman-national-llm/model-engine:onprem20"
    assert fwd["ports"][0]["containerPort"] == 5000 and fwd["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["name"] == "main"
    assert main["image"] == "registry.odp.om/odp-development/oman-national-llm/vllm:vllm-onprem"
    assert main["ports"][0]["containerPort"] == 5005 and main["readinessProbe"]["httpGet"]["path"] == "/health"
    want = {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "50Gi", "nvidia.com/gpu": "1"}
    assert main["resources"]["requests"] == want and main["resources"]["limits"] == want
    script = main["command"][2]
    assert main["command"][:2] == ["/bin/bash", "-c"]
    if download_form == "awscli":
        assert "pip install --quiet awscli --no-cache-dir;aws s3 sync s3://scale-gp-models/intermediate-model-aws " \
               "model_files --no-progress" in script and WAIT_GUARD in script and "s5cmd" not in script
    else:
        assert "./s5cmd --endpoint-url" in script and "while [" not in script and "awscli" not in script
    assert main["envFrom"] == [{"secretRef": {"name": "model-engine-s3-credentials"}}]

    for kind in ("ConfigMap", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "VerticalPodAutoscaler"):
        assert kget(odp_twin, kind, name)["metadata"]["labels"] == labels, kind
    assert kget(odp_twin, "ConfigMap", name + "-endpoint-config")["metadata"]["labels"] == labels
    svc = kget(odp_twin, "Service", name)
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 5000
    assert svc["spec"]["selector"] == {"app": name}
    hpa = kget(odp_twin, "HorizontalPodAutoscaler", name)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 1)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    pdb = kget(odp_twin, "PodDisruptionBudget", name)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"] == {"maxUnavailable": "50%", "selector": {"matchLabels": {"app": name}}}
    vpa = kget(odp_twin, "VerticalPodAutoscaler", name)
    assert vpa["spec"]["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert vpa["spec"]["updatePolicy"] == {"updateMode": "Auto"}
    assert vpa["spec"]["resourcePolicy"]["containerPolicies"] == [
        {"containerName": "istio-proxy", "mode": "Off"},
        {"containerName": "main", "minAllowed": {"cpu": "100m", "memory": "128Mi"}, "maxAllowed": {"cpu": 4, "memory": "16Gi"},
         "controlledResources": ["cpu", "memory"]}]
    assert kget(odp_twin, "ScaledObject", name) is None
    assert ep["spec"]["resource_state"]["optimize_costs"] is True      # read from the VPA's presence, like upstream

    # the disruption controller counts the pod once it is Ready (maxUnavailable 50% of 1 rounds up to 1)
    ep = me.wait(ep["name"], lambda e: e["spec"]["deployment_state"]["available_workers"] == 1, timeout=60)
    deadline = time.monotonic() + 10
    while (kget(odp_twin, "PodDisruptionBudget", name).get("status") or {}).get("currentHealthy") != 1:
        assert time.monotonic() < deadline, kget(odp_twin, "PodDisruptionBudget", name)
        time.sleep(0.1)
    st = kget(odp_twin, "PodDisruptionBudget", name)["status"]
    assert (st["expectedPods"], st["desiredHealthy"], st["disruptionsAllowed"]) == (1, 0, 1)
    assert (ep["spec"]["aws_role"], ep["spec"]["results_s3_bucket"]) == ("default", "scale-gp-models")


def _strip_defaults(obj):
    if isinstance(obj, dict):
        return {k: _strip_defaults(v) for k, v in obj.items() if k != "defaultMode"}
    if isinstance(obj, list):
        return [_strip_defaults(x) for x in obj]
    return obj


def test_pod_layout_matches_the_onprem_template(me, runbook_body, odp_twin):
    assert me.create(runbook_body).status == 200
    ep = me.wait(runbook_body["name"], lambda e: e["status"] == "READY")
    name = rname(ep)
    deadline = time.monotonic() + 20
    while not (pods := odp_twin.call(odp_twin.kube.list_pods(NS, f"endpoint_id={ep['id']}"))):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    want_volumes = json.loads(json.dumps(FIXTURE["pod"]["volumes"]).replace("${RESOURCE_NAME}", name))
    for spec in (kget(odp_twin, "Deployment", name)["spec"]["template"]["spec"], pods[0]["spec"]):
        assert _strip_defaults(spec["volumes"]) == want_volumes
        assert spec["securityContext"] == FIXTURE["pod"]["securityContext"]
        containers = {c["name"]: c for c in spec["containers"]}
        assert list(containers) == ["http-forwarder", "main"]
        for cname, want in FIXTURE["containers"].items():
            c = containers[cname]
            assert [e["name"] for e in c["env"]] == want["env"], cname
            assert c["volumeMounts"] == want["volumeMounts"], cname
            assert c.get("securityContext") == want["securityContext"], cname
            values = {e["name"]: e.get("value") for e in c["env"]}
            for k, v in FIXTURE["env_values"][cname].items():
                assert values[k] == v, (cname, k)
    # every ConfigMap the pod mounts exists where the chart puts it, with the keys the mounts need
    aws = kget(odp_twin, "ConfigMap", "default-config")
    assert set(aws["data"]) == {"config"} and aws["data"]["config"].startswith("[profile default]")
    svc_cfg = kget(odp_twin, "ConfigMap", "model-engine-service-config")
    assert set(svc_cfg["data"]) == {"launch_service_config", "infra_service_config"}
    infra = yaml.safe_load(svc_cfg["data"]["infra_service_config"])
    assert infra["cloud_provider"] == "onprem" and infra["env"] == "onprem"
    assert yaml.safe_load(svc_cfg["data"]["launch_service_config"])["endpoint_namespace"] == NS


def test_scale_from_zero_writes_a_keda_scaled_object_instead_of_the_hpa(me, runbook_body, odp_twin, scale_from_zero):
    runbook_body["min_workers"] = 0
    assert me.create(runbook_body).status == 200, "min_workers 0 is accepted with prometheus_server_address"
    ep = me.wait(runbook_body["name"], lambda e: e["status"] == "READY")
    name = rname(ep)
    so = kget(odp_twin, "ScaledObject", name)
    assert so["metadata"]["labels"]["endpoint_id"] == ep["id"]
    assert so["spec"]["scaleTargetRef"] == {"name": name}
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"], so["spec"]["fallback"]) == (
        0, 1, {"failureThreshold": 3, "replicas": 0})
    trig = so["spec"]["triggers"][0]
    assert trig["type"] == "redis" and trig["metadata"]["listName"] == f"launch-endpoint-autoscaling:{ep['id']}"
    assert kget(odp_twin, "HorizontalPodAutoscaler", name) is None
    assert kget(odp_twin, "Deployment", name)["spec"]["replicas"] == 0
    assert (ep["spec"]["deployment_state"]["min_workers"], ep["spec"]["deployment_state"]["max_workers"]) == (0, 1)
    deadline = time.monotonic() + 10
    while kget(odp_twin, "HorizontalPodAutoscaler", f"keda-hpa-{name}") is None:   # KEDA's own HPA, owned by the SO
        assert time.monotonic() < deadline
        time.sleep(0.1)

    r = me.put(f"/v1/llm/model-endpoints/{ep['name']}", {"min_workers": 1})
    assert r.status == 200, r
    me.wait(ep["name"], lambda e: e["status"] == "READY" and e["spec"]["deployment_state"]["min_workers"] == 1)
    assert kget(odp_twin, "ScaledObject", name) is None          # exactly one of HPA or ScaledObject
    assert kget(odp_twin, "HorizontalPodAutoscaler", name)["spec"]["minReplicas"] == 1
    deadline = time.monotonic() + 10
    while kget(odp_twin, "HorizontalPodAutoscaler", f"keda-hpa-{name}") is not None:
        assert time.monotonic() < deadline, "keda-hpa is garbage-collected with its ScaledObject"
        time.sleep(0.1)


def served_list_paths(base: str) -> list[tuple[str, str]]:
    """(path, kind) of every listable resource of every served group/version, from discovery."""
    def get(path):
        with urllib.request.urlopen(base + path, timeout=10) as r:
            return json.loads(r.read())

    gvs = ["/api/v1"] + [f"/apis/{v['groupVersion']}" for g in get("/apis")["groups"] for v in g["versions"]]
    out = []
    for gv in gvs:
        for res in get(gv)["resources"]:
            if "/" not in res["name"] and "list" in res["verbs"]:
                out.append((f"{gv}/{res['name']}", res["kind"]))
    return out


def test_delete_leaves_no_object_of_any_served_kind(me, runbook_body, odp_twin, scale_from_zero, twin_kubectl):
    a = dict(copy.deepcopy(runbook_body), name="parity-a", optimize_costs=True)
    b = dict(copy.deepcopy(runbook_body), name="parity-b", min_workers=0)
    for body in (a, b):
        assert me.create(body).status == 200
    eps = [me.wait(body["name"], lambda e: e["status"] == "READY") for body in (a, b)]
    base = odp_twin.emulator.url
    paths = served_list_paths(base)
    kinds = {k for _p, k in paths}
    assert {"VerticalPodAutoscaler", "ScaledObject", "PodDisruptionBudget", "HorizontalPodAutoscaler"} <= kinds

    def leftovers(ep: dict) -> list[str]:
        found = []
        for path, kind in paths:
            if kind == "Event":   # events outlive their objects (the API server's event TTL, 1 h)
                continue
            with urllib.request.urlopen(base + path, timeout=10) as r:
                items = json.loads(r.read())["items"]
            for o in items:
                m = o["metadata"]
                if (m.get("labels") or {}).get("endpoint_id") == ep["id"] or rname(ep) in m["name"]:
                    found.append(f"{kind}/{m['name']}")
        return sorted(found)

    deadline = time.monotonic() + 15     # pods, the KEDA HPA and the Deployment's ReplicaSet come up asynchronously
    while not all(any(x.startswith("Pod/") for x in leftovers(e)) or e["name"] == "parity-b" for e in eps):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    before = {e["name"]: leftovers(e) for e in eps}
    name_a, name_b = rname(eps[0]), rname(eps[1])
    for kind in ("Deployment", "ReplicaSet", "Pod", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                 "VerticalPodAutoscaler", "ConfigMap"):
        assert any(x.startswith(f"{kind}/{name_a}") for x in before["parity-a"]), (kind, before["parity-a"])
    for want in (f"ScaledObject/{name_b}", f"HorizontalPodAutoscaler/keda-hpa-{name_b}", f"PodDisruptionBudget/{name_b}"):
        assert want in before["parity-b"], before["parity-b"]
    assert name_a in twin_kubectl("get", "pdb", "-n", NS).stdout

    for ep in eps:
        assert me.delete(f"/v1/llm/model-endpoints/{ep['name']}").json() == {"deleted": True}
    deadline = time.monotonic() + 15     # Endpoints and the KEDA HPA go asynchronously (controllers, GC)
    while any(leftovers(e) for e in eps):
        assert time.monotonic() < deadline, {e["name"]: leftovers(e) for e in eps}
        time.sleep(0.2)
