"""The PVC model cache on the twin (facts §4.1/§6/§7): with the control plane's MODEL_CACHE_* env (the chart's
modelCache) the builder writes the claim and mounts it, the command runs the lock/marker protocol, the pod simulator
downloads once into the claim, a restarted pod serves without one GET for the shards, two replicas share one download,
a killed downloader's lock is broken once stale, and the async bug's fault falls back to an EmptyDir."""

from __future__ import annotations

import json
import time

import pytest

from tests.twin.platform import model_cache as MC

pytestmark = pytest.mark.twin

BUCKET, PREFIX = "scale-gp-models", "intermediate-model-aws/"
NS = "llm-core"


@pytest.fixture
def cache_on(odp_twin):
    """Turn the control plane's model cache on (chart values as given); off again afterwards (the twin's default)."""

    def apply(**values):
        odp_twin.call(odp_twin.apply_model_cache({"enabled": True, "storageClassName": "cephfs", **values}))

    yield apply
    odp_twin.faults.clear()
    odp_twin.call(odp_twin.apply_model_cache(None))


def shard_gets(odp_twin):
    return odp_twin.s3.object_gets(BUCKET, PREFIX, ".safetensors")


def serving(me, name, workers=1, timeout=60):
    return me.wait(name, lambda e: e["status"] == "READY" and e["spec"]["deployment_state"]["available_workers"] >= workers,
                   timeout=timeout)


def resource(odp_twin, kind, name):
    return odp_twin.call(odp_twin.kube.get(kind, name, NS))


def pods(twin_kubectl, name):
    out = json.loads(twin_kubectl("get", "pods", "-n", NS, "-l", f"endpoint_name={name}", "-o", "json").stdout)["items"]
    return sorted(out, key=lambda p: p["metadata"]["creationTimestamp"])


def logs(twin_kubectl, pod):
    return twin_kubectl("logs", "-n", NS, pod, "-c", "main", check=False).stdout   # empty while the container is being created


def test_cache_off_is_the_default(odp_twin, me, runbook_body):
    assert me.create(runbook_body).status == 200
    rec = serving(me, runbook_body["name"])
    assert rec["spec"]["metadata"]["_llm"]["model_cache_enabled"] is False
    dep = resource(odp_twin, "Deployment", rec["spec"]["deployment_name"])
    assert all(v["name"] != MC.VOLUME for v in dep["spec"]["template"]["spec"]["volumes"])
    assert "--model model_files" in dep["spec"]["template"]["spec"]["containers"][1]["command"][2]
    assert resource(odp_twin, "PersistentVolumeClaim", rec["spec"]["deployment_name"] + "-model-cache") is None


def test_the_builder_writes_the_claim_and_the_mount_and_deletes_them_with_the_endpoint(odp_twin, me, runbook_body, cache_on,
                                                                                      twin_kubectl):
    cache_on(storage="120Gi")
    assert me.create(runbook_body).status == 200
    rec = serving(me, runbook_body["name"])
    assert rec["spec"]["metadata"]["_llm"]["model_cache_enabled"] is True
    name = rec["spec"]["deployment_name"]
    pvc = resource(odp_twin, "PersistentVolumeClaim", name + "-model-cache")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"] and pvc["spec"]["storageClassName"] == "cephfs"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "120Gi" and pvc["status"]["phase"] == "Bound"
    assert pvc["metadata"]["labels"]["endpoint_id"] == rec["id"] and pvc["metadata"]["labels"]["managed-by"] == "model-engine"
    spec = resource(odp_twin, "Deployment", name)["spec"]["template"]["spec"]
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": name + "-model-cache"}} in spec["volumes"]
    main = spec["containers"][1]
    assert {"name": "model-cache", "mountPath": "/mnt/model-cache"} in main["volumeMounts"]
    script = main["command"][2]
    assert "/mnt/model-cache/model_files/.download.lock" in script and "/mnt/model-cache/model_files/.complete" in script
    assert "--model /mnt/model-cache/model_files" in script and "model_files /mnt/model-cache/model_files" in script
    assert "(while true; do write_model_cache_heartbeat; sleep 30; done) &" in script and "-gt 600 ]" in script
    fp = MC.parse(script)["fingerprint"]
    pod = pods(twin_kubectl, runbook_body["name"])[0]["metadata"]["name"]
    assert twin_kubectl("exec", "-n", NS, pod, "-c", "main", "--", "cat", "/mnt/model-cache/model_files/.complete").stdout.strip() == fp
    listing = twin_kubectl("exec", "-n", NS, pod, "-c", "main", "--", "ls", "/mnt/model-cache/model_files").stdout.split()
    assert "config.json" in listing and "model-00003-of-00003.safetensors" in listing
    volume = pvc["spec"]["volumeName"]
    assert me.delete(f"/v1/llm/model-endpoints/{runbook_body['name']}").status == 200
    assert resource(odp_twin, "PersistentVolumeClaim", name + "-model-cache") is None
    deadline = time.monotonic() + 10
    while twin_kubectl("get", "pv", volume, check=False).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert twin_kubectl("get", "pv", volume, check=False).returncode != 0   # reclaim policy Delete


