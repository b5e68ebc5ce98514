"""Authentication and authorization, the apiserver's way, for two identities.

* ``twin-admin`` (token ``twin-token``, groups ``system:masters``): everything is allowed, as for a cluster admin.
  Any other bearer token, and a request without one, is also this user (the twin has always accepted any token).
* ``twin-readonly`` (token ``twin-readonly-token``): an RBAC ClusterRole like the built-in ``view`` but wider: ``get``,
  ``list`` and ``watch`` on every served resource except ``secrets`` (plus their ``status``, ``scale`` and ``log``
  subresources), the ``system:basic-user`` self reviews, and ``get`` on the discovery paths. Every write, ``exec``,
  ``portforward`` and ``proxy`` is refused with the real 403 text.

Request attributes follow ``k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`` (verbs from the HTTP method,
``list``/``watch``/``deletecollection`` for collections, subresources), rule matching follows RBAC (``*``,
``resource/subresource``, ``*/subresource``, resourceNames, non-resource URL prefixes), and the refusal text follows
``responsewriters.forbiddenMessage`` + ``apierrors.NewForbidden``. The twin serves v1.33, so a WebSocket upgrade (a GET)
to ``pods/exec`` or ``pods/portforward`` is authorized as ``get`` and the SPDY one (a POST) as ``create``; there is no
compound ``create`` check (``AuthorizePodWebsocketUpgradeCreatePermission`` came later). kubectl falls back from a refused
WebSocket upgrade to SPDY, so what it prints is the ``create`` refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import resources as R
from .errors import ApiError

ADMIN_TOKEN = "twin-token"
READONLY_TOKEN = "twin-readonly-token"
READONLY_CONTEXT = "twin-readonly"
READ_SUBRESOURCES = ("status", "scale", "log")


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]
    rules: tuple[dict, ...] = ()          # RBAC PolicyRules (resource and non-resource), evaluated like RBAC
    bindings: str = ""                    # the binding a reason names
    privileged: bool = False              # system:masters short-circuits RBAC


@dataclass
class Attributes:
    verb: str
    resource_request: bool
    path: str = ""
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    extra: dict = field(default_factory=dict)


DISCOVERY_URLS = ("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz", "/version", "/version/",
                  "/openapi", "/openapi/*")
BASIC_USER_RULES = (
    {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
    {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]},
)


def _readonly_rules() -> tuple[dict, ...]:
    by_group: dict[str, list[str]] = {}
    for rt in R.RESOURCES:
        if rt.plural == "secrets" or "get" not in rt.verbs:
            continue
        names = by_group.setdefault(rt.group, [])
        for n in [rt.plural, *(f"{rt.plural}/{s}" for s in rt.subresources if s in READ_SUBRESOURCES)]:
            if n not in names:
                names.append(n)
    rules = [{"verbs": ["get", "list", "watch"], "apiGroups": [g], "resources": names} for g, names in by_group.items()]
    return (*rules, *BASIC_USER_RULES, {"verbs": ["get"], "nonResourceURLs": list(DISCOVERY_URLS)})


ADMIN = User("twin-admin", ("system:masters", "system:authenticated"),
             rules=({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["*"], "nonResourceURLs": ["*"]}),
             privileged=True)
READONLY = User("twin-readonly", ("system:authenticated",), rules=_readonly_rules(),
                bindings='ClusterRoleBinding "twin-readonly" of ClusterRole "twin-readonly"')
TOKENS = {ADMIN_TOKEN: ADMIN, READONLY_TOKEN: READONLY}


def authenticate(headers) -> User:
    auth = headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer":
        return TOKENS.get(token.strip(), ADMIN)
    return ADMIN


# ---------------------------------------------------------------------------------------------------------------------
# request attributes (requestinfo.go)

_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def request_attributes(method: str, path: str, query) -> Attributes:
    parts = [p for p in path.strip("/").split("/") if p]
    verb = _METHOD_VERBS.get(method, "")
    nonres = Attributes(verb=method.lower(), resource_request=False, path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return nonres
    rest = parts[1:]
    group = ""
    if parts[0] == "apis":
        if len(rest) < 3:
            return nonres
        group, rest = rest[0], rest[1:]
    a = Attributes(verb=verb, resource_request=True, path=path, group=group, version=rest[0])
    rest = rest[1:]
    if rest[0] in ("proxy", "watch") and len(rest) >= 2:   # the deprecated /{verb}/... forms
        a.verb, rest = rest[0], rest[1:]
    if rest[0] == "namespaces" and len(rest) > 1:
        a.namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    if len(rest) >= 3 and a.verb != "proxy":
        a.subresource = rest[2]
    if len(rest) >= 2:
        a.name = rest[1]
    a.resource = rest[0]
    if not a.name and a.verb == "get":
        a.verb = "watch" if query.get("watch") in ("1", "true", "True") else "list"
        fs = query.get("fieldSelector") or ""
        if fs.startswith("metadata.name=") and "," not in fs:
            a.name = fs.split("=", 1)[1]
    if not a.name and a.verb == "delete":
        a.verb = "deletecollection"
    return a


# ---------------------------------------------------------------------------------------------------------------------
# RBAC rule evaluation


def _has(values, want: str) -> bool:
    return "*" in values or want in values


def _resource_matches(rule: dict, a: Attributes) -> bool:
    res = rule.get("resources") or []
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    if "*" in res or combined in res:
        return True
    return bool(a.subresource) and f"*/{a.subresource}" in res


def rule_allows(rule: dict, a: Attributes) -> bool:
    if not _has(rule.get("verbs") or [], a.verb):
        return False
    if not a.resource_request:
        urls = rule.get("nonResourceURLs") or []
        return any(u in ("*", a.path) or (u.endswith("*") and a.path.startswith(u[:-1])) for u in urls)
    if "nonResourceURLs" in rule:
        return False
    if not _has(rule.get("apiGroups") or [], a.group) or not _resource_matches(rule, a):
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def authorize(user: User, a: Attributes) -> tuple[bool, str]:
    """(allowed, reason) as the SubjectAccessReview status reports them."""
    if user.privileged:
        return True, ""
    if any(rule_allows(r, a) for r in user.rules):
        return True, f"RBAC: allowed by {user.bindings} to User \"{user.name}\"" if user.bindings else ""
    return False, ""


def forbidden(user: User, a: Attributes) -> ApiError:
    if not a.resource_request:
        return ApiError(403, f'forbidden: User "{user.name}" cannot {a.verb} path "{a.path}"', "Forbidden", {})
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    where = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    why = f'User "{user.name}" cannot {a.verb} resource "{resource}" in API group "{a.group}" {where}'
    qualified = f"{a.resource}.{a.group}" if a.group else a.resource
    msg = f'{qualified} "{a.name}" is forbidden: {why}' if a.name else f"{qualified} is forbidden: {why}"
    details = {"name": a.name, "group": a.group, "kind": a.resource}
    return ApiError(403, msg, "Forbidden", {k: v for k, v in details.items() if v})


def check(headers, method: str, path: str, query) -> User:
    """Authenticate and authorize one request; raises the 403 a real apiserver answers."""
    user = authenticate(headers)
    if user.privileged:
        return user
    a = request_attributes(method, path, query)
    if not authorize(user, a)[0]:
        raise forbidden(user, a)
    return user


# ---------------------------------------------------------------------------------------------------------------------
# the self reviews


def _invalid(kind: str, group: str, field_path: str, message: str) -> ApiError:
    return ApiError(422, f'{kind}.{group} "" is invalid: {field_path}: {message}', "Invalid",
                    {"group": group, "kind": kind, "causes": [{"reason": "FieldValueInvalid", "message": message,
                                                               "field": field_path}]})


def self_subject_access_review(user: User, body: dict) -> dict:
    spec = body.get("spec") or {}
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if bool(ra) == bool(nra):
        raise _invalid("SelfSubjectAccessReview", "authorization.k8s.io", "spec.resourceAttributes",
                       f"Invalid value: \"{_go_struct(ra)}\": exactly one of nonResourceAttributes or resourceAttributes "
                       "must be specified")
    if ra:
        a = Attributes(verb=ra.get("verb", ""), resource_request=True, group=ra.get("group", ""),
                       version=ra.get("version", ""), resource=ra.get("resource", ""),
                       subresource=ra.get("subresource", ""), namespace=ra.get("namespace", ""), name=ra.get("name", ""))
    else:
        a = Attributes(verb=nra.get("verb", ""), resource_request=False, path=nra.get("path", ""))
    allowed, reason = authorize(user, a)
    status: dict = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}


def _go_struct(v) -> str:
    return "nil" if v is None else str(v)


def self_subject_rules_review(user: User, body: dict) -> dict:
    spec = body.get("spec") or {}
    if not spec.get("namespace"):
        raise _invalid("SelfSubjectRulesReview", "authorization.k8s.io", "spec.namespace", "Required value")
    resource_rules, nonresource_rules = [], []
    for r in user.rules:
        if "nonResourceURLs" in r:
            nonresource_rules.append({"verbs": list(r["verbs"]), "nonResourceURLs": list(r["nonResourceURLs"])})
        else:
            rr = {"verbs": list(r["verbs"]), "apiGroups": list(r["apiGroups"]), "resources": list(r["resources"])}
            if r.get("resourceNames"):
                rr["resourceNames"] = list(r["resourceNames"])
            resource_rules.append(rr)
    if user.privileged:
        resource_rules += [dict(r) for r in BASIC_USER_RULES]
    return {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec,
            "status": {"resourceRules": resource_rules, "nonResourceRules": nonresource_rules, "incomplete": False}}


def self_subject_review(user: User) -> dict:
    return {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {"creationTimestamp": None},
            "status": {"userInfo": {"username": user.name, "groups": list(user.groups)}}}


REVIEW_KINDS = {"SelfSubjectAccessReview", "SelfSubjectRulesReview", "SelfSubjectReview"}


def review(user: User, kind: str, body: dict) -> dict:
    if kind == "SelfSubjectAccessReview":
        return self_subject_access_review(user, body)
    if kind == "SelfSubjectRulesReview":
        return self_subject_rules_review(user, body)
    return self_subject_review(user)


__all__ = ["ADMIN", "ADMIN_TOKEN", "READONLY", "READONLY_CONTEXT", "READONLY_TOKEN", "REVIEW_KINDS", "Attributes", "User",
           "authenticate", "authorize", "check", "forbidden", "request_attributes", "review"]
