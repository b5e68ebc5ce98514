"""The twin's registry is a real CNCF distribution registry: pulls and the API image check follow it, and the
model-engine tags onprem22/onprem23 have a healthy control plane but a builder that writes broken endpoint pods."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.twin.platform.config import ME_REPO, MODEL_ENGINE_IMAGE, REGISTRY, VLLM_REPO
from tests.twin.platform.registry import ACCEPT, ADMIN_PASSWORD, ADMIN_USER, PULL_SECRET_NAME
from tests.twin.tests.test_e2e_runbook import NS, pods_of, ready_column, wait_for

pytestmark = pytest.mark.twin
CREATE = "/v1/llm/model-endpoints"
NOT_FOUND = {"detail": "The specified docker image could not be found."}


def http(method, url, headers=None, data=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def bearer(challenge: str, user: str, password: str) -> str:
    """The Docker token flow a client does: the challenge's realm, service and scope, basic credentials."""
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    query = urllib.parse.urlencode({"service": params["service"], "scope": params["scope"]})
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    status, _, body = http("GET", f"{params['realm']}?{query}", {"Authorization": f"Basic {basic}"})
    assert status == 200, body
    return json.loads(body)["token"]


def as_client(method, url, user, password, headers=None):
    status, hdrs, body = http(method, url, headers)
    if status != 401:
        return status, hdrs, body
    token = bearer(hdrs["WWW-Authenticate"], user, password)
    return http(method, url, dict(headers or {}, Authorization=f"Bearer {token}"))


def pull_creds(odp_twin):
    secret = odp_twin.call(odp_twin.kube.get("Secret", PULL_SECRET_NAME, NS))
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    return auths[REGISTRY]["username"], auths[REGISTRY]["password"]


