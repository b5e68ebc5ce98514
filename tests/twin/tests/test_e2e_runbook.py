"""End to end: the runbook's curl body creates an endpoint; watch it with the real kubectl like an operator."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.twin

NS = "llm-core"


def pods_of(twin_kubectl, name: str) -> list[dict]:
    out = twin_kubectl("get", "pods", "-n", NS, "-l", f"endpoint_name={name}", "-o", "json").stdout
    return json.loads(out)["items"]


def ready_column(twin_kubectl, name: str) -> list[str]:
    """The READY column of `kubectl get pods` (e.g. 0/2), as a person would read it."""
    out = twin_kubectl("get", "pods", "-n", NS, "-l", f"endpoint_name={name}", "--no-headers").stdout
    return [line.split()[1] for line in out.splitlines() if line.strip()]


def wait_for(fn, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


def test_runbook_endpoint_comes_up_and_serves(me, runbook_body, odp_twin, twin_kubectl, download_form):
    name = runbook_body["name"]
    odp_twin.faults.add("download_rate", name, bytes_per_second=600_000)   # ~2 s for the 1 MB checkpoint
    r = me.create(runbook_body)
    assert r.status == 200, r
    seen = set()

    def running_2_of_2():
        cols = ready_column(twin_kubectl, name)
        seen.update(cols)
        return cols == ["2/2"]

    wait_for(running_2_of_2, timeout=60, what="2/2")
    assert "0/2" in seen
    (pod,) = pods_of(twin_kubectl, name)
    pod_name = pod["metadata"]["name"]
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["nodeName"] == "hpc-k8s-phy-wrk-g01"
    assert {c["name"] for c in pod["spec"]["containers"]} == {"http-forwarder", "main"}

    ls = twin_kubectl("exec", "-n", NS, pod_name, "-c", "main", "--", "ls", "-la", "model_files/").stdout
    for f in ("config.json", "model-00001-of-00003.safetensors", "model-00003-of-00003.safetensors",
              "tokenizer.json", "model.safetensors.index.json"):
        assert f in ls
    sizes = {line.split()[-1]: int(line.split()[4]) for line in ls.splitlines()[1:] if not line.split()[-1].startswith(".")}
    want = odp_twin.manifest["intermediate-model-aws/"]
    assert sizes == {k: v["size"] for k, v in want.items()}

    health = twin_kubectl("get", "--raw", f"/api/v1/namespaces/{NS}/pods/{pod_name}:5005/proxy/health")
    assert health.returncode == 0
    models = json.loads(twin_kubectl("get", "--raw", f"/api/v1/namespaces/{NS}/pods/{pod_name}:5005/proxy/v1/models").stdout)
    assert [m["id"] for m in models["data"]] == ["test-model", "model_files"]

    logs = twin_kubectl("logs", "-n", NS, pod_name, "-c", "main").stdout
    if download_form == "awscli":   # the on-prem image: pip install, `aws s3 sync` in the background, the guard
        assert "download: s3://scale-gp-models/intermediate-model-aws/config.json to model_files/config.json" in logs
        assert "pip install --quiet awscli --no-cache-dir" in pod["spec"]["containers"][1]["command"][2]
    else:
        assert "cp s3://scale-gp-models/intermediate-model-aws/config.json model_files/config.json" in logs
        assert "./s5cmd" in pod["spec"]["containers"][1]["command"][2]
    assert "Uvicorn running on http://[::]:5005" in logs

    ep = me.wait(name, lambda e: e["spec"]["deployment_state"]["available_workers"] == 1)
    assert ep["status"] == "READY"

    chat = {"model": name, "messages": [{"role": "user", "content": "Hello from the runbook"}], "max_tokens": 8}
    r1, r2 = me.post("/v2/chat/completions", chat), me.post("/v2/chat/completions", chat)
    assert r1.status == 200, r1
    b1, b2 = r1.json(), r2.json()
    assert b1["object"] == "chat.completion" and b1["choices"][0]["message"]["role"] == "assistant"
    assert b1["choices"][0]["message"]["content"] == b2["choices"][0]["message"]["content"]
    assert b1["usage"]["completion_tokens"] == 8
    assert b1["usage"]["total_tokens"] == b1["usage"]["prompt_tokens"] + 8
    comp = me.post("/v2/completions", {"model": name, "prompt": "The capital of Oman is", "max_tokens": 4})
    assert comp.status == 200 and comp.json()["object"] == "text_completion"
    assert comp.json()["usage"]["completion_tokens"] == 4

    stream = me.post("/v2/chat/completions", dict(chat, stream=True))
    assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
    events = [line[6:] for line in stream.body.decode().splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    pieces = [json.loads(e)["choices"][0].get("delta", {}).get("content", "") for e in events[:-1]]
    assert "".join(pieces) == b1["choices"][0]["message"]["content"]

    legacy = me.post(f"/v1/llm/completions-sync?model_endpoint_name={name}",
                     {"prompt": "hi", "max_new_tokens": 4, "temperature": 0.5})
    assert legacy.status == 500 and legacy.json()["detail"].startswith("Upstream service error for request_id ")

    builder_log = twin_kubectl("logs", "deployment/model-engine-endpoint-builder", "-n", NS, "--tail=20").stdout
    assert f"endpoint {name} ({ep['id']}) status READY" in builder_log

    assert me.delete(f"/v1/llm/model-endpoints/{name}").json() == {"deleted": True}
    wait_for(lambda: not pods_of(twin_kubectl, name), what="pods gone")


def test_awscli_form_with_wait_guard(me, runbook_body, odp_twin, twin_kubectl):
    """The twin's default form (set explicitly through the fault, so the test does not depend on the default)."""
    name = runbook_body["name"] = "awscli-guarded"
    odp_twin.faults.add("download_form", name, tool="awscli", wait_guard=True)
    odp_twin.faults.add("download_rate", name, bytes_per_second=300_000)   # a shard is in flight > 1 s
    assert me.create(runbook_body).status == 200
    (pod,) = wait_for(lambda: pods_of(twin_kubectl, name), what="pod")
    cmd = pod["spec"]["containers"][1]["command"]
    assert cmd[:2] == ["/bin/bash", "-c"]
    assert "pip install --quiet awscli --no-cache-dir" in cmd[2]
    assert "aws s3 sync s3://scale-gp-models/intermediate-model-aws model_files --no-progress" in cmd[2]
    assert "while [ ! -f model_files/config.json ]" in cmd[2]
    pod_name = pod["metadata"]["name"]

    def tmp_file_seen():
        ls = twin_kubectl("exec", "-n", NS, pod_name, "-c", "main", "--", "ls", "model_files/", check=False).stdout
        return [f for f in ls.split() if len(f.rsplit(".", 1)[-1]) == 8 and f.rsplit(".", 1)[0].endswith(
            (".json", ".safetensors", ".txt"))]

    assert wait_for(tmp_file_seen, timeout=30, interval=0.05, what="an in-flight awscli temp file")
    wait_for(lambda: ready_column(twin_kubectl, name) == ["2/2"], timeout=60, what="2/2")
    logs = twin_kubectl("logs", "-n", NS, pod_name, "-c", "main").stdout
    assert "download: s3://scale-gp-models/intermediate-model-aws/config.json to model_files/config.json" in logs
    assert "Waiting for model files..." in logs
    assert "No supported config format" not in logs
