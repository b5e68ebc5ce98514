#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gateway_info
short_description: Whether the model-engine gateway is ready (C(/readyz)), by URL or through the Kubernetes API
version_added: 0.2.0
description:
  - Asks the gateway's C(/readyz) route, which answers 200 once a gateway replica runs. The gateway is reached at
    O(url), or with O(connection=kubernetes) through the Kubernetes API (a port-forward to a Ready pod of the
    gateway Service), so it works where the gateway has no ingress.
  - With O(wait=true) it waits until the gateway is ready (a restarting gateway answers 503, or has no ready
    endpoint behind its Service), and fails at the deadline with the last answer; O(wait_timeout) defaults to 300
    seconds. Without O(wait) it fails at once when the gateway is not ready.
  - O(user_id) is not needed for this route.
author:
  - ODP platform team (@odp-platform)
options: {}
extends_documentation_fragment:
  - odp.model_engine.model_engine
  - odp.model_engine.k8s_auth
  - odp.model_engine.wait
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_MODEL_ENGINE_K8S
"""

EXAMPLES = r"""
- name: Wait until the gateway is ready, through the Kubernetes API
  odp.model_engine.gateway_info:
    connection: kubernetes
    service_namespace: llm-core
    kubeconfig: ~/.kube/config
    wait: true
    wait_timeout: 120
"""

RETURN = r"""
ready:
  description: The gateway answered 200 on C(/readyz).
  returned: always
  type: bool
  sample: true
status:
  description: The HTTP status of the last answer (null when nothing answered).
  returned: always
  type: int
  sample: 200
detail:
  description: The last answer's body or error text.
  returned: always
  type: raw
  sample: OK
route:
  description: The route asked.
  returned: always
  type: str
  sample: /readyz
elapsed:
  description: Seconds waited.
  returned: success
  type: float
  sample: 2.1
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import MODEL_ENGINE_CONNECTION_SPEC, WAIT_SPEC, merge_specs
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.gateway import run
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC


def main():
    module = ModelEngineModule(argument_spec=merge_specs(MODEL_ENGINE_CONNECTION_SPEC, K8S_AUTH_SPEC, WAIT_SPEC), supports_check_mode=True)
    module.run(run)


if __name__ == "__main__":
    main()
