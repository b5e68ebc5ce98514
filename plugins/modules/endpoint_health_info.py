#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: endpoint_health_info
short_description: Sort LLM endpoints into failed, healthy and progressing, and find orphaned objects
version_added: 0.1.0
description:
  - Lists the LLM endpoints from the model-engine API and their pods from Kubernetes in one pass, and judges
    each one.
  - An endpoint is failed when its status is C(UPDATE_FAILED), when it has been C(UPDATE_PENDING) or
    C(UPDATE_IN_PROGRESS) longer than O(updating_seconds), when a pod crash-loops past O(crashloop_restarts),
    when a pod is Pending longer than O(pending_seconds), when a pod has failed, or when it is named in O(names).
  - Orphans are Deployments, Services, HPAs and ConfigMaps made by model-engine (label C(managed-by=model-engine))
    for O(user_id) (label C(created_by)) whose endpoint no longer exists in the API. Objects of other users are
    never orphans, whatever the API shows.
  - Used by C(playbooks/cleanup_failed_endpoints.yml); it changes nothing itself.
author:
  - ODP platform team (@odp-platform)
options:
  namespace:
    description: Namespace of the endpoint objects.
    type: str
    default: llm-core
  names:
    description: Endpoint names to treat as failed whatever their state.
    type: list
    elements: str
    default: []
  crashloop_restarts:
    description: Restarts of a not-ready pod from which the endpoint counts as failed.
    type: int
    default: 5
  pending_seconds:
    description: Seconds a pod may stay Pending.
    type: int
    default: 900
  updating_seconds:
    description: Seconds an endpoint may stay C(UPDATE_PENDING) or C(UPDATE_IN_PROGRESS).
    type: int
    default: 1800
  only_created_by:
    description: Only consider endpoints created by O(user_id) (the API also lists other teams' public endpoints).
    type: bool
    default: true
extends_documentation_fragment:
  - odp.model_engine.model_engine
  - odp.model_engine.k8s_auth
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_MODEL_ENGINE_K8S
"""

EXAMPLES = r"""
- name: Find failed endpoints and orphans
  odp.model_engine.endpoint_health_info:
    crashloop_restarts: 3
    pending_seconds: 600
  register: health
"""

RETURN = r"""
endpoints:
  description: Every endpoint with C(verdict) (failed, healthy, progressing), C(reason), pods and Kubernetes objects.
  returned: always
  type: list
  elements: dict
  sample: [{name: test-endpoint-v1, id: end_x, status: READY, verdict: healthy, reason: serving,
            k8s_resource_name: launch-endpoint-id-end-x, objects: [Deployment/launch-endpoint-id-end-x]}]
failed_endpoints:
  description: The endpoints judged failed.
  returned: always
  type: list
  elements: dict
healthy:
  description: Names of the endpoints that serve.
  returned: always
  type: list
  elements: str
orphans:
  description: Objects of this user's endpoints that no longer exist, as C(kind), C(name), C(endpoint_id), C(created_by).
  returned: always
  type: list
  elements: dict
  sample: [{kind: Service, name: launch-endpoint-id-end-old, endpoint_id: end_old}]
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import MODEL_ENGINE_CONNECTION_SPEC, merge_specs
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.health import run
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC


def main():
    spec = merge_specs(
        MODEL_ENGINE_CONNECTION_SPEC, K8S_AUTH_SPEC,
        namespace=dict(type="str", default="llm-core"),
        names=dict(type="list", elements="str", default=[]),
        crashloop_restarts=dict(type="int", default=5),
        pending_seconds=dict(type="int", default=900),
        updating_seconds=dict(type="int", default=1800),
        only_created_by=dict(type="bool", default=True),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, requires=("kubernetes",))
    run(module)


if __name__ == "__main__":
    main()
