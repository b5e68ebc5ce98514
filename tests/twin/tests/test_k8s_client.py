"""The kubernetes Python client (typed and dynamic) against the emulator."""

from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.stream import stream

from .conftest import wait_for

pytestmark = pytest.mark.twin


def deployment(name="web", image="nginx:1.25", replicas=1, labels=None):
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": image,
                                                           "env": [{"name": "A", "value": "1"}],
                                                           "ports": [{"containerPort": 8080}]}]}}}}


def test_configmap_crud_and_server_fields(api):
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "c1", "labels": {"a": "b"}}, "data": {"k": "v"}})
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    got = core.read_namespaced_config_map("c1", "default")
    assert got.data == {"k": "v"} and got.metadata.resource_version == created.metadata.resource_version
    got.data["k"] = "v2"
    replaced = core.replace_namespaced_config_map("c1", "default", got)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("default", {"metadata": {"name": "c1"}})
    assert e.value.status == 409 and json.loads(e.value.body)["reason"] == "AlreadyExists"
    status = core.delete_namespaced_config_map("c1", "default")
    assert status["kind"] == "Status" and status["status"] == "Success" and status["details"]["name"] == "c1"
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("c1", "default")
    body = json.loads(e.value.body)
    assert e.value.status == 404 and body["kind"] == "Status" and body["reason"] == "NotFound"
    assert body["message"] == 'configmaps "c1" not found' and body["details"] == {"name": "c1", "kind": "configmaps"}


def test_stale_put_conflicts(api):
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "c2"}, "data": {"k": "1"}})
    a = core.read_namespaced_config_map("c2", "default")
    b = core.read_namespaced_config_map("c2", "default")
    a.data = {"k": "2"}
    core.replace_namespaced_config_map("c2", "default", a)
    b.data = {"k": "3"}
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("c2", "default", b)
    body = json.loads(e.value.body)
    assert e.value.status == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    assert core.read_namespaced_config_map("c2", "default").data == {"k": "2"}


def test_four_patch_types(api):
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", deployment("p"))
    # strategic merge: containers merged by name, env merged by name
    sm = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"},
                                                        {"name": "main", "env": [{"name": "B", "value": "2"}]}]}}}}
    d = apps.patch_namespaced_deployment("p", "default", sm)
    cs = d.spec.template.spec.containers
    assert [c.name for c in cs] == ["main", "side"]
    assert [(e.name, e.value) for e in cs[0].env] == [("A", "1"), ("B", "2")]
    # $patch: delete removes one list element
    d = apps.patch_namespaced_deployment("p", "default", {"spec": {"template": {"spec": {"containers": [
        {"name": "side", "$patch": "delete"}]}}}})
    assert [c.name for c in d.spec.template.spec.containers] == ["main"]
    # JSON merge patch replaces lists wholesale
    dyn = DynamicClient(api)
    deps = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    resp = deps.patch(name="p", namespace="default", content_type="application/merge-patch+json",
                      body={"metadata": {"labels": {"merged": "yes"}}, "spec": {"replicas": 2, "template": {"spec": {
                          "containers": [{"name": "only", "image": "busybox"}]}}}})
    assert resp.metadata.labels["merged"] == "yes" and resp.spec.replicas == 2
    assert [c.name for c in resp.spec.template.spec.containers] == ["only"]
    # JSON patch
    d = apps.patch_namespaced_deployment("p", "default", [{"op": "replace", "path": "/spec/replicas", "value": 3},
                                                         {"op": "add", "path": "/metadata/labels/jp", "value": "1"}])
    assert d.spec.replicas == 3 and d.metadata.labels["jp"] == "1"
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment("p", "default", [{"op": "test", "path": "/spec/replicas", "value": 9}])
    assert e.value.status == 422
    # server-side apply: create when missing, then merge, with conflicts on fields owned by another manager
    res = dyn.resources.get(api_version="v1", kind="ConfigMap")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "namespace": "default"}, "data": {"a": "1", "b": "2"}}
    out = res.server_side_apply(body=body, name="ssa", namespace="default", field_manager="mgr1").to_dict()
    assert out["data"] == {"a": "1", "b": "2"}
    mf = {m["manager"]: m for m in out["metadata"]["managedFields"]}
    assert mf["mgr1"]["operation"] == "Apply" and "f:data" in mf["mgr1"]["fieldsV1"]
    body["data"] = {"a": "1"}  # dropping b from the applied config removes it
    out = res.server_side_apply(body=body, name="ssa", namespace="default", field_manager="mgr1").to_dict()
    assert out["data"] == {"a": "1"}
    with pytest.raises(ApiException) as e:
        res.server_side_apply(body={**body, "data": {"a": "other"}}, name="ssa", namespace="default", field_manager="mgr2")
    assert e.value.status == 409 and 'conflict with "mgr1"' in json.loads(e.value.body)["message"]
    out = res.server_side_apply(body={**body, "data": {"a": "other"}}, name="ssa", namespace="default",
                                field_manager="mgr2", force_conflicts=True).to_dict()
    assert out["data"] == {"a": "other"}


