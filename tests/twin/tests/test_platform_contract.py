"""Contract tests: drive the twin's model-engine API with the rules of model-engine-facts.md / the contract.

Every assertion checks the exact status code and body a user of the real API would get.
"""

from __future__ import annotations

import re
import uuid

import pytest

pytestmark = pytest.mark.twin

CREATE = "/v1/llm/model-endpoints"
INTERNAL = "Internal error occurred. Our team has been notified."
T4 = "<GpuType.NVIDIA_TESLA_T4: 'nvidia-tesla-t4'>"


def assert_internal_error(r):
    assert r.status == 500, r
    body = r.json()
    assert set(body) == {"error", "timestamp", "request_id"}
    assert body["error"] == INTERNAL
    uuid.UUID(body["request_id"])


def assert_detail(r, status: int, detail: str):
    assert r.status == status, r
    assert r.json() == {"detail": detail}


def unique(body: dict) -> dict:
    body["name"] = f"ep-{uuid.uuid4().hex[:8]}"
    return body


# ---- auth and health -----------------------------------------------------------------------------------------
def test_missing_credentials_is_401_with_bearer_challenge(me):
    r = me.as_user(None).get(CREATE)
    assert_detail(r, 401, "No authentication was passed in")
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_bearer_token_is_looked_up_like_a_username(me):
    r = me.as_user(None).get(CREATE, headers={"Authorization": "Bearer test-user-id"})
    assert r.status == 200
    assert r.json() == {"model_endpoints": []}


@pytest.mark.parametrize("path", ["/healthz", "/healthcheck", "/readyz"])
def test_health_routes_need_no_auth(me, path):
    assert me.as_user(None).get(path).status == 200


# ---- 422 (pydantic) ------------------------------------------------------------------------------------------
def test_missing_required_fields_are_422_with_union_tag_in_loc(me):
    r = me.post(CREATE, {"model_name": "m"})
    assert r.status == 422
    errors = r.json()["detail"]
    locs = [e["loc"] for e in errors]
    for field in ("min_workers", "max_workers", "per_worker", "labels", "name", "metadata"):
        assert ["body", "vllm", field] in locs
    assert all(e["type"] == "missing" and e["msg"] == "Field required" for e in errors)
    assert errors[0]["input"] == {"model_name": "m"}


def test_wrong_types_are_422(me, runbook_body):
    runbook_body["labels"] = {"team": 1, "product": "x"}
    runbook_body["gpu_type"] = "nvidia-tesla-k80"
    runbook_body["min_workers"] = "one"
    r = me.post(CREATE, runbook_body)
    assert r.status == 422
    by_loc = {tuple(e["loc"]): e for e in r.json()["detail"]}
    assert by_loc[("body", "vllm", "labels", "team")]["type"] == "string_type"
    assert by_loc[("body", "vllm", "gpu_type")]["type"] == "enum"
    assert by_loc[("body", "vllm", "min_workers")]["type"] == "int_parsing"


def test_unknown_framework_is_union_tag_invalid(me, runbook_body):
    runbook_body["inference_framework"] = "ollama"
    r = me.post(CREATE, runbook_body)
    assert r.status == 422
    (err,) = r.json()["detail"]
    assert err["type"] == "union_tag_invalid"
    assert err["loc"] == ["body"]
    assert err["ctx"]["tag"] == "ollama"


def test_unknown_fields_are_ignored(me, runbook_body):
    body = unique(runbook_body)
    body["nmae"] = "typo"
    body["storage_class"] = "fast"
    r = me.create(body)
    assert r.status == 200, r
    assert set(r.json()) == {"endpoint_creation_task_id"}


# ---- create validation, in the server's order ----------------------------------------------------------------
def test_hardware_fields_all_or_nothing(me, runbook_body):
    del runbook_body["storage"]
    assert_detail(me.post(CREATE, runbook_body), 400,
                  "All hardware spec fields (gpus, gpu_type, cpus, memory, storage, nodes_per_worker) must be "
                  "provided if any hardware spec field is missing.")


