"""Request models of the model-engine LLM API, modelled with pydantic 2 like the real service.

Field names, types, defaults and the discriminated union keyed by ``inference_framework`` follow
``model_engine_server/common/dtos/llms/{model_endpoints,vllm}.py``; so 422 bodies (type/loc/msg/input/ctx)
come from the same validator library the real FastAPI app uses.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel as _PydanticBaseModel
from pydantic import ConfigDict, Field, HttpUrl, TypeAdapter, ValidationError
from pydantic.functional_validators import AfterValidator


class BaseModel(_PydanticBaseModel):
    model_config = ConfigDict(protected_namespaces=(), extra="ignore")


class LLMInferenceFramework(str, Enum):  # noqa: UP042 - like upstream (str() gives "Cls.MEMBER")
    DEEPSPEED = "deepspeed"
    TEXT_GENERATION_INFERENCE = "text_generation_inference"
    VLLM = "vllm"
    LIGHTLLM = "lightllm"
    TENSORRT_LLM = "tensorrt_llm"
    SGLANG = "sglang"


class LLMSource(str, Enum):  # noqa: UP042 - like upstream (str() gives "Cls.MEMBER")
    HUGGING_FACE = "hugging_face"


class ModelEndpointType(str, Enum):  # noqa: UP042 - like upstream (str() gives "Cls.MEMBER")
    ASYNC = "async"
    SYNC = "sync"
    STREAMING = "streaming"


class GpuType(str, Enum):  # noqa: UP042 - like upstream (str() gives "Cls.MEMBER")
    NVIDIA_TESLA_T4 = "nvidia-tesla-t4"
    NVIDIA_AMPERE_A10 = "nvidia-ampere-a10"
    NVIDIA_AMPERE_A100 = "nvidia-ampere-a100"
    NVIDIA_AMPERE_A100E = "nvidia-ampere-a100e"
    NVIDIA_HOPPER_H100 = "nvidia-hopper-h100"
    NVIDIA_HOPPER_H100_1G_20GB = "nvidia-hopper-h100-1g20gb"
    NVIDIA_HOPPER_H100_3G_40GB = "nvidia-hopper-h100-3g40gb"


class Quantization(str, Enum):  # noqa: UP042 - like upstream (str() gives "Cls.MEMBER")
    BITSANDBYTES = "bitsandbytes"
    AWQ = "awq"


class ModelEndpointOrderBy(str, Enum):  # noqa: UP042 - like upstream (str() gives "Cls.MEMBER")
    NEWEST = "newest"
    OLDEST = "oldest"
    ALPHABETICAL = "alphabetical"


CpuSpecificationType = str | int | float
StorageSpecificationType = str | int | float
HttpUrlStr = Annotated[str, AfterValidator(lambda v: str(HttpUrl(v)) and v)]


class CallbackBasicAuth(BaseModel):
    kind: Literal["basic"]
    username: str
    password: str


class CallbackmTLSAuth(BaseModel):
    kind: Literal["mtls"]
    cert: str
    key: str


CallbackAuth = Annotated[CallbackBasicAuth | CallbackmTLSAuth, Field(discriminator="kind")]


class VLLMModelConfig(BaseModel):
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    enforce_eager: bool | None = None
    trust_remote_code: bool | None = False
    pipeline_parallel_size: int | None = None
    tensor_parallel_size: int | None = None
    quantization: str | None = None
    disable_log_requests: bool | None = None
    chat_template: str | None = None
    tool_call_parser: str | None = None
    enable_auto_tool_choice: bool | None = None
    load_format: str | None = None
    config_format: str | None = None
    tokenizer_mode: str | None = None
    limit_mm_per_prompt: str | None = None
    max_num_batched_tokens: int | None = None
    tokenizer: str | None = None
    dtype: str | None = None
    seed: int | None = None
    revision: str | None = None
    code_revision: str | None = None
    rope_scaling: dict[str, Any] | None = None
    tokenizer_revision: str | None = None
    quantization_param_path: str | None = None
    max_seq_len_to_capture: int | None = None
    disable_sliding_window: bool | None = None
    skip_tokenizer_init: bool | None = None
    served_model_name: str | None = None
    override_neuron_config: dict[str, Any] | None = None
    mm_processor_kwargs: dict[str, Any] | None = None
    block_size: int | None = None
    gpu_memory_utilization: float | None = None
    swap_space: float | None = None
    cache_dtype: str | None = None
    num_gpu_blocks_override: int | None = None
    enable_prefix_caching: bool | None = None


class VLLMEndpointAdditionalArgs(VLLMModelConfig):
    max_gpu_memory_utilization: float | None = None
    attention_backend: str | None = None


VLLM_ARG_FIELDS = list(VLLMEndpointAdditionalArgs.model_fields)
# Not rendered as CLI flags by the twin: exported as env (attention_backend) or managed by the server.
VLLM_NON_FLAG_FIELDS = {"attention_backend"}


class LLMModelEndpointCommonArgs(BaseModel):
    quantize: Quantization | None = None
    checkpoint_path: str | None = None
    post_inference_hooks: list[str] | None = None
    cpus: CpuSpecificationType | None = None
    gpus: int | None = None
    memory: StorageSpecificationType | None = None
    gpu_type: GpuType | None = None
    storage: StorageSpecificationType | None = None
    nodes_per_worker: int | None = None
    optimize_costs: bool | None = None
    min_workers: int
    max_workers: int
    per_worker: int
    labels: dict[str, str]
    prewarm: bool | None = None
    high_priority: bool | None = None
    billing_tags: dict[str, Any] | None = None
    default_callback_url: HttpUrlStr | None = None
    default_callback_auth: CallbackAuth | None = None
    public_inference: bool | None = True
    chat_template_override: str | None = None
    enable_startup_metrics: bool | None = False
    task_expires_seconds: int | None = Field(default=None, ge=1)
    queue_message_timeout_seconds: int | None = Field(default=None, ge=1, le=43200)


class CreateLLMModelEndpointArgs(LLMModelEndpointCommonArgs):
    name: str
    model_name: str
    source: LLMSource = LLMSource.HUGGING_FACE
    inference_framework: LLMInferenceFramework = LLMInferenceFramework.VLLM
    inference_framework_image_tag: str = "latest"
    num_shards: int = 1
    metadata: dict[str, Any]
    endpoint_type: ModelEndpointType = ModelEndpointType.SYNC


class UpdateLLMModelEndpointArgs(LLMModelEndpointCommonArgs):
    min_workers: int | None = None
    max_workers: int | None = None
    per_worker: int | None = None
    labels: dict[str, str] | None = None
    public_inference: bool | None = None
    model_name: str | None = None
    source: LLMSource | None = None
    inference_framework: LLMInferenceFramework | None = None
    inference_framework_image_tag: str | None = None
    num_shards: int | None = None
    metadata: dict[str, Any] | None = None
    force_bundle_recreation: bool | None = False


def _variants(base, with_vllm: bool, frameworks):
    out = []
    for fw in frameworks:
        bases = (VLLMEndpointAdditionalArgs, base) if (with_vllm and fw in (
            LLMInferenceFramework.VLLM, LLMInferenceFramework.SGLANG)) else (base,)
        ns = {"__annotations__": {"inference_framework": Literal[fw]}, "inference_framework": fw}
        out.append(type(f"{base.__name__}_{fw.value}", bases, ns))
    return out


_CREATE_ORDER = [LLMInferenceFramework.VLLM, LLMInferenceFramework.SGLANG, LLMInferenceFramework.DEEPSPEED,
                 LLMInferenceFramework.TEXT_GENERATION_INFERENCE, LLMInferenceFramework.LIGHTLLM,
                 LLMInferenceFramework.TENSORRT_LLM]
_UPDATE_ORDER = _CREATE_ORDER[:4]  # the update union has no lightllm / tensorrt_llm variants (-> 422)

CreateRequest = TypeAdapter(Annotated[Union[tuple(_variants(CreateLLMModelEndpointArgs, True, _CREATE_ORDER))],  # noqa: UP007
                                      Field(discriminator="inference_framework")])
UpdateRequest = TypeAdapter(Annotated[Union[tuple(_variants(UpdateLLMModelEndpointArgs, True, _UPDATE_ORDER))],  # noqa: UP007
                                      Field(discriminator="inference_framework")])


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        return str(value)


def fastapi_errors(exc: ValidationError, prefix: tuple = ("body",), original: Any = None,
                   injected: Any = None) -> list[dict]:
    out = []
    for err in exc.errors(include_url=False):
        item = {"type": err["type"], "loc": list(prefix) + list(err["loc"]), "msg": err["msg"],
                "input": original if (injected is not None and err.get("input") is injected) else err.get("input")}
        if "ctx" in err:
            item["ctx"] = _jsonable(err["ctx"])
        out.append(_jsonable(item))
    return out


def parse(adapter: TypeAdapter, body: Any):
    """Validate a JSON body. Returns (model, None) or (None, FastAPI-shaped 422 error list)."""
    payload = body
    if isinstance(body, dict) and "inference_framework" not in body:
        payload = dict(body, inference_framework="vllm")  # missing tag means vllm (verified upstream)
    try:
        return adapter.validate_python(payload), None
    except ValidationError as exc:
        return None, fastapi_errors(exc, original=body, injected=payload if payload is not body else None)


def explicit_vllm_args(model: BaseModel) -> dict:
    """The pass-through fields the caller explicitly sent (exclude_unset + exclude_none), as in the service."""
    data = model.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    fields = set(VLLM_ARG_FIELDS) | {"enable_startup_metrics"}
    return {k: v for k, v in data.items() if k in fields}
