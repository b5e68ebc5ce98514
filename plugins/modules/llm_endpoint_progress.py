#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_endpoint_progress
short_description: Follow an LLM endpoint on its way to serving, with the judge's verdict, rate and ETA
version_added: 0.1.0
description:
  - One check of the endpoint as the collection's judge sees it (the rules of C(docs/verdicts.md)), from the gateway
    record, the Deployment and its ReplicaSets, the pods (shown as C(kubectl get pods) shows them, C(0/2 Running)
    to C(2/2 Running)), their events and logs and, while the C(main) container downloads, the bytes of the
    checkpoint in its model folder.
  - Returns the verdict's RV(state) (V(serving), V(progressing), V(degraded), V(failed), V(absent)), its cause,
    summary, evidence and fix, and a progress line. A slow download is V(progressing) with its rate and ETA; a
    stall is O(stall_timeout) seconds without one new byte.
  - With O(wait=true) the action plugin repeats the check every O(wait_sleep) seconds and prints each line as it
    comes, until the endpoint serves (after an update given as O(baseline), until the update shows and the new
    pods serve), or fails at once on a state that waiting cannot change, or the deadline passes (by default sized
    from the checkpoint's size in S3). The role C(odp.model_engine.llm_endpoint) follows endpoints with it.
  - Without O(wait), pass the previous result's C(sample) as O(previous) to get the rate and the stall window.
author:
  - ODP platform team (@odp-platform)
options:
  name:
    description: Endpoint name.
    type: str
    required: true
  checkpoint_path:
    description: Checkpoint to measure the download against; defaults to the endpoint's own.
    type: str
  previous:
    description: The C(sample) returned by the previous check.
    type: dict
  record:
    description:
      - The endpoint's record as read a moment ago, for example the RV(odp.model_engine.llm_endpoint#module:endpoint) that
        M(odp.model_engine.llm_endpoint) returned. The first check judges it instead of reading the endpoint again
        (one gateway request less); the checks after it read the endpoint. Ignored with O(previous).
    type: dict
  baseline:
    description:
      - After an update, the C(baseline) that M(odp.model_engine.llm_endpoint) returned (the Deployment's generation
        before the C(PUT)); the wait is then not done until the update shows.
    type: dict
extends_documentation_fragment:
  - odp.model_engine.model_engine
  - odp.model_engine.k8s_auth
  - odp.model_engine.s3
  - odp.model_engine.wait
  - odp.model_engine.endpoint_judge
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_ALL
"""

EXAMPLES = r"""
- name: Follow the endpoint until it serves, printing each step
  odp.model_engine.llm_endpoint_progress:
    name: test-endpoint-v1
    wait: true
    wait_sleep: 20

- name: One check
  odp.model_engine.llm_endpoint_progress:
    name: test-endpoint-v1
    previous: "{{ last.sample | default(omit) }}"
  register: last
"""

RETURN = r"""
state:
  description: V(serving), V(progressing), V(degraded), V(failed) or V(absent).
  returned: always
  type: str
  sample: progressing
cause:
  description: The rule of the judge that decided (for example V(downloading), V(unschedulable_gpu)).
  returned: always
  type: str
  sample: downloading
verdict:
  description: The verdict, with C(state), C(cause), C(summary), C(evidence), C(fix), C(container), C(download).
  returned: always
  type: dict
outcome:
  description: What a wait does with the verdict, V(done), V(wait) or V(fail).
  returned: always
  type: str
  sample: wait
reason:
  description: The verdict in one sentence (with the fix when it failed).
  returned: always
  type: str
  sample: "test-endpoint-v1: Downloading 45.0% (450.0 MiB of 1000.0 MiB), 4.0 MiB/s, ETA 2m17s"
line:
  description: A progress line.
  returned: always
  type: str
  sample: "[   42s] test-endpoint-v1: Downloading 45.0% (450.0 MiB of 1000.0 MiB), 4.0 MiB/s, ETA 2m17s; pods: 6d9f7-x2x7q 1/2 Running"
lines:
  description: Every progress line of a wait.
  returned: when O(wait=true)
  type: list
  elements: str
status:
  description: The endpoint's status in the API.
  returned: always
  type: str
  sample: READY
endpoint:
  description: The endpoint record with derived keys, as M(odp.model_engine.llm_endpoint_info) returns it.
  returned: when the endpoint exists
  type: dict
pods:
  description: Each pod of the endpoint as the M(odp.model_engine.pod_summary) filter describes it.
  returned: always
  type: list
  elements: dict
  sample: [{name: launch-endpoint-id-end-x-6d9f7-x2x7q, phase: Running, ready: 1, total: 2, display: 1/2 Running, problem: null}]
download:
  description: Bytes of the checkpoint in the downloading pod, with rate (bytes/s), ETA (seconds) and idle seconds.
  returned: while a pod downloads
  type: dict
  sample: {percent: 45.0, bytes_present: 471859200, bytes_expected: 1048576000, rate: 4194304.0, eta_seconds: 137, idle_seconds: 2,
           complete: false, temp_files: [model-00002-of-00002.safetensors.a1B2c3D4]}
sample:
  description: State to pass as O(previous) to the next check.
  returned: always
  type: dict
elapsed:
  description: Seconds since the first check.
  returned: always
  type: float
  sample: 42.0
wait_timeout:
  description:
    - The deadline of a wait in seconds (O(wait_timeout), or the automatic one from the checkpoint's size).
    - V(null) when the first check already decided (the endpoint serves, or will not) and O(wait_timeout) is unset; the
      checkpoint is then not listed.
  returned: always
  type: int
  sample: 9600
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import (
    ENDPOINT_JUDGE_SPEC,
    MODEL_ENGINE_CONNECTION_SPEC,
    S3_CONNECTION_SPEC,
    WAIT_SPEC,
    merge_specs,
)
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC
from ansible_collections.odp.model_engine.plugins.module_utils.progress import snapshot


def main():
    spec = merge_specs(
        MODEL_ENGINE_CONNECTION_SPEC, S3_CONNECTION_SPEC, K8S_AUTH_SPEC, WAIT_SPEC, ENDPOINT_JUDGE_SPEC,
        name=dict(type="str", required=True),
        checkpoint_path=dict(type="str"),
        previous=dict(type="dict"),
        record=dict(type="dict"),
        baseline=dict(type="dict"),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, requires=("kubernetes",))
    module.run(snapshot)


if __name__ == "__main__":
    main()
