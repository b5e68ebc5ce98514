#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_endpoint
short_description: Create, update or delete an LLM endpoint through the model-engine REST API
version_added: 0.1.0
description:
  - Ensures an LLM endpoint (C(/v1/llm/model-endpoints)) exists as described, or is absent. The
    endpoint name is the natural key; the module reads the endpoint first, creates it only when it
    is absent, and otherwise sends a C(PUT) with only the fields that differ.
  - Every rule the gateway enforces (and the traps it does not) is checked before it is sent, with a message
    naming the field and the rule, see the notes. The rules that need only the input run before any HTTP call;
    the rules of a create (required fields) run once the read by name found no endpoint, before any write.
  - The gateway finds an endpoint by name for every user (another user's public endpoint of the same name
    included), so the module compares the endpoint's owner (C(spec.created_by), C(owner)) with O(user_id) before
    it updates or deletes anything, and fails for another owner's endpoint, naming the owner and what to do
    (run as that user, or choose another name), instead of reporting it unchanged or failing with a bare 404 or 403.
  - With O(wait=true) it follows the endpoint until it serves, judged by the collection's one judge (the
    rules of C(docs/verdicts.md)) on the gateway record, the Deployment and its ReplicaSets, the pods, their
    events and logs, and the bytes in the model folder. Serving means status C(READY), the rollout finished and
    a pod of the current ReplicaSet Ready; after an update the wait is not done until the new pods serve.
  - The wait fails at once, with the cause, the evidence and the fix, on a state waiting cannot change
    (C(UPDATE_FAILED), a builder scaled to 0, a pod that cannot be scheduled, an image that cannot be pulled,
    an eviction, a crash loop, a stalled download...). A slow download keeps being followed, with rate and ETA.
author:
  - ODP platform team (@odp-platform)
