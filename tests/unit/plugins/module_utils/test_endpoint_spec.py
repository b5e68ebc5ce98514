"""Validation, request bodies and update planning for llm_endpoint (facts §2, §9)."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils.endpoint_spec import (
    CREATE_RULES,
    INPUT_RULES,
    OwnershipError,
    SpecError,
    check_owner,
    create_body,
    current_state,
    owners_of,
    plan_update,
    quantity_problem,
    validate,
    validate_create,
    validate_input,
)

RUNBOOK = {
    "name": "test-endpoint-v1", "model_name": "test-model", "endpoint_type": "streaming",
    "inference_framework": "vllm", "inference_framework_image_tag": "vllm-onprem", "source": "hugging_face",
    "checkpoint_path": "s3://scale-gp-models/intermediate-model-aws/", "num_shards": 1, "cpus": 4,
    "memory": "16Gi", "storage": "50Gi", "gpus": 1, "gpu_type": "nvidia-tesla-t4", "nodes_per_worker": 1,
    "min_workers": 1, "max_workers": 1, "per_worker": 1,
    "metadata": {"team": "test", "product": "llm-engine"}, "labels": {"team": "test", "product": "llm-engine"},
}


def params(**overrides):
    p = copy.deepcopy(RUNBOOK)
    for key, value in overrides.items():
        if value is ...:
            p.pop(key, None)
        else:
            p[key] = value
    return p


def test_runbook_body_is_valid_and_sent_as_is():
    validate(params(), creating=True)
    body = create_body(params())
    assert body["endpoint_type"] == "streaming"
    assert body["labels"] == {"team": "test", "product": "llm-engine"}
    assert body["storage"] == "50Gi" and body["nodes_per_worker"] == 1


def test_defaults_fill_the_traps():
    body = create_body(params(endpoint_type=..., metadata=..., inference_framework=None))
    assert body["endpoint_type"] == "streaming"  # API default 'sync' is rejected for vLLM
    assert body["metadata"] == {}  # required by the API
    assert body["inference_framework"] == "vllm"


def test_vllm_args_are_flattened_into_the_body():
    body = create_body(params(vllm_args={"max_model_len": 4096, "enforce_eager": True}))
    assert body["max_model_len"] == 4096 and body["enforce_eager"] is True


def test_hardware_may_be_omitted_entirely():
    validate(params(cpus=..., gpus=..., memory=..., storage=..., gpu_type=..., nodes_per_worker=..., num_shards=...), creating=True)


BAD = [
    (dict(endpoint_type="sync"), "endpoint_type: must be 'streaming' for inference_framework vllm"),
    (dict(endpoint_type="async"), "endpoint_type: must be 'streaming'"),
    (dict(gpu_type=...), "set all six or none"),
    (dict(nodes_per_worker=...), "missing: nodes_per_worker"),
    (dict(num_shards=2), "num_shards: must equal gpus (num_shards 2, gpus 1)"),
    (dict(gpus=2), "num_shards: must equal gpus (num_shards 1, gpus 2); set num_shards: 2"),
    (dict(gpus=0, num_shards=0), "gpus: must be at least 1"),
    (dict(labels={"team": "test"}), "labels.product: is required"),
    (dict(labels={"product": "p"}), "labels.team: is required"),
    (dict(labels={"team": "t", "product": "p", "user_id": "x"}), "labels.user_id: is reserved"),
    (dict(labels={"team": "t", "product": "p", "endpoint_name": "x"}), "labels.endpoint_name: is reserved"),
    (dict(labels={"team": "t", "product": "llm engine"}), "labels.product: must be a valid Kubernetes label value"),
    (dict(labels={"team": "t", "product": "-bad"}), "labels.product: must be a valid Kubernetes label value"),
    (dict(labels={"team": "x" * 64, "product": "p"}), "labels.team: must be at most 63 characters"),
    (dict(labels={"team": "_INVALID_TEAM", "product": "p"}), "_INVALID_TEAM"),
    (dict(checkpoint_path="/models/qwen"), "checkpoint_path: must be an s3:// URL"),
    (dict(checkpoint_path="gs://bucket/x"), "checkpoint_path: must be an s3:// URL"),
    (dict(checkpoint_path="s3://"), "checkpoint_path: must be an s3:// URL"),
    (dict(checkpoint_path="s3://scale-gp-models/model.tar"), "not a .tar archive"),
    (dict(checkpoint_path=...), "checkpoint_path: is required to create"),
    (dict(storage="50GB"), "storage: '50GB' is not a Kubernetes quantity"),
    (dict(memory="-16Gi"), "memory: '-16Gi' must not be negative"),
    (dict(cpus="0"), "cpus: must be greater than zero"),
    (dict(gpu_type="nvidia-ampere-a100e"), "gpu_type: nvidia-ampere-a100e is rejected"),
    (dict(gpu_type="nvidia-rtx-4090"), "gpu_type: must be one of"),
    (dict(name="Test Endpoint"), "name: must be a valid Kubernetes label value"),
    (dict(name="e" * 64), "name: must be at most 63 characters"),
    (dict(name="endpoint-"), "name: must be a valid Kubernetes label value"),
    (dict(min_workers=0), "min_workers: must be at least 1"),
    (dict(max_workers=251, min_workers=1), "max_workers: must be at most 250"),
    (dict(min_workers=3, max_workers=2), "min_workers: must not be greater than max_workers"),
    (dict(per_worker=0), "per_worker: must be at least 1"),
    (dict(quantize="bitsandbytes"), "quantize: 'bitsandbytes' is not supported for vllm"),
    (dict(vllm_args={"max_model_length": 4096}), "vllm_args.max_model_length: is not a vLLM argument"),
    (dict(vllm_args={"max_model_len": "4096"}), "vllm_args.max_model_len: must be of type int"),
    (dict(vllm_args={"enforce_eager": 1}), "vllm_args.enforce_eager: must be of type bool"),
    (dict(metadata={"_llm": {}}), "metadata._llm: is reserved"),
    (dict(chat_template_override="x" * 10001), "chat_template_override: must be at most 10000 characters"),
    (dict(post_inference_hooks=["audit"]), "post_inference_hooks: 'audit' is not one of"),
    (dict(model_name=...), "model_name: is required to create"),
    (dict(labels=...), "labels: is required to create"),
    (dict(storage="700Gi"), "storage: 700Gi plus the http-forwarder's share exceeds"),
    (dict(memory="249Gi"), "memory: 249Gi plus the http-forwarder's share exceeds"),
    (dict(inference_framework="deepspeed", nodes_per_worker=2), "nodes_per_worker: more than 1"),
    # issue 13: quantities that parse but make no sense for an LLM endpoint
    (dict(memory=16), "memory: 16 is a bare number, which Kubernetes reads as 16 bytes; write the unit, e.g. 16Gi"),
    (dict(memory="16"), "memory: '16' is a bare number, which Kubernetes reads as 16 bytes; write the unit, e.g. 16Gi"),
    (dict(storage=53687091200), "storage: 53687091200 is a bare number, which Kubernetes reads as 53687091200 bytes; write the unit, e.g. 50Gi"),
    (dict(storage="5e10"), "storage: '5e10' is a bare number"),
    (dict(memory="512Ki"), "memory: '512Ki' is 524288 bytes, below 1Mi: far too little for an LLM endpoint; write it like 16Gi"),
    (dict(storage="16000m"), "storage: '16000m' is 16 bytes, below 1Mi"),
    (dict(cpus="0.0001"), "cpus: '0.0001' is below 1m, the smallest CPU quantity Kubernetes accepts"),
    (dict(cpus=4000), "cpus: 4000 reads as 4000 cores, more than any node offers to one worker (at most 256); for millicores write the m"),
    (dict(cpus="4Gi"), "cpus: '4Gi' reads as 4294967296 cores"),
    (dict(gpu_type="nvidia-tesla-t5"), "gpu_type: must be one of nvidia-tesla-t4, nvidia-ampere-a10"),
    (dict(vllm_args={"max_model_length": 4096}), "(did you mean max_model_len?)"),
]


@pytest.mark.parametrize("overrides, message", BAD, ids=[m[:40] for _o, m in BAD])
def test_each_trap_is_caught_with_field_and_rule(overrides, message):
    with pytest.raises(SpecError) as err:
        validate(params(**overrides), creating=True)
    assert message in str(err.value)


def test_all_problems_are_reported_together():
    with pytest.raises(SpecError) as err:
        validate(params(endpoint_type="sync", num_shards=2, labels={"team": "t"}), creating=True)
    text = str(err.value)
    assert "endpoint_type" in text and "num_shards" in text and "labels.product" in text


def test_update_rules_do_not_require_create_fields():
    validate({"name": "e", "max_workers": 2}, creating=False)


@pytest.mark.parametrize("overrides", [dict(model_name=...), dict(labels={"team": "t"}), dict(gpu_type=...)])
def test_create_only_rules_are_not_input_rules(overrides):
    """What needs to know that the endpoint is new (one GET) is not checked before the lookup."""
    validate_input(params(**overrides))
    with pytest.raises(SpecError):
        validate_create(params(**overrides))


def test_every_rule_is_small_and_named_in_the_tables():
    for rule in INPUT_RULES + CREATE_RULES:
        assert rule(params()) == [], rule.__name__


@pytest.mark.parametrize("value", ["16Gi", "16G", "1Mi", "2000Gi", "1.5Ti", "50Gi"])
def test_plausible_byte_quantities(value):
    assert quantity_problem("memory", value) is None


@pytest.mark.parametrize("value", [4, "4", "500m", 0.5, "1m", 256])
def test_plausible_cpus(value):
    assert quantity_problem("cpus", value) is None


def test_owner_of_a_record():
    record = {"name": "e", "spec": {"created_by": "alice", "labels": {"owner": "alice", "team": "t"}}}
    assert owners_of(record) == ["alice"]
    check_owner(record, "alice", "present")
    with pytest.raises(OwnershipError) as err:
        check_owner(record, "bob", "present")
    text = str(err.value)
    assert "Endpoint e belongs to alice, not to bob" in text and "-e model_engine_user=alice" in text and "another name" in text
    assert err.value.result["owner"] == "alice"
    with pytest.raises(OwnershipError) as err:
        check_owner(record, "bob", "absent")
    assert "cannot be deleted by bob" in str(err.value)


def test_a_record_without_owner_fields_is_taken_as_ours():
    check_owner(RECORD, "anyone", "present")


RECORD = {
    "id": "end_cismpd08agn003rr2kc0", "name": "test-endpoint-v1", "model_name": "test-model",
    "source": "hugging_face", "status": "READY", "inference_framework": "vllm",
    "inference_framework_image_tag": "vllm-onprem", "num_shards": 1, "quantize": None,
    "checkpoint_path": "s3://scale-gp-models/intermediate-model-aws", "chat_template_override": None,
    "spec": {
        "endpoint_type": "streaming", "labels": {"team": "test", "product": "llm-engine", "managed-by": "model-engine"},
        "metadata": {"team": "test", "product": "llm-engine", "_llm": {"vllm_additional_args": {"max_model_len": 4096}}},
        "post_inference_hooks": None, "default_callback_url": None, "public_inference": True,
        "deployment_state": {"min_workers": 1, "max_workers": 1, "per_worker": 1, "available_workers": 1},
        "resource_state": {"cpus": "4", "gpus": 1, "memory": "16Gi", "storage": "50Gi", "gpu_type": "nvidia-tesla-t4",
                           "nodes_per_worker": 1, "optimize_costs": False},
    },
}


def test_same_desired_state_plans_nothing():
    plan = plan_update(params(vllm_args={"max_model_len": 4096}), RECORD)
    assert not plan.changed and plan.body == {}


def test_quantities_compare_by_value_and_trailing_slash_is_ignored():
    plan = plan_update(params(cpus="4000m", memory=17179869184, checkpoint_path="s3://scale-gp-models/intermediate-model-aws/"), RECORD)
    assert not plan.changed


def test_only_differences_are_put():
    plan = plan_update(params(max_workers=2, labels={"team": "test", "product": "chat"}), RECORD)
    assert plan.body == {"max_workers": 2, "labels": {"team": "test", "product": "chat"}}
    assert plan.changes["max_workers"] == (1, 2)
    assert plan.bundle_rebuild is False


def test_changed_engine_arg_forces_bundle_recreation():
    plan = plan_update(params(vllm_args={"max_model_len": 8192}), RECORD)
    assert plan.body == {"max_model_len": 8192, "force_bundle_recreation": True}
    assert plan.bundle_rebuild is True


def test_new_image_tag_rebuilds_bundle_without_forcing():
    plan = plan_update(params(inference_framework_image_tag="vllm-onprem-2"), RECORD)
    assert plan.body == {"inference_framework_image_tag": "vllm-onprem-2"} and plan.bundle_rebuild


def test_latest_tag_is_not_compared():
    assert not plan_update(params(inference_framework_image_tag="latest"), RECORD).changed


@pytest.mark.parametrize("field, value", [("nodes_per_worker", 2), ("inference_framework", "sglang"), ("endpoint_type", "sync")])
def test_immutable_fields_fail_with_recreate_hint(field, value):
    with pytest.raises(SpecError) as err:
        plan_update(params(**{field: value}), RECORD)
    assert ("%s: cannot change on an existing endpoint" % field) in str(err.value)
    assert "state: absent" in str(err.value)


def test_current_state_hides_reserved_metadata():
    cur = current_state(RECORD)
    assert "_llm" not in cur["metadata"]
    assert cur["vllm_args"] == {"max_model_len": 4096}
    assert cur["storage"] == "50Gi" and cur["max_workers"] == 1
