# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RBAC preflight: ask the API server (SelfSubjectAccessReview, what ``kubectl auth can-i`` asks) whether the
credentials may do everything a playbook is about to do, and list what is missing in kubectl's words.

A permission is a dict ``{verb, resource, group, subresource, namespace, name}``. ``resource`` may be written the
way kubectl writes it: ``deployments.apps``, ``pods/exec``, ``deployments.apps/scale``. ``namespace`` None means
the check's ``namespace`` option; ``""`` means every namespace (or a cluster-scoped resource).

Verbs follow the API server: a WebSocket upgrade (exec, port-forward, pod proxy through the Python client) is a GET,
authorized as ``get`` up to Kubernetes 1.34 and as ``get`` *and* ``create`` from 1.35
(``AuthorizePodWebsocketUpgradeCreatePermission``); SPDY (older kubectl) is a POST, ``create``. The profiles ask for
both verbs on ``pods/exec`` so that the check holds on every version.
"""

from __future__ import annotations

from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError, OdpError

try:
    from kubernetes.client import AuthorizationV1Api
    from kubernetes.client.exceptions import ApiException
except ImportError:  # reported by ModelEngineModule(requires=("kubernetes",))
    AuthorizationV1Api = ApiException = None

CONTROL, ENDPOINT, CLUSTER = "control", "endpoint", "cluster"

# profile -> (verb, resource in kubectl's notation, where). "control" is the module's ``namespace`` option (the
# model-engine control plane), "endpoint" its ``endpoint_namespace`` (where endpoints run), "cluster" no namespace.
PROFILES = {
    "deploy": (
        ("get", "deployments.apps", CONTROL), ("patch", "deployments.apps", CONTROL),
        ("list", "replicasets.apps", CONTROL), ("list", "pods", CONTROL), ("get", "pods/log", CONTROL),
        ("get", "configmaps", CONTROL), ("create", "configmaps", CONTROL), ("patch", "configmaps", CONTROL),
    ),
    "endpoints": (
        ("create", "pods/exec", ENDPOINT), ("get", "pods/exec", ENDPOINT), ("get", "pods/proxy", ENDPOINT),
        ("get", "services/proxy", ENDPOINT), ("create", "services/proxy", ENDPOINT), ("list", "events", ENDPOINT),
        ("list", "pods", ENDPOINT), ("get", "deployments.apps", ENDPOINT),
    ),
    # llm_endpoint gpu_reservation: the Lease in the endpoint namespace, the nodes and every namespace's pods
    "reservation": (
        ("get", "leases.coordination.k8s.io", ENDPOINT), ("create", "leases.coordination.k8s.io", ENDPOINT),
        ("update", "leases.coordination.k8s.io", ENDPOINT), ("list", "nodes", CLUSTER), ("list", "pods", CLUSTER),
    ),
    "verify": (
        ("create", "pods/exec", ENDPOINT), ("get", "pods/exec", ENDPOINT), ("list", "pods", ENDPOINT),
    ),
    "cleanup": tuple(
        (verb, resource, ENDPOINT)
        for resource in ("deployments.apps", "services", "horizontalpodautoscalers.autoscaling", "configmaps",
                         "poddisruptionbudgets.policy", "replicasets.apps")
        for verb in ("list", "delete")
    ),
    "report": (
        ("list", "deployments.apps", ENDPOINT), ("list", "replicasets.apps", ENDPOINT), ("list", "pods", ENDPOINT),
        ("list", "services", ENDPOINT), ("list", "horizontalpodautoscalers.autoscaling", ENDPOINT),
        ("list", "events", ENDPOINT), ("list", "deployments.apps", CONTROL), ("list", "pods", CONTROL),
        ("list", "nodes", CLUSTER),
    ),
}

FIELDS = ("verb", "resource", "group", "subresource", "namespace", "name")


def parse_resource(resource, group=None, subresource=None):
    """``deployments.apps/scale`` -> ("deployments", "apps", "scale"); explicit group/subresource win."""
    base, sub = [*(resource or "").split("/", 1), ""][:2]
    name, grp = [*base.split(".", 1), ""][:2]
    return name, group if group is not None else grp, subresource if subresource is not None else sub


def permission(verb, resource, namespace=None, **where):
    """One permission to ask about; ``where``: ``group``, ``subresource``, ``name`` (override what ``resource`` says)."""
    res, grp, sub = parse_resource(resource, where.get("group"), where.get("subresource"))
    name = where.get("name")
    if not verb or not res:
        raise ValueError("a permission needs a verb and a resource, got verb=%r resource=%r" % (verb, resource))
    return {"verb": verb, "resource": res, "group": grp or "", "subresource": sub or "",
            "namespace": namespace, "name": name or ""}


def expand(profiles=(), permissions=(), namespace="llm-core", endpoint_namespace=None):
    """The permissions to check, in order, without duplicates: the profiles' then the explicit ones."""
    endpoint_namespace = endpoint_namespace or namespace
    where = {CONTROL: namespace, ENDPOINT: endpoint_namespace, CLUSTER: ""}
    out, seen = [], set()
    for prof in profiles or ():
        if prof not in PROFILES:
            raise ValueError("unknown profile %r (known: %s)" % (prof, ", ".join(sorted(PROFILES))))
        for verb, resource, scope in PROFILES[prof]:
            _add(out, seen, permission(verb, resource, namespace=where[scope]))
    for given in permissions or ():
        perm = permission(given.get("verb"), given.get("resource"), given.get("namespace"), group=given.get("group"),
                          subresource=given.get("subresource"), name=given.get("name"))
        if perm["namespace"] is None:
            perm["namespace"] = namespace
        _add(out, seen, perm)
    return out


