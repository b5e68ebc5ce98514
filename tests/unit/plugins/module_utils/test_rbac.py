from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils import rbac
from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError


def perm(verb, resource, namespace="llm-core", **kw):
    return rbac.permission(verb, resource, namespace=namespace, **kw)


@pytest.mark.parametrize(("text", "parsed"), [
    ("pods", ("pods", "", "")),
    ("deployments.apps", ("deployments", "apps", "")),
    ("pods/exec", ("pods", "", "exec")),
    ("deployments.apps/scale", ("deployments", "apps", "scale")),
    ("horizontalpodautoscalers.autoscaling", ("horizontalpodautoscalers", "autoscaling", "")),
])
def test_resources_are_read_in_kubectls_notation(text, parsed):
    assert rbac.parse_resource(text) == parsed


def test_explicit_group_and_subresource_win_over_the_notation():
    assert rbac.parse_resource("deployments.apps", group="", subresource="status") == ("deployments", "", "status")


def test_deploy_profile_is_the_control_plane_namespace():
    perms = rbac.expand(["deploy"], namespace="me-core", endpoint_namespace="me-endpoints")
    assert [rbac.kubectl_resource(p) for p in perms] == [
        "deployments.apps", "deployments.apps", "replicasets.apps", "pods", "pods/log", "configmaps", "configmaps", "configmaps"]
    assert [p["verb"] for p in perms] == ["get", "patch", "list", "list", "get", "get", "create", "patch"]
    assert {p["namespace"] for p in perms} == {"me-core"}


def test_endpoint_profiles_use_the_endpoint_namespace_and_report_lists_nodes_cluster_wide():
    perms = rbac.expand(["endpoints", "report"], namespace="me-core", endpoint_namespace="me-endpoints")
    lines = [rbac.describe(p) for p in perms]
    assert "cannot create pods/exec in namespace me-endpoints" in lines
    assert "cannot get pods/exec in namespace me-endpoints" in lines
    assert "cannot create services/proxy in namespace me-endpoints" in lines
    assert "cannot list pods in namespace me-core" in lines           # report also reads the control plane
    assert "cannot list nodes at the cluster scope" in lines


def test_endpoint_namespace_defaults_to_namespace():
    assert {p["namespace"] for p in rbac.expand(["verify", "cleanup"], namespace="ns1")} == {"ns1"}


def test_cleanup_profile_lists_and_deletes_every_kind_an_endpoint_has():
    perms = rbac.expand(["cleanup"])
    kinds = ("deployments.apps", "services", "horizontalpodautoscalers.autoscaling", "configmaps", "poddisruptionbudgets.policy",
             "replicasets.apps")
    assert {(p["verb"], rbac.kubectl_resource(p)) for p in perms} == {(v, r) for v in ("list", "delete") for r in kinds}


def test_duplicates_across_profiles_and_explicit_permissions_are_checked_once():
    perms = rbac.expand(["verify", "endpoints"], [{"verb": "list", "resource": "pods"},
                                                  {"verb": "get", "resource": "secrets", "name": "creds"}])
    keys = [(p["verb"], rbac.kubectl_resource(p), p["name"]) for p in perms]
    assert len(keys) == len(set(keys))
    assert keys.count(("list", "pods", "")) == 1 and keys[-1] == ("get", "secrets", "creds")


def test_explicit_permission_namespace_none_is_the_option_and_empty_is_everywhere():
    a, b = rbac.expand([], [{"verb": "get", "resource": "pods"}, {"verb": "list", "resource": "nodes", "namespace": ""}],
                       namespace="x")
    assert a["namespace"] == "x" and b["namespace"] == ""


def test_unknown_profile_and_empty_permission_are_errors():
    with pytest.raises(ValueError, match="unknown profile 'deploi'"):
        rbac.expand(["deploi"])
    with pytest.raises(ValueError, match="needs a verb and a resource"):
        rbac.expand([], [{"verb": "get", "resource": ""}])


@pytest.mark.parametrize(("p", "line"), [
    (perm("patch", "deployments.apps"), "cannot patch deployments.apps in namespace llm-core"),
    (perm("create", "pods/exec"), "cannot create pods/exec in namespace llm-core"),
    (perm("patch", "deployments.apps/scale"), "cannot patch deployments.apps/scale in namespace llm-core"),
    (perm("get", "configmaps", name="lkg"), 'cannot get configmaps "lkg" in namespace llm-core'),
    (perm("list", "nodes", namespace=""), "cannot list nodes at the cluster scope"),
])
def test_missing_lines_are_in_kubectls_words(p, line):
    assert rbac.describe(p) == line