options:
  name:
    description:
      - Endpoint name. It becomes a Kubernetes label value, so at most 63 characters of letters,
        digits, C(-), C(_) and C(.), starting and ending with a letter or digit.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the endpoint, V(absent) deletes it.
    type: str
    default: present
    choices: [present, absent]
  model_name:
    description:
      - Served model name; required to create an endpoint. Changing it rebuilds the endpoint's bundle.
    type: str
  source:
    description: Where the model comes from (the API knows only one source).
    type: str
    choices: [hugging_face]
  inference_framework:
    description:
      - Inference framework. It cannot change on an existing endpoint.
    type: str
    default: vllm
    choices: [vllm, sglang, deepspeed, text_generation_inference, lightllm, tensorrt_llm]
  inference_framework_image_tag:
    description:
      - Image tag of the framework, for example V(vllm-onprem). The gateway defaults to V(latest),
        which it resolves at request time from the ConfigMap
        C(model-engine-inference-framework-latest-config); V(latest) is therefore never compared on
        later runs.
    type: str
  endpoint_type:
    description:
      - Endpoint type. vLLM, TGI, LightLLM and TensorRT-LLM accept only V(streaming), which is what the
        module sends when this is not set (the gateway's own default, V(sync), is rejected for them).
    type: str
    choices: [streaming, sync, async]
  checkpoint_path:
    description:
      - S3 prefix holding the model files (C(config.json), C(*.safetensors), tokenizer files);
        required to create an endpoint.
    type: str
  num_shards:
    description:
      - Tensor-parallel shards; must equal O(gpus).
    type: int
  quantize:
    description: Quantization; vLLM supports only V(awq), TGI only V(bitsandbytes).
    type: str
    choices: [awq, bitsandbytes]
  cpus:
    description:
      - CPU request of the C(main) container, a Kubernetes quantity (V(4), V(500m)), between C(1m) and 256 cores
        (a bare V(4000) is refused as 4000 cores, write V(4000m)). The six hardware
        options O(cpus), O(gpus), O(memory), O(storage), O(gpu_type) and O(nodes_per_worker) are set
        all together or not at all (then the gateway infers them).
    type: raw
  gpus:
    description: GPUs per worker, at least 1.
    type: int
  memory:
    description:
      - Memory of the C(main) container, a Kubernetes quantity with a unit (V(16Gi)), at least C(1Mi). A bare
        number is refused, as Kubernetes reads V(16) as 16 bytes.
    type: raw
  storage:
    description:
      - Ephemeral storage request and limit of the C(main) container, with a unit (V(50Gi)), at least C(1Mi); a
        bare number is refused. The model is downloaded there, so it must hold the checkpoint; too much for the
        node evicts the pod.
    type: raw
  gpu_type:
    description:
      - GPU type; becomes the node selector C(k8s.amazonaws.com/accelerator). V(nvidia-ampere-a100e)
        is rejected by the gateway.
    type: str
    choices: [nvidia-tesla-t4, nvidia-ampere-a10, nvidia-ampere-a100, nvidia-ampere-a100e, nvidia-hopper-h100,
              nvidia-hopper-h100-1g20gb, nvidia-hopper-h100-3g40gb]
  nodes_per_worker:
    description: Nodes per worker (more than 1 is multi-node vLLM). It can never change.
    type: int
  min_workers:
    description: Minimum workers; required to create. At least 1 unless O(allow_zero_min_workers).
    type: int
  max_workers:
    description: Maximum workers (at most 250); required to create.
    type: int
  per_worker:
    description: Target concurrent requests per worker for the autoscaler; required to create.
    type: int
  allow_zero_min_workers:
    description:
      - Allow O(min_workers=0). Only works when the platform has a Prometheus server and KEDA.
    type: bool
    default: false
  labels:
    description:
      - Labels; C(team) and C(product) are required to create, C(user_id) and C(endpoint_name) are
        reserved. Values must be valid Kubernetes label values. Merged into the existing labels on update.
    type: dict
  metadata:
    description:
      - Free-form metadata, merged into the existing metadata on update. C(_llm) is reserved.
    type: dict
  post_inference_hooks:
    description: Post-inference hooks.
    type: list
    elements: str
    choices: [billing, callback, logging]
  default_callback_url:
    description: Default callback URL.
    type: str
  public_inference:
    description: Whether any user may run inference (the gateway defaults to V(true) for LLM endpoints).
    type: bool
  high_priority:
    description: Use the high-priority PriorityClass. Sent on create only (the API does not report it).
    type: bool
  prewarm:
    description: Prewarm workers. Sent on create only (the API does not report it).
    type: bool
  optimize_costs:
    description: Create a VerticalPodAutoscaler for the endpoint.
    type: bool
  chat_template_override:
    description: Chat template (vLLM only, at most 10,000 characters).
    type: str
  vllm_args:
    description:
      - vLLM engine arguments model-engine passes through, for example C(max_model_len) or
        C(gpu_memory_utilization). Unknown keys are rejected, because the gateway would silently
        ignore them.
      - The gateway ignores changed engine arguments on update unless a new bundle is forced, so the
        module adds C(force_bundle_recreation) to the update whenever one of these differs.
    type: dict
  force_bundle_recreation:
    description:
      - Rebuild the bundle (new container command) whenever an update is sent.
    type: bool
    default: false
  remove_leftovers:
    description:
      - With O(state=absent), after the gateway's delete, delete every Kubernetes object still labelled with the
        endpoint's id, of every kind the endpoint builder writes (Deployment, Service, HPA, KEDA ScaledObject,
        PodDisruptionBudget, VerticalPodAutoscaler, ConfigMaps, model-cache PersistentVolumeClaim), in O(namespace).
        The runbook's cleanup and C(kubectl get all) miss several of them. Skipped with a warning when the Kubernetes
        client cannot be configured.
    type: bool
    default: true
  gpu_reservation:
    description:
      - Make the free-GPU check and the C(POST) of a create one atomic step for every client of the cluster, so that
        parallel creates (forks, AWX job slices, concurrent jobs) cannot all pass a check that only some can satisfy.
      - The module takes the Lease O(reservation_lease) (coordination.k8s.io/v1) in O(namespace), counts the GPUs and
        ephemeral storage of bound pods, of GPU pods still waiting for a node, and of the creates in flight that passed
        before it (kept in the Lease's annotation C(odp.model-engine/reservations) until their pods exist, since the
        gateway reports no hardware for an endpoint whose Deployment does not exist yet), and creates the endpoint only
        when its C(min_workers) pods fit on a node of its O(gpu_type); then it writes its own entry and releases the
        Lease. The Lease is held only for that check and the C(POST).
      - Needs C(get), C(create) and C(update) on C(leases) in O(namespace), and C(list) on nodes and on pods in all
        namespaces. Updates and deletes never reserve.
    type: bool
    default: false
  reservation_lease:
    description:
      - Name of the Lease of O(gpu_reservation). Every client that creates endpoints on the same GPU nodes must use the same one.
    type: str
    default: odp-model-engine-gpu-reservation
  reservation_timeout:
    description:
      - Seconds to wait for the Lease of O(gpu_reservation) while another create holds it. A holder that died frees it
        60 seconds after it took it.
    type: int
    default: 300