def test_dry_run_stores_nothing(api):
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    out = apps.create_namespaced_deployment("default", deployment("dry"), dry_run="All")
    assert out.metadata.uid and out.metadata.name == "dry"
    with pytest.raises(ApiException):
        apps.read_namespaced_deployment("dry", "default")
    core.create_namespaced_config_map("default", {"metadata": {"name": "dr"}, "data": {"k": "1"}})
    before = core.read_namespaced_config_map("dr", "default")
    patched = core.patch_namespaced_config_map("dr", "default", {"data": {"k": "2"}}, dry_run="All")
    assert patched.data == {"k": "2"}
    after = core.read_namespaced_config_map("dr", "default")
    assert after.data == {"k": "1"} and after.metadata.resource_version == before.metadata.resource_version
    core.delete_namespaced_config_map("dr", "default", dry_run="All")
    assert core.read_namespaced_config_map("dr", "default").data == {"k": "1"}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("default", {"metadata": {"name": "x"}}, dry_run="Some")
    assert e.value.status == 400


def test_validation_errors(api):
    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    bad = deployment("bad")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment("default", bad)
    body = json.loads(e.value.body)
    assert e.value.status == 422 and body["reason"] == "Invalid"
    assert "`selector` does not match template `labels`" in body["message"]
    assert body["details"]["kind"] == "Deployment" and body["details"]["group"] == "apps"
    nosel = deployment("nosel")
    del nosel["spec"]["selector"]
    with pytest.raises(ApiException) as e:  # the typed client refuses this client-side; the dynamic one sends it
        DynamicClient(api).resources.get(api_version="apps/v1", kind="Deployment").create(body=nosel, namespace="default")
    assert "spec.selector: Required value" in json.loads(e.value.body)["message"]
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("default", {"metadata": {"name": "Not_Valid"}})
    assert e.value.status == 422 and "RFC 1123 subdomain" in json.loads(e.value.body)["message"]
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("default", {"metadata": {}})
    assert e.value.status == 422 and "name or generateName is required" in json.loads(e.value.body)["message"]
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("nope", {"metadata": {"name": "x"}})
    assert e.value.status == 404 and json.loads(e.value.body)["message"] == 'namespaces "nope" not found'


def test_list_selectors_pagination_all_namespaces(api):
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "other"}})
    for i in range(5):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"pg-{i}", "labels": {"i": str(i), "grp": "pg"}}})
    core.create_namespaced_config_map("other", {"metadata": {"name": "pg-x", "labels": {"grp": "pg"}}})
    page = core.list_namespaced_config_map("default", label_selector="grp=pg", limit=2)
    names = [c.metadata.name for c in page.items]
    assert names == ["pg-0", "pg-1"] and page.metadata._continue and page.metadata.remaining_item_count == 3
    while page.metadata._continue:
        page = core.list_namespaced_config_map("default", label_selector="grp=pg", limit=2, _continue=page.metadata._continue)
        names += [c.metadata.name for c in page.items]
    assert names == [f"pg-{i}" for i in range(5)]
    assert [c.metadata.name for c in core.list_namespaced_config_map("default", label_selector="i in (1,3)").items] == ["pg-1", "pg-3"]
    allns = core.list_config_map_for_all_namespaces(label_selector="grp=pg")
    assert {(c.metadata.namespace, c.metadata.name) for c in allns.items} >= {("other", "pg-x"), ("default", "pg-4")}
    sec = core.create_namespaced_secret("default", {"metadata": {"name": "tls1"}, "type": "kubernetes.io/tls",
                                                    "stringData": {"tls.crt": "c", "tls.key": "k"}})
    assert sec.data == {"tls.crt": "Yw==", "tls.key": "aw=="}
    got = core.list_namespaced_secret("default", field_selector="type=kubernetes.io/tls")
    assert [s.metadata.name for s in got.items] == ["tls1"]
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map("default", field_selector="data.k=v")
    assert e.value.status == 400


