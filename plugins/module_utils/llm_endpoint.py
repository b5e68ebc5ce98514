# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The llm_endpoint module's logic: ensure an LLM endpoint exists as described, or is absent."""

from __future__ import annotations

from ansible_collections.odp.model_engine.plugins.module_utils.endpoint_spec import (
    FRAMEWORKS,
    GPU_TYPES,
    HOOKS,
    check_owner,
    create_body,
    current_state,
    desired_view,
    plan_update,
    validate_create,
    validate_input,
)
from ansible_collections.odp.model_engine.plugins.module_utils.endpoints import (
    annotate,
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    resource_name,
    update_endpoint,
)
from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError
from ansible_collections.odp.model_engine.plugins.module_utils.follow import make_observer, wait_until_serving

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
    remove_leftovers=dict(type="bool", default=True),
    gpu_reservation=dict(type="bool", default=False),
    reservation_lease=dict(type="str", default="odp-model-engine-gpu-reservation"),
    reservation_timeout=dict(type="int", default=300),
)


def _result_fields(record):
    out = {"endpoint": annotate(record) if record else None}
    if record and record.get("id"):
        out["endpoint_id"] = record["id"]
        out["k8s_resource_name"] = resource_name(record["id"])
    return out


def _follow(module, name, record, baseline=None):
    """Wait until the endpoint serves (the judge decides); the result gains elapsed, progress and the verdict."""
    observer = make_observer(module)
    follow, elapsed, lines = wait_until_serving(module, observer, name, baseline=baseline, record=record)
    module.result.update(elapsed=round(elapsed, 1), progress=lines, **follow.result())
    return follow.obs.record


def _baseline(module, record):
    """The endpoint's Deployment generation before an update: a wait (here, or llm_endpoint_progress given it
    as ``baseline``) is not done until the update shows. Without Kubernetes access and without ``wait`` there is
    none (the gateway alone is used)."""
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    try:
        dep = Kube(module.params).get("Deployment", resource_name(record["id"]), module.params["namespace"])
    except KubeError:
        if module.params["wait"]:
            raise
        return None
    return {"generation": ((dep or {}).get("metadata") or {}).get("generation") or 0}


def _finish(module, msg, record):
    module.result.update(msg=msg, **_result_fields(record))
    if not module._diff:
        module.result.pop("diff", None)
    return {}


def _leftovers(module, record):
    """The endpoint's objects still in Kubernetes after the gateway's delete (the gateway tolerates missing ones and
    may leave some: a PDB, a claim...), deleted by label; listed only in check mode. Without Kubernetes access the
    check is skipped with a warning (the gateway's delete stands)."""
    from ansible_collections.odp.model_engine.plugins.module_utils.endpoint_objects import remove_leftovers
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    if not module.params["remove_leftovers"]:
        return []
    try:
        kube = Kube(module.params)
    except KubeError as e:
        module.warn("Leftover Kubernetes objects of %s were not checked: %s" % (record["name"], e))
        return []
    return remove_leftovers(kube, module.params["namespace"], record["id"], check_mode=module.check_mode)


def _absent(module, client, name, record):
    if record is None:
        return _finish(module, "Endpoint %s already absent" % name, None)
    module.result["diff"] = {"before": current_state(record), "after": {}}
    module.result.update(_result_fields(record))
    if not module.check_mode:
        delete_endpoint(client, name)
        module.result["changed"] = True
    module.result["removed_objects"] = _leftovers(module, record)
    module.result["changed"] = True
    return _finish(module, "Endpoint %s %s" % (name, "would be deleted" if module.check_mode else "deleted"), record)


def _create(module, client, name):
    p = module.params
    validate_create(p)  # the create-only rules (required fields): no write yet
    body = create_body(p)
    module.result.update(diff={"before": {}, "after": desired_view(p, {})}, request=body)
    if module.check_mode:
        module.result["changed"] = True
        return _finish(module, "Endpoint %s would be created" % name, None)
    if p["gpu_reservation"]:
        from ansible_collections.odp.model_engine.plugins.module_utils.reservation import reserve_and_create

        task_id, attempts = reserve_and_create(module, client, body)
    else:
        task_id, attempts = create_endpoint(client, body)
    module.result.update(changed=True, task_id=task_id, attempts=attempts, msg="Endpoint %s created" % name)
    record = _follow(module, name, None) if p["wait"] else get_endpoint(client, name)
    return _finish(module, "Endpoint %s created%s" % (name, _now(module)), record)


def _now(module):
    state = module.result.get("verdict")
    return "; now %s" % state["summary"] if state else ""


def _update(module, client, name, record):
    p = module.params
    plan = plan_update(p, record)
    module.result.update(_result_fields(record))
    if not plan.changed:
        if p["wait"] and not module.check_mode:
            record = _follow(module, name, record)
        return _finish(module, "Endpoint %s already as described%s" % (name, _now(module)), record)
    before = current_state(record)
    module.result.update(diff={"before": before, "after": desired_view(p, before)}, request=plan.body, bundle_rebuild=plan.bundle_rebuild,
                         changes={k: {"before": v[0], "after": v[1]} for k, v in plan.changes.items()})
    if module.check_mode:
        module.result["changed"] = True
        return _finish(module, "Endpoint %s would be updated" % name, record)
    baseline = _baseline(module, record)
    task_id = (update_endpoint(client, name, plan.body) or {}).get("endpoint_creation_task_id")
    module.result.update(changed=True, task_id=task_id, baseline=baseline, msg="Endpoint %s updated (%s)" % (name, ", ".join(sorted(plan.changes))))
    record = _follow(module, name, record, baseline=baseline) if p["wait"] else get_endpoint(client, name)
    return _finish(module, "Endpoint %s updated (%s)%s" % (name, ", ".join(sorted(plan.changes)), _now(module)), record)


def run(module):
    """Ensure the endpoint is present as described (or absent). Every error is raised; ModelEngineModule.run
    turns it into a failure carrying what was already done (``changed`` after a write).

    Order: the rules that need only the input, before any request; then one GET; then the owner (the GET by
    name is global, so the record may be another user's public endpoint) and, for a create, the create-only
    rules; the write last."""
    p = module.params
    name = p["name"]
    if p["state"] == "present":
        validate_input(p)
    client = module.model_engine_client()
    record = get_endpoint(client, name)
    if record is not None:
        check_owner(record, p["user_id"], p["state"])
    if p["state"] == "absent":
        return _absent(module, client, name, record)
    if record is None:
        return _create(module, client, name)
    return _update(module, client, name, record)
