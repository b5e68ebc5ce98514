#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_capacity_info
short_description: GPU and ephemeral-storage capacity of the cluster's nodes, and which endpoints still fit
version_added: 0.1.0
description:
  - For every node, reports the GPU and ephemeral-storage allocatable and what bound, running pods request
    (the runbook's C(kubectl get nodes -o custom-columns=...) plus the requests kubectl does not add up).
  - For each endpoint shape in O(endpoints) (C(name), C(gpu_type), C(gpus), C(storage)), says whether a node could
    take it now, and warns when its storage request exceeds what any node of its GPU type can hold at all.
  - For shapes with a C(checkpoint_path) (the size of its model files is read from S3), says whether the checkpoint fits
    ephemeral storage (its size times O(storage_headroom) within the storage request and the largest node of its GPU
    type) or needs the PVC model cache, and, in RV(model_cache), how much claim storage the endpoints would take with
    the cache (one claim of the cache's C(storage) per endpoint) and whether that size holds each checkpoint.
author:
  - ODP platform team (@odp-platform)
options:
  endpoints:
    description:
      - Endpoint shapes to check, each with C(name), C(gpu_type), C(gpus) (default 1), C(storage) and, for the model
        cache plan, C(checkpoint_path).
    type: list
    elements: dict
    default: []
  model_cache:
    description:
      - The model cache setting (inventory C(model_engine_model_cache)) the plan is made for; its C(storage) is the
        claim size (default V(100Gi)).
    type: dict
    default: {}
  storage_headroom:
    description: Factor by which storage (ephemeral or the claim) must exceed a checkpoint's model files.
    type: float
    default: 1.05
  read_checkpoints:
    description: Read the checkpoints' sizes from S3 (the S3 options). A checkpoint that cannot be read is a warning.
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
- name: Capacity, and whether the runbook's endpoint fits
  odp.model_engine.cluster_capacity_info:
    endpoints:
      - {name: test-endpoint-v1, gpu_type: nvidia-tesla-t4, gpus: 1, storage: 50Gi}
  register: capacity
"""

RETURN = r"""
nodes:
  description: Per node, GPU and ephemeral storage allocatable, requested and free (bytes), and the GPU type label.
  returned: always
  type: list
  elements: dict
  sample: [{name: hpc-k8s-phy-wrk-g01, gpu_type: nvidia-tesla-t4, gpu_allocatable: 2, gpu_requested: 1, gpu_free: 1,
            ephemeral_allocatable: 202937204736, ephemeral_requested: 53788293120, ephemeral_free: 149148911616, pods: 3}]
fits:
  description:
    - Per endpoint shape, whether it fits now (C(fits)), the nodes that could take it, and the problems if not.
    - With its checkpoint read, C(checkpoint_bytes), C(needed_bytes) (with headroom), C(ephemeral_limit_bytes),
      C(fits_ephemeral), C(needs_cache) and C(cache_holds) (the claim size holds it); these are null when unknown.
  returned: always
  type: list
  elements: dict
  sample: [{name: test-endpoint-v1, fits: true, nodes: [hpc-k8s-phy-wrk-g01], problems: [], checkpoint_bytes: 1046400,
            needed_bytes: 1098720, ephemeral_limit_bytes: 53687091200, fits_ephemeral: true, needs_cache: false, cache_holds: true}]
model_cache:
  description:
    - The model cache plan - C(enabled), C(claim_size), C(claim_size_bytes), C(storage_class), C(access_mode), C(claims)
      (one per endpoint), C(claim_bytes_total), C(need_cache), C(fit_ephemeral), C(unknown) and C(claim_too_small_for)
      (endpoint names).
  returned: always
  type: dict
  sample: {enabled: false, claim_size: 100Gi, claim_size_bytes: 107374182400, storage_class: cephfs, access_mode: ReadWriteMany,
           claims: 2, claim_bytes_total: 214748364800, need_cache: [big], fit_ephemeral: [test-endpoint-v1], unknown: [],
           claim_too_small_for: []}
warnings_list:
  description: Storage requests no node of that GPU type can ever hold.
  returned: always
  type: list
  elements: str
  sample: ["big-ep: storage 200Gi is more than any nvidia-tesla-t4 node can hold (largest allocatable ephemeral storage 189.0 GiB)",
           "big: the checkpoint (210.0 GiB with headroom) does not fit ephemeral storage (50.0 GiB): it needs the model cache"]
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import S3_CONNECTION_SPEC, merge_specs
from ansible_collections.odp.model_engine.plugins.module_utils.cache_preflight import run_capacity
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC


def main():
    spec = merge_specs(S3_CONNECTION_SPEC, K8S_AUTH_SPEC, endpoints=dict(type="list", elements="dict", default=[]),
                       model_cache=dict(type="dict", default={}), storage_headroom=dict(type="float", default=1.05),
                       read_checkpoints=dict(type="bool", default=True))
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, requires=("kubernetes",))
    module.run(run_capacity)


if __name__ == "__main__":
    main()