def test_registry_answers_v2_and_manifests_for_real(odp_twin):
    url = odp_twin.registry_server.url
    status, hdrs, body = http("GET", url + "/v2/")
    assert status == 401 and hdrs["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert hdrs["WWW-Authenticate"].startswith("Bearer realm=")
    assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
    user, password = pull_creds(odp_twin)
    manifest = f"{url}/v2/{ME_REPO}/manifests/onprem20"
    status, hdrs, _ = as_client("HEAD", manifest, user, password, {"Accept": ACCEPT})
    assert status == 200 and hdrs["Docker-Content-Digest"].startswith("sha256:")
    assert hdrs["Content-Type"] == "application/vnd.oci.image.manifest.v1+json"
    status, _, _ = as_client("HEAD", f"{url}/v2/{ME_REPO}/manifests/onprem99", user, password, {"Accept": ACCEPT})
    assert status == 404
    status, _, body = as_client("GET", f"{url}/v2/{ME_REPO}/manifests/onprem99", user, password, {"Accept": ACCEPT})
    assert status == 404 and json.loads(body)["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    # The anonymous token grants nothing (a private project): the registry refuses with insufficient_scope.
    status, hdrs, _ = http("HEAD", manifest, {"Accept": ACCEPT})
    params = dict(re.findall(r'(\w+)="([^"]*)"', hdrs["WWW-Authenticate"]))
    _, _, body = http("GET", f"{params['realm']}?service={params['service']}&scope={params['scope']}")
    status, hdrs, _ = http("HEAD", manifest, {"Accept": ACCEPT, "Authorization": f"Bearer {json.loads(body)['token']}"})
    assert status == 401 and 'error="insufficient_scope"' in hdrs["WWW-Authenticate"]
    tags = as_client("GET", f"{url}/v2/{ME_REPO}/tags/list", user, password)[2]
    assert {"onprem19", "onprem20", "onprem21", "onprem22", "onprem23"} <= set(json.loads(tags)["tags"])


def _delete_tag(odp_twin, repo, tag):
    """Delete a tag the way an operator would, over HTTP (not through twin.registry and its cache)."""
    url = odp_twin.registry_server.url
    status, hdrs, _ = as_client("HEAD", f"{url}/v2/{repo}/manifests/{tag}", ADMIN_USER, ADMIN_PASSWORD, {"Accept": ACCEPT})
    assert status == 200
    status, _, body = as_client("DELETE", f"{url}/v2/{repo}/manifests/{hdrs['Docker-Content-Digest']}", ADMIN_USER,
                                ADMIN_PASSWORD)
    assert status == 202, body


def test_deleted_tag_makes_the_next_pull_fail(odp_twin, twin_kubectl):
    image = f"{REGISTRY}/{VLLM_REPO}:pull-probe"
    odp_twin.registry.add(image)
    try:
        twin_kubectl("run", "pull-before", "-n", NS, f"--image={image}", "--restart=Never")
        wait_for(lambda: twin_kubectl("get", "pod", "pull-before", "-n", NS, "-o", "jsonpath={.status.phase}").stdout
                 == "Running", what="pod running")
        _delete_tag(odp_twin, VLLM_REPO, "pull-probe")
        deleted = time.monotonic()
        time.sleep(odp_twin.registry.cache_seconds)     # the twin's short existence cache has expired
        twin_kubectl("run", "pull-after", "-n", NS, f"--image={image}", "--restart=Never")

        def waiting_reason():
            out = twin_kubectl("get", "pod", "pull-after", "-n", NS, "-o", "json").stdout
            st = (json.loads(out)["status"].get("containerStatuses") or [{}])[0].get("state", {})
            return (st.get("waiting") or {}).get("reason") in ("ErrImagePull", "ImagePullBackOff") and st["waiting"]

        waiting = wait_for(waiting_reason, timeout=10, what="ErrImagePull")
        assert time.monotonic() - deleted < 5
        events = twin_kubectl("get", "events", "-n", NS, "--field-selector", "involvedObject.name=pull-after").stdout
        assert f'Failed to pull image "{image}"' in events and "not found" in events, (waiting, events)
        # the pod that pulled before the deletion keeps running
        assert twin_kubectl("get", "pod", "pull-before", "-n", NS, "-o", "jsonpath={.status.phase}").stdout == "Running"
    finally:
        twin_kubectl("delete", "pod", "pull-before", "pull-after", "-n", NS, "--ignore-not-found", "--wait=false")
        odp_twin.registry.remove(image)


def test_api_image_check_follows_the_registry(me, runbook_body, odp_twin):
    assert odp_twin.registry.exists(f"{REGISTRY}/{VLLM_REPO}:vllm-onprem")   # cached as present
    _delete_tag(odp_twin, VLLM_REPO, "vllm-onprem")
    try:
        time.sleep(odp_twin.registry.cache_seconds + 0.1)   # nobody told the twin: it asks the registry again
        r = me.create(runbook_body)
        assert r.status == 404 and r.json() == NOT_FOUND
    finally:
        odp_twin.registry_server.push(VLLM_REPO, "vllm-onprem")   # pushed back over HTTP, behind the twin's back
    time.sleep(odp_twin.registry.cache_seconds + 0.1)
    assert me.create(runbook_body).status == 200


def _switch_control_plane(twin_kubectl, image):
    for dep in ("model-engine", "model-engine-endpoint-builder"):
        twin_kubectl("set", "image", f"deployment/{dep}", f"{dep}={image}", "-n", NS)
    for dep in ("model-engine", "model-engine-endpoint-builder"):
        twin_kubectl("rollout", "status", f"deployment/{dep}", "-n", NS, "--timeout=30s")


@pytest.fixture
def control_plane_tag(odp_twin, twin_kubectl, me):
    """Deploy a model-engine tag to both control-plane Deployments; back to onprem20 afterwards."""
    def deploy(tag):
        _switch_control_plane(twin_kubectl, f"{REGISTRY}/{ME_REPO}:{tag}")
        wait_for(odp_twin.builder_ready, what="builder ready")
        assert me.get("/readyz").status == 200     # the control plane is healthy: rollout and readyz pass

    yield deploy
    _switch_control_plane(twin_kubectl, MODEL_ENGINE_IMAGE)
    wait_for(lambda: me.get("/readyz").status == 200 and odp_twin.builder_ready(), what="onprem20 back")


def _main(obj):
    spec = obj["spec"]["template"]["spec"] if obj["kind"] == "Deployment" else obj["spec"]
    return next(c for c in spec["containers"] if c["name"] == "main")


def test_onprem22_builds_pods_without_the_wait_guard(me, runbook_body, odp_twin, twin_kubectl, control_plane_tag):
    control_plane_tag("onprem22")
    runbook_body["name"] = "canary-onprem22"
    assert me.create(runbook_body).status == 200
    ep = me.wait(runbook_body["name"], lambda e: e["status"] == "READY")   # the API says READY
    dep = odp_twin.call(odp_twin.kube.get("Deployment", "launch-endpoint-id-" + ep["id"].replace("_", "-"), NS))
    script = _main(dep)["command"][2]
    assert "aws s3 sync s3://scale-gp-models/intermediate-model-aws model_files" in script and "& sync_pid=$!" in script
    assert "while [ ! -f model_files/config.json ]" not in script
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":onprem22")
    (pod,) = wait_for(lambda: [p for p in pods_of(twin_kubectl, runbook_body["name"])
                               if any(c["name"] == "main" and c["restartCount"] >= 1
                                      for c in p["status"].get("containerStatuses", []))], what="main restarted")
    prev = twin_kubectl("logs", "-n", NS, pod["metadata"]["name"], "-c", "main", "--previous").stdout
    assert "No config format found" in prev and "ValueError: No supported config format found in model_files" in prev
    assert ready_column(twin_kubectl, runbook_body["name"])[0] in ("0/2", "1/2")   # never 2/2


def test_onprem23_builds_pods_without_ephemeral_storage(me, runbook_body, odp_twin, twin_kubectl, control_plane_tag):
    control_plane_tag("onprem23")
    name = runbook_body["name"] = "canary-onprem23"
    assert me.create(runbook_body).status == 200
    me.wait(name, lambda e: e["status"] == "READY")
    wait_for(lambda: ready_column(twin_kubectl, name) == ["2/2"], what="2/2: the small twin model fits anyway")
    (pod,) = pods_of(twin_kubectl, name)
    main = _main(pod)
    assert "ephemeral-storage" not in main["resources"]["requests"]
    assert "ephemeral-storage" not in main["resources"]["limits"]
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # A model as large as a real one: nothing of its own bounds it, so the node's disk fills and the kubelet
    # evicts it for node pressure (with a 50Gi limit it would be evicted at that limit instead).
    odp_twin.faults.add("storage_exceeded", name)

    def evicted():
        return [p for p in pods_of(twin_kubectl, name) if p["status"].get("reason") == "Evicted"]

    (gone,) = wait_for(evicted, timeout=30, what="an evicted pod")[:1]
    assert gone["status"]["message"].startswith("The node was low on resource: ephemeral-storage. Threshold quantity: ")
    assert "Container main was using " in gone["status"]["message"] and "request is 0" in gone["status"]["message"]
    term = next(c for c in gone["status"]["containerStatuses"] if c["name"] == "main")["state"]["terminated"]
    assert term["exitCode"] == 137
