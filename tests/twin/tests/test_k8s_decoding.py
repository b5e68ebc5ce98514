"""Wrongly typed fields are refused with the apiserver's decode errors (kubernetes client, real kubectl apply)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.twin
NS = "decode"


def deployment(name: str, container: dict | None = None, **spec) -> dict:
    c = {"name": "main", "image": "nginx", **(container or {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, **spec,
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [c]}}}}


@pytest.fixture(scope="module")
def dyn(shared_twin):
    """The dynamic client: it sends bodies as given (the typed API validates types client-side first)."""
    from kubernetes import config
    from kubernetes.dynamic import DynamicClient

    api = config.new_client_from_config(str(shared_twin.kubeconfig_path))
    d = DynamicClient(api)
    d.resources.get(api_version="v1", kind="Namespace").create(body={"metadata": {"name": NS}})
    try:
        yield d
    finally:
        api.close()


def refused(dyn, api_version: str, kind: str, body: dict) -> tuple[int, str]:
    from kubernetes.dynamic.exceptions import DynamicApiError

    res = dyn.resources.get(api_version=api_version, kind=kind)
    with pytest.raises(DynamicApiError) as e:
        res.create(body=body, namespace=NS)
    status = json.loads(e.value.body)
    assert status["kind"] == "Status" and status["code"] == e.value.status
    return e.value.status, status["message"]


CM = 'ConfigMap in version "v1" cannot be handled as a ConfigMap: '
DEP = 'Deployment in version "v1" cannot be handled as a Deployment: '


@pytest.mark.parametrize(("api_version", "kind", "body", "message"), [
    ("v1", "ConfigMap", {"metadata": {"name": "c1"}, "data": {"enabled": True}},
     CM + "json: cannot unmarshal bool into Go struct field ConfigMap.data of type string"),
    ("v1", "ConfigMap", {"metadata": {"name": "c2"}, "data": {"n": 3}},
     CM + "json: cannot unmarshal number into Go struct field ConfigMap.data of type string"),
    ("v1", "ConfigMap", {"metadata": {"name": "c3", "labels": {"a": False}}},
     CM + "json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string"),
    ("v1", "ConfigMap", {"metadata": "c4"}, CM + "json: cannot unmarshal string into Go struct field ConfigMap.metadata of type v1.ObjectMeta"),
    ("apps/v1", "Deployment", deployment("d1", {"env": [{"name": True, "value": "x"}]}),
     DEP + "json: cannot unmarshal bool into Go struct field EnvVar.spec.template.spec.containers.env.name of type string"),
    ("apps/v1", "Deployment", deployment("d2", {"env": [{"name": "A", "value": 1}]}),
     DEP + "json: cannot unmarshal number into Go struct field EnvVar.spec.template.spec.containers.env.value of type string"),
    ("apps/v1", "Deployment", deployment("d3", replicas="2"),
     DEP + "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("apps/v1", "Deployment", deployment("d4", replicas=1.5),
     DEP + "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("apps/v1", "Deployment", deployment("d5", {"ports": [{"containerPort": "80"}]}),
     DEP + "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"),
    ("apps/v1", "Deployment", deployment("d6", {"resources": {"limits": {"memory": "lots"}}}),
     DEP + "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("apps/v1", "Deployment", deployment("d7", {"envFrom": [{"secretRef": {"name": 5}}]}),
     DEP + "json: cannot unmarshal number into Go struct field SecretEnvSource.spec.template.spec.containers.envFrom.secretRef.name of type string"),
    ("apps/v1", "Deployment", deployment("d8", {"command": "python -m x"}),
     DEP + "json: cannot unmarshal string into Go struct field Container.spec.template.spec.containers.command of type []string"),
    ("v1", "Pod", {"metadata": {"name": "p1"}, "spec": {"containers": [{"name": "c", "image": "i", "stdin": "yes"}]}},
     'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field Container.spec.containers.stdin of type bool'),
    ("v1", "Service", {"metadata": {"name": "s1"}, "spec": {"ports": [{"port": "80"}]}},
     'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32'),
    ("v1", "Service", {"metadata": {"name": "s2"}, "spec": {"ports": [{"port": 80, "targetPort": True}]}},
     'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal bool into Go struct field '
     "ServicePort.spec.ports.targetPort of type int32"),
    ("v1", "Secret", {"metadata": {"name": "sec1"}, "data": {"k": "not base64!"}},
     'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'),
    ("autoscaling/v2", "HorizontalPodAutoscaler", {"metadata": {"name": "h1"}, "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": "3"}},
     'HorizontalPodAutoscaler in version "v2" cannot be handled as a HorizontalPodAutoscaler: json: cannot unmarshal string into '
     "Go struct field HorizontalPodAutoscalerSpec.spec.maxReplicas of type int32"),
    ("policy/v1", "PodDisruptionBudget", {"metadata": {"name": "pdb1"}, "spec": {"minAvailable": False}},
     'PodDisruptionBudget in version "v1" cannot be handled as a PodDisruptionBudget: json: cannot unmarshal bool into Go struct '
     "field PodDisruptionBudgetSpec.spec.minAvailable of type int32"),
])
def test_create_refuses_wrong_types_with_the_decode_error(dyn, api_version, kind, body, message):
    assert refused(dyn, api_version, kind, {"apiVersion": api_version, "kind": kind, **body}) == (400, message)


def test_first_error_in_document_order_wins_but_a_custom_decoder_error_aborts(dyn):
    body = deployment("d9", {"env": [{"name": 1}]}, replicas="x")
    assert refused(dyn, "apps/v1", "Deployment", body)[1] == \
        DEP + "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    body = deployment("d10", {"env": [{"name": 1}], "resources": {"requests": {"cpu": True}}})
    assert "quantities must match the regular expression" in refused(dyn, "apps/v1", "Deployment", body)[1]


def test_well_typed_objects_are_stored(dyn):
    res = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = deployment("ok", {"env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                             "resources": {"limits": {"cpu": "500m", "memory": 1073741824}}}, strategy={"type": "RollingUpdate",
                                                                                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}})
    assert res.create(body=body, namespace=NS).metadata.name == "ok"


def test_patches_that_produce_wrong_types_are_invalid(dyn):
    from kubernetes.dynamic.exceptions import DynamicApiError

    cm = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cm.create(body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "patched"}, "data": {"a": "b"}}, namespace=NS)
    with pytest.raises(DynamicApiError) as e:
        cm.patch(name="patched", namespace=NS, body={"data": {"a": True}}, content_type="application/strategic-merge-patch+json")
    assert e.value.status == 422
    assert json.loads(e.value.body)["message"] == '"" is invalid: patch: Invalid value: "map[data:map[a:true]]": unrecognized type: string'
    with pytest.raises(DynamicApiError) as e:
        cm.patch(name="patched", namespace=NS, body={"data": {"a": 2}}, content_type="application/merge-patch+json")
    msg = json.loads(e.value.body)["message"]
    assert e.value.status == 422 and msg.startswith('"" is invalid: patch: Invalid value: "{\\"apiVersion\\":\\"v1\\",\\"data\\":{\\"a\\":2}')
    assert msg.endswith('": json: cannot unmarshal number into Go struct field ConfigMap.data of type string')
    assert cm.get(name="patched", namespace=NS).data.a == "b"


MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: decode
data:
  enabled: true
"""


def test_kubectl_apply_gets_the_servers_answer(shared_kubectl, dyn):
    """kubectl validates on the server (fieldValidation=Strict): what it prints is the apiserver's text."""
    p = shared_kubectl("apply", "-f", "-", input=MANIFEST.format(name="applied"), check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == ('Error from server (BadRequest): error when creating "STDIN": ' + CM
                                + "json: cannot unmarshal bool into Go struct field ConfigMap.data of type string")
    # an existing object: kubectl sends a strategic merge patch and prints the 422 as "The request is invalid"
    shared_kubectl("apply", "-f", "-", input=MANIFEST.format(name="applied").replace("true", '"true"'))
    p = shared_kubectl("apply", "-f", "-", input=MANIFEST.format(name="applied"), check=False)
    assert p.returncode == 1
    assert "The request is invalid: patch: Invalid value: \"map[data:map[enabled:true] metadata:map[annotations:map[" in p.stderr
    assert p.stderr.strip().endswith("unrecognized type: string")