def test_gpus_zero_is_unmapped_500(me, runbook_body):
    runbook_body["gpus"] = 0
    assert_internal_error(me.post(CREATE, runbook_body))


@pytest.mark.parametrize(("field", "value", "detail"), [
    ("min_workers", 0, "Requested min workers 0 too low"),
    ("max_workers", 251, "Requested max workers 251 too high"),
])
def test_worker_bounds(me, runbook_body, field, value, detail):
    runbook_body[field] = value
    runbook_body["labels"] = {"team": "t"}  # also invalid, but checked later
    assert_detail(me.post(CREATE, runbook_body), 400, detail)


def test_a100e_is_rejected_before_labels(me, runbook_body):
    runbook_body["gpu_type"] = "nvidia-ampere-a100e"
    runbook_body["labels"] = {}
    assert_detail(me.post(CREATE, runbook_body), 400,
                  "We have migrated A100 usage to H100. Please request for H100 instead!")


@pytest.mark.parametrize(("labels", "detail"), [
    ({"product": "p"}, "Missing label 'team' in labels. These are all required: ['team', 'product']"),
    ({"team": "t"}, "Missing label 'product' in labels. These are all required: ['team', 'product']"),
    ({"team": "t", "product": "p", "user_id": "u"}, "Cannot specify 'user_id' in labels"),
    ({"team": "t", "product": "p", "endpoint_name": "e"}, "Cannot specify 'endpoint_name' in labels"),
    ({"team": "_INVALID_TEAM", "product": "p"}, "Invalid team"),
    ({"team": "t", "product": "bad value!"},
     "Invalid label value bad value!, must match regex (([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"),
])
def test_label_rules(me, runbook_body, labels, detail):
    runbook_body["labels"] = labels
    runbook_body["num_shards"] = 3   # also invalid, checked after labels
    assert_detail(me.post(CREATE, runbook_body), 400, detail)


def test_billing_tags_and_hooks_are_unmapped_500(me, runbook_body):
    runbook_body["billing_tags"] = {"product": "x"}
    assert_internal_error(me.post(CREATE, runbook_body))
    del runbook_body["billing_tags"]
    runbook_body["post_inference_hooks"] = ["slack"]
    assert_internal_error(me.post(CREATE, runbook_body))


def test_num_shards_must_equal_gpus(me, runbook_body):
    runbook_body["num_shards"] = 2
    assert_detail(me.post(CREATE, runbook_body), 400, "Num shard 2 must be equal to the number of GPUs 1.")


def test_vllm_only_accepts_awq(me, runbook_body):
    runbook_body["quantize"] = "bitsandbytes"
    assert_detail(me.post(CREATE, runbook_body), 400,
                  "Quantization Quantization.BITSANDBYTES is not supported for inference framework "
                  "LLMInferenceFramework.VLLM. Supported quantization types are [<Quantization.AWQ: 'awq'>].")


def test_chat_template_length(me, runbook_body):
    runbook_body["chat_template_override"] = "x" * 10_001
    assert_detail(me.post(CREATE, runbook_body), 400, "Chat template length must be less than 10000.")


def test_vllm_is_streaming_only_and_default_type_is_sync(me, runbook_body):
    del runbook_body["endpoint_type"]
    runbook_body["inference_framework_image_tag"] = "does-not-exist"   # checked later
    assert_detail(me.post(CREATE, runbook_body), 400,
                  "Creating endpoint type ModelEndpointType.SYNC is not allowed. Can only create streaming endpoints "
                  "for text-generation-inference, vLLM, LightLLM, and TensorRT-LLM.")


def test_unknown_image_tag_is_404_before_checkpoint_checks(me, runbook_body):
    runbook_body["inference_framework_image_tag"] = "0.0.0-nope"
    runbook_body["checkpoint_path"] = "s3://scale-gp-models/empty-model/"
    assert_detail(me.post(CREATE, runbook_body), 404, "The specified docker image could not be found.")


