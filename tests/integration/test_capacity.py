"""Issue 8: capacity figures match the emulator's nodes and what the endpoint pods request."""

from __future__ import annotations

from tests.integration.conftest import create_endpoint

GI = 2 ** 30


def test_capacity_matches_nodes_and_requests(module, gateway, playbook):
    empty = module("cluster_capacity_info", endpoints=[{"name": "runbook", "gpu_type": "nvidia-tesla-t4", "gpus": 1, "storage": "50Gi"}])
    g01 = next(n for n in empty["nodes"] if n["name"] == "hpc-k8s-phy-wrk-g01")
    assert (g01["gpu_allocatable"], g01["gpu_requested"], g01["ephemeral_allocatable"]) == (2, 0, 189 * GI)
    assert empty["fits"][0]["fits"] is True

    create_endpoint(gateway, "cap-1")
    create_endpoint(gateway, "cap-2")
    full = module("cluster_capacity_info", endpoints=[{"name": "third", "gpu_type": "nvidia-tesla-t4", "gpus": 1, "storage": "50Gi"},
                                                      {"name": "huge", "gpu_type": "nvidia-tesla-t4", "gpus": 1, "storage": "200Gi"}])
    g01 = next(n for n in full["nodes"] if n["name"] == "hpc-k8s-phy-wrk-g01")
    assert g01["gpu_requested"] == 2 and g01["gpu_free"] == 0
    # main requests 50Gi, the http-forwarder 100M, per pod
    assert g01["ephemeral_requested"] == 2 * (50 * GI + 100 * 10 ** 6)
    third, huge = full["fits"]
    assert third["fits"] is False and "no nvidia-tesla-t4 node has 1 free nvidia.com/gpu" in third["problems"][0]
    assert huge["fits"] is False
    assert len(full["warnings_list"]) == 1 and full["warnings_list"][0].startswith("huge: storage 200Gi is more than any")

    run = playbook("capacity_report.yml", extra={"capacity_shapes": [{"name": "huge", "gpu_type": "nvidia-tesla-t4", "storage": "200Gi"}]})
    assert run.rc == 0, run
    assert "hpc-k8s-phy-wrk-g01" in run.stdout and "2 / 2" in run.stdout
    assert "WARNING huge: storage 200Gi is more than any nvidia-tesla-t4 node can hold" in run.stdout
