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
author:
  - ODP platform team (@odp-platform)
options:
  endpoints:
    description:
      - Endpoint shapes to check, each with C(name), C(gpu_type), C(gpus) (default 1) and C(storage).
    type: list
    elements: dict
    default: []
extends_documentation_fragment:
  - odp.model_engine.k8s_auth
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_K8S
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
  description: Per endpoint shape, whether it fits now (C(fits)), the nodes that could take it, and the problems if not.
  returned: always
  type: list
  elements: dict
  sample: [{name: test-endpoint-v1, fits: true, nodes: [hpc-k8s-phy-wrk-g01], problems: []}]
warnings_list:
  description: Storage requests no node of that GPU type can ever hold.
  returned: always
  type: list
  elements: str
  sample: ["big-ep: storage 200Gi is more than any nvidia-tesla-t4 node can hold (largest allocatable ephemeral storage 189.0 GiB)"]
"""

from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC
from ansible_collections.odp.model_engine.plugins.module_utils.preflight import run_capacity


def main():
    spec = dict(K8S_AUTH_SPEC, endpoints=dict(type="list", elements="dict", default=[]))
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, requires=("kubernetes",))
    module.run(run_capacity)


if __name__ == "__main__":
    main()