def test_missing_checkpoint_is_unmapped_500(me, runbook_body):
    del runbook_body["checkpoint_path"]
    assert_internal_error(me.post(CREATE, runbook_body))


@pytest.mark.parametrize(("path", "detail"), [
    ("/data/models/qwen", "Only S3, Azure Blob Storage, and GCS paths are supported. Given checkpoint path: "
                          "/data/models/qwen."),
    ("s3://scale-gp-models/model.tar", "Tar files are not supported. Given checkpoint path: "
                                       "s3://scale-gp-models/model.tar."),
    ("s3://scale-gp-models/empty-model/", "No safetensors found in the checkpoint path."),
    ("s3://scale-gp-models/no-safetensors-model/", "No safetensors found in the checkpoint path."),
    ("s3://no-such-bucket/x/", "Could not read model weights at 's3://no-such-bucket/x/'. Check that the path "
                               "exists and that the deployment has read access to the bucket."),
])
def test_checkpoint_rules(me, runbook_body, path, detail):
    runbook_body["checkpoint_path"] = path
    assert_detail(me.post(CREATE, runbook_body), 400, detail)


@pytest.mark.parametrize(("field", "value", "detail"), [
    ("cpus", 63, f"Requested cpus=64 too high. The maximum for gpu_type={T4} is 62"),
    ("memory", "249Gi", f"Requested memory={251 * 1024 ** 3} too high. The maximum for gpu_type={T4} is 248.0Gi"),
    ("storage", "700Gi", f"Requested storage={700 * 1024 ** 3 + 10 ** 9} too high. The maximum for gpu_type={T4} "
                         "is 639.1Gi"),
])
def test_resource_ceilings_per_gpu_type(me, runbook_body, field, value, detail):
    runbook_body[field] = value
    assert_detail(me.post(CREATE, runbook_body), 400, detail)


def test_h100_allows_more_cpu_than_t4(me, runbook_body):
    runbook_body.update(cpus=100, gpu_type="nvidia-hopper-h100")
    body = unique(runbook_body)
    r = me.create(body)
    assert r.status == 200, r


def test_duplicate_name_is_400_after_all_other_checks(me, runbook_body):
    body = unique(runbook_body)
    assert me.create(body).status == 200
    assert_detail(me.post(CREATE, body), 400, "The specified model endpoint already exists.")
    body["cpus"] = 63
    assert_detail(me.post(CREATE, body), 400, f"Requested cpus=64 too high. The maximum for gpu_type={T4} is 62")


def test_same_name_for_another_owner_is_allowed_then_get_is_500(me, runbook_body):
    body = unique(runbook_body)
    assert me.create(body).status == 200
    assert me.as_user("other-team").create(body).status == 200
    assert_internal_error(me.get(f"{CREATE}/{body['name']}"))


# ---- create success, get and list ----------------------------------------------------------------------------
def test_create_then_get_follows_status_lifecycle(me, runbook_body, odp_twin):
    body = unique(runbook_body)
    body["inference_framework_image_tag"] = "latest"
    body["max_model_len"] = 4096
    r = me.create(body)
    assert r.status == 200
    task_id = r.json()["endpoint_creation_task_id"]
    uuid.UUID(task_id)
    ep = me.wait(body["name"], lambda e: e["status"] == "READY")
    assert re.fullmatch(r"end_[0-9a-v]{20}", ep["id"])
    assert ep["inference_framework_image_tag"] == "vllm-onprem"   # "latest" resolved from the ConfigMap
    assert ep["model_name"] == "test-model" and ep["num_shards"] == 1 and ep["source"] == "hugging_face"
    spec = ep["spec"]
    llm = spec["metadata"]["_llm"]
    assert llm["vllm_additional_args"] == {"max_model_len": 4096}
    assert llm["checkpoint_path"] == body["checkpoint_path"]
    assert spec["metadata"]["team"] == "test"
    rid = "launch-endpoint-id-" + ep["id"].replace("_", "-")
    assert spec["destination"] == rid and spec["deployment_name"] == rid
    assert spec["resource_state"] == {"cpus": "4", "gpus": 1, "memory": "16Gi", "gpu_type": "nvidia-tesla-t4",
                                      "storage": "50Gi", "nodes_per_worker": 1, "optimize_costs": False}
    ds = spec["deployment_state"]
    assert (ds["min_workers"], ds["max_workers"], ds["per_worker"], ds["concurrent_requests_per_worker"]) == (1, 1, 1, 250)
    assert spec["labels"]["endpoint_id"] == ep["id"] and spec["labels"]["managed-by"] == "model-engine"
    assert spec["public_inference"] is True and spec["created_by"] == "test-user-id"
    assert spec["status_reason"] is None
    ep = me.wait(body["name"], lambda e: e["spec"]["deployment_state"]["available_workers"] == 1, timeout=30)
    assert ep["spec"]["deployment_state"]["unavailable_workers"] == 0


