"""The two identities of the emulator's kubeconfig: admin (context twin) and read-only (context twin-readonly, HTTPS)."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

import pytest
import yaml

from .conftest import tool_env, wait_for
from .portforward_tools import kubectl_binaries

pytestmark = pytest.mark.twin

RO = "twin-readonly"
NS = "llm-core"
DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "model-engine", "namespace": NS},
          "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "me"}},
                   "template": {"metadata": {"labels": {"app": "me"}}, "spec": {"containers": [{"name": "main", "image": "me:1"}]}}}}


def forbidden(verb: str, resource: str, group: str = "", ns: str = NS) -> str:
    where = f'in the namespace "{ns}"' if ns else "at the cluster scope"
    return f'User "{RO}" cannot {verb} resource "{resource}" in API group "{group}" {where}'


@pytest.fixture(scope="module")
def cluster(shared_twin, shared_kubectl):
    k = shared_kubectl
    k("create", "namespace", NS)
    k("apply", "-f", "-", input=json.dumps(DEPLOY))
    k("create", "secret", "generic", "creds", "-n", NS, "--from-literal=k=v")
    wait_for(lambda: "1/1" in k("get", "deploy", "model-engine", "-n", NS, "--no-headers").stdout, message="deployment ready")
    return shared_twin, k


def test_the_kubeconfig_has_both_identities_and_admin_stays_current(cluster):
    t, _ = cluster
    kc = yaml.safe_load(t.kubeconfig_path.read_text())
    assert kc["current-context"] == "twin"
    ctx = {c["name"]: c["context"] for c in kc["contexts"]}
    clusters = {c["name"]: c["cluster"] for c in kc["clusters"]}
    assert ctx["twin"]["user"] == "twin-admin" and clusters[ctx["twin"]["cluster"]]["server"] == t.url
    assert ctx[RO]["user"] == RO and clusters[ctx[RO]["cluster"]]["server"].startswith("https://127.0.0.1:")
    assert clusters[ctx[RO]["cluster"]]["certificate-authority-data"]


@pytest.mark.parametrize(("args", "admin", "readonly"), [
    (["patch", "deployments", "-n", NS], "yes", "no"),
    (["get", "deployments.apps/model-engine", "-n", NS], "yes", "yes"),
    (["list", "pods", "-n", NS], "yes", "yes"),
    (["get", "pods", "--subresource=log", "-n", NS], "yes", "yes"),
    (["watch", "replicasets", "-A"], "yes", "yes"),
    (["create", "pods", "--subresource=exec", "-n", NS], "yes", "no"),
    (["create", "pods", "--subresource=portforward", "-n", NS], "yes", "no"),
    (["get", "services", "--subresource=proxy", "-n", NS], "yes", "no"),
    (["get", "pods/some-pod", "-n", NS], "yes", "yes"),
    (["get", "secrets", "-n", NS], "yes", "no"),
    (["delete", "horizontalpodautoscalers.autoscaling", "-n", NS], "yes", "no"),
    (["get", "/version"], "yes", "yes"),
    (["post", "/version"], "yes", "no"),
])
def test_kubectl_auth_can_i(cluster, args, admin, readonly):
    _, k = cluster
    for ctx, want in (("twin", admin), (RO, readonly)):
        p = k("--context", ctx, "auth", "can-i", *args, check=False)
        assert (p.stdout.strip(), p.returncode) == (want, 0 if want == "yes" else 1), (ctx, args, p.stderr)


def test_auth_whoami_and_can_i_list(cluster):
    _, k = cluster
    assert "twin-admin" in k("auth", "whoami").stdout
    who = k("--context", RO, "auth", "whoami").stdout
    assert RO in who and "system:authenticated" in who and "system:masters" not in who
    rules = k("--context", RO, "auth", "can-i", "--list", "-n", NS).stdout
    assert "deployments.apps" in rules and "[get list watch]" in rules
    assert "secrets" not in rules and "pods/exec" not in rules
    assert "*.*" in k("auth", "can-i", "--list", "-n", NS).stdout


@pytest.mark.parametrize(("args", "message"), [
    (["patch", "deployment", "model-engine", "-n", NS, "-p", '{"spec":{"replicas":2}}'],
     f'deployments.apps "model-engine" is forbidden: {forbidden("patch", "deployments", "apps")}'),
    (["scale", "deployment/model-engine", "-n", NS, "--replicas=2"],
     f'deployments.apps "model-engine" is forbidden: {forbidden("patch", "deployments/scale", "apps")}'),
    (["delete", "deployment", "model-engine", "-n", NS],
     f'deployments.apps "model-engine" is forbidden: {forbidden("delete", "deployments", "apps")}'),
    (["get", "secrets", "-n", NS], f'secrets is forbidden: {forbidden("list", "secrets")}'),
    (["get", "secret", "creds", "-n", NS], f'secrets "creds" is forbidden: {forbidden("get", "secrets")}'),
    (["create", "namespace", "x"], f'namespaces is forbidden: {forbidden("create", "namespaces", ns="")}'),
    (["get", "--raw", f"/api/v1/namespaces/{NS}/services/model-engine:80/proxy/"],
     f'services "model-engine:80" is forbidden: {forbidden("get", "services/proxy")}'),
])
def test_readonly_writes_are_refused_with_the_real_text(cluster, args, message):
    _, k = cluster
    p = k("--context", RO, *args, check=False)
    assert p.returncode == 1 and message in p.stderr, p.stderr


def test_readonly_exec_and_port_forward_are_refused(cluster):
    _, k = cluster
    pod = k("get", "pods", "-n", NS, "-l", "app=me", "-o", "jsonpath={.items[0].metadata.name}").stdout
    ex = k("--context", RO, "exec", pod, "-n", NS, "--", "true", check=False)
    assert ex.returncode == 1
    assert f'pods "{pod}" is forbidden: {forbidden("create", "pods/exec")}' in ex.stderr
    pf = k("--context", RO, "port-forward", f"pod/{pod}", "-n", NS, "0:80", check=False, timeout=30)
    assert pf.returncode == 1
    assert f'pods "{pod}" is forbidden: {forbidden("create", "pods/portforward")}' in pf.stderr


def test_readonly_reads_work(cluster):
    _, k = cluster
    assert "model-engine" in k("--context", RO, "get", "deploy", "-n", NS).stdout
    pod = k("--context", RO, "get", "pods", "-n", NS, "-l", "app=me", "-o", "jsonpath={.items[0].metadata.name}").stdout
    assert k("--context", RO, "logs", pod, "-n", NS).returncode == 0
    assert k("--context", RO, "get", "events", "-n", NS).returncode == 0
    assert k("--context", RO, "api-resources").returncode == 0


def test_python_client_self_subject_access_review_and_403_status(cluster):
    from kubernetes import client, config

    t, _ = cluster
    for ctx, allowed in (("twin", True), (RO, False)):
        api = config.new_client_from_config(str(t.kubeconfig_path), context=ctx)
        try:
            authz = client.AuthorizationV1Api(api)
            review = authz.create_self_subject_access_review({"spec": {"resourceAttributes": {
                "namespace": NS, "verb": "patch", "group": "apps", "resource": "deployments", "name": "model-engine"}}})
            assert review.status.allowed is allowed
            if not allowed:
                with pytest.raises(client.ApiException) as e:
                    client.AppsV1Api(api).patch_namespaced_deployment("model-engine", NS, {"spec": {"replicas": 3}})
                status = json.loads(e.value.body)
                assert e.value.status == 403
                assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": f'deployments.apps "model-engine" is forbidden: {forbidden("patch", "deployments", "apps")}',
                                  "reason": "Forbidden", "details": {"name": "model-engine", "group": "apps", "kind": "deployments"},
                                  "code": 403}
        finally:
            api.close()


def test_self_subject_access_review_needs_exactly_one_attribute_set(cluster):
    t, _ = cluster
    req = urllib.request.Request(f"{t.url}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", method="POST",
                                 data=json.dumps({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                                                  "spec": {}}).encode(), headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 422
    assert "exactly one of nonResourceAttributes or resourceAttributes must be specified" in json.loads(e.value.read())["message"]


@pytest.mark.parametrize("kubectl_bin", kubectl_binaries(), ids=str)
def test_each_kubectl_sees_both_identities(shared_twin, tmp_path, kubectl_bin):
    """clientcmd sends a user's token only over TLS, which is why the read-only context points at the HTTPS port."""
    env = tool_env(tmp_path, shared_twin.kubeconfig_path)

    def can_i(ctx: str) -> tuple[str, int]:
        p = subprocess.run([str(kubectl_bin), "--kubeconfig", str(shared_twin.kubeconfig_path), "--context", ctx, "auth",
                            "can-i", "patch", "deployments", "-n", NS], check=False, capture_output=True, text=True, env=env, timeout=60)
        return p.stdout.strip(), p.returncode

    assert can_i("twin") == ("yes", 0)
    assert can_i("twin-tls") == ("yes", 0)
    assert can_i(RO) == ("no", 1)
