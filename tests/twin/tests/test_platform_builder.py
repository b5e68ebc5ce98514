"""What the endpoint builder writes into Kubernetes, compared with the real chart's template."""

from __future__ import annotations

import pytest

from tests.twin.platform.bundle import parse_command, vllm_command

pytestmark = pytest.mark.twin
NS = "llm-core"


def test_s5cmd_command_matches_upstream_shape():
    cmd = vllm_command(model_name="test-model", checkpoint_path="s3://scale-gp-models/intermediate-model-aws/",
                       num_shards=1, quantize=None, chat_template_override=None, additional_args={},
                       download_tool="s5cmd", wait_guard=False, s3_endpoint_url="http://127.0.0.1:9000")
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


def test_deployment_service_hpa_written_like_the_chart(me, runbook_body, odp_twin):
    assert me.create(runbook_body).status == 200
    ep = me.wait(runbook_body["name"], lambda e: e["status"] == "READY")
    name = "launch-endpoint-id-" + ep["id"].replace("_", "-")
    dep = odp_twin.call(odp_twin.kube.get("Deployment", name, NS))
    labels = dep["metadata"]["labels"]
    assert labels == {
        "user_id": "test-user-id", "team": "test", "product": "llm-engine", "created_by": "test-user-id",
        "owner": "test-user-id", "env": "onprem", "managed-by": "model-engine",
        "use_scale_launch_endpoint_network_policy": "true", "tags.datadoghq.com/env": "onprem",
        "tags.datadoghq.com/version": "onprem20", "tags.datadoghq.com/service": "test-endpoint-v1",
        "endpoint_id": ep["id"], "endpoint_name": "test-endpoint-v1"}
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
    assert main["command"][:2] == ["/bin/bash", "-c"] and "./s5cmd --endpoint-url" in main["command"][2]
    assert main["envFrom"] == [{"secretRef": {"name": "model-engine-s3-credentials"}}]
    svc = odp_twin.call(odp_twin.kube.get("Service", name, NS))
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 5000
    assert svc["spec"]["selector"] == {"app": name}
    hpa = odp_twin.call(odp_twin.kube.get("HorizontalPodAutoscaler", name, NS))
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 1)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
