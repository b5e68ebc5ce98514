#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_endpoint_progress
short_description: One snapshot of an LLM endpoint on its way to serving, with a verdict
version_added: 0.1.0
description:
  - Reads the endpoint from the model-engine API, its pods from Kubernetes (shown as C(kubectl get pods)
    shows them, C(0/2 Running) to C(2/2 Running)) and, while the C(main) container runs, the bytes of
    the checkpoint already in its C(model_files) folder.
  - Returns a C(verdict) a wait loop acts on. V(serving) means status C(READY) with an available worker.
    V(progressing) means keep waiting. V(failed) comes with the reason (C(UPDATE_FAILED), stuck
    C(UPDATE_PENDING), a terminated or crash-looping container, an image that cannot be pulled, an
    unschedulable pod, a stalled download). V(absent) means the endpoint does not exist.
  - Pass the previous result's C(sample) as O(previous) to get the download rate, the ETA and stall detection;
    the role C(odp.model_engine.llm_endpoint) is built on this (see its C(progress.yml)).
author:
  - ODP platform team (@odp-platform)
options:
  name:
    description: Endpoint name.
    type: str
    required: true
  namespace:
    description: Namespace of the endpoint's Kubernetes objects.
    type: str
    default: llm-core
  checkpoint_path:
    description: Checkpoint to measure the download against; defaults to the endpoint's own.
    type: str
  measure_download:
    description: Measure the download inside the pod (one exec per snapshot).
    type: bool
    default: true
  container:
    description: Container that downloads the model.
    type: str
    default: main
  model_dir:
    description: Download folder inside the container.
    type: str
    default: model_files
  python:
    description: Python interpreter inside the container.
    type: str
    default: python3
  previous:
    description: The C(sample) returned by the previous snapshot.
    type: dict
  pending_timeout:
    description: Seconds in C(UPDATE_PENDING) after which the verdict is V(failed).
    type: int
    default: 600
  stall_timeout:
    description: Seconds without a new downloaded byte after which the verdict is V(failed).
    type: int
    default: 300
extends_documentation_fragment:
  - odp.model_engine.model_engine
  - odp.model_engine.k8s_auth
  - odp.model_engine.s3
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_ALL
"""

EXAMPLES = r"""
- name: Snapshot
  odp.model_engine.llm_endpoint_progress:
    name: test-endpoint-v1
    previous: "{{ last.sample | default(omit) }}"
  register: last

- name: Show it
  ansible.builtin.debug:
    msg: "{{ last.line }}"
"""

RETURN = r"""
verdict:
  description: V(serving), V(progressing), V(failed) or V(absent).
  returned: always
  type: str
  sample: progressing
reason:
  description: Why, in one sentence.
  returned: always
  type: str
  sample: "pod 6d9f7-x2x7q: container main terminated (exit code 137, OOMKilled)"
line:
  description: A progress line for the task output.
  returned: always
  type: str
  sample: "[   42s] test-endpoint-v1: READY; pods: 6d9f7-x2x7q 1/2 Running; download 45.0% (450.0 MiB of 1000.0 MiB, 20.0 MiB/s, ETA 27s)"
status:
  description: The endpoint's status in the API.
  returned: always
  type: str
  sample: READY
endpoint:
  description: The endpoint record with derived keys, as M(odp.model_engine.llm_endpoint_info) returns it.
  returned: always
  type: dict
pods:
  description: Each pod of the endpoint as the M(odp.model_engine.pod_summary) filter describes it.
  returned: always
  type: list
  elements: dict
  sample: [{name: launch-endpoint-id-end-x-6d9f7-x2x7q, phase: Running, ready: 1, total: 2, display: 1/2 Running, problem: null}]
download:
  description: Bytes of the checkpoint in the newest running pod, with rate (bytes/s) and ETA (seconds).
  returned: while a pod's main container runs
  type: dict
  sample: {percent: 45.0, bytes_present: 471859200, bytes_expected: 1048576000, rate: 20971520.0, eta_seconds: 27,
           complete: false, in_progress: true, temp_files: [model-00002-of-00002.safetensors.a1B2c3D4]}
sample:
  description: State to pass as O(previous) to the next snapshot.
  returned: always
  type: dict
elapsed:
  description: Seconds since the first snapshot of the loop.
  returned: always
  type: float
  sample: 42.0
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import (
    MODEL_ENGINE_CONNECTION_SPEC,
    S3_CONNECTION_SPEC,
    merge_specs,
)
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC
from ansible_collections.odp.model_engine.plugins.module_utils.progress import snapshot


def main():
    spec = merge_specs(
        MODEL_ENGINE_CONNECTION_SPEC, S3_CONNECTION_SPEC, K8S_AUTH_SPEC,
        name=dict(type="str", required=True),
        namespace=dict(type="str", default="llm-core"),
        checkpoint_path=dict(type="str"),
        measure_download=dict(type="bool", default=True),
        container=dict(type="str", default="main"),
        model_dir=dict(type="str", default="model_files"),
        python=dict(type="str", default="python3"),
        previous=dict(type="dict"),
        pending_timeout=dict(type="int", default=600),
        stall_timeout=dict(type="int", default=300),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, requires=("kubernetes",))
    module.exit_json(**snapshot(module))


if __name__ == "__main__":
    main()
