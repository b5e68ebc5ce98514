"""The add-ons the model-engine builder relies on: the VPA and KEDA CRDs, the disruption controller, the KEDA operator,
and the kubelet's volume set-up (FailedMount), driven through real kubectl and the kubernetes Python client."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .conftest import wait_for

pytestmark = pytest.mark.twin

VPA = """apiVersion: autoscaling.k8s.io/v1
kind: VerticalPodAutoscaler
metadata: {{name: web, namespace: {ns}, labels: {{endpoint_id: e1}}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  updatePolicy: {{updateMode: {mode}}}
  resourcePolicy:
    containerPolicies:
      - {{containerName: main, minAllowed: {{cpu: 100m, memory: 128Mi}}, maxAllowed: {{cpu: 4, memory: 16Gi}}}}
"""
DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}, labels: {{endpoint_id: e1}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: main, image: nginx:1.25}}]}}
"""


def _ns(k, name: str) -> str:
    k("create", "namespace", name)
    return name


def test_vpa_and_scaledobject_served_like_installed_crds(kubectl, api):
    k = kubectl
    ns = _ns(k, "crs")
    crds = k("get", "crd", "-o", "name").stdout.split()
    assert crds == ["customresourcedefinition.apiextensions.k8s.io/scaledobjects.keda.sh",
                    "customresourcedefinition.apiextensions.k8s.io/verticalpodautoscalers.autoscaling.k8s.io"]
    crd = json.loads(k("get", "crd", "verticalpodautoscalers.autoscaling.k8s.io", "-o", "json").stdout)
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]} == {"NamesAccepted": "True", "Established": "True"}
    res = k("api-resources", "--api-group=keda.sh", "--no-headers").stdout.split()
    assert res[:2] == ["scaledobjects", "so"]

    assert "created" in k("apply", "-f", "-", input=VPA.format(ns=ns, mode="Auto")).stdout
    assert "configured" in k("apply", "-f", "-", input=VPA.format(ns=ns, mode="'Off'")).stdout  # a JSON merge patch
    table = k("get", "vpa", "-n", ns, "-l", "endpoint_id=e1").stdout.splitlines()
    assert table[0].split() == ["NAME", "MODE", "CPU", "MEM", "PROVIDED", "AGE"]
    assert table[1].split()[:2] == ["web", "Off"]
    assert k("get", "vpa", "-n", ns, "-l", "endpoint_id!=e1", "-o", "name").stdout == ""

    # custom resources refuse strategic merge patches; kubectl says so, a merge patch works
    bad = k("patch", "vpa", "web", "-n", ns, "-p", '{"spec":{"updatePolicy":{"updateMode":"Initial"}}}', check=False)
    assert bad.returncode != 0 and "unknown format" in bad.stderr
    k("patch", "vpa", "web", "-n", ns, "--type=merge", "-p", '{"spec":{"updatePolicy":{"updateMode":"Initial"}}}')
    invalid = k("apply", "-f", "-", input=VPA.format(ns=ns, mode="Sometimes"), check=False)
    assert 'spec.updatePolicy.updateMode: Unsupported value: "Sometimes"' in invalid.stderr

    co = client.CustomObjectsApi(api)
    so = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
          "metadata": {"name": "web", "labels": {"endpoint_id": "e1"}, "finalizers": []},
          "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 0, "maxReplicaCount": 2,
                   "triggers": [{"type": "redis", "metadata": {"listName": "q", "listLength": "100"}}]},
          "status": {"hpaName": "ignored"}}
    created = co.create_namespaced_custom_object("keda.sh", "v1alpha1", ns, "scaledobjects", so)
    assert created["metadata"]["generation"] == 1 and "status" not in created   # status subresource: not set on create
    listed = co.list_namespaced_custom_object("keda.sh", "v1alpha1", ns, "scaledobjects", label_selector="endpoint_id=e1")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["web"]
    with pytest.raises(ApiException) as e:
        co.create_namespaced_custom_object("keda.sh", "v1alpha1", ns, "scaledobjects",
                                           {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                                            "metadata": {"name": "broken"}, "spec": {"scaleTargetRef": {}}})
    assert e.value.status == 422
    assert json.loads(e.value.body)["message"] == ('ScaledObject.keda.sh "broken" is invalid: [spec.triggers: Required value, '
                                                   "spec.scaleTargetRef.name: Required value]")
    header = k("get", "scaledobjects", "-n", ns).stdout.splitlines()[0].split()
    assert header == ["NAME", "SCALETARGETKIND", "SCALETARGETNAME", "MIN", "MAX", "READY", "ACTIVE", "FALLBACK", "PAUSED",
                      "TRIGGERS", "AUTHENTICATIONS", "AGE"]
    gone = co.delete_namespaced_custom_object("keda.sh", "v1alpha1", ns, "scaledobjects", "web")
    assert gone["kind"] == "ScaledObject" and gone["metadata"]["name"] == "web"   # the CR registry returns the object
    with pytest.raises(ApiException) as e:
        co.get_namespaced_custom_object("keda.sh", "v1alpha1", ns, "scaledobjects", "web")
    assert e.value.status == 404
    # kinds the cluster does not serve are a plain 404 (what the builder's delete of an Istio object sees)
    with pytest.raises(ApiException) as e:
        co.delete_namespaced_custom_object("networking.istio.io", "v1alpha3", ns, "virtualservices", "web")
    assert e.value.status == 404


