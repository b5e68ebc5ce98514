#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: endpoint_health_info
short_description: The judge's verdict on every LLM endpoint, the clean-up candidates, and orphaned objects
version_added: 0.1.0
description:
  - Lists this user's LLM endpoints from the model-engine API and their Deployments, ReplicaSets, pods and
    Warning events from Kubernetes in one pass (one listing per kind), and asks the collection's one judge about
    each (the rules of C(docs/verdicts.md)).
  - An endpoint is a clean-up candidate (RV(failed_endpoints)) only when the judge calls it V(failed) (nothing
    serves and waiting will not change it) and its last update is at least O(min_age) seconds old. An endpoint
    with a serving pod (V(degraded), for example an update whose new pod cannot be scheduled) or on its way
    (V(progressing), that is building, installing, downloading or rolling out) is never a candidate.
  - Orphans are Deployments, Services, HPAs and ConfigMaps made by model-engine (label C(managed-by=model-engine))
    for O(user_id) (label C(created_by)) whose endpoint the API no longer lists. Objects of other users are never
    orphans, whatever the API shows.
  - Used by C(playbooks/cleanup_failed_endpoints.yml) and C(playbooks/environment_report.yml); it changes nothing.
author:
  - ODP platform team (@odp-platform)
options:
  names:
    description: Only judge these endpoints (all of this user's when empty).
    type: list
    elements: str
    default: []
  min_age:
    description: Seconds since an endpoint's last update before a V(failed) one becomes a clean-up candidate.
    type: int
    default: 600
  only_created_by:
    description: Only consider endpoints created by O(user_id) (the API also lists other teams' public endpoints).
    type: bool
    default: true
extends_documentation_fragment:
  - odp.model_engine.model_engine
  - odp.model_engine.k8s_auth
  - odp.model_engine.s3
  - odp.model_engine.endpoint_judge
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_ALL
"""

EXAMPLES = r"""
- name: Judge every endpoint and find orphans
  odp.model_engine.endpoint_health_info:
    min_age: 900
  register: health

- name: List what clean-up would delete, with the rule that fired
  ansible.builtin.debug:
    msg: "{{ health.failed_endpoints | map(attribute='name') | zip(health.failed_endpoints | map(attribute='cause')) | list }}"
"""

RETURN = r"""
endpoints:
  description:
    - Every endpoint with the verdict (C(state), C(cause), C(summary), C(fix), C(evidence), C(container), C(serving_pods)), C(cleanup)
      (whether it is a clean-up candidate), C(owner), its pods and Kubernetes objects.
  returned: always
  type: list
  elements: dict
  sample: [{name: test-endpoint-v1, id: end_x, status: READY, state: serving, cause: serving, cleanup: false,
            k8s_resource_name: launch-endpoint-id-end-x, objects: [Deployment/launch-endpoint-id-end-x]}]
failed_endpoints:
  description: The clean-up candidates (state V(failed), older than O(min_age)).
  returned: always
  type: list
  elements: dict
healthy:
  description: Names of the endpoints that serve with nothing known wrong.
  returned: always
  type: list
  elements: str
degraded:
  description: Names of the endpoints that serve but have a problem waiting will not fix (never cleaned up).
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

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import (
    ENDPOINT_JUDGE_SPEC,
    MODEL_ENGINE_CONNECTION_SPEC,
    S3_CONNECTION_SPEC,
    merge_specs,
)
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.health import run
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC


def main():
    spec = merge_specs(
        MODEL_ENGINE_CONNECTION_SPEC, K8S_AUTH_SPEC, S3_CONNECTION_SPEC, ENDPOINT_JUDGE_SPEC,
        names=dict(type="list", elements="str", default=[]),
        min_age=dict(type="int", default=600),
        only_created_by=dict(type="bool", default=True),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, requires=("kubernetes",))
    module.run(run)


if __name__ == "__main__":
    main()
