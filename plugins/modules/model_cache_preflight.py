#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: model_cache_preflight
short_description: Check that the cluster can give every endpoint its model-cache claim before the cache is turned on
version_added: 0.2.0
description:
  - Before the control plane gets C(modelCache.enabled) (the per-endpoint PVC model cache of model-engine, see
    C(docs/playbooks/deploy_model_engine.md)), checks what makes the claims C(launch-endpoint-id-<id>-model-cache)
    bind and hold the model, and reports every problem with what to change.
  - The StorageClass (C(storage_class) of O(model_cache), or the cluster's default class when empty) exists.
  - Its provisioner serves the access mode asked. Ceph RBD (C(rbd.csi.ceph.com)) filesystem volumes are
    ReadWriteOnce, so a ReadWriteMany claim never binds; CephFS (C(cephfs.csi.ceph.com)) serves ReadWriteMany.
    A node-local provisioner with C(volumeBindingMode) Immediate would put the claim on a node other than the GPU
    node. An unknown provisioner is a warning (use O(test_claim)).
  - The claim size (C(storage) of O(model_cache)) holds the largest of O(checkpoint_paths) (the model files' size in S3) times
    O(storage_headroom).
  - With O(test_claim), a claim like an endpoint's is created in O(namespace), waited for until it binds (or
    O(test_claim_timeout) passes, or the provisioner refuses it) and deleted again, for clusters where binding is the
    doubt. A class with C(volumeBindingMode) WaitForFirstConsumer binds only for a pod, so its claim is reported as
    such.
  - ReadWriteOnce with endpoints of more than one replica (O(replicas)) is a warning.
author:
  - ODP platform team (@odp-platform)
options:
  model_cache:
    description:
      - The inventory's C(model_engine_model_cache) setting; the check treats it as enabled.
      - C(storage) (default V(100Gi)), C(storage_class) (empty for the default class), C(access_mode) (default
        V(ReadWriteMany)), C(mount_path) (default V(/mnt/model-cache)), C(lock_stale_seconds) (default 600), C(enabled).
    type: dict
    required: true
  checkpoint_paths:
    description: The S3 checkpoints the claims must hold (the declared endpoints' C(checkpoint_path)).
    type: list
    elements: str
    default: []
  replicas:
    description: Endpoint name to its largest replica count (C(max_workers)), for the ReadWriteOnce warning.
    type: dict
    default: {}
  storage_headroom:
    description: Factor by which the claim size must exceed the largest checkpoint.
    type: float
    default: 1.05
  test_claim:
    description: Create a test claim, wait for it to bind and delete it (not in check mode).
    type: bool
    default: false
  test_claim_timeout:
    description: Seconds the test claim may take to bind.
    type: int
    default: 120
  test_claim_size:
    description: Size of the test claim; defaults to the cache's C(storage) (a real claim's size, so capacity is tested).
    type: str
  namespace:
    description: Namespace of the test claim (the endpoint namespace).
    type: str
    default: llm-core
  fail_on_problems:
    description: Fail when a check finds a problem. With V(false) the problems are only returned.
    type: bool
    default: true
extends_documentation_fragment:
  - odp.model_engine.s3
  - odp.model_engine.k8s_auth
  - odp.model_engine.attributes
  - odp.model_engine.attributes.ACTIONGROUP_K8S_S3
attributes:
  check_mode:
    support: full
    details:
      - The checks only read; the test claim is not created in check mode.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - Without O(test_claim) nothing changes. The test claim is created and deleted on every run (changed).
"""

EXAMPLES = r"""
- name: Preflight the model cache of the inventory before the helm upgrade
  odp.model_engine.model_cache_preflight:
    model_cache: "{{ model_engine_model_cache }}"
    checkpoint_paths: "{{ model_engine_endpoints | map(attribute='checkpoint_path') | list }}"
    s3_endpoint_url: "{{ s3_endpoint_url }}"
    s3_access_key: "{{ s3_access_key }}"
    s3_secret_key: "{{ s3_secret_key }}"

- name: Also bind a test claim (and delete it)
  odp.model_engine.model_cache_preflight:
    model_cache: {enabled: true, storage: 200Gi, storage_class: cephfs, access_mode: ReadWriteMany}
    test_claim: true
    namespace: llm-core
"""

RETURN = r"""
ok:
  description: Whether every check passed.
  returned: always
  type: bool
  sample: false
problems:
  description: One sentence per problem, each saying what to change.
  returned: always
  type: list
  elements: str
  sample: ["StorageClass ceph-rbd uses rbd.csi.ceph.com (Ceph RBD): its filesystem volumes are ReadWriteOnce, so a ReadWriteMany
           claim never binds (...); use a CephFS class (provisioner cephfs.csi.ceph.com) for ReadWriteMany, or access_mode:
           ReadWriteOnce with one replica per endpoint"]
warnings_list:
  description: What the checks could not decide, or what works with limits.
  returned: always
  type: list
  elements: str
  sample: []
settings:
  description: The cache settings checked, defaults filled in.
  returned: always
  type: dict
  sample: {enabled: true, storage: 100Gi, storage_class: cephfs, access_mode: ReadWriteMany, mount_path: /mnt/model-cache,
           lock_stale_seconds: 600}
storage_class:
  description: The StorageClass used, its provisioner and binding mode, and what the preflight knows of the provisioner.
  returned: always
  type: dict
  sample: {storage_class: cephfs, provisioner: cephfs.csi.ceph.com, volume_binding_mode: Immediate,
           provisioner_info: {storage: CephFS, access_modes: [ReadOnlyMany, ReadWriteMany, ReadWriteOnce, ReadWriteOncePod],
                              node_local: false}, storage_classes: [ceph-rbd, cephfs, local-path]}
size:
  description: The claim size in bytes, the checkpoints' sizes and the largest one with headroom.
  returned: always
  type: dict
  sample: {size_bytes: 107374182400, checkpoints: {"s3://scale-gp-models/intermediate-model-aws/": 1046400},
           largest_checkpoint: "s3://scale-gp-models/intermediate-model-aws/", largest_checkpoint_bytes: 1046400, needed_bytes: 1098720}
test_claim:
  description: The test claim's name, final state (V(bound), V(wait_first_consumer), a refusal) and its events.
  returned: when O(test_claim) ran and the other checks passed
  type: dict
  sample: {created: true, name: odp-model-cache-preflight-1a2b3c4d, namespace: llm-core, state: bound, elapsed: 1.2,
           evidence: ["claim odp-model-cache-preflight-1a2b3c4d Bound to pvc-..."]}
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import S3_CONNECTION_SPEC, merge_specs
from ansible_collections.odp.model_engine.plugins.module_utils.cache_preflight import run
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC


def main():
    spec = merge_specs(
        S3_CONNECTION_SPEC, K8S_AUTH_SPEC,
        model_cache=dict(type="dict", required=True),
        checkpoint_paths=dict(type="list", elements="str", default=[]),
        replicas=dict(type="dict", default={}),
        storage_headroom=dict(type="float", default=1.05),
        test_claim=dict(type="bool", default=False),
        test_claim_timeout=dict(type="int", default=120),
        test_claim_size=dict(type="str"),
        namespace=dict(type="str", default="llm-core"),
        fail_on_problems=dict(type="bool", default=True),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, requires=("kubernetes",))
    module.run(run)


if __name__ == "__main__":
    main()
