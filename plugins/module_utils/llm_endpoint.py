# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The llm_endpoint module's logic: ensure an LLM endpoint exists as described, or is absent."""

from __future__ import annotations

from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineError
from ansible_collections.odp.model_engine.plugins.module_utils.endpoint_spec import (
    FRAMEWORKS,
    GPU_TYPES,
    HOOKS,
    SpecError,
    create_body,
    current_state,
    desired_view,
    plan_update,
    validate,
)
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import (
    WaitError,
    annotate,
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    resource_name,
    update_endpoint,
    wait_for_serving,
)

LLM_ENDPOINT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    model_name=dict(type="str"),
    source=dict(type="str", choices=["hugging_face"]),
    inference_framework=dict(type="str", default="vllm", choices=list(FRAMEWORKS)),
    inference_framework_image_tag=dict(type="str"),
    endpoint_type=dict(type="str", choices=["streaming", "sync", "async"]),
    checkpoint_path=dict(type="str"),
    num_shards=dict(type="int"),
    quantize=dict(type="str", choices=["awq", "bitsandbytes"]),
    cpus=dict(type="raw"),
    gpus=dict(type="int"),
    memory=dict(type="raw"),
    storage=dict(type="raw"),
    gpu_type=dict(type="str", choices=list(GPU_TYPES)),
    nodes_per_worker=dict(type="int"),
    min_workers=dict(type="int"),
    max_workers=dict(type="int"),
    per_worker=dict(type="int"),
    allow_zero_min_workers=dict(type="bool", default=False),
    labels=dict(type="dict"),
    metadata=dict(type="dict"),
    post_inference_hooks=dict(type="list", elements="str", choices=list(HOOKS)),
    default_callback_url=dict(type="str"),
    public_inference=dict(type="bool"),
    high_priority=dict(type="bool"),
    prewarm=dict(type="bool"),
    optimize_costs=dict(type="bool"),
    chat_template_override=dict(type="str"),
    vllm_args=dict(type="dict"),
    force_bundle_recreation=dict(type="bool", default=False),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=1800),
    wait_sleep=dict(type="float", default=5.0),
    pending_timeout=dict(type="int", default=600),
)


def _result_fields(record):
    out = {"endpoint": annotate(record) if record else None}
    if record and record.get("id"):
        out["endpoint_id"] = record["id"]
        out["k8s_resource_name"] = resource_name(record["id"])
    return out


def _wait(module, client, name, transition_timeout=0):
    p = module.params
    events = []

    def progress(elapsed, status, workers, record):
        events.append("%5.1fs %s, %d available worker(s)" % (elapsed, status or "not visible yet", workers))
        module.log("endpoint %s: %s" % (name, events[-1]))

    try:
        record, elapsed, _history = wait_for_serving(
            client, name, timeout=p["wait_timeout"], sleep_s=p["wait_sleep"], pending_timeout=p["pending_timeout"],
            transition_timeout=transition_timeout, progress=progress)
    except WaitError as e:
        result = _result_fields(e.record)
        module.fail_json(msg=str(e), changed=True, failure=e.reason, elapsed=round(e.elapsed, 1), progress=events, **result)
    return record, round(elapsed, 1), events


def _exit(module, **result):
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


def run(module):
    p = module.params
    name = p["name"]
    client = module.model_engine_client()
    if p["state"] == "present":
        # Rules that do not need the current state are checked before any call; create-only rules
        # once we know the endpoint is absent (still before any write).
        try:
            validate(p, creating=False)
        except SpecError as e:
            module.fail_json(msg=str(e))
    try:
        record = get_endpoint(client, name)
    except ModelEngineError as e:
        module.fail_from_exception(e, msg="Could not read endpoint %s" % name)

    if p["state"] == "absent":
        if record is None:
            _exit(module, changed=False, msg="Endpoint %s already absent" % name, endpoint=None)
        diff = {"before": current_state(record), "after": {}}
        if not module.check_mode:
            try:
                delete_endpoint(client, name)
            except ModelEngineError as e:
                module.fail_from_exception(e, msg="Could not delete endpoint %s" % name)
        _exit(module, changed=True, msg="Endpoint %s %s" % (name, "would be deleted" if module.check_mode else "deleted"), diff=diff,
              **_result_fields(record))

    if record is None:
        try:
            validate(p, creating=True)
        except SpecError as e:
            module.fail_json(msg=str(e))
        body = create_body(p)
        diff = {"before": {}, "after": desired_view(p, {})}
        if module.check_mode:
            _exit(module, changed=True, msg="Endpoint %s would be created" % name, diff=diff, request=body, endpoint=None)
        try:
            task_id, attempts = create_endpoint(client, body)
        except ModelEngineError as e:
            module.fail_from_exception(e, msg="Could not create endpoint %s" % name)
        result = dict(changed=True, msg="Endpoint %s created" % name, diff=diff, request=body, task_id=task_id,
                      attempts=attempts)
        if p["wait"]:
            record, elapsed, events = _wait(module, client, name)
            result.update(elapsed=elapsed, progress=events)
        else:
            record = get_endpoint(client, name)
        result.update(_result_fields(record))
        _exit(module, **result)

    try:
        plan = plan_update(p, record)
    except SpecError as e:
        module.fail_json(msg=str(e), **_result_fields(record))
    before = current_state(record)
    if not plan.changed:
        result = dict(changed=False, msg="Endpoint %s already as described" % name)
        if p["wait"] and not module.check_mode:
            record, elapsed, events = _wait(module, client, name)
            result.update(elapsed=elapsed, progress=events)
        result.update(_result_fields(record))
        _exit(module, **result)
    diff = {"before": before, "after": desired_view(p, before)}
    changes = {k: {"before": v[0], "after": v[1]} for k, v in plan.changes.items()}
    if module.check_mode:
        _exit(module, changed=True, msg="Endpoint %s would be updated" % name, diff=diff, request=plan.body,
              changes=changes, **_result_fields(record))
    try:
        task_id = (update_endpoint(client, name, plan.body) or {}).get("endpoint_creation_task_id")
    except ModelEngineError as e:
        module.fail_from_exception(e, msg="Could not update endpoint %s" % name, **_result_fields(record))
    result = dict(changed=True, msg="Endpoint %s updated (%s)" % (name, ", ".join(sorted(plan.changes))), diff=diff,
                  request=plan.body, changes=changes, task_id=task_id, bundle_rebuild=plan.bundle_rebuild)
    if p["wait"]:
        record, elapsed, events = _wait(module, client, name, transition_timeout=max(30, 6 * p["wait_sleep"]))
        result.update(elapsed=elapsed, progress=events)
    else:
        record = get_endpoint(client, name)
    result.update(_result_fields(record))
    _exit(module, **result)