extends_documentation_fragment:
  - odp.model_engine.model_engine
  - odp.model_engine.k8s_auth
  - odp.model_engine.s3
  - odp.model_engine.wait
  - odp.model_engine.endpoint_judge
  - odp.model_engine.attributes
  - odp.model_engine.attributes.ACTIONGROUP_ALL
attributes:
  check_mode:
    support: full
    details:
      - Reads the endpoint and reports what would be created, updated (the C(PUT) body) or deleted, without writing.
  diff_mode:
    support: full
  idempotent:
    support: partial
    details:
      - Idempotent for every option the API reports back. O(high_priority) and O(prewarm) are sent on
        create only, and an O(inference_framework_image_tag) of V(latest) is never compared.
notes:
  - "Checked before any HTTP call (O(state=present)): the name a valid label value; O(endpoint_type) V(streaming)
    for vLLM; quantities valid and plausible (O(memory) and O(storage) with a unit and at least C(1Mi), O(cpus)
    between C(1m) and 256); at least one GPU; GPU type accepted; O(num_shards) equals O(gpus); quantization
    allowed for the framework; O(checkpoint_path) an C(s3://) URL and not a C(.tar); worker counts in range;
    reserved labels absent, label values valid; reserved metadata absent; hooks known; chat template size;
    O(vllm_args) keys known (with the closest known key) and typed; resource ceilings per GPU type. An unknown
    option is refused by Ansible itself; the role C(odp.model_engine.llm_endpoint) refuses unknown definition keys
    with M(odp.model_engine.endpoint_spec_check) before it calls this module."
  - "Checked after the read by name, before any write: the owner of an existing endpoint (for V(present) and
    V(absent)); for a create, the required fields (O(model_name), O(checkpoint_path), O(labels) with C(team) and
    C(product), the worker counts) and the six hardware options all or none."
  - Fields that cannot change (O(inference_framework), O(endpoint_type), O(nodes_per_worker)) fail with a
    message to delete and recreate the endpoint.
  - A create that fails ambiguously (timeout, connection error, 429, 502, 503, 504) is never re-posted
    blindly; the endpoint is looked up by name first, so retries cannot create a duplicate. When it gives up,
    the message and C(api_error.attempts) count every POST it made.
  - An endpoint of another user that is not public cannot be seen by this user, and the gateway keeps names
    unique per owner only; creating one with the same name then makes the gateway's read by name fail (HTTP 500)
    for both users. Keep endpoint names unique across users.
"""

EXAMPLES = r"""
- name: The runbook's test endpoint, waiting until it serves
  odp.model_engine.llm_endpoint:
    url: http://localhost:5000
    user_id: test-user-id
    name: test-endpoint-v1
    model_name: test-model
    inference_framework_image_tag: vllm-onprem
    checkpoint_path: s3://scale-gp-models/intermediate-model-aws/
    num_shards: 1
    cpus: 4
    memory: 16Gi
    storage: 50Gi
    gpus: 1
    gpu_type: nvidia-tesla-t4
    nodes_per_worker: 1
    min_workers: 1
    max_workers: 1
    per_worker: 1
    labels: {team: test, product: llm-engine}
    metadata: {team: test, product: llm-engine}
    wait: true
  register: ep

- name: Raise the context length (forces a bundle rebuild)
  odp.model_engine.llm_endpoint:
    url: http://localhost:5000
    user_id: test-user-id
    name: test-endpoint-v1
    vllm_args:
      max_model_len: 8192

- name: Delete it
  odp.model_engine.llm_endpoint:
    url: http://localhost:5000
    user_id: test-user-id
    name: test-endpoint-v1
    state: absent
"""

RETURN = r"""
endpoint:
  description: The endpoint as the gateway reports it after the change, with derived keys (see M(odp.model_engine.llm_endpoint_info)).
  returned: success, when the endpoint exists
  type: dict
  sample: {id: end_cismpd08agn003rr2kc0, name: test-endpoint-v1, status: READY, serving: true, available_workers: 1}
