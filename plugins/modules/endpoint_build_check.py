#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: endpoint_build_check
short_description: Follow a new or rebuilt endpoint with the judge to a depth and check what its builder wrote
version_added: 0.2.0
description:
  - The canary check of a model-engine image update. A model-engine image whose control plane is healthy can still
    build broken endpoint pods (a start command without the wait-for-files guard, a C(main) container without its
    ephemeral-storage request and limit, an old C(http-forwarder)). Only an endpoint built after the update shows it.
  - Follows the endpoint with the collection's judge (the rules of C(docs/verdicts.md)) until it reaches O(depth),
    and fails at once with the judge's cause, summary, evidence and fix on a state that waiting cannot change
    (for example C(PREMATURE_START) when vLLM starts before its files are downloaded).
  - Then checks the pods of the Deployment's current ReplicaSet. The C(http-forwarder) tag must be O(forwarder_tag)
    and the C(main) image tag O(vllm_tag). With O(wait_guard), the main command must start vLLM only after the
    model files are complete. The C(main) container must request and limit O(storage) of ephemeral storage.
  - It creates and deletes nothing. Create the endpoint with M(odp.model_engine.llm_endpoint) first.
author:
  - ODP platform team (@odp-platform)
options:
  name:
    description: Endpoint name.
    type: str
    required: true
  depth:
    description:
      - V(build) waits until a pod of the current ReplicaSet has passed its install and guard stages. The judge must
        say C(downloading) with bytes arriving, C(loading) or C(serving), with C(main) running and never restarted,
        for O(settle_seconds) in a row. A vLLM that starts too early crashes within them.
      - V(serve) waits until the judge says C(serving).
    type: str
    choices: [build, serve]
    default: serve
  settle_seconds:
    description:
      - Seconds the build depth must hold before it counts. Make it longer than a premature vLLM start takes to crash
        (vLLM imports take about 30 s on a GPU node).
    type: int
    default: 60
  forwarder_tag:
    description: Tag the pods' C(http-forwarder) container must run (the control plane's model-engine tag).
    type: str
  vllm_tag:
    description: Tag the pods' C(main) container must run (the vLLM tag the environment allows).
    type: str
  wait_guard:
    description:
      - Require a main command that starts vLLM only after the model files are complete. That is a download in the
        foreground, a background download followed by a wait loop on C(config.json) (the runbook's guard), or the
        collection's start wrapper C(start_vllm.sh).
    type: bool
    default: false
  storage:
    description: Ephemeral storage the C(main) container must request and limit (the endpoint's C(storage)), a Kubernetes quantity.
    type: raw
extends_documentation_fragment:
  - odp.model_engine.model_engine
  - odp.model_engine.k8s_auth
  - odp.model_engine.s3
  - odp.model_engine.wait
  - odp.model_engine.endpoint_judge
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_ALL
notes:
  - O(wait) is accepted for symmetry with the other modules; the module always follows the endpoint.
  - Without O(wait_timeout) the deadline comes from the checkpoint's size in S3, as for M(odp.model_engine.llm_endpoint).
  - The build depth needs the download measurement (the bytes in the model folder, read with C(python3) in the pod and
    the checkpoint's listing in S3). Without it only C(serving) reaches the build depth.
"""

EXAMPLES = r"""
- name: Canary after a model-engine update, build depth
  odp.model_engine.endpoint_build_check:
    name: canary-onprem20
    depth: build
    settle_seconds: 60
    forwarder_tag: onprem20
    vllm_tag: vllm-onprem
    wait_guard: true
    storage: 50Gi

- name: A rebuilt endpoint serves with the control plane's forwarder
  odp.model_engine.endpoint_build_check:
    name: test-endpoint-v1
    depth: serve
    forwarder_tag: onprem20
"""

RETURN = r"""
depth:
  description: The depth that was reached.
  returned: always
  type: str
  sample: build
verdict:
  description: The judge's last verdict (C(state), C(cause), C(summary), C(evidence), C(fix)).
  returned: always
  type: dict
  sample: {state: progressing, cause: loading, summary: "The model files are complete (1.0 MiB); vLLM is loading them"}
state:
  description: The verdict's state.
  returned: always
  type: str
  sample: serving
cause:
  description: The verdict's cause.
  returned: always
  type: str
  sample: serving
checks:
  description: One entry per check and pod of the current ReplicaSet, each with C(check), C(ok), C(expected), C(found), C(detail).
  returned: when the depth was reached
  type: list
  elements: dict
  sample: [{check: forwarder_tag, ok: true, expected: onprem20, found: onprem20, detail: "pod ... container http-forwarder image ...:onprem20"}]
problems:
  description: The details of the failed checks.
  returned: when the depth was reached
  type: list
  elements: str
  sample: []
failure:
  description: The cause in lower case when the check failed (a judge cause such as V(premature_start), V(timeout), or a check's V(no_storage_request)).
  returned: failure
  type: str
  sample: premature_start
pods:
  description: The endpoint's pods as C(kubectl get pods) shows them.
  returned: when the depth was reached
  type: list
  elements: dict
progress:
  description: What the judge saw while waiting, one line per change.
  returned: always
  type: list
  elements: str
elapsed:
  description: Seconds the wait took.
  returned: always
  type: float
  sample: 12.5
endpoint:
  description: The endpoint record with derived keys.
  returned: when the endpoint exists
  type: dict
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import (
    ENDPOINT_JUDGE_SPEC,
    MODEL_ENGINE_CONNECTION_SPEC,
    S3_CONNECTION_SPEC,
    WAIT_SPEC,
    merge_specs,
)
from ansible_collections.odp.model_engine.plugins.module_utils.build_check import run
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC


def main():
    spec = merge_specs(
        MODEL_ENGINE_CONNECTION_SPEC, S3_CONNECTION_SPEC, K8S_AUTH_SPEC, WAIT_SPEC, ENDPOINT_JUDGE_SPEC,
        name=dict(type="str", required=True),
        depth=dict(type="str", choices=["build", "serve"], default="serve"),
        settle_seconds=dict(type="int", default=60),
        forwarder_tag=dict(type="str"),
        vllm_tag=dict(type="str"),
        wait_guard=dict(type="bool", default=False),
        storage=dict(type="raw"),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, requires=("kubernetes",))
    module.run(run)


if __name__ == "__main__":
    main()