def test_watch_streams_events(api):
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    events = []

    def produce():
        time.sleep(0.2)
        core.create_namespaced_config_map("default", {"metadata": {"name": "w1", "labels": {"w": "y"}}})
        core.patch_namespaced_config_map("w1", "default", {"data": {"a": "b"}})
        core.create_namespaced_config_map("default", {"metadata": {"name": "w2"}})  # filtered out by the selector
        core.delete_namespaced_config_map("w1", "default")

    threading.Thread(target=produce).start()
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, "default", resource_version=rv, label_selector="w=y",
                       timeout_seconds=5):
        events.append((ev["type"], ev["object"].metadata.name))
        if ev["type"] == "DELETED":
            w.stop()
    assert events == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_stream_exec_and_deployment_rollout(api, twin):
    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    apps.create_namespaced_deployment("default", deployment("ex", replicas=2))
    wait_for(lambda: (apps.read_namespaced_deployment("ex", "default").status.available_replicas or 0) == 2,
             message="deployment available")
    d = apps.read_namespaced_deployment("ex", "default")
    assert d.status.observed_generation == d.metadata.generation and d.status.updated_replicas == 2
    conds = {c.type: (c.status, c.reason) for c in d.status.conditions}
    assert conds == {"Available": ("True", "MinimumReplicasAvailable"), "Progressing": ("True", "NewReplicaSetAvailable")}
    pods = core.list_namespaced_pod("default", label_selector="app=ex").items
    assert len(pods) == 2
    p = pods[0]
    assert p.metadata.name.startswith(d.metadata.name + "-") and p.metadata.owner_references[0].kind == "ReplicaSet"
    assert p.metadata.labels["pod-template-hash"] in p.metadata.name
    out = stream(core.connect_get_namespaced_pod_exec, p.metadata.name, "default",
                 command=["sh", "-c", "echo $A; pwd"], stderr=True, stdin=False, stdout=True, tty=False)
    assert out.splitlines()[0] == "1" and out.splitlines()[1].endswith(f"/pods/default/{p.metadata.name}/main")
    ws = stream(core.connect_get_namespaced_pod_exec, p.metadata.name, "default", command=["head", "-c", "10"],
                stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    ws.write_stdin("0123456789tail")
    ws.run_forever(timeout=5)
    assert ws.read_stdout() == "0123456789"
    assert ws.returncode == 0
    ws.close()
    # a deleted pod is replaced by its ReplicaSet
    core.delete_namespaced_pod(p.metadata.name, "default")
    wait_for(lambda: len([x for x in core.list_namespaced_pod("default", label_selector="app=ex").items
                          if x.metadata.name != p.metadata.name and x.status.phase == "Running"]) == 2,
             message="replacement pod")
    # cascade delete removes ReplicaSets and pods
    apps.delete_namespaced_deployment("ex", "default", propagation_policy="Foreground")
    assert apps.list_namespaced_replica_set("default", label_selector="app=ex").items == []
    assert core.list_namespaced_pod("default", label_selector="app=ex").items == []


def test_exec_exit_code_status(api):
    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    apps.create_namespaced_deployment("default", deployment("ec"))
    pod = wait_for(lambda: next((x for x in core.list_namespaced_pod("default", label_selector="app=ec").items
                                 if x.status.phase == "Running"), None), message="running pod")
    ws = stream(core.connect_get_namespaced_pod_exec, pod.metadata.name, "default", command=["sh", "-c", "echo hi; exit 7"],
                stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    ws.run_forever(timeout=5)
    assert ws.read_stdout() == "hi\n"
    assert ws.returncode == 7
    ws.close()
    with pytest.raises(ApiException) as e:
        stream(core.connect_get_namespaced_pod_exec, pod.metadata.name, "default", command=["true"], container="nope",
               stderr=True, stdin=False, stdout=True, tty=False)
    assert "400" in str(e.value) and "container nope is not valid" in str(e.value)


def test_dynamic_client_discovery_and_list_kind(api):
    dyn = DynamicClient(api)
    deploys = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    lst = deploys.get(namespace="default")
    assert lst.kind == "DeploymentList" and lst.apiVersion == "apps/v1"
    ev = dyn.resources.get(api_version="events.k8s.io/v1", kind="Event")
    assert ev.namespaced