def test_can_i_command_asks_the_same_question():
    assert rbac.can_i_command(perm("create", "pods/exec")) == "kubectl auth can-i create pods --subresource=exec -n llm-core"
    assert rbac.can_i_command(perm("get", "configmaps", name="lkg")) == "kubectl auth can-i get configmaps/lkg -n llm-core"
    assert rbac.can_i_command(perm("list", "nodes", namespace="")) == "kubectl auth can-i list nodes -A"


def test_review_body_is_a_self_subject_access_review():
    assert rbac.review_body(perm("create", "pods/exec", name="p")) == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "group": "", "subresource": "exec",
                                        "namespace": "llm-core", "name": "p"}}}
    assert "namespace" not in rbac.review_body(perm("list", "nodes", namespace=""))["spec"]["resourceAttributes"]


class FakeAuthz:
    """Allows what ``allow`` names as (verb, resource, subresource)."""

    def __init__(self, allow):
        self.allow = set(allow)
        self.asked = []

    def create_self_subject_access_review(self, body):
        a = body["spec"]["resourceAttributes"]
        self.asked.append(a)
        ok = (a["verb"], a["resource"], a.get("subresource", "")) in self.allow
        return SimpleNamespace(status=SimpleNamespace(allowed=ok, reason="RBAC: allowed" if ok else "", evaluation_error=None))


def test_check_reports_each_missing_permission_and_the_count():
    authz = FakeAuthz({("get", "deployments", ""), ("list", "replicasets", ""), ("list", "pods", ""),
                       ("get", "pods", "log"), ("get", "configmaps", "")})
    result = rbac.check_access({"profiles": ["deploy"], "namespace": "llm-core"}, authz=authz)
    assert result["allowed"] is False and result["checked"] == 8 == len(authz.asked)
    assert result["missing"] == ["cannot patch deployments.apps in namespace llm-core",
                                 "cannot create configmaps in namespace llm-core",
                                 "cannot patch configmaps in namespace llm-core"]
    assert result["commands"][0] == "kubectl auth can-i patch deployments.apps -n llm-core"
    assert [r["allowed"] for r in result["permissions"]] == [True, False, True, True, True, True, False, False]
    assert rbac.failure_message(result, "twin-readonly") == (
        "The Kubernetes credentials (context twin-readonly) lack 3 of the 8 permissions this run needs: "
        "cannot patch deployments.apps in namespace llm-core; cannot create configmaps in namespace llm-core; "
        "cannot patch configmaps in namespace llm-core")


def test_check_allowed_when_everything_is_granted():
    everything = {(v, r, s) for v in ("create", "get") for r, s in (("pods", "exec"),)} | {("list", "pods", "")}
    result = rbac.check_access({"profiles": ["verify"]}, authz=FakeAuthz(everything))
    assert (result["allowed"], result["missing"], result["checked"]) == (True, [], 3)


def test_nothing_to_check_and_bad_profiles_are_kube_errors():
    with pytest.raises(KubeError, match="Nothing to check"):
        rbac.check_access({"profiles": [], "permissions": []}, authz=FakeAuthz(()))
    with pytest.raises(KubeError, match="unknown profile"):
        rbac.check_access({"profiles": ["nope"]}, authz=FakeAuthz(()))


def test_an_api_error_while_asking_is_a_kube_error(monkeypatch):
    class Boom(Exception):
        status, reason, body = 403, "Forbidden", '{"message": "selfsubjectaccessreviews.authorization.k8s.io is forbidden"}'

    class Refusing:
        def create_self_subject_access_review(self, body):
            raise Boom()

    monkeypatch.setattr(rbac, "ApiException", Boom)
    with pytest.raises(KubeError) as e:
        rbac.check_access({"profiles": ["verify"]}, authz=Refusing())
    assert str(e.value).startswith("Asking the API server whether it may create pods/exec in namespace llm-core "
                                   "(SelfSubjectAccessReview): HTTP 403 selfsubjectaccessreviews.authorization.k8s.io is forbidden")
    assert "lacks the permission" in str(e.value) and e.value.status == 403