def test_status_is_update_pending_while_builder_does_not_consume(me, runbook_body, odp_twin):
    body = unique(runbook_body)
    odp_twin.faults.add("builder_stalled", body["name"])
    assert me.create(body).status == 200
    ep = me.endpoint(body["name"])
    assert ep["status"] == "UPDATE_PENDING"
    assert ep["spec"]["deployment_state"] is None and ep["spec"]["resource_state"] is None
    odp_twin.faults.clear("builder_stalled")
    me.wait(body["name"], lambda e: e["status"] == "READY")


def test_name_that_is_not_a_label_value_fails_in_the_builder(me, runbook_body, twin_kubectl):
    body = dict(runbook_body, name="My.Endpoint.")   # accepted by the API, rejected by Kubernetes as a label value
    assert me.create(body).status == 200
    ep = me.wait(body["name"], lambda e: e["status"] == "UPDATE_FAILED")
    assert ep["spec"]["status_reason"] == "Endpoint deployment failed due to an internal error."
    assert ep["spec"]["deployment_state"] is None
    log = twin_kubectl("logs", "deployment/model-engine-endpoint-builder", "-n", "llm-core", "--tail=5").stdout
    assert "raised unexpected: 422" in log


@pytest.mark.parametrize(("model", "gpus", "memory"), [
    ("qwen3-8b", 1, "16Gi"),     # byModelName entry
    ("qwen3-14b", 2, "32Gi"),    # byGpuMemoryGb: ceil((2*14e9 + kv cache) / 1e9 / 0.9) = 32 GB -> the 40 GB row
])
def test_hardware_is_inferred_from_the_configmap(me, runbook_body, model, gpus, memory):
    body = unique(runbook_body)
    for f in ("cpus", "gpus", "memory", "storage", "gpu_type", "nodes_per_worker"):
        del body[f]
    body["model_name"] = model
    body["num_shards"] = 4   # overwritten by the inferred gpus
    assert me.create(body).status == 200
    ep = me.wait(body["name"], lambda e: e["status"] == "READY")
    assert ep["num_shards"] == gpus
    rs = ep["spec"]["resource_state"]
    assert (rs["gpus"], rs["memory"], rs["storage"], rs["gpu_type"]) == (gpus, memory, "50Gi", "nvidia-tesla-t4")


def test_hardware_inference_needs_a_parameter_count_even_for_by_model_name(me, runbook_body):
    for f in ("cpus", "gpus", "memory", "storage", "gpu_type", "nodes_per_worker"):
        del runbook_body[f]
    assert_detail(me.post(CREATE, runbook_body), 400, "Unable to infer number of parameters for test-model.")


@pytest.mark.parametrize(("model", "detail"), [
    ("qwen3-32b", "Unable to infer hardware for qwen3-32b."),
    ("mystery-model", "Unable to infer number of parameters for mystery-model."),
])
def test_hardware_inference_failures(me, runbook_body, model, detail):
    for f in ("cpus", "gpus", "memory", "storage", "gpu_type", "nodes_per_worker"):
        del runbook_body[f]
    runbook_body["model_name"] = model
    assert_detail(me.post(CREATE, runbook_body), 400, detail)