def test_pdb_status_follows_the_matching_pods(kubectl):
    k = kubectl
    ns = _ns(k, "pdb")
    k("apply", "-f", "-", input=DEPLOY.format(ns=ns, replicas=2))
    k("apply", "-f", "-", input=f"""apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: web, namespace: {ns}}}
spec: {{maxUnavailable: 50%, selector: {{matchLabels: {{app: web}}}}}}
""")

    def status():
        return json.loads(k("get", "pdb", "web", "-n", ns, "-o", "json").stdout).get("status") or {}

    st = wait_for(lambda: status() if status().get("currentHealthy") == 2 else None, message="2 healthy pods")
    assert (st["expectedPods"], st["desiredHealthy"], st["disruptionsAllowed"]) == (2, 1, 1)
    assert st["conditions"][0]["type"] == "DisruptionAllowed" and st["conditions"][0]["reason"] == "SufficientPods"
    row = k("get", "pdb", "web", "-n", ns, "--no-headers").stdout.split()
    assert row[:4] == ["web", "N/A", "50%", "1"]
    k("scale", "deploy/web", "-n", ns, "--replicas=0")
    st = wait_for(lambda: status() if status().get("expectedPods") == 0 and status().get("currentHealthy") == 0 else None,
                  message="no pods")
    assert st["disruptionsAllowed"] == 0 and st["conditions"][0]["reason"] == "InsufficientPods"
    evs = k("get", "events", "-n", ns, "--field-selector", "involvedObject.kind=PodDisruptionBudget,reason=NoPods",
            "-o", "json").stdout
    assert [e["message"] for e in json.loads(evs)["items"]] == ["No matching pods found"]


def test_keda_operator_owns_an_hpa_and_scales_to_zero(kubectl):
    k = kubectl
    ns = _ns(k, "keda")
    k("apply", "-f", "-", input=DEPLOY.format(ns=ns, replicas=1))
    k("apply", "-f", "-", input=f"""apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: web, namespace: {ns}, labels: {{endpoint_id: e1}}}}
spec:
  scaleTargetRef: {{name: web}}
  minReplicaCount: 0
  maxReplicaCount: 3
  triggers: [{{type: redis, metadata: {{listName: "launch-endpoint-autoscaling:end_1", listLength: "100"}}}}]
""")
    row = wait_for(lambda: (r := k("get", "so", "web", "-n", ns, "--no-headers").stdout.split()) and r[5] == "True" and r,
                   message="ScaledObject Ready")
    assert row[:10] == ["web", "apps/v1.Deployment", "web", "0", "3", "True", "False", "False", "Unknown", "redis"]
    hpa = json.loads(k("get", "hpa", "keda-hpa-web", "-n", ns, "-o", "json").stdout)
    assert hpa["metadata"]["labels"]["endpoint_id"] == "e1"            # KEDA copies the ScaledObject's labels
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ScaledObject"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    assert hpa["spec"]["metrics"][0]["external"]["metric"]["name"] == "s0-redis-launch-endpoint-autoscaling-end_1"
    wait_for(lambda: k("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}").stdout == "0",
             message="scaled to zero")
    k("delete", "so", "web", "-n", ns)
    wait_for(lambda: k("get", "hpa", "-n", ns, "-o", "name").stdout == "", message="keda-hpa garbage-collected")


