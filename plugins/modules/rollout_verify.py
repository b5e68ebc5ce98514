#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_verify
short_description: Wait for Deployment rollouts and verify every running pod uses the intended image
version_added: 0.1.0
description:
  - Waits, like C(kubectl rollout status), until each Deployment has all its replicas updated and
    available, and checks the image of every container of every running pod, the runbook's
    C(kubectl describe pod | grep Image).
  - Stops at once, saying why, when a rollout cannot finish. That is the C(ProgressDeadlineExceeded)
    condition, or a pod problem the collection's judge names (an image that cannot be pulled, a crash loop,
    a pod that cannot be scheduled, an eviction).
  - Without O(wait) it checks once and fails unless everything is verified; O(wait_timeout) defaults to 600 seconds.
author:
  - ODP platform team (@odp-platform)
options:
  namespace:
    description: Namespace of the Deployments.
    type: str
    default: llm-core
  deployments:
    description: Deployment names.
    type: list
    elements: str
    default: [model-engine, model-engine-endpoint-builder]
  images:
    description:
      - Expected images, per Deployment name a dictionary of container name to image (see the example).
    type: dict
    default: {}
  image:
    description:
      - One expected image for the container O(containers) names in each Deployment (merged with O(images)).
    type: str
  containers:
    description: Deployment name to the container that must run O(image).
    type: dict
    default: {model-engine: model-engine, model-engine-endpoint-builder: model-engine-endpoint-builder}
  fail_fast:
    description: Fail as soon as a rollout cannot finish instead of waiting for the timeout.
    type: bool
    default: true
extends_documentation_fragment:
  - odp.model_engine.k8s_auth
  - odp.model_engine.wait
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_K8S
"""

EXAMPLES = r"""
- name: Wait for the control plane to run onprem20 everywhere
  odp.model_engine.rollout_verify:
    namespace: llm-core
    images:
      model-engine: {model-engine: registry.odp.om/odp-development/oman-national-llm/model-engine:onprem20}
      model-engine-endpoint-builder:
        model-engine-endpoint-builder: registry.odp.om/odp-development/oman-national-llm/model-engine:onprem20
"""

RETURN = r"""
verified:
  description: Every rollout finished and every running pod uses the expected images.
  returned: always
  type: bool
  sample: true
deployments:
  description: Per Deployment, revision, replica counts, template images and the images running pods report.
  returned: always
  type: list
  elements: dict
  sample: [{name: model-engine, revision: "3", replicas: 1, updated: 1, available: 1,
            pod_images: ["model-engine=registry.odp.om/odp-development/oman-national-llm/model-engine:onprem20"]}]
elapsed:
  description: Seconds waited.
  returned: always
  type: float
  sample: 4.2
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import WAIT_SPEC
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC
from ansible_collections.odp.model_engine.plugins.module_utils.rollout import run


def main():
    spec = dict(
        K8S_AUTH_SPEC, **WAIT_SPEC,
        namespace=dict(type="str", default="llm-core"),
        deployments=dict(type="list", elements="str", default=["model-engine", "model-engine-endpoint-builder"]),
        images=dict(type="dict", default={}),
        image=dict(type="str"),
        containers=dict(type="dict", default={"model-engine": "model-engine",
                                              "model-engine-endpoint-builder": "model-engine-endpoint-builder"}),
        fail_fast=dict(type="bool", default=True),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True, requires=("kubernetes",))
    module.run(run)


if __name__ == "__main__":
    main()