def test_get_unknown_is_404_with_double_space(me):
    assert_detail(me.get(f"{CREATE}/nope"), 404, "Model Endpoint nope  was not found.")


def test_list_visibility_filter_and_order(me, runbook_body):
    mine = unique(dict(runbook_body))
    theirs_public = unique(dict(runbook_body))
    theirs_private = unique(dict(runbook_body, public_inference=False))
    assert me.create(mine).status == 200
    other = me.as_user("other-team")
    assert other.create(theirs_public).status == 200
    assert other.create(theirs_private).status == 200
    names = [e["name"] for e in me.get(CREATE).json()["model_endpoints"]]
    assert mine["name"] in names and theirs_public["name"] in names and theirs_private["name"] not in names
    assert_detail(me.get(f"{CREATE}/{theirs_private['name']}"), 404,
                  f"Model Endpoint {theirs_private['name']}  was not found.")
    assert me.get(f"{CREATE}/{theirs_public['name']}").status == 200
    only = me.get(f"{CREATE}?name={mine['name']}").json()["model_endpoints"]
    assert [e["name"] for e in only] == [mine["name"]]
    newest = [e["name"] for e in me.get(f"{CREATE}?order_by=newest").json()["model_endpoints"]]
    oldest = [e["name"] for e in me.get(f"{CREATE}?order_by=oldest").json()["model_endpoints"]]
    assert newest == list(reversed(oldest))
    r = me.get(f"{CREATE}?order_by=random")
    assert r.status == 422 and r.json()["detail"][0]["loc"] == ["query", "order_by"]


# ---- update ------------------------------------------------------------------------------------------------
def _deployment(odp_twin, endpoint_id):
    name = "launch-endpoint-id-" + endpoint_id.replace("_", "-")
    return odp_twin.call(odp_twin.kube.get("Deployment", name, odp_twin.config.endpoint_namespace))


def test_update_unknown_is_404(me):
    assert_detail(me.put(f"{CREATE}/nope", {"min_workers": 1}), 404, "The specified LLM endpoint could not be found.")


def test_update_semantics(me, runbook_body, odp_twin):
    body = unique(runbook_body)
    assert me.create(body).status == 200
    ep = me.wait(body["name"], lambda e: e["status"] == "READY")
    before = _deployment(odp_twin, ep["id"])
    cmd0 = before["spec"]["template"]["spec"]["containers"][1]["command"][2]
    # pass-through args alone do not rebuild the bundle
    assert_detail(me.put(f"{CREATE}/{body['name']}", {"labels": {"cost-center": "x1"}}), 400,
                  "Missing label 'team' in labels. These are all required: ['team', 'product']")
    r = me.put(f"{CREATE}/{body['name']}", {"max_model_len": 2048, "metadata": {"owner": "ops"},
                                            "labels": {"team": "test", "product": "llm-engine", "cost-center": "x1"}})
    assert r.status == 200 and set(r.json()) == {"endpoint_creation_task_id"}
    ep = me.wait(body["name"], lambda e: e["status"] == "READY")
    assert "--max-model-len" not in _deployment(odp_twin, ep["id"])["spec"]["template"]["spec"]["containers"][1]["command"][2]
    assert ep["spec"]["labels"]["cost-center"] == "x1" and ep["spec"]["labels"]["team"] == "test"
    assert ep["spec"]["metadata"]["owner"] == "ops" and ep["spec"]["metadata"]["team"] == "test"
    assert "vllm_additional_args" not in ep["spec"]["metadata"]["_llm"]
    # ... unless force_bundle_recreation is sent
    assert me.put(f"{CREATE}/{body['name']}", {"max_model_len": 2048, "force_bundle_recreation": True}).status == 200
    ep = me.wait(body["name"], lambda e: e["status"] == "READY"
                 and e["spec"]["metadata"]["_llm"].get("vllm_additional_args") == {"max_model_len": 2048})
    cmd = _deployment(odp_twin, ep["id"])["spec"]["template"]["spec"]["containers"][1]["command"][2]
    assert "--max-model-len 2048" in cmd and cmd != cmd0
    # image tag update changes the main image
    assert me.put(f"{CREATE}/{body['name']}", {"inference_framework_image_tag": "0.10.1"}).status == 200
    ep = me.wait(body["name"], lambda e: e["inference_framework_image_tag"] == "0.10.1" and e["status"] == "READY")
    assert _deployment(odp_twin, ep["id"])["spec"]["template"]["spec"]["containers"][1]["image"].endswith("vllm:0.10.1")
    assert_detail(me.put(f"{CREATE}/{body['name']}", {"inference_framework_image_tag": "9.9.9"}), 404,
                  "The specified docker image could not be found.")
    assert_detail(me.put(f"{CREATE}/{body['name']}", {"metadata": {"_llm": {}}}), 400,
                  "_llm is a reserved metadata key and cannot be used by user.")
    assert_detail(me.put(f"{CREATE}/{body['name']}", {"labels": {"team": "t", "product": "p", "user_id": "x"}}), 400,
                  "Cannot specify 'user_id' in labels")
    r = me.put(f"{CREATE}/{body['name']}", {"inference_framework": "lightllm"})
    assert r.status == 422 and r.json()["detail"][0]["type"] == "union_tag_invalid"


