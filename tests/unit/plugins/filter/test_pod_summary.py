from __future__ import annotations

import pytest

from ansible_collections.odp.model_engine.plugins.filter.pods import FilterModule

pod_summary = FilterModule().filters()["pod_summary"]
SPEC = {"containers": [{"name": "http-forwarder"}, {"name": "main"}]}


def pod(phase, main_state, fwd_ready=False, main_ready=False, restarts=0, conditions=None, reason=None):
    return {"metadata": {"name": "p"}, "spec": SPEC, "status": {
        "phase": phase, "reason": reason, "conditions": conditions or [],
        "containerStatuses": [
            {"name": "http-forwarder", "ready": fwd_ready, "restartCount": 0, "state": {"running": {}}},
            {"name": "main", "ready": main_ready, "restartCount": restarts, "state": main_state,
             "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}} if restarts else {}},
        ]}}


@pytest.mark.parametrize("p, display, problem", [
    (pod("Running", {"running": {}}), "0/2 Running", None),
    (pod("Running", {"running": {}}, True, True), "2/2 Running", None),
    (pod("Running", {"waiting": {"reason": "CrashLoopBackOff"}}, restarts=3), "0/2 CrashLoopBackOff",
     "container main is CrashLoopBackOff (restarts 3, last exit code 137 OOMKilled)"),
    (pod("Running", {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}), "0/2 OOMKilled",
     "container main terminated (exit code 137, OOMKilled)"),
    (pod("Pending", {"waiting": {"reason": "ImagePullBackOff"}}), "0/2 ImagePullBackOff", "container main is ImagePullBackOff (restarts 0)"),
    (pod("Failed", {"terminated": {"exitCode": 137, "reason": "Error"}}, reason="Evicted"), "0/2 Error",
     "container main terminated (exit code 137, Error)"),
])
def test_pod_summary(p, display, problem):
    s = pod_summary(p)
    assert s["display"] == display and s["problem"] == problem


def test_unschedulable_pod():
    p = {"metadata": {"name": "p"}, "spec": SPEC, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/2 nodes are available: 1 Insufficient nvidia.com/gpu."}]}}
    s = pod_summary(p)
    assert s["display"] == "0/2 Pending" and s["problem"] == "pod cannot be scheduled: 0/2 nodes are available: 1 Insufficient nvidia.com/gpu."
