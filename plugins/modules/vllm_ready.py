#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vllm_ready
short_description: Check (or wait) that an endpoint's vLLM serves, through the Kubernetes pod proxy
version_added: 0.1.0
description:
  - Checks vLLM in an endpoint pod the way the runbook does by hand, without a port-forward process,
    through the API server's pod proxy. C(/health) on the C(main) container's port (5005) must answer
    200, C(/v1/models) must list the served model, and optionally a smoke completion must answer,
    directly (C(/v1/completions) on the pod) or through the model-engine gateway (C(/v2/chat/completions)).
  - With O(wait=true) it polls with a short backoff (0.1 s doubling up to O(wait_sleep)) and fails at
    once, with the cause and the fix the collection's judge names (the pod rules of C(docs/verdicts.md)) and the
    last lines of the C(main) log, when the pod is in a state it cannot leave by itself (a crash loop with its
    cause, OOMKilled, an eviction for ephemeral storage, an image that cannot be pulled, a pod that cannot be
    scheduled). O(wait_timeout) defaults to 1800 seconds.
  - Returns the time to healthy, to model listed and to first completion.
author:
  - ODP platform team (@odp-platform)
options:
  endpoint_name:
    description: Endpoint name (pods labelled C(endpoint_name)); its newest running pod is checked.
    type: str
  endpoint_id:
    description: Endpoint id (C(end_...)).
    type: str
  pod:
    description: A pod name.
    type: str
  namespace:
    description: Namespace of the endpoint pods.
    type: str
    default: llm-core
  container:
    description: The vLLM container (for logs).
    type: str
    default: main
  port:
    description: Port vLLM listens on in the container.
    type: int
    default: 5005
  model:
    description: Served model name that C(/v1/models) must list, for example the endpoint's C(model_name).
    type: str
  smoke:
    description:
      - V(none) stops after C(/v1/models); V(direct) posts a completion to the pod; V(gateway) posts a
        chat completion to the model-engine gateway with the endpoint name as model (needs O(url) or O(connection=kubernetes), O(user_id)
        and O(endpoint_name)).
    type: str
    default: none
    choices: [none, direct, gateway]
  prompt:
    description: Prompt of the smoke completion.
    type: str
    default: Say hello.
  max_tokens:
    description: Tokens of the smoke completion.
    type: int
    default: 8
  adaptive:
    description:
      - Poll by what the pod is doing. While its model files are not complete (one exec into O(container) lists
        O(model_dir), as the runbook's guard checks them), vLLM cannot be up, so the pod is looked at again at the
        download's ETA (up to every 60 seconds, as the runbook's downloads take 30-60 minutes; every O(wait_sleep)
        seconds when the checkpoint's size is unknown). While no bytes arrive yet (the download tool installs), the
        pause starts at half a second and doubles up to 60 seconds. The download container's log (which explains a
        download that failed while its container keeps running) is read when bytes stopped arriving, at most once a
        minute. Once the files are complete, C(/health) is asked every 0.2 seconds and the pod itself every 2
        seconds. The result's RV(requests) counts every request the wait made.
      - With V(false), C(/health) is polled with the plain backoff for the whole wait.
    type: bool
    default: true
  checkpoint_path:
    description:
      - The checkpoint in S3, for the download's size and ETA in O(adaptive) mode (needs the S3 options).
    type: str
  model_dir:
    description: The download folder in O(container).
    type: str
    default: model_files
  python:
    description: Python interpreter in O(container), to list O(model_dir).
    type: str
    default: python3
  fail_on_not_ready:
    description: Without O(wait), fail when not ready (otherwise only C(ready=false) is returned).
    type: bool
    default: false
extends_documentation_fragment:
  - odp.model_engine.model_engine
  - odp.model_engine.k8s_auth
  - odp.model_engine.s3
  - odp.model_engine.wait
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
  - odp.model_engine.attributes.ACTIONGROUP_ALL
"""

EXAMPLES = r"""
- name: Wait until vLLM serves test-model, then run a completion through the gateway
  odp.model_engine.vllm_ready:
    endpoint_name: test-endpoint-v1
    model: test-model
    smoke: gateway
    url: "{{ model_engine_url }}"
    user_id: "{{ model_engine_user }}"
    wait: true
    wait_timeout: 1800
  register: vllm
"""

RETURN = r"""
ready:
  description: Every requested step passed.
  returned: always
  type: bool
  sample: true
timings:
  description: Seconds from the start of the module to each step passing (C(healthy), C(model_listed), C(first_completion)).
  returned: always
  type: dict
  sample: {healthy: 0.12, model_listed: 0.15, first_completion: 0.31}
served_models:
  description: Model names C(/v1/models) lists.
  returned: when ready
  type: list
  elements: str
  sample: [test-model, model_files]
completion:
  description: Text of the smoke completion.
  returned: when a smoke completion ran
  type: str
  sample: Hello
pod:
  description: The pod checked, as the M(odp.model_engine.pod_summary) filter describes it.
  returned: when a pod was found
  type: dict
failure:
  description: The step that did not pass (C(pod), C(health), C(models), C(completion)), C(terminal) or C(timeout).
  returned: when not ready
  type: str
  sample: health
main_logs:
  description: Last lines of the C(main) container's log (the previous instance's when it crashed).
  returned: when not ready
  type: list
  elements: str
  sample: ["ValueError: Model architectures ['Qwen3ForCausalLM'] are not supported for now."]
requests:
  description: Requests the wait made, to the API server (C(kubernetes)), into the pod (C(exec)) and to vLLM (C(proxy)).
  returned: always
  type: dict
  sample: {kubernetes: 21, exec: 20, proxy: 4}
attempts:
  description: Polls made.
  returned: always
  type: int
  sample: 3
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import (
    MODEL_ENGINE_CONNECTION_SPEC,
    S3_CONNECTION_SPEC,
    WAIT_SPEC,
    merge_specs,
)
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC
from ansible_collections.odp.model_engine.plugins.module_utils.readiness import run


def main():
    spec = merge_specs(
        MODEL_ENGINE_CONNECTION_SPEC, K8S_AUTH_SPEC, S3_CONNECTION_SPEC, WAIT_SPEC,
        adaptive=dict(type="bool", default=True),
        checkpoint_path=dict(type="str"),
        model_dir=dict(type="str", default="model_files"),
        python=dict(type="str", default="python3"),
        endpoint_name=dict(type="str"),
        endpoint_id=dict(type="str"),
        pod=dict(type="str"),
        namespace=dict(type="str", default="llm-core"),
        container=dict(type="str", default="main"),
        port=dict(type="int", default=5005),
        model=dict(type="str"),
        smoke=dict(type="str", default="none", choices=["none", "direct", "gateway"]),
        prompt=dict(type="str", default="Say hello."),
        max_tokens=dict(type="int", default=8, no_log=False),
        fail_on_not_ready=dict(type="bool", default=False),
    )
    module = ModelEngineModule(
        argument_spec=spec, supports_check_mode=True, requires=("kubernetes",),
        required_one_of=[("endpoint_name", "endpoint_id", "pod")],
        mutually_exclusive=[("endpoint_name", "endpoint_id", "pod")],
        required_if=[("smoke", "gateway", ("user_id", "endpoint_name"))],
    )
    module.run(run)


if __name__ == "__main__":
    main()
