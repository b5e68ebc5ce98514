#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_endpoint_info
short_description: Read LLM endpoints from the model-engine REST API
version_added: 0.1.0
description:
  - Reads one LLM endpoint by name, or lists the LLM endpoints the user can see, through
    C(GET /v1/llm/model-endpoints).
  - Each endpoint is returned as the API reports it, plus derived fields a playbook can branch on,
    the Kubernetes resource name, the number of available workers and whether it is actually
    serving (status C(READY) B(and) at least one available worker; C(READY) alone only means the
    Kubernetes objects were applied).
author:
  - ODP platform team (@odp-platform)
options:
  name:
    description:
      - Name of the endpoint. When set, only that endpoint is read; a missing endpoint gives an empty list.
      - When not set, every LLM endpoint visible to O(user_id) is listed (the caller's own plus every
        public one).
    type: str
  order_by:
    description:
      - Sort order of a listing.
    type: str
    choices: [newest, oldest]
extends_documentation_fragment:
  - odp.model_engine.model_engine
  - odp.model_engine.k8s_auth
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_MODEL_ENGINE_K8S
"""

EXAMPLES = r"""
- name: Read one endpoint
  odp.model_engine.llm_endpoint_info:
    url: http://localhost:5000
    user_id: test-user-id
    name: test-endpoint-v1
  register: ep

- name: Fail unless it serves
  ansible.builtin.assert:
    that: ep.endpoints | length == 1 and ep.endpoints[0].serving
    fail_msg: "{{ ep.endpoints[0].status | default('absent') }} {{ ep.endpoints[0].status_reason | default('') }}"

- name: List every endpoint, newest first, with connection options set once
  module_defaults:
    group/odp.model_engine.model_engine:
      url: "{{ model_engine_url }}"
      user_id: "{{ model_engine_user }}"
  odp.model_engine.llm_endpoint_info:
    order_by: newest
  register: all_endpoints
"""

RETURN = r"""
endpoints:
  description:
    - The endpoints found, as returned by the gateway, each with the derived keys below added.
  returned: always
  type: list
  elements: dict
  sample:
    - id: end_cismpd08agn003rr2kc0
      name: test-endpoint-v1
      model_name: test-model
      status: READY
      inference_framework: vllm
      inference_framework_image_tag: vllm-onprem
      num_shards: 1
      checkpoint_path: s3://scale-gp-models/intermediate-model-aws/
      spec:
        endpoint_type: streaming
        deployment_state: {min_workers: 1, max_workers: 1, per_worker: 1, available_workers: 1, unavailable_workers: 0}
        resource_state: {cpus: "4", gpus: 1, memory: 16Gi, storage: 50Gi, gpu_type: nvidia-tesla-t4, nodes_per_worker: 1}
      k8s_resource_name: launch-endpoint-id-end-cismpd08agn003rr2kc0
      available_workers: 1
      serving: true
      status_reason: null
  contains:
    k8s_resource_name:
      description: Name of the endpoint's Deployment, Service and HPA (C(launch-endpoint-id-<id with _ as ->)).
      type: str
      returned: always
    available_workers:
      description: C(spec.deployment_state.available_workers), 0 when unknown.
      type: int
      returned: always
    serving:
      description:
        - Status is C(READY) and at least one worker is available, as the gateway reports it (its cache lags 15-60 s,
          and an update whose new pod cannot start still shows the old one's worker). For the verdict (rollouts, pods,
          downloads, files) use M(odp.model_engine.endpoint_health_info) or M(odp.model_engine.llm_endpoint_progress).
      type: bool
      returned: always
    status_reason:
      description: C(spec.status_reason), the failure text when the status is C(UPDATE_FAILED).
      type: str
      returned: always
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import MODEL_ENGINE_CONNECTION_SPEC, merge_specs
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import info
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC


def main():
    argument_spec = merge_specs(
        MODEL_ENGINE_CONNECTION_SPEC, K8S_AUTH_SPEC,
        name=dict(type="str"),
        order_by=dict(type="str", choices=["newest", "oldest"]),
    )
    module = ModelEngineModule(argument_spec=argument_spec, supports_check_mode=True)
    module.run(info)


if __name__ == "__main__":
    main()
