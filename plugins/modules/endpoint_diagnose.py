#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: endpoint_diagnose
short_description: Name the cause of an LLM endpoint that does not serve, with evidence and the fix
version_added: 0.1.0
description:
  - Collects what an operator would look at by hand. That is the model-engine record (status, status_reason),
    the endpoint's Kubernetes objects (C(launch-endpoint-id-<id>)), pod phases, container states, exit codes,
    restart counts, events, the last lines of the C(main) and C(http-forwarder) logs, the C(main) command, and the state
    of C(model_files) in the pod (two samples O(stall_sample_seconds) apart, to see a stalled download).
  - Names one cause, with a summary, the evidence that proves it and the fix, following the runbook's
    "Common Issues" table. The causes are C(storage_exceeded) (exit 137), C(slow_tool_install),
    C(unsupported_architecture) (wrong vLLM image), C(download_failed) (no model_files, S3 auth) and
    C(premature_start) (no wait guard). They also cover C(update_failed), C(stuck_pending) (builder not consuming,
    broker type), C(image_not_found_on_create) (registry type), C(unschedulable_gpu), C(unschedulable_storage),
    C(unschedulable_selector), C(image_pull), C(download_stalled), C(crash_loop), C(progressing), C(healthy) and
    C(not_found).
author:
  - ODP platform team (@odp-platform)
options:
  name:
    description: Endpoint name.
    type: str
  endpoint_id:
    description: Endpoint id (C(end_...)).
    type: str
  api_error:
    description:
      - The error a failed create returned, for an endpoint that was never created (for example the
        C(msg) of a failed M(odp.model_engine.llm_endpoint) task).
    type: str
  namespace:
    description: Namespace of the endpoint objects.
    type: str
    default: llm-core
  gateway_namespace:
    description: Namespace of the model-engine control plane (the endpoint builder).
    type: str
    default: llm-core
  log_lines:
    description: Lines of each container log to collect.
    type: int
    default: 30
  model_dir:
    description: Download folder in the C(main) container.
    type: str
    default: model_files
  python:
    description: Python interpreter in the C(main) container, to list the model folder.
    type: str
    default: python3
  stall_sample_seconds:
    description: Seconds between two samples of the model folder (0 takes one sample and cannot see a stall).
    type: float
    default: 5
  pending_timeout:
    description: Seconds in C(UPDATE_PENDING) without a Deployment after which the build counts as stuck.
    type: int
    default: 600
  install_timeout:
    description: Seconds the S3 tool may take to install before it counts as slow.
    type: int
    default: 300
extends_documentation_fragment:
  - odp.model_engine.model_engine
  - odp.model_engine.k8s_auth
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_MODEL_ENGINE_K8S
"""

EXAMPLES = r"""
- name: Why does test-endpoint-v1 not serve?
  odp.model_engine.endpoint_diagnose:
    name: test-endpoint-v1
  register: why

- name: Branch on the cause
  ansible.builtin.fail:
    msg: "{{ why.summary }}: {{ why.fix }}"
  when: why.cause not in ['healthy', 'progressing']
"""

RETURN = r"""
cause:
  description: The cause code (see the description).
  returned: always
  type: str
  sample: storage_exceeded
summary:
  description: One sentence.
  returned: always
  type: str
  sample: The main container was killed for exceeding its storage limit (exit 137)
evidence:
  description: The observations that support the cause.
  returned: always
  type: list
  elements: str
  sample: ["API status READY, 0 available worker(s)", "pod launch-...-x2x7q: Failed Evicted, main exit code 137"]
fix:
  description: What to change.
  returned: always
  type: str
  sample: "The container was killed for exceeding its ephemeral-storage limit (exit 137). ..."
healthy:
  description: The cause is C(healthy).
  returned: always
  type: bool
  sample: false
endpoint:
  description: Name, id, status and status_reason of the endpoint.
  returned: when it exists
  type: dict
k8s_resource_name:
  description: Name of the endpoint's Deployment, Service and HPA.
  returned: when it exists
  type: str
objects:
  description: Which of the Deployment, Service and HPA exist.
  returned: when it exists
  type: dict
  sample: {deployment: true, service: true, hpa: true}
pods:
  description: Each pod as the M(odp.model_engine.pod_summary) filter describes it.
  returned: always
  type: list
  elements: dict
command:
  description: The C(main) container's command.
  returned: when it exists
  type: str
model_files:
  description: State of the model folder in the running C(main) container (exists, bytes, temp_files, complete).
  returned: when a main container runs
  type: dict
logs:
  description: Last lines of the C(main) and C(http-forwarder) logs per pod.
  returned: always
  type: dict
events:
  description: Events per pod.
  returned: always
  type: dict
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import MODEL_ENGINE_CONNECTION_SPEC, merge_specs
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.diagnose import run
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC


def main():
    spec = merge_specs(
        MODEL_ENGINE_CONNECTION_SPEC, K8S_AUTH_SPEC,
        name=dict(type="str"),
        endpoint_id=dict(type="str"),
        api_error=dict(type="str"),
        namespace=dict(type="str", default="llm-core"),
        gateway_namespace=dict(type="str", default="llm-core"),
        log_lines=dict(type="int", default=30),
        model_dir=dict(type="str", default="model_files"),
        python=dict(type="str", default="python3"),
        stall_sample_seconds=dict(type="float", default=5.0),
        pending_timeout=dict(type="int", default=600),
        install_timeout=dict(type="int", default=300),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, requires=("kubernetes",),
                               required_one_of=[("name", "endpoint_id")], mutually_exclusive=[("name", "endpoint_id")])
    run(module)


if __name__ == "__main__":
    main()
