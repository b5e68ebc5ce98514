"""The canary's build checks: the wait-for-files guard, forwarder and vLLM tags, storage, and the build depth."""

from __future__ import annotations

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils.build_check import (
    Milestone,
    check_pod,
    diagnosis,
    guard_state,
    image_tag,
)
from ansible_collections.odp.model_engine.plugins.module_utils.judge import Verdict

GUARD = ("while [ ! -f model_files/config.json ] || ! ls model_files/*.safetensors >/dev/null 2>&1 || "
         "ls model_files/ | grep -qE '\\.[A-Za-z0-9]{8}$'; do echo 'Waiting for model files...'; sleep 5; done")
AWSCLI = ("set -euo pipefail;pip install --quiet awscli --no-cache-dir;aws s3 sync s3://scale-gp-models/intermediate-model-aws "
          "model_files --no-progress --endpoint-url https://oss.odp.om & sync_pid=$!;%s;python -m vllm_server --model model_files "
          "--served-model-name test-model model_files --port 5005 --host \"::\"")
S5CMD = ("set -euo pipefail;./s5cmd --endpoint-url https://oss.odp.om --numworkers 512 cp --concurrency 10 --include \"*.json\" "
         "--include \"*.safetensors\" s3://scale-gp-models/intermediate-model-aws/* model_files;python -m vllm_server --model model_files --port 5005")
ME = "registry.odp.om/odp-development/oman-national-llm/model-engine:"
VLLM = "registry.odp.om/odp-development/oman-national-llm/vllm:"


def test_guard_of_each_download_form():
    assert guard_state(AWSCLI % GUARD)[0] is True                    # the runbook's onprem20 form
    ok, detail = guard_state((AWSCLI % GUARD).replace(";" + GUARD, ""))  # onprem22: same, without the loop
    assert ok is False and "nothing waits for model_files/config.json" in detail
    assert guard_state(S5CMD) == (True, "the download runs in the foreground before vLLM starts")  # upstream's s5cmd form
    assert guard_state("CHECKPOINT=s3://b/p/ /opt/odp/start_vllm.sh python -m vllm_server --model model_files")[0] is True
    assert guard_state("sleep infinity")[0] is None                  # not understood: neither passed nor failed


def pod(main_image, forwarder_image, command, storage=("50Gi", "50Gi"), name="p-1"):
    resources = {"requests": {"cpu": "4"}, "limits": {"cpu": "4"}}
    for part, value in zip(("requests", "limits"), storage):
        if value is not None:
            resources[part]["ephemeral-storage"] = value
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "http-forwarder", "image": forwarder_image},
                                    {"name": "main", "image": main_image, "command": ["/bin/bash", "-c", command], "resources": resources}]},
            "status": {"containerStatuses": [{"name": "http-forwarder", "image": forwarder_image}]}}


EXPECT = {"forwarder_tag": "onprem20", "vllm_tag": "vllm-onprem", "wait_guard": True, "storage": "50Gi"}


def test_a_correct_build_passes_every_check():
    checks = check_pod(pod(VLLM + "vllm-onprem", ME + "onprem20", AWSCLI % GUARD), EXPECT)
    assert [c["check"] for c in checks] == ["forwarder_tag", "vllm_tag", "wait_guard", "storage"]
    assert all(c["ok"] for c in checks), checks


@pytest.mark.parametrize("change, failing", [
    ({"forwarder": ME + "onprem19"}, ["forwarder_tag"]),
    ({"main": VLLM + "0.10.1"}, ["vllm_tag"]),
    ({"command": (AWSCLI % GUARD).replace(";" + GUARD, "")}, ["wait_guard"]),
    ({"storage": (None, None)}, ["storage"]),           # onprem23 drops both
    ({"storage": ("50Gi", None)}, ["storage"]),
    ({"storage": ("51200Mi", "50Gi")}, []),              # the same quantity written differently
    ({"storage": ("100Gi", "100Gi")}, ["storage"]),
])
def test_each_defect_fails_its_own_check(change, failing):
    p = pod(change.get("main", VLLM + "vllm-onprem"), change.get("forwarder", ME + "onprem20"), change.get("command", AWSCLI % GUARD),
            change.get("storage", ("50Gi", "50Gi")))
    assert [c["check"] for c in check_pod(p, EXPECT) if not c["ok"]] == failing


def test_only_asked_checks_run_and_tags_are_read_like_a_runtime():
    assert check_pod(pod(VLLM + "x", ME + "onprem20", "x"), {"forwarder_tag": "onprem20"})[0]["ok"] is True
    assert len(check_pod(pod(VLLM + "x", ME + "onprem20", "x"), {"forwarder_tag": "onprem20"})) == 1
    assert image_tag("localhost:5000/repo") == "latest" and image_tag("host:5000/repo:t1") == "t1"
    assert image_tag("r/x@sha256:abc") == "sha256:abc" and image_tag(None) is None


def test_diagnosis_leads_with_the_cause_in_capitals():
    text = diagnosis("canary-onprem22", "premature_start", "vLLM started before the model download finished", ["log: No config format found"],
                     "Add the wait guard.")
    assert text == ("canary-onprem22: PREMATURE_START: vLLM started before the model download finished. Evidence: log: No config format "
                    "found. Fix: Add the wait guard.")


class FakeObs(object):
    def __init__(self, pods):
        self.pods = pods

    def current_replicaset(self):
        return None


class FakeFollow(object):
    def __init__(self, cause, restarts=0, running=True, bytes_present=1):
        self.verdict = Verdict(cause, None, download={"bytes_present": bytes_present} if cause == "downloading" else None)
        state = {"running": {"startedAt": "2026-01-01T00:00:00Z"}} if running else {"waiting": {"reason": "CrashLoopBackOff"}}
        self.obs = FakeObs([{"metadata": {"name": "p"}, "status": {"containerStatuses": [{"name": "main", "state": state, "restartCount": restarts}]}}])


def test_the_build_depth_must_hold_for_the_settle_window():
    m = Milestone(settle=10)
    assert not m.reached(FakeFollow("installing"), 0)
    assert not m.reached(FakeFollow("downloading", bytes_present=0), 1)   # nothing downloaded yet: install not passed
    assert not m.reached(FakeFollow("downloading"), 2)                    # starts the window
    assert not m.reached(FakeFollow("loading"), 11)
    assert m.reached(FakeFollow("loading"), 12)
    m = Milestone(settle=10)
    assert not m.reached(FakeFollow("downloading"), 0)
    assert not m.reached(FakeFollow("starting", restarts=1, running=False), 5)   # a restart resets the window
    assert not m.reached(FakeFollow("loading", restarts=1), 11)                  # and a restarted main never counts
    assert Milestone(settle=600).reached(FakeFollow("serving"), 0)                 # serving is past every stage