def test_update_without_infra_state_is_500(me, runbook_body, odp_twin):
    body = unique(runbook_body)
    odp_twin.faults.add("builder_stalled", body["name"])
    assert me.create(body).status == 200
    assert_internal_error(me.put(f"{CREATE}/{body['name']}", {"min_workers": 1}))


def test_a_second_user_sees_a_public_endpoint_by_name_but_cannot_change_it(me, runbook_body):
    """Facts §1, §2.4, §2.5: GET by name is global for public endpoints and names the owner in spec.created_by;
    the update use case answers 404 and the delete 403 to anyone but the owner."""
    body = unique(runbook_body)
    owner = me.as_user("someone-else")
    assert owner.create(body).status == 200
    seen = me.get(f"{CREATE}/{body['name']}")
    assert seen.status == 200 and seen.json()["spec"]["created_by"] == "someone-else"
    listed = [e for e in me.get(CREATE).json()["model_endpoints"] if e["name"] == body["name"]]
    assert [e["spec"]["created_by"] for e in listed] == ["someone-else"]
    assert_detail(me.put(f"{CREATE}/{body['name']}", {"max_workers": 2}), 404, "The specified LLM endpoint could not be found.")
    assert_detail(me.delete(f"{CREATE}/{body['name']}"), 403, "You don't have permission to delete the requested model endpoint.")
    assert owner.get(f"{CREATE}/{body['name']}").status == 200  # still there


# ---- delete and generic routes -------------------------------------------------------------------------------
def test_delete_rules(me, runbook_body, odp_twin):
    assert_detail(me.delete(f"{CREATE}/nope"), 404, "The requested model endpoint could not be found.")
    body = unique(runbook_body)
    other = me.as_user("other-team")
    assert other.create(body).status == 200
    assert_detail(me.delete(f"{CREATE}/{body['name']}"), 403,
                  "You don't have permission to delete the requested model endpoint.")
    ep = other.wait(body["name"], lambda e: e["status"] == "READY")
    assert _deployment(odp_twin, ep["id"]) is not None
    r = other.delete(f"{CREATE}/{body['name']}")
    assert r.status == 200 and r.json() == {"deleted": True}
    assert _deployment(odp_twin, ep["id"]) is None
    rid = "launch-endpoint-id-" + ep["id"].replace("_", "-")
    for kind in ("Service", "HorizontalPodAutoscaler"):
        assert odp_twin.call(odp_twin.kube.get(kind, rid, odp_twin.config.endpoint_namespace)) is None
    assert_detail(other.get(f"{CREATE}/{body['name']}"), 404, f"Model Endpoint {body['name']}  was not found.")


