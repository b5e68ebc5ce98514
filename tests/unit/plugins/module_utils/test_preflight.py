from __future__ import annotations

import json

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils.kube import node_capacity
from ansible_collections.odp.model_engine.plugins.module_utils.preflight import (
    check_checkpoint,
    check_image_tag,
    check_storage_and_capacity,
)

GI = 2 ** 30
LISTING = {
    "config.json": {"size": 700, "etag": "a"},
    "model.safetensors.index.json": {"size": 300, "etag": "b"},
    "model-00001-of-00002.safetensors": {"size": 10 * GI, "etag": "c"},
    "model-00002-of-00002.safetensors": {"size": 5 * GI, "etag": "d"},
    "tokenizer.json": {"size": 1000, "etag": "e"},
    "optimizer.pt": {"size": 30 * GI, "etag": "f"},
}
INDEX = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}


def node(name, gpu_type, gpus, eph, unschedulable=False):
    return {"metadata": {"name": name, "labels": {"k8s.amazonaws.com/accelerator": gpu_type} if gpu_type else {}},
            "spec": {"unschedulable": unschedulable},
            "status": {"allocatable": {"nvidia.com/gpu": str(gpus), "ephemeral-storage": eph}}}


def pod(node_name, gpus, eph, phase="Running"):
    return {"spec": {"nodeName": node_name, "containers": [
        {"resources": {"limits": {"nvidia.com/gpu": gpus, "ephemeral-storage": eph}}},
        {"resources": {"requests": {"ephemeral-storage": "100M"}, "limits": {"ephemeral-storage": "1G"}}}]},
        "status": {"phase": phase}}


CAPACITY = node_capacity(
    [node("hpc-k8s-phy-wrk-g01", "nvidia-tesla-t4", 2, "189Gi"), node("cpu-1", None, 0, "100Gi")],
    [pod("hpc-k8s-phy-wrk-g01", 1, "50Gi"), pod("hpc-k8s-phy-wrk-g01", 1, "50Gi", phase="Succeeded")],
)


def test_capacity_counts_requests_of_running_pods_only():
    g01 = CAPACITY["hpc-k8s-phy-wrk-g01"]
    assert g01["gpu_allocatable"] == 2 and g01["gpu_requested"] == 1 and g01["gpu_free"] == 1
    assert g01["ephemeral_requested"] == 50 * GI + 100 * 10 ** 6  # requests win over limits
    assert g01["ephemeral_free"] == 189 * GI - g01["ephemeral_requested"]


def test_good_checkpoint():
    problems, facts = check_checkpoint(LISTING, "s3://b/p/", {"architectures": ["Qwen3ForCausalLM"]}, INDEX)
    assert problems == []
    assert facts["safetensors"] == 2 and facts["architectures"] == ["Qwen3ForCausalLM"]
    assert facts["bytes"] == 15 * GI + 2000  # optimizer.pt is not downloaded, so not counted


@pytest.mark.parametrize("drop, message", [
    ("config.json", "has no config.json at its top level"),
    ("model-00002-of-00002.safetensors", "names 1 shard(s) missing"),
])
def test_checkpoint_problems(drop, message):
    listing = {k: v for k, v in LISTING.items() if k != drop}
    problems, _facts = check_checkpoint(listing, "s3://b/p/", None, INDEX)
    assert any(message in p for p in problems)


def test_no_safetensors_and_empty_prefix():
    problems, _f = check_checkpoint({"config.json": {"size": 1, "etag": "x"}}, "s3://b/p/")
    assert "has no *.safetensors files" in problems[0]
    problems, _f = check_checkpoint({}, "s3://b/p/")
    assert "holds no objects" in problems[0]


def test_image_tag_policy():
    assert check_image_tag("vllm-onprem", ["vllm-onprem"]) == []
    assert "not allowed here; use one of: vllm-onprem" in check_image_tag("0.6.3-rc1", ["vllm-onprem"])[0]
    assert check_image_tag("anything", []) == []


def test_runbook_request_fits():
    problems, facts = check_storage_and_capacity({"storage": "50Gi", "gpu_type": "nvidia-tesla-t4", "gpus": 1,
                                                  "policy": {"nvidia-tesla-t4": "50Gi"}, "checkpoint_bytes": 15 * GI}, CAPACITY)
    assert problems == [] and facts["nodes_that_fit"] == ["hpc-k8s-phy-wrk-g01"]


@pytest.mark.parametrize("args, message", [
    (("100Gi", "nvidia-tesla-t4", 1, {"nvidia-tesla-t4": "50Gi"}), "exceeds the 50Gi policy for nvidia-tesla-t4"),
    (("200Gi", "nvidia-tesla-t4", 1, {}), "more than any nvidia-tesla-t4 node can hold"),
    (("10Gi", "nvidia-tesla-t4", 1, {}), "cannot hold the checkpoint"),
    (("50Gi", "nvidia-tesla-t4", 2, {}), "no nvidia-tesla-t4 node has 2 free nvidia.com/gpu"),
    (("50Gi", "nvidia-hopper-h100", 1, {}), "no schedulable node is labelled k8s.amazonaws.com/accelerator=nvidia-hopper-h100"),
])
def test_storage_and_capacity_problems_say_what_to_change(args, message):
    storage, gpu_type, gpus, policy = args
    want = {"storage": storage, "gpu_type": gpu_type, "gpus": gpus, "policy": policy, "checkpoint_bytes": 15 * GI}
    problems, _facts = check_storage_and_capacity(want, CAPACITY)
    assert any(message in p for p in problems), problems


def test_preflight_module_against_a_real_s3_server(localhost, s3_server, s3_bucket):
    client, bucket = s3_bucket
    client.put_object(Bucket=bucket, Key="m/config.json", Body=json.dumps({"architectures": ["Qwen3ForCausalLM"]}))
    client.put_object(Bucket=bucket, Key="m/model.safetensors", Body=b"\0" * 64)
    args = dict(checkpoint_path="s3://%s/m" % bucket, s3_endpoint_url=s3_server, s3_access_key="AKIAUNITTESTKEY",
                s3_secret_key="test-secret-value", checks=["checkpoint", "image_tag"],
                inference_framework_image_tag="vllm-onprem", allowed_image_tags=["vllm-onprem"])
    res = getattr(localhost, "odp.model_engine.endpoint_preflight")(**args)["localhost"]
    assert res.get("failed") is not True, res.get("msg")
    assert res["ok"] is True and res["checkpoint"]["safetensors"] == 1
    assert res["checkpoint"]["architectures"] == ["Qwen3ForCausalLM"]
    assert "test-secret-value" not in json.dumps(dict(res))

    args.update(checkpoint_path="s3://%s/nothing-here/" % bucket, inference_framework_image_tag="0.6.3-rc1")
    res = getattr(localhost, "odp.model_engine.endpoint_preflight")(**args)["localhost"]
    assert res["failed"] is True and len(res["problems"]) == 2
    assert "holds no objects" in res["msg"] and "not allowed here" in res["msg"]


def test_preflight_module_bad_storage_fails_before_any_call(localhost):
    res = getattr(localhost, "odp.model_engine.endpoint_preflight")(
        checkpoint_path="s3://b/p", storage="50GB", s3_endpoint_url="http://127.0.0.1:9")["localhost"]
    assert res["failed"] is True and res["msg"].startswith("storage: '50GB' is not a Kubernetes quantity")