def test_missing_configmap_volume_leaves_pod_container_creating_until_it_exists(kubectl):
    k = kubectl
    ns = _ns(k, "mounts")
    k("apply", "-f", "-", input=f"""apiVersion: v1
kind: Pod
metadata: {{name: app, namespace: {ns}}}
spec:
  containers: [{{name: main, image: nginx:1.25, volumeMounts: [{{name: config-volume, mountPath: /opt/.aws/config,
                                                                 subPath: config}}]}}]
  volumes:
    - {{name: config-volume, configMap: {{name: default-config}}}}
    - {{name: maybe, configMap: {{name: not-there, optional: true}}}}
""")

    def failed_mounts():
        out = k("get", "events", "-n", ns, "--field-selector", "reason=FailedMount", "-o", "json").stdout
        return [e for e in json.loads(out)["items"] if e["count"] >= 2]

    (ev,) = wait_for(failed_mounts, message="a repeated FailedMount event")
    assert ev["type"] == "Warning" and ev["source"]["component"] == "kubelet"
    assert ev["message"] == 'MountVolume.SetUp failed for volume "config-volume" : configmap "default-config" not found'
    pod = json.loads(k("get", "pod", "app", "-n", ns, "-o", "json").stdout)
    assert pod["status"]["phase"] == "Pending"
    assert pod["status"]["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    conds = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conds["PodReadyToStartContainers"] == "False" and conds["PodScheduled"] == "True"
    assert k("get", "pod", "app", "-n", ns, "--no-headers").stdout.split()[1:3] == ["0/1", "ContainerCreating"]
    described = k("describe", "pod", "app", "-n", ns).stdout
    assert 'FailedMount' in described and 'configmap "default-config" not found' in described
    pulled = k("get", "events", "-n", ns, "--field-selector", "reason=Pulled", "-o", "name").stdout
    assert pulled == ""                        # the kubelet mounts before it pulls images

    k("create", "configmap", "default-config", "-n", ns, "--from-literal=config=[profile default]")
    wait_for(lambda: k("get", "pod", "app", "-n", ns, "--no-headers").stdout.split()[1:3] == ["1/1", "Running"],
             message="the pod starts once the ConfigMap exists")


def test_missing_secret_and_missing_item_key_texts(kubectl):
    k = kubectl
    ns = _ns(k, "mounts2")
    k("create", "configmap", "svc-config", "-n", ns, "--from-literal=launch_service_config=x")
    k("apply", "-f", "-", input=f"""apiVersion: v1
kind: Pod
metadata: {{name: app, namespace: {ns}}}
spec:
  containers: [{{name: main, image: nginx:1.25}}]
  volumes:
    - {{name: creds, secret: {{secretName: s3-creds}}}}
    - {{name: infra, configMap: {{name: svc-config, items: [{{key: infra_service_config, path: config.yaml}}]}}}}
""")

    def messages():
        out = k("get", "events", "-n", ns, "--field-selector", "reason=FailedMount", "-o", "json").stdout
        return sorted({e["message"] for e in json.loads(out)["items"]})

    msgs = wait_for(lambda: (m := messages()) and len(m) == 2 and m, message="both FailedMount messages")
    assert msgs == ['MountVolume.SetUp failed for volume "creds" : secret "s3-creds" not found',
                    'MountVolume.SetUp failed for volume "infra" : configmap references non-existent config key: '
                    'infra_service_config']
