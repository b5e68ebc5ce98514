#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: endpoint_spec_check
short_description: Check an LLM endpoint definition before anything is read or changed
version_added: 0.3.0
description:
  - Checks an endpoint definition as an operator types it (the runbook's JSON body, as a dictionary or as JSON or
    YAML text) against everything that needs no remote fact, without any request, and fails with every problem,
    each naming the field and the rule.
  - Every key must be an option of M(odp.model_engine.llm_endpoint) (other than O(state)). Another key is refused
    with the closest known field (C(max_worker), did you mean C(max_workers)?). Fields the gateway knows but this
    collection does not manage (C(billing_tags), C(default_callback_auth), C(enable_startup_metrics),
    C(task_expires_seconds), C(queue_message_timeout_seconds)) are refused as not supported, vLLM engine arguments
    given at the top level are pointed to C(vllm_args), and the keys of a gateway answer (C(id), C(status), C(spec) ...)
    are refused as reported, not desired, state.
  - Values are converted as M(odp.model_engine.llm_endpoint) converts them, then checked with the rules that module
    runs before its first request (see its notes), including the quantities (C(memory) and C(storage) need a unit
    and at least C(1Mi); C(cpus) between C(1m) and 256).
  - With O(endpoints), the answer of M(odp.model_engine.llm_endpoint_info) for the name, it also compares the
    endpoint's owner (C(spec.created_by), C(owner)) with O(user_id), and fails for another owner's endpoint with
    the owner and what to do; for an endpoint that does not exist yet, it adds the rules of a create (the
    required fields, the six hardware fields all or none, the C(team) and C(product) labels).
  - The role C(odp.model_engine.llm_endpoint) runs it first, and again after its lookup and before the preflight;
    C(playbooks/site.yml) runs it on every declaration before it deploys anything.
author:
  - ODP platform team (@odp-platform)
options:
  definition:
    description:
      - The endpoint definition, a dictionary or its JSON or YAML text (for example an AWX survey answer or the
        content of an endpoint file). May be empty for O(state=absent).
    type: raw
  definition_source:
    description:
      - How the operator gave the definition, named in every message, for example C(-e endpoint),
        C(endpoint_file vars/my-endpoint.json) or C(model_engine_endpoints[2]).
    type: str
    default: llm_endpoint_definition
  name:
    description:
      - The endpoint name when it is given apart from the definition (the role's C(llm_endpoint_name)); it must
        equal the definition's C(name) when both are set. Required for O(state=absent) without a definition.
    type: str
  state:
    description:
      - V(present) checks the whole definition; V(absent) only needs a name (and, with O(endpoints), the owner).
    type: str
    default: present
    choices: [present, absent]
  endpoints:
    description:
      - The endpoints the gateway returned for the name (C(endpoints) of M(odp.model_engine.llm_endpoint_info)).
        When set, the owner check (one endpoint) or the create rules (none) run as well.
    type: list
    elements: dict
  user_id:
    description:
      - The model-engine user the run acts as; required with O(endpoints).
    type: str
extends_documentation_fragment:
  - odp.model_engine.attributes
  - odp.model_engine.attributes.INFO_MODULE
notes:
  - It makes no request at all; the owner check uses the record given in O(endpoints).
  - The known keys are the module's own argument spec, so the role cannot silently drop a key the module would
    have taken, nor pass one it would refuse.
"""

EXAMPLES = r"""
- name: Check the definition before any request
  odp.model_engine.endpoint_spec_check:
    definition: "{{ endpoint }}"
    definition_source: -e endpoint
  register: checked

- name: Read the endpoint
  odp.model_engine.llm_endpoint_info:
    url: "{{ model_engine_url }}"
    user_id: "{{ model_engine_user }}"
    name: "{{ checked.name }}"
  register: before

- name: Refuse another owner's endpoint, and check the create rules for a new one
  odp.model_engine.endpoint_spec_check:
    definition: "{{ checked.definition }}"
    endpoints: "{{ before.endpoints }}"
    user_id: "{{ model_engine_user }}"
"""

RETURN = r"""
definition:
  description: The definition as a dictionary (parsed when given as text), with the values as given.
  returned: success
  type: dict
  sample: {name: test-endpoint-v1, model_name: test-model, memory: 16Gi}
name:
  description: The endpoint name (O(name), else the definition's).
  returned: success
  type: str
  sample: test-endpoint-v1
exists:
  description: Whether the endpoint exists, V(null) without O(endpoints).
  returned: success
  type: bool
  sample: false
owner:
  description: The owner, when the endpoint exists (then it is O(user_id)).
  returned: success
  type: str
  sample: test-user-id
problems:
  description: Every problem found, each naming the field and the rule (C(<field>) colon C(<rule>)).
  returned: failure
  type: list
  elements: str
  sample: ["max_worker: is not a field of an endpoint definition (did you mean max_workers?); known fields: ..."]
"""

from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.endpoint_definition import run


def main():
    spec = dict(
        definition=dict(type="raw"),
        definition_source=dict(type="str", default="llm_endpoint_definition"),
        name=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        endpoints=dict(type="list", elements="dict"),
        user_id=dict(type="str"),
    )
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True)
    module.run(run)


if __name__ == "__main__":
    main()
