#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_access_check
short_description: Check, before anything changes, that the Kubernetes credentials may do what a playbook will do
version_added: 0.2.0
description:
  - Asks the API server, for every permission a playbook is about to use, whether the credentials have it
    (a C(SelfSubjectAccessReview) per permission, the question C(kubectl auth can-i) asks), and fails with the
    list of what is missing, in kubectl's words (C(cannot patch deployments.apps in namespace llm-core)).
  - The permissions come from named O(profiles), from explicit O(permissions), or both.
  - It only asks questions, so it runs unchanged in check mode and never reports a change.
author:
  - ODP platform team (@odp-platform)
options:
  profiles:
    description:
      - Named sets of permissions. C(deploy) (control-plane namespace) is get/patch C(deployments.apps),
        list C(replicasets.apps), list C(pods), get C(pods/log), get/create/patch C(configmaps).
      - C(endpoints) (endpoint namespace) is create and get C(pods/exec), get C(pods/proxy), get/create
        C(services/proxy), list C(events), list C(pods), get C(deployments.apps).
      - C(reservation) is get/create/update C(leases.coordination.k8s.io) in the endpoint namespace and list of
        C(nodes) and of C(pods) in all namespaces (the GPU reservation of M(odp.model_engine.llm_endpoint)).
      - C(verify) (endpoint namespace) is create and get C(pods/exec), list C(pods).
      - C(cleanup) (endpoint namespace) is list and delete of C(deployments.apps), C(services),
        C(horizontalpodautoscalers.autoscaling), C(configmaps), C(poddisruptionbudgets.policy), C(replicasets.apps).
      - C(report) is list of C(deployments.apps), C(replicasets.apps), C(pods), C(services),
        C(horizontalpodautoscalers.autoscaling) and C(events) in the endpoint namespace, of C(deployments.apps) and
        C(pods) in the control-plane namespace, and of C(nodes).
      - C(pods/exec) is checked with both verbs because a WebSocket exec (the Python client, kubectl 1.30+) is
        authorized as C(get), and also as C(create) from Kubernetes 1.35; SPDY exec is C(create).
    type: list
    elements: str
    choices: [deploy, endpoints, reservation, verify, cleanup, report]
    default: []
  permissions:
    description:
      - Explicit permissions to check, after the profiles' (duplicates are checked once).
    type: list
    elements: dict
    default: []
    suboptions:
      verb:
        description: API verb (C(get), C(list), C(watch), C(create), C(patch), C(update), C(delete), C(deletecollection)).
        type: str
        required: true
      resource:
        description:
          - Resource, as kubectl writes it. C(pods), C(deployments.apps) and C(pods/exec) are accepted (the group
            and subresource are taken from it unless O(permissions[].group) or O(permissions[].subresource) is set).
        type: str
        required: true
      group:
        description: API group (C("") for the core group).
        type: str
      subresource:
        description: Subresource, for example C(exec), C(log), C(proxy), C(scale).
        type: str
      namespace:
        description:
          - Namespace. Not set means O(namespace); an empty string means every namespace, or a cluster-scoped resource.
        type: str
      name:
        description: One object's name (empty means any).
        type: str
  namespace:
    description: The model-engine control-plane namespace (profiles C(deploy), C(report)).
    type: str
    default: llm-core
  endpoint_namespace:
    description: Where endpoints run (profiles C(endpoints), C(verify), C(cleanup), C(report)); defaults to O(namespace).
    type: str
  fail_on_missing:
    description: Fail when a permission is missing. With V(false) the result only reports it.
    type: bool
    default: true
extends_documentation_fragment:
  - odp.model_engine.k8s_auth
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_K8S
"""

EXAMPLES = r"""
- name: Fail first if the AWX credential cannot roll out the control plane
  odp.model_engine.k8s_access_check:
    profiles: [deploy]
    namespace: llm-core

- name: Everything creating and verifying an endpoint needs, plus one explicit permission
  odp.model_engine.k8s_access_check:
    profiles: [endpoints, verify]
    endpoint_namespace: llm-core
    permissions:
      - {verb: get, resource: secrets, name: model-engine-s3-credentials}

- name: Only report what is missing
  odp.model_engine.k8s_access_check:
    profiles: [cleanup]
    fail_on_missing: false
  register: access
"""

RETURN = r"""
allowed:
  description: Every permission checked is granted.
  returned: always
  type: bool
  sample: false
missing:
  description: One line per missing permission, in kubectl's words.
  returned: always
  type: list
  elements: str
  sample: ["cannot patch deployments.apps in namespace llm-core", "cannot create pods/exec in namespace llm-core"]
checked:
  description: How many permissions were checked.
  returned: always
  type: int
  sample: 8
permissions:
  description: Each permission checked with the API server's answer (C(allowed), C(reason)).
  returned: always
  type: list
  elements: dict
  sample: [{verb: patch, resource: deployments, group: apps, subresource: "", namespace: llm-core, name: "",
            allowed: false, reason: ""}]
commands:
  description: The C(kubectl auth can-i) command that asks each missing permission again.
  returned: always
  type: list
  elements: str
  sample: ["kubectl auth can-i patch deployments.apps -n llm-core"]
"""

from ansible_collections.odp.model_engine.plugins.module_utils import rbac
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC


def main():
    spec = dict(
        K8S_AUTH_SPEC,
        profiles=dict(type="list", elements="str", choices=["deploy", "endpoints", "reservation", "verify", "cleanup", "report"], default=[]),
        permissions=dict(type="list", elements="dict", default=[], options=dict(
            verb=dict(type="str", required=True), resource=dict(type="str", required=True), group=dict(type="str"),
            subresource=dict(type="str"), namespace=dict(type="str"), name=dict(type="str"))),
        namespace=dict(type="str", default="llm-core"),
        endpoint_namespace=dict(type="str"),
        fail_on_missing=dict(type="bool", default=True),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, requires=("kubernetes",))
    module.run(rbac.run)


if __name__ == "__main__":
    main()