def _add(out, seen, perm):
    key = tuple(perm[f] for f in FIELDS)
    if key not in seen:
        seen.add(key)
        out.append(perm)


def kubectl_resource(perm):
    """The resource as kubectl names it: ``pods/exec``, ``deployments.apps``, ``deployments.apps/scale``."""
    text = perm["resource"] + ("." + perm["group"] if perm["group"] else "")
    return text + ("/" + perm["subresource"] if perm["subresource"] else "")


def describe(perm):
    """``cannot patch deployments.apps in namespace llm-core`` (the line a failed check reports)."""
    what = kubectl_resource(perm) + (' "%s"' % perm["name"] if perm["name"] else "")
    where = "in namespace %s" % perm["namespace"] if perm["namespace"] else "at the cluster scope"
    return "cannot %s %s %s" % (perm["verb"], what, where)


def can_i_command(perm):
    """The kubectl command an operator runs to ask the same question."""
    args = ["kubectl", "auth", "can-i", perm["verb"], perm["resource"] + ("." + perm["group"] if perm["group"] else "")
            + ("/" + perm["name"] if perm["name"] else "")]
    if perm["subresource"]:
        args.append("--subresource=%s" % perm["subresource"])
    args += ["-n", perm["namespace"]] if perm["namespace"] else ["-A"]
    return " ".join(args)


def review_body(perm):
    attrs = {"verb": perm["verb"], "resource": perm["resource"], "group": perm["group"]}
    for field in ("subresource", "namespace", "name"):
        if perm[field]:
            attrs[field] = perm[field]
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}


def ask(authz, perm):
    """(allowed, reason) for one permission."""
    try:
        review = authz.create_self_subject_access_review(review_body(perm))
    except ApiException as e:
        from ansible_collections.odp.model_engine.plugins.module_utils.kube import api_error

        raise api_error(e, "Asking the API server whether it may %s (SelfSubjectAccessReview)" % describe(perm)[len("cannot "):])
    status = review.status
    reason = getattr(status, "reason", None) or getattr(status, "evaluation_error", None) or ""
    return bool(getattr(status, "allowed", False)), reason


def check(authz, perms):
    """Ask for each permission; the result the module returns."""
    results, missing = [], []
    for perm in perms:
        allowed, reason = ask(authz, perm)
        results.append(dict(perm, allowed=allowed, reason=reason))
        if not allowed:
            missing.append(describe(perm))
    return {"allowed": not missing, "missing": missing, "checked": len(perms), "permissions": results,
            "commands": [can_i_command(r) for r in results if not r["allowed"]]}


def failure_message(result, context=None):
    who = " (context %s)" % context if context else ""
    return "The Kubernetes credentials%s lack %d of the %d permissions this run needs: %s" % (
        who, len(result["missing"]), result["checked"], "; ".join(result["missing"]))


def check_access(params, authz=None):
    """Expand the module's options and ask the API server. Raises KubeError when it cannot ask."""
    try:
        perms = expand(params.get("profiles"), params.get("permissions"), params.get("namespace") or "llm-core",
                       params.get("endpoint_namespace"))
    except ValueError as e:
        raise KubeError(str(e))
    if not perms:
        raise KubeError("Nothing to check: give profiles or permissions")
    if authz is None:
        from ansible_collections.odp.model_engine.plugins.module_utils import kube

        authz = AuthorizationV1Api(kube.api_client(params))
    return check(authz, perms)


class AccessDenied(OdpError):
    """The credentials lack permissions the run needs; the result lists each."""


def run(module):
    """k8s_access_check: ask for each permission; fail naming the missing ones (``fail_on_missing``)."""
    result = check_access(module.params)
    if not result["allowed"] and module.params["fail_on_missing"]:
        error = AccessDenied(failure_message(result, module.params.get("context")))
        error.result.update(result)
        raise error
    return dict(result, changed=False)
