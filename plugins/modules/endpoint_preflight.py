#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: endpoint_preflight
short_description: Check that an LLM endpoint can be built and scheduled before creating it
version_added: 0.1.0
description:
  - Reads the checkpoint prefix in S3 and the cluster's nodes and pods, and checks what the runbook
    learnt the hard way, before any endpoint is created
  - The checkpoint holds C(config.json) at its top level and at least one C(*.safetensors) file, and
    every shard named in C(model.safetensors.index.json).
  - O(storage) is within the policy for the GPU type (the runbook's 50Gi for nvidia-tesla-t4), fits
    the largest allocatable ephemeral storage of the matching GPU nodes, and holds the checkpoint.
  - A schedulable node labelled with the GPU type has O(gpus) free GPUs and the storage free.
  - The vLLM image tag is one of O(allowed_image_tags).
  - Every problem found is reported, each with what to change.
author:
  - ODP platform team (@odp-platform)
options:
  checkpoint_path:
    description: S3 prefix of the checkpoint, C(s3://bucket/prefix/).
    type: str
    required: true
  gpu_type:
    description: GPU type the endpoint asks for (node label C(k8s.amazonaws.com/accelerator)).
    type: str
  gpus:
    description: GPUs per worker.
    type: int
    default: 1
  storage:
    description: Ephemeral storage the endpoint asks for, a Kubernetes quantity.
    type: raw
  inference_framework_image_tag:
    description: vLLM image tag the endpoint asks for.
    type: str
  storage_policy:
    description:
      - "Largest storage allowed per GPU type, for example C({nvidia-tesla-t4: 50Gi})."
    type: dict
    default: {}
  allowed_image_tags:
    description:
      - vLLM image tags allowed in this environment, for example C([vllm-onprem]). Empty allows any.
    type: list
    elements: str
    default: []
  storage_headroom:
    description: Factor by which O(storage) must exceed the checkpoint's model files.
    type: float
    default: 1.05
  require_free_gpu:
    description: Require a node with O(gpus) free GPUs now (not only a node of that type).
    type: bool
    default: true
  checks:
    description: Which checks to run.
    type: list
    elements: str
    choices: [checkpoint, image_tag, storage, capacity]
    default: [checkpoint, image_tag, storage, capacity]
  fail_on_problems:
    description: Fail when a check finds a problem. With V(false) the problems are only returned.
    type: bool
    default: true
extends_documentation_fragment:
  - odp.model_engine.s3
  - odp.model_engine.k8s_auth
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_K8S_S3
"""

EXAMPLES = r"""
- name: Preflight the runbook's test endpoint
  odp.model_engine.endpoint_preflight:
    checkpoint_path: s3://scale-gp-models/intermediate-model-aws/
    gpu_type: nvidia-tesla-t4
    gpus: 1
    storage: 50Gi
    inference_framework_image_tag: vllm-onprem
    storage_policy: {nvidia-tesla-t4: 50Gi}
    allowed_image_tags: [vllm-onprem]
    s3_endpoint_url: https://oss.odp.om
    s3_access_key: "{{ s3_access_key }}"
    s3_secret_key: "{{ s3_secret_key }}"
    kubeconfig: ~/.kube/config
"""

RETURN = r"""
ok:
  description: Whether every check passed.
  returned: always
  type: bool
  sample: true
problems:
  description: One sentence per problem, each saying what to change.
  returned: always
  type: list
  elements: str
  sample: ["storage 100Gi exceeds the 50Gi policy for nvidia-tesla-t4 (...); set storage: 50Gi"]
checkpoint:
  description: What the checkpoint prefix holds.
  returned: when the checkpoint check ran
  type: dict
  sample: {files: 9, model_files: 9, safetensors: 3, bytes: 1048576, architectures: [Qwen3ForCausalLM], index_shards: 3}
capacity:
  description: Facts about the matching GPU nodes.
  returned: when the storage or capacity check ran
  type: dict
  sample: {matching_nodes: [hpc-k8s-phy-wrk-g01], largest_ephemeral_allocatable: 202937204736, max_free_gpus: 1,
           nodes_that_fit: [hpc-k8s-phy-wrk-g01]}
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import S3_CONNECTION_SPEC, merge_specs
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC
from ansible_collections.odp.model_engine.plugins.module_utils.preflight import run


def main():
    spec = merge_specs(
        S3_CONNECTION_SPEC, K8S_AUTH_SPEC,
        checkpoint_path=dict(type="str", required=True),
        gpu_type=dict(type="str"),
        gpus=dict(type="int", default=1),
        storage=dict(type="raw"),
        inference_framework_image_tag=dict(type="str"),
        storage_policy=dict(type="dict", default={}),
        allowed_image_tags=dict(type="list", elements="str", default=[]),
        storage_headroom=dict(type="float", default=1.05),
        require_free_gpu=dict(type="bool", default=True),
        checks=dict(type="list", elements="str", choices=["checkpoint", "image_tag", "storage", "capacity"],
                    default=["checkpoint", "image_tag", "storage", "capacity"]),
        fail_on_problems=dict(type="bool", default=True),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True)
    module.run(run)


if __name__ == "__main__":
    main()
