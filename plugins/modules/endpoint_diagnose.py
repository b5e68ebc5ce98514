#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: endpoint_diagnose
short_description: Name the cause of an LLM endpoint that does not serve, with evidence and the fix
version_added: 0.1.0
description:
  - Observes the endpoint as an operator would by hand, the model-engine record (status, status_reason), the
    endpoint's Deployment, ReplicaSets and pods (phases, container states, exit codes, restarts), their Warning
    events, the logs of every container (the previous instance's first), the C(main) command, the builder when the
    build is pending, node capacity when a pod cannot be scheduled, and the model folder of a downloading pod
    (bytes and the newest file time, so a stall is a window without bytes, not one slow sample).
  - Asks the collection's one judge (the same verdicts as every wait, progress line, report and clean-up; the rules
    of C(docs/verdicts.md)) and returns its RV(state), RV(cause), a summary, the evidence that proves it, the
    container it concerns, and the fix. The runbook's "Common Issues" table is part of the rules
    (C(storage_exceeded), C(slow_tool_install), C(unsupported_architecture), C(download_failed),
    C(premature_start)), with C(update_failed), C(builder_down), C(stuck_pending), C(image_not_found_on_create),
    C(unschedulable_gpu), C(unschedulable_cpu), C(unschedulable_memory), C(unschedulable_storage),
    C(unschedulable_selector), C(unschedulable_taint), C(image_pull), C(oom_killed), C(crash_loop),
    C(download_stalled), C(corrupt_files) and the V(progressing) phases.
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
- name: Why does test-endpoint-v1 not serve?
  odp.model_engine.endpoint_diagnose:
    name: test-endpoint-v1
  register: why

- name: Fail with the cause and the fix unless it serves or is on its way
  ansible.builtin.fail:
    msg: "{{ why.summary }}: {{ why.fix }}"
  when: why.state not in ['serving', 'progressing']
"""

RETURN = r"""
state:
  description: V(serving), V(progressing), V(degraded), V(failed) or V(absent).
  returned: always
  type: str
  sample: failed
cause:
  description: The rule of the judge that decided.
  returned: always
  type: str
  sample: storage_exceeded
summary:
  description: One sentence.
  returned: always
  type: str
  sample: Container main was evicted for exceeding its ephemeral-storage limit 50Gi
evidence:
  description: The observations that support the cause.
  returned: always
  type: list
  elements: str
  sample: ["pod launch-...-x2x7q: Pod ephemeral local storage usage exceeds the total limit of containers 50Gi."]
fix:
  description: What to change.
  returned: always
  type: str
container:
  description: The container the cause concerns, when it concerns one.
  returned: always
  type: str
  sample: main
healthy:
  description: The endpoint serves with nothing known wrong.
  returned: always
  type: bool
  sample: false
verdict:
  description: The whole verdict (the fields above, and C(download) while a pod downloads).
  returned: always
  type: dict
endpoint:
  description: Name, id, status, status_reason and owner of the endpoint.
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
image:
  description: The C(main) container's image.
  returned: when it exists
  type: str
model_files:
  description: The model folder of the downloading pod (bytes, percent, newest file time, temp files), or null.
  returned: always
  type: dict
logs:
  description: Last lines of each container's log, per pod.
  returned: always
  type: dict
events:
  description: Warning events of the pods that are not ready.
  returned: always
  type: dict
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import (
    ENDPOINT_JUDGE_SPEC,
    MODEL_ENGINE_CONNECTION_SPEC,
    S3_CONNECTION_SPEC,
    merge_specs,
)
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.diagnose import run
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC


def main():
    spec = merge_specs(
        MODEL_ENGINE_CONNECTION_SPEC, K8S_AUTH_SPEC, S3_CONNECTION_SPEC, ENDPOINT_JUDGE_SPEC,
        name=dict(type="str"),
        endpoint_id=dict(type="str"),
        api_error=dict(type="str"),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, requires=("kubernetes",),
                               required_one_of=[("name", "endpoint_id")], mutually_exclusive=[("name", "endpoint_id")])
    module.run(run)


if __name__ == "__main__":
    main()
