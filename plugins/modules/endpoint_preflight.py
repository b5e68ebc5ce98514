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
  - With O(registry_image), the vLLM image of that tag exists in its registry.
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
  registry_image:
    description:
      - The vLLM image repository with its registry host, for example
        V(registry.odp.om/odp-development/oman-national-llm/vllm). When set, the V(registry) check asks the registry
        (C(HEAD /v2/<repository>/manifests/<tag>), as M(odp.model_engine.registry_image_info) does) whether
        C(<registry_image>:<inference_framework_image_tag>) exists. Not set, the check is off.
      - A tag V(latest) is not asked about (the gateway resolves it from its ConfigMap at request time).
    type: str
  registry_url:
    description: Ask this registry (C(http://) or C(https://) base URL) instead of C(https://<host of the image>).
    type: str
  registry_username:
    description: User name for the registry or its token service. Use it with O(registry_password).
    type: str
  registry_password:
    description: Password or token of O(registry_username).
    type: str
  registry_pull_secret:
    description: A C(kubernetes.io/dockerconfigjson) Secret in O(registry_namespace) to take the registry credentials from.
    type: str
  registry_namespace:
    description: Namespace of O(registry_pull_secret).
    type: str
    default: llm-core
  registry_ca_path:
    description: PEM file of the CA that signed the registry's certificate.
    type: path
  registry_validate_certs:
    description: Verify the registry's TLS certificate.
    type: bool
    default: true
  registry_timeout:
    description: Seconds to wait for each registry answer.
    type: float
    default: 30
  checks:
    description:
      - Which checks to run. V(registry) runs only when O(registry_image) is set.
    type: list
    elements: str
    choices: [checkpoint, image_tag, storage, capacity, registry]
    default: [checkpoint, image_tag, storage, capacity, registry]
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
registry:
  description: The registry's answer for the vLLM image (C(image), C(exists), C(digest), C(message), C(registry)).
  returned: when the registry check ran
  type: dict
  sample: {image: "registry.odp.om/odp-development/oman-national-llm/vllm:vllm-onprem", exists: true, digest: "sha256:5b0b...", message: found,
           registry: "https://registry.odp.om"}
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
        registry_image=dict(type="str"),
        registry_url=dict(type="str"),
        registry_username=dict(type="str"),
        registry_password=dict(type="str", no_log=True),
        registry_pull_secret=dict(type="str", no_log=False),   # the Secret's name, not its content
        registry_namespace=dict(type="str", default="llm-core"),
        registry_ca_path=dict(type="path"),
        registry_validate_certs=dict(type="bool", default=True),
        registry_timeout=dict(type="float", default=30.0),
        checks=dict(type="list", elements="str", choices=["checkpoint", "image_tag", "storage", "capacity", "registry"],
                    default=["checkpoint", "image_tag", "storage", "capacity", "registry"]),
        fail_on_problems=dict(type="bool", default=True),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, required_together=[("registry_username", "registry_password")],
                               mutually_exclusive=[("registry_username", "registry_pull_secret")])
    module.run(run)


if __name__ == "__main__":
    main()