def test_a_restarted_pod_serves_from_the_cache_without_one_get(odp_twin, me, runbook_body, cache_on, twin_kubectl, download_form):
    cache_on()
    before = shard_gets(odp_twin)
    assert me.create(runbook_body).status == 200
    serving(me, runbook_body["name"])
    assert shard_gets(odp_twin) - before == 3            # the first pod downloaded the three shards
    first = pods(twin_kubectl, runbook_body["name"])[0]["metadata"]["name"]
    assert ("cp s3://" if download_form == "s5cmd" else "download: s3://") in logs(twin_kubectl, first)
    twin_kubectl("delete", "pod", "-n", NS, first)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = [p for p in pods(twin_kubectl, runbook_body["name"]) if p["metadata"]["name"] != first]
        if now and all(c["ready"] for c in now[0]["status"].get("containerStatuses") or [{"ready": False}]):
            break
        time.sleep(0.2)
    second = now[0]["metadata"]["name"]
    text = logs(twin_kubectl, second)
    assert "s3://" not in text and "pip install" not in text and "Uvicorn running" in text
    assert shard_gets(odp_twin) - before == 3            # not one GET more
    r = me.post("/v2/chat/completions", {"model": runbook_body["name"], "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    assert r.status == 200, r


def test_two_replicas_share_one_download(odp_twin, me, runbook_body, cache_on, twin_kubectl):
    cache_on()
    odp_twin.faults.add("download_rate", runbook_body["name"], bytes_per_second=400_000)
    before = shard_gets(odp_twin)
    assert me.create(dict(runbook_body, min_workers=2, max_workers=2)).status == 200
    serving(me, runbook_body["name"], workers=2, timeout=90)
    texts = [logs(twin_kubectl, p["metadata"]["name"]) for p in pods(twin_kubectl, runbook_body["name"])]
    assert sum(MC.WAITING_LINE in t for t in texts) == 1 and sum("download: s3://" in t for t in texts) == 1
    assert shard_gets(odp_twin) - before == 3


def test_a_killed_downloader_leaves_its_lock_and_the_next_pod_breaks_it_once_stale(odp_twin, me, runbook_body, cache_on, twin_kubectl):
    cache_on(lockStaleSeconds=3)
    odp_twin.faults.add("download_rate", runbook_body["name"], bytes_per_second=100_000)
    assert me.create(runbook_body).status == 200

    def downloading():
        found = pods(twin_kubectl, runbook_body["name"])
        return found and "download: s3://" in logs(twin_kubectl, found[0]["metadata"]["name"])

    deadline = time.monotonic() + 30
    while not downloading() and time.monotonic() < deadline:
        time.sleep(0.1)
    first = pods(twin_kubectl, runbook_body["name"])[0]["metadata"]["name"]
    assert twin_kubectl("exec", "-n", NS, first, "-c", "main", "--", "cat", "/mnt/model-cache/model_files/.download.lock/heartbeat").stdout
    odp_twin.faults.clear("download_rate")
    twin_kubectl("delete", "pod", "-n", NS, first)   # like SIGKILL: the EXIT trap never runs, the lock stays
    serving(me, runbook_body["name"], timeout=60)
    second = next(p for p in pods(twin_kubectl, runbook_body["name"]) if p["metadata"]["name"] != first)["metadata"]["name"]
    text = logs(twin_kubectl, second)
    assert text.index(MC.WAITING_LINE) < text.index(MC.STALE_LINE) < text.index("download: s3://")
    assert twin_kubectl("exec", "-n", NS, second, "-c", "main", "--", "ls", "-a", "/mnt/model-cache/model_files").stdout.count(".download.lock") == 0


def test_the_async_bug_fault_falls_back_to_an_emptydir(odp_twin, me, runbook_body, cache_on, twin_kubectl):
    cache_on()
    odp_twin.faults.add("model_cache_async_bug", runbook_body["name"])
    before = shard_gets(odp_twin)
    assert me.create(runbook_body).status == 200
    rec = serving(me, runbook_body["name"])
    assert rec["spec"]["metadata"]["_llm"]["model_cache_enabled"] is True   # the gateway thinks it has the cache
    name = rec["spec"]["deployment_name"]
    assert resource(odp_twin, "PersistentVolumeClaim", name + "-model-cache") is None
    volumes = resource(odp_twin, "Deployment", name)["spec"]["template"]["spec"]["volumes"]
    assert {"name": "model-cache", "emptyDir": {}} in volumes
    builder = json.loads(twin_kubectl("get", "pods", "-n", NS, "-l", "app=model-engine-endpoint-builder", "-o", "json").stdout)["items"]
    text = twin_kubectl("logs", "-n", NS, builder[0]["metadata"]["name"]).stdout
    assert "RuntimeWarning: coroutine '_get_recommended_hardware_config_map' was never awaited" in text
    twin_kubectl("delete", "pod", "-n", NS, pods(twin_kubectl, runbook_body["name"])[0]["metadata"]["name"])
    time.sleep(0.5)
    serving(me, runbook_body["name"])
    assert shard_gets(odp_twin) - before == 6            # the EmptyDir went with the pod: downloaded twice


def test_rwx_on_ceph_rbd_never_binds_and_the_pod_waits(odp_twin, me, runbook_body, cache_on, twin_kubectl):
    cache_on(storageClassName="ceph-rbd")
    assert me.create(runbook_body).status == 200
    rec = me.wait(runbook_body["name"], lambda e: e["spec"].get("deployment_name"))
    claim = rec["spec"]["deployment_name"] + "-model-cache"
    deadline = time.monotonic() + 20
    while "ProvisioningFailed" not in (ev := twin_kubectl("get", "events", "-n", NS, "--field-selector",
                                                          f"involvedObject.name={claim}").stdout) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "multi node access modes are only supported on rbd `block` type volumes" in ev
    assert twin_kubectl("get", "pvc", "-n", NS, claim, "-o", "jsonpath={.status.phase}").stdout == "Pending"
    pod = pods(twin_kubectl, runbook_body["name"])[0]
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert "pod has unbound immediate PersistentVolumeClaims" in cond["message"]


def test_a_chart_without_the_claim_template_fails_the_build(odp_twin, me, runbook_body, cache_on):
    cache_on()
    odp_twin.call(odp_twin.kube.patch("ConfigMap", MC.TEMPLATE_CONFIG_MAP, odp_twin.config.gateway_namespace,
                                      {"data": {MC.PVC_TEMPLATE_KEY: None}}))
    assert me.create(runbook_body).status == 200
    rec = me.wait(runbook_body["name"], lambda e: e["status"] == "UPDATE_FAILED")
    assert rec["spec"]["status_reason"] == "Endpoint deployment failed due to an internal error."


def test_a_changed_fingerprint_downloads_again_into_the_same_claim(odp_twin, me, runbook_body, cache_on, twin_kubectl):
    cache_on()
    assert me.create(runbook_body).status == 200
    rec = serving(me, runbook_body["name"])
    old = pods(twin_kubectl, runbook_body["name"])[0]["metadata"]["name"]
    claim = resource(odp_twin, "PersistentVolumeClaim", rec["spec"]["deployment_name"] + "-model-cache")
    r = me.put(f"/v1/llm/model-endpoints/{runbook_body['name']}", {"checkpoint_path": "s3://scale-gp-models/llama-3-8b-instruct/",
                                                                  "model_name": "llama-3-8b-instruct"})
    assert r.status == 200, r
    me.wait(runbook_body["name"], lambda e: e["status"] == "READY" and e["model_name"] == "llama-3-8b-instruct")
    serving(me, runbook_body["name"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = pods(twin_kubectl, runbook_body["name"])
        if len(now) == 1 and now[0]["metadata"]["name"] != old and all(c["ready"] for c in now[0]["status"].get("containerStatuses") or [{}]):
            break
        time.sleep(0.2)
    new = now[0]["metadata"]["name"]
    listing = twin_kubectl("exec", "-n", NS, new, "-c", "main", "--", "ls", "/mnt/model-cache/model_files").stdout.split()
    assert "model-00003-of-00003.safetensors" not in listing            # the folder was emptied before the new download
    again = resource(odp_twin, "PersistentVolumeClaim", rec["spec"]["deployment_name"] + "-model-cache")
    assert again["metadata"]["uid"] == claim["metadata"]["uid"]
    marker = twin_kubectl("exec", "-n", NS, new, "-c", "main", "--", "cat", "/mnt/model-cache/model_files/.complete").stdout.strip()
    command = resource(odp_twin, "Deployment", rec["spec"]["deployment_name"])["spec"]["template"]["spec"]["containers"][1]["command"][2]
    assert marker == MC.parse(command)["fingerprint"]