def test_delete_of_never_deployed_endpoint_works(me, runbook_body, odp_twin):
    body = unique(runbook_body)
    odp_twin.faults.add("builder_stalled", body["name"])
    assert me.create(body).status == 200
    assert me.delete(f"{CREATE}/{body['name']}").json() == {"deleted": True}


def test_generic_routes_by_id(me, runbook_body, odp_twin):
    assert_detail(me.get("/v1/model-endpoints/end_aaaaaaaaaaaaaaaaaaaa"), 404,
                  "Model Endpoint end_aaaaaaaaaaaaaaaaaaaa  was not found.")
    assert_detail(me.post("/v1/model-endpoints/end_aaaaaaaaaaaaaaaaaaaa/restart"), 404,
                  "Model Endpoint end_aaaaaaaaaaaaaaaaaaaa was not found.")
    body = unique(runbook_body)
    assert me.create(body).status == 200
    ep = me.wait(body["name"], lambda e: e["status"] == "READY")
    spec = me.get(f"/v1/model-endpoints/{ep['id']}").json()
    assert spec["id"] == ep["id"] and spec["name"] == body["name"] and spec["endpoint_type"] == "streaming"
    assert me.as_user("other-team").get(f"/v1/model-endpoints/{ep['id']}").status == 404
    r = me.post(f"/v1/model-endpoints/{ep['id']}/restart")
    assert r.status == 200 and r.json() == {"restarted": True}
    ann = _deployment(odp_twin, ep["id"])["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in ann
    assert me.delete(f"/v1/model-endpoints/{ep['id']}").json() == {"deleted": True}
    assert me.get(f"{CREATE}/{body['name']}").status == 404


# ---- inference routes ----------------------------------------------------------------------------------------
def test_v2_unknown_endpoint_is_404(me):
    assert_detail(me.post("/v2/chat/completions", {"model": "nope", "messages": []}), 404,
                  "The specified endpoint could not be found.")


def test_v1_completions_sync_unknown_endpoint_and_missing_query(me):
    body = {"prompt": "hi", "max_new_tokens": 4, "temperature": 0.5}
    assert_detail(me.post("/v1/llm/completions-sync?model_endpoint_name=nope", body), 404,
                  "The specified endpoint could not be found.")
    r = me.post("/v1/llm/completions-sync", body)
    assert r.status == 422 and r.json()["detail"][0]["loc"] == ["query", "model_endpoint_name"]


def test_v2_is_410_when_max_workers_is_zero(me, runbook_body, odp_twin):
    body = unique(runbook_body)
    body["max_workers"] = 0
    odp_twin.faults.add("builder_stalled", body["name"])
    assert me.create(body).status == 200
    assert_detail(me.post("/v2/chat/completions", {"model": body["name"], "messages": []}), 410,
                  f"The endpoint {body['name']} is deprecated. max_workers is 0.")


# ---- API faults ----------------------------------------------------------------------------------------------
def test_api_fault_route_answers_errors_n_times(me, runbook_body):
    r = me.post("/_twin/faults", {"fault": "api_error", "route": "^GET /v1/llm/model-endpoints$", "status": 503,
                                  "count": 2})
    assert r.status == 200
    assert me.get(CREATE).status == 503
    assert me.get(CREATE).status == 503
    assert me.get(CREATE).status == 200
    me.post("/_twin/faults", {"fault": "api_error", "route": "^POST ", "status": 429, "count": 1})
    r = me.post(CREATE, runbook_body)
    assert r.status == 429 and r.json()["error"] == "Too many requests" and "timestamp" in r.json()
    me.post("/_twin/faults", {"fault": "api_error", "route": "^GET /v1/llm", "status": 500, "count": 1})
    assert_internal_error(me.get(CREATE))
    me.post("/_twin/faults", {"fault": "api_error", "route": "^GET /v1/llm", "status": "timeout", "seconds": 3,
                              "count": 1})
    with pytest.raises(OSError):
        me.request("GET", CREATE, timeout=0.5)
    assert me.delete("/_twin/faults").json()["removed"] >= 1