endpoint_id:
  description: The endpoint id.
  returned: when the endpoint exists
  type: str
  sample: end_cismpd08agn003rr2kc0
k8s_resource_name:
  description: Name of the endpoint's Deployment, Service and HPA.
  returned: when the endpoint exists
  type: str
  sample: launch-endpoint-id-end-cismpd08agn003rr2kc0
request:
  description: The body sent (or, in check mode, that would be sent) with the POST or PUT.
  returned: when created or updated
  type: dict
  sample: {name: test-endpoint-v1, endpoint_type: streaming, labels: {team: test, product: llm-engine}}
changes:
  description: Fields that differ, each with C(before) and C(after).
  returned: when updated
  type: dict
  sample: {max_workers: {before: 1, after: 2}}
removed_objects:
  description: With O(state=absent), the Kubernetes objects found and deleted after the gateway's delete (in check mode, those that exist now), as C(Kind/name).
  returned: when deleted
  type: list
  elements: str
  sample: [PodDisruptionBudget/launch-endpoint-id-end-cismpd08agn003rr2kc0]
bundle_rebuild:
  description: Whether the update makes model-engine build a new bundle (new pods).
  returned: when updated
  type: bool
  sample: false
task_id:
  description: The gateway's C(endpoint_creation_task_id); there is no route to poll it, poll the endpoint.
  returned: when created or updated
  type: str
  sample: 5f0c1f3e-1b8b-4a39-9d0f-3ad6b1c1e6a4
reservation:
  description:
    - With O(gpu_reservation), the Lease taken (C(lease), C(holder)), the seconds waited for it (C(waited)), the endpoints
      being created that were counted (C(being_created)) and how many GPU pods waited for a node (C(waiting_pods)).
  returned: when a create reserved
  type: dict
  sample: {lease: odp-model-engine-gpu-reservation, holder: fleet-ep-5@controller/4242, waited: 0.8, being_created: [fleet-ep-1], waiting_pods: 0}
attempts:
  description: POST attempts a create took (more than 1 after ambiguous failures).
  returned: when created
  type: int
  sample: 1
elapsed:
  description: Seconds the wait took.
  returned: when O(wait=true)
  type: float
  sample: 42.5
progress:
  description: What the judge saw while waiting, one line per change.
  returned: when O(wait=true)
  type: list
  elements: str
  sample: ["[    0s] test-endpoint-v1: UPDATE_PENDING: waiting for the endpoint builder", "[   35s] test-endpoint-v1: READY; 1 pod(s) ready"]
verdict:
  description: The judge's last verdict (C(state), C(cause), C(summary), C(evidence), C(fix), C(container), C(download)).
  returned: when O(wait=true)
  type: dict
  sample: {state: serving, cause: serving, summary: "READY; 1 pod(s) ready", fix: Nothing to fix.}
state:
  description: The verdict's state, V(serving), V(progressing), V(degraded), V(failed) or V(absent).
  returned: when O(wait=true)
  type: str
  sample: serving
baseline:
  description:
    - After an update, the endpoint Deployment's generation before the C(PUT); pass it to
      M(odp.model_engine.llm_endpoint_progress) so that its wait is not done until the update shows.
  returned: when updated
  type: dict
  sample: {generation: 3}
owner:
  description: The owner of an endpoint of that name that belongs to another user (the module then fails, changing nothing).
  returned: when refused for another owner
  type: str
  sample: someone-else
failure:
  description: Why a wait failed, the cause of the verdict (for example V(unschedulable_gpu), V(update_failed)) or V(timeout).
  returned: when a wait failed
  type: str
  sample: update_failed
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import (
    ENDPOINT_JUDGE_SPEC,
    K8S_AUTH_SPEC,
    MODEL_ENGINE_CONNECTION_SPEC,
    S3_CONNECTION_SPEC,
    WAIT_SPEC,
    merge_specs,
)
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.llm_endpoint import LLM_ENDPOINT_SPEC, run


def main():
    spec = merge_specs(MODEL_ENGINE_CONNECTION_SPEC, K8S_AUTH_SPEC, S3_CONNECTION_SPEC, WAIT_SPEC, ENDPOINT_JUDGE_SPEC, LLM_ENDPOINT_SPEC)
    module = ModelEngineModule(argument_spec=spec, supports_check_mode=True)
    module.run(run)


if __name__ == "__main__":
    main()
