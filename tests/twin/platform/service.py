"""model-engine domain logic of the twin: records, bundles, validation order, create/update/delete.

Mirrors ``CreateLLMModelEndpointV1UseCase`` / ``UpdateLLMModelEndpointV1UseCase`` /
``DeleteLLMEndpointByNameUseCase`` and the validators in ``model_endpoint_use_cases.py`` and
``resource_limits.py`` (messages copied), with the twin's registry, S3 and Kubernetes behind them.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import logging
import math
import os
import re
import uuid

import yaml

from . import bundle as bundle_mod
from . import model_cache
from .bundle import InvalidValue
from .dtos import GpuType, LLMInferenceFramework, ModelEndpointType, Quantization, explicit_vllm_args

log = logging.getLogger("twin.model_engine")
LLM_METADATA_KEY = "_llm"
CONVERTED_KEY = "_CONVERTED_FROM_ARTIFACT_LIKE"
RESERVED_METADATA_KEYS = [LLM_METADATA_KEY, CONVERTED_KEY]
REQUIRED_LABELS = ["team", "product"]
RESTRICTED_LABELS = ["user_id", "endpoint_name"]
SUPPORTED_HOOKS = ["billing", "callback", "logging"]
LABEL_REGEX = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
MAX_ENDPOINT_SIZE = 250
CHAT_TEMPLATE_MAX_LENGTH = 10_000
LLM_MAX_CONCURRENCY_PER_WORKER = 250
LATEST_CM = "model-engine-inference-framework-latest-config"
HARDWARE_CM = "model-engine-recommended-hardware-config"

SUPPORTED_QUANTIZATIONS = {
    LLMInferenceFramework.DEEPSPEED: [],
    LLMInferenceFramework.TEXT_GENERATION_INFERENCE: [Quantization.BITSANDBYTES],
    LLMInferenceFramework.VLLM: [Quantization.AWQ],
    LLMInferenceFramework.LIGHTLLM: [],
    LLMInferenceFramework.TENSORRT_LLM: [],
    LLMInferenceFramework.SGLANG: [],
}
# Per-GPU-type ceilings (facts §2.1): cpus, memory, storage.
LIMITS = {
    None: ("7", "30Gi", "640Gi"),
    GpuType.NVIDIA_TESLA_T4: (63, "250Gi", "640Gi"),
    GpuType.NVIDIA_AMPERE_A10: (63, "250Gi", "640Gi"),
    GpuType.NVIDIA_AMPERE_A100: (95, "1000Gi", "640Gi"),
    GpuType.NVIDIA_AMPERE_A100E: (95, "1000Gi", "640Gi"),
    GpuType.NVIDIA_HOPPER_H100: (191, "2000Gi", "1300Gi"),
    GpuType.NVIDIA_HOPPER_H100_1G_20GB: (47, "500Gi", "640Gi"),
    GpuType.NVIDIA_HOPPER_H100_3G_40GB: (95, "1000Gi", "640Gi"),
}
FORWARDER_CPU, FORWARDER_MEM, FORWARDER_STORAGE = 1, "2Gi", "1G"


class HTTPError(Exception):
    """A mapped error: becomes {"detail": detail} with this status."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class ObjectNotFound(Exception):
    pass


class InfraStateNotFound(Exception):
    pass


class DockerImageNotFound(Exception):
    pass


class FailToInferHardware(Exception):
    pass


class ResourceInvalid(Exception):
    """EndpointResourceInvalidRequestException -> 400."""


class LabelsInvalid(Exception):
    """EndpointLabelsException -> 400."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


_B32 = "0123456789abcdefghijklmnopqrstuv"


def new_endpoint_id() -> str:
    """``end_`` + 20 lowercase base32hex chars, like an xid (time-prefixed, then random)."""
    raw = int(now().timestamp()).to_bytes(4, "big") + os.urandom(8)
    n = int.from_bytes(raw, "big") << 4
    chars = []
    for _ in range(20):
        chars.append(_B32[n & 31])
        n >>= 5
    return "end_" + "".join(reversed(chars))


def resource_name(endpoint_id: str) -> str:
    return "launch-endpoint-id-" + endpoint_id.replace("_", "-")


# ---- quantities -------------------------------------------------------------------------------------------
_MEM_SUFFIX = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4, "Pi": 1024 ** 5,
               "k": 10 ** 3, "K": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "": 1}


def parse_mem(q) -> float:
    if isinstance(q, (int, float)):
        return float(q)
    m = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([KMGTP]i?|k)?\s*", str(q))
    if not m:
        raise ValueError(q)
    return float(m.group(1)) * _MEM_SUFFIX[m.group(2) or ""]


def parse_cpu(q) -> float:
    if isinstance(q, (int, float)):
        return float(q)
    s = str(q).strip()
    if s.endswith("m"):
        return float(s[:-1]) / 1000.0
    return float(s)


def format_bytes(num_bytes: float) -> str:
    """Upstream ``k8s_resource_parser.format_bytes``: one decimal, binary units (250Gi - 2Gi -> ``248.0Gi``)."""
    for unit in ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi"):
        if abs(num_bytes) < 1024.0:
            return f"{num_bytes:3.1f}{unit}"
        num_bytes /= 1024.0
    return f"{num_bytes:.1f}Yi"


def _gpu_repr(gpu_type) -> str:
    return "None" if gpu_type is None else repr(GpuType(gpu_type))


# ---- validators (messages as upstream) --------------------------------------------------------------------
def validate_labels(labels: dict) -> None:
    for req in REQUIRED_LABELS:
        if req not in labels:
            raise LabelsInvalid(f"Missing label '{req}' in labels. These are all required: {REQUIRED_LABELS}")
    for bad in RESTRICTED_LABELS:
        if bad in labels:
            raise LabelsInvalid(f"Cannot specify '{bad}' in labels")
    if labels["team"] in ["_INVALID_TEAM"]:
        raise LabelsInvalid("Invalid team")
    for value in labels.values():
        if re.fullmatch(LABEL_REGEX, value) is None:
            raise LabelsInvalid(f"Invalid label value {value}, must match regex {LABEL_REGEX}")


class BillingTagsMalformed(Exception):
    pass


class PostInferenceHooksInvalid(Exception):
    pass


def validate_billing_tags(tags) -> None:
    if tags is None:
        return
    required = {"idempotencyKeyPrefix", "product", "type", "subType", "payee", "payor", "reference"}
    missing = required - set(tags)
    if missing:
        raise BillingTagsMalformed(f"Missing billing tag keys {missing}")
    for k, v in tags.items():
        if not isinstance(k, str) or type(v) not in (str, dict):
            raise BillingTagsMalformed("Billing tags must have string keys and string/dict values")


def validate_hooks(hooks) -> None:
    if hooks is None:
        return
    for hook in hooks:
        if hook not in SUPPORTED_HOOKS:
            raise PostInferenceHooksInvalid(
                f"Unsupported post-inference hook {hook}. The supported hooks are: {SUPPORTED_HOOKS}")


def validate_deployment_resources(min_workers, max_workers, endpoint_type, can_scale_from_zero: bool) -> None:
    min_size = 0 if (endpoint_type == ModelEndpointType.ASYNC or can_scale_from_zero) else 1
    if min_workers is not None and min_workers < min_size:
        raise ResourceInvalid(f"Requested min workers {min_workers} too low")
    if max_workers is not None and max_workers > MAX_ENDPOINT_SIZE:
        raise ResourceInvalid(f"Requested max workers {max_workers} too high")


def validate_num_shards(num_shards, framework, gpus) -> None:
    framework = LLMInferenceFramework(framework)
    if framework == LLMInferenceFramework.DEEPSPEED:
        if num_shards <= 1:
            raise InvalidValue("DeepSpeed requires more than 1 GPU.")
        if num_shards != gpus:
            raise InvalidValue(f"Num shard {num_shards} must be the same as number of GPUs {gpus} for DeepSpeed.")
    if num_shards != gpus:
        raise InvalidValue(f"Num shard {num_shards} must be equal to the number of GPUs {gpus}.")


def validate_quantization(quantize, framework) -> None:
    framework = LLMInferenceFramework(framework)
    if quantize is not None and quantize not in SUPPORTED_QUANTIZATIONS[framework]:
        # upstream formats the (str, Enum) members with f-strings, which on Python 3.11+ print ``Class.MEMBER``,
        # and the list of supported members with their repr
        supported = [f"<Quantization.{q.name}: '{q.value}'>" for q in SUPPORTED_QUANTIZATIONS[framework]]
        raise InvalidValue(f"Quantization Quantization.{Quantization(quantize).name} is not supported for inference "
                           f"framework LLMInferenceFramework.{framework.name}. Supported quantization types are "
                           f"[{', '.join(supported)}].")


def validate_chat_template(template, framework) -> None:
    framework = LLMInferenceFramework(framework)
    if template is not None:
        if len(template) > CHAT_TEMPLATE_MAX_LENGTH:
            raise InvalidValue(f"Chat template length must be less than {CHAT_TEMPLATE_MAX_LENGTH}.")
        if framework != LLMInferenceFramework.VLLM:
            raise InvalidValue("Chat template is only supported for inference framework vllm.")


def validate_resource_requests(cpus, memory, storage, gpus, gpu_type) -> None:
    if (gpus is None or gpus == 0) and gpu_type is not None:
        raise ResourceInvalid(f"Cannot have gpus={gpus} when gpu_type is not None")
    if gpus is not None and gpus > 0 and gpu_type is None:
        raise ResourceInvalid("Must provide gpu_type if gpus > 0")
    gt = GpuType(gpu_type) if gpu_type is not None else None
    max_cpu, max_mem, max_storage = LIMITS[gt]
    max_cpu = float(max_cpu)
    if cpus is not None:
        try:
            c = parse_cpu(cpus)
        except ValueError:
            raise ResourceInvalid(f"Requested cpus={cpus!r} is incorrectly formatted") from None
        if c <= 0:
            raise ResourceInvalid("Requested cpus must be positive")
        c += FORWARDER_CPU
        if c > max_cpu:
            shown = int(c) if isinstance(cpus, int) else c
            avail = int(max_cpu - FORWARDER_CPU)
            raise ResourceInvalid(f"Requested cpus={shown} too high. The maximum for gpu_type={_gpu_repr(gpu_type)} "
                                  f"is {avail}")
    if memory is not None:
        try:
            m = parse_mem(memory)
        except ValueError:
            raise ResourceInvalid(f"Requested memory={memory!r} is incorrectly formatted") from None
        if m <= 0:
            raise ResourceInvalid("Requested memory must be positive")
        m += parse_mem(FORWARDER_MEM)
        if m > parse_mem(max_mem):
            avail = parse_mem(max_mem) - parse_mem(FORWARDER_MEM)
            raise ResourceInvalid(f"Requested memory={int(m)} too high. The maximum for "
                                  f"gpu_type={_gpu_repr(gpu_type)} is {format_bytes(avail)}")
    if storage is not None:
        try:
            s = parse_mem(storage)
        except ValueError:
            raise ResourceInvalid(f"Requested storage={storage!r} is incorrectly formatted") from None
        if s <= 0:
            raise ResourceInvalid("Requested storage must be positive")
        s += parse_mem(FORWARDER_STORAGE)
        if s > parse_mem(max_storage):
            avail = parse_mem(max_storage) - parse_mem(FORWARDER_STORAGE)
            raise ResourceInvalid(f"Requested storage={int(s)} too high. The maximum for "
                                  f"gpu_type={_gpu_repr(gpu_type)} is {format_bytes(avail)}")


HW_FIELDS = ("cpus", "gpus", "memory", "storage", "gpu_type", "nodes_per_worker")


class ModelEngine:
    """All endpoint state of the twin's model-engine (the DB + the use cases)."""

    def __init__(self, *, config, kube, s3_factory, registry, faults, build_queue: asyncio.Queue):
        self.config = config
        self.kube = kube
        self.s3_factory = s3_factory      # callable() -> boto3 S3 client with the gateway's credentials
        self.registry = registry
        self.faults = faults
        self.build_queue = build_queue
        self.records: dict[str, dict] = {}
        self.bundles: dict[str, bundle_mod.Bundle] = {}
        self.lock = asyncio.Lock()
        self._endpoint_locks: dict[str, asyncio.Lock] = {}

    def endpoint_lock(self, endpoint_id: str) -> asyncio.Lock:
        """Serialises a build and a delete of the same endpoint (a delete waits for an in-flight build)."""
        return self._endpoint_locks.setdefault(endpoint_id, asyncio.Lock())

    # ---- helpers -------------------------------------------------------------------------------------------
    def can_scale_from_zero(self) -> bool:
        return bool(self.config.prometheus_server_address)

    async def read_config_map(self, name: str) -> dict:
        cm = await self.kube.get("ConfigMap", name, self.config.gateway_namespace)
        if cm is None:
            raise KeyError(f"ConfigMap {name} not found")
        return cm.get("data") or {}

    async def model_cache_settings(self) -> model_cache.CacheSettings:
        """MODEL_CACHE_* of the gateway process (the env of the ``model-engine`` Deployment, from the chart's modelCache)."""
        dep = await self.kube.get("Deployment", "model-engine", self.config.gateway_namespace)
        return model_cache.settings_from_deployment(dep)

    async def latest_tag(self, framework: str) -> str:
        data = await self.read_config_map(LATEST_CM)
        if framework not in data:
            raise LookupError(f"Could not find latest tag for inference framework {framework}.")
        return data[framework]

    def _split(self, checkpoint_path: str) -> tuple[str, str]:
        rest = checkpoint_path[len("s3://"):]
        bucket, _, key = rest.partition("/")
        return bucket, key

    def _could_not_read(self, path: str) -> InvalidValue:
        return InvalidValue(f"Could not read model weights at '{path}'. Check that the path exists and that the "
                            "deployment has read access to the bucket.")

    async def list_checkpoint(self, checkpoint_path: str) -> list[str]:
        from botocore.exceptions import ClientError

        bucket, prefix = self._split(checkpoint_path)

        def run():
            client = self.s3_factory()
            keys = []
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys += [o["Key"] for o in page.get("Contents", [])]
            return keys

        try:
            return await asyncio.to_thread(run)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("AccessDenied", "NoSuchBucket", "NoSuchKey", "403", "404", "InvalidAccessKeyId",
                        "SignatureDoesNotMatch"):
                raise self._could_not_read(checkpoint_path) from exc
            raise

    async def model_config(self, checkpoint_path: str) -> dict:
        import json

        from botocore.exceptions import ClientError

        bucket, prefix = self._split(checkpoint_path)
        key = os.path.join(prefix, "config.json")

        def run():
            return json.loads(self.s3_factory().get_object(Bucket=bucket, Key=key)["Body"].read())

        try:
            return await asyncio.to_thread(run)
        except ClientError as exc:
            raise self._could_not_read(checkpoint_path) from exc

    async def infer_hardware(self, model_name: str, checkpoint_path: str) -> dict:
        cfg = await self.model_config(checkpoint_path)
        kv = (2 * 2 * cfg["num_hidden_layers"] * cfg["hidden_size"] * cfg["max_position_embeddings"]
              // (cfg["num_attention_heads"] // cfg["num_key_value_heads"]))
        weights = 2 * bundle_mod.param_count_b(model_name) * 1_000_000_000
        min_memory_gb = math.ceil((kv + weights) / 1_000_000_000 / 0.9)
        try:
            data = await self.read_config_map(HARDWARE_CM)
        except Exception as exc:
            raise FailToInferHardware(str(exc)) from exc
        by_name = {i["name"]: i for i in (yaml.safe_load(data.get("byModelName") or "[]") or [])}
        if model_name in by_name:
            rec = by_name[model_name]
        else:
            rows = sorted(yaml.safe_load(data.get("byGpuMemoryGb") or "[]") or [], key=lambda r: r["gpu_memory_le"])
            for rec in rows:
                if min_memory_gb <= rec["gpu_memory_le"]:
                    break
            else:
                raise InvalidValue(f"Unable to infer hardware for {model_name}.")
        return {k: rec[k] for k in HW_FIELDS}

    async def infer_hardware_by_name_first(self, model_name: str, checkpoint_path: str) -> dict:
        return await self.infer_hardware(model_name, checkpoint_path)

    def find_by_name(self, name: str) -> list[dict]:
        return [r for r in self.records.values() if r["name"] == name]

    # ---- bundles -------------------------------------------------------------------------------------------
    async def build_bundle(self, *, user, endpoint_name, model_name, source, framework, tag, num_shards, quantize,
                           checkpoint_path, chat_template_override, nodes_per_worker, additional_args) -> bundle_mod.Bundle:
        if source != "hugging_face":
            raise InvalidValue(f"Source {source} is not supported.")
        image = self.config.vllm_image(tag) if framework == "vllm" else f"{framework}:{tag}"
        if not self.registry.exists(image):
            raise DockerImageNotFound(image)
        if nodes_per_worker > 1 and framework not in ("vllm", "sglang"):
            raise InvalidValue(f"Multinode is not supported for framework {framework}.")
        if framework != "vllm":
            # The twin only simulates vLLM images (see README).
            raise InvalidValue(f"The twin does not simulate inference framework {framework}.")
        checkpoint_path = bundle_mod.get_checkpoint_path(model_name, checkpoint_path)
        if checkpoint_path.startswith("s3://"):
            files = await self.list_checkpoint(checkpoint_path)
            model_files = [f for f in files if "model" in f]
            if not [f for f in model_files if f.endswith(".safetensors")]:
                raise InvalidValue("No safetensors found in the checkpoint path.")
        form = self.faults.get("download_form", endpoint_name) or {}
        cache = await self.model_cache_settings()
        command = bundle_mod.vllm_command(
            model_name=model_name, checkpoint_path=checkpoint_path, num_shards=num_shards, quantize=quantize,
            chat_template_override=chat_template_override, additional_args=additional_args,
            download_tool=form.get("tool", self.config.download_tool),
            wait_guard=form.get("wait_guard", self.config.wait_guard),
            s3_endpoint_url=self.config.s3_endpoint_url, image_tag=tag, cache=cache)
        b = bundle_mod.Bundle(id="bun_" + new_endpoint_id()[4:], name=endpoint_name,
                              repository=self.config.vllm_repository, tag=tag, command=command, created_at=iso(now()),
                              model_cache=cache if cache.enabled else None)
        self.bundles[b.id] = b
        return b

    # ---- use cases -----------------------------------------------------------------------------------------
    async def create(self, user: str, req) -> dict:
        req = req.model_copy(deep=True)
        hw_given = [getattr(req, f) is not None for f in HW_FIELDS]
        if not all(hw_given):
            if any(hw_given):
                raise InvalidValue("All hardware spec fields (gpus, gpu_type, cpus, memory, storage, "
                                   "nodes_per_worker) must be provided if any hardware spec field is missing.")
            cp = bundle_mod.get_checkpoint_path(req.model_name, req.checkpoint_path)
            hw = await self.infer_hardware(req.model_name, cp)
            for k, v in hw.items():
                setattr(req, k, GpuType(v) if k == "gpu_type" else v)
            if hw["gpus"]:
                req.num_shards = hw["gpus"]
        if not (req.gpus and req.gpu_type and req.cpus and req.memory and req.storage and req.nodes_per_worker):
            raise RuntimeError("Some hardware info is missing unexpectedly.")
        validate_deployment_resources(req.min_workers, req.max_workers, req.endpoint_type, self.can_scale_from_zero())
        if req.gpu_type == GpuType.NVIDIA_AMPERE_A100E:
            raise InvalidValue("We have migrated A100 usage to H100. Please request for H100 instead!")
        validate_labels(req.labels)
        validate_billing_tags(req.billing_tags)
        validate_hooks(req.post_inference_hooks)
        validate_num_shards(req.num_shards, req.inference_framework, req.gpus)
        validate_quantization(req.quantize, req.inference_framework)
        validate_chat_template(req.chat_template_override, req.inference_framework)
        if req.inference_framework in (LLMInferenceFramework.TEXT_GENERATION_INFERENCE, LLMInferenceFramework.VLLM,
                                       LLMInferenceFramework.LIGHTLLM, LLMInferenceFramework.TENSORRT_LLM):
            if req.endpoint_type != ModelEndpointType.STREAMING:
                raise InvalidValue(
                    f"Creating endpoint type {ModelEndpointType(req.endpoint_type)!s} is not allowed. Can only "
                    "create streaming endpoints for text-generation-inference, vLLM, LightLLM, and TensorRT-LLM.")
        framework = LLMInferenceFramework(req.inference_framework).value
        tag = req.inference_framework_image_tag
        if tag == "latest":
            tag = await self.latest_tag(framework)
        if req.nodes_per_worker > 1 and framework not in ("vllm", "sglang"):
            raise InvalidValue("Multinode endpoints are only supported for VLLM models.")
        vllm_args = explicit_vllm_args(req) if framework == "vllm" else {}
        b = await self.build_bundle(
            user=user, endpoint_name=req.name, model_name=req.model_name, source=req.source.value,
            framework=framework, tag=tag, num_shards=req.num_shards,
            quantize=req.quantize.value if req.quantize else None, checkpoint_path=req.checkpoint_path,
            chat_template_override=req.chat_template_override, nodes_per_worker=req.nodes_per_worker,
            additional_args={k: v for k, v in vllm_args.items() if k != "enable_startup_metrics"})
        validate_resource_requests(req.cpus, req.memory, req.storage, req.gpus,
                                   req.gpu_type.value if isinstance(req.gpu_type, GpuType) else req.gpu_type)
        async with self.lock:
            if any(r["name"] == req.name and r["owner"] == user for r in self.records.values()):
                raise HTTPError(400, "The specified model endpoint already exists.")
            metadata = copy.deepcopy(req.metadata)
            llm = {"model_name": req.model_name, "source": req.source.value, "inference_framework": framework,
                   "inference_framework_image_tag": tag, "num_shards": req.num_shards,
                   "model_cache_enabled": b.model_cache is not None,
                   "quantize": req.quantize.value if req.quantize else None, "checkpoint_path": req.checkpoint_path,
                   "chat_template_override": req.chat_template_override}
            if vllm_args:
                llm["vllm_additional_args"] = vllm_args
            metadata[LLM_METADATA_KEY] = llm
            t = now()
            rec = {
                "id": new_endpoint_id(), "name": req.name, "created_by": user, "owner": user,
                "endpoint_type": ModelEndpointType(req.endpoint_type).value, "metadata": metadata,
                "status": "UPDATE_PENDING", "status_reason": None, "created_at": t, "last_updated_at": t,
                "public_inference": req.public_inference, "post_inference_hooks": req.post_inference_hooks,
                "default_callback_url": req.default_callback_url,
                "default_callback_auth": req.default_callback_auth.model_dump() if req.default_callback_auth else None,
                "labels": dict(req.labels), "billing_tags": req.billing_tags,
                "cpus": req.cpus, "gpus": req.gpus, "memory": req.memory, "storage": req.storage,
                "gpu_type": GpuType(req.gpu_type).value, "nodes_per_worker": req.nodes_per_worker,
                "optimize_costs": bool(req.optimize_costs), "min_workers": req.min_workers,
                "max_workers": req.max_workers, "per_worker": req.per_worker,
                "prewarm": True if req.prewarm is None else req.prewarm,
                "high_priority": bool(req.high_priority), "bundle_id": b.id,
                "task_expires_seconds": req.task_expires_seconds,
                "queue_message_timeout_seconds": req.queue_message_timeout_seconds,
                "creation_task_id": None,
            }
            self.records[rec["id"]] = rec
        return await self._enqueue(rec, bundle_changed=True)

    async def _enqueue(self, rec: dict, bundle_changed: bool) -> dict:
        task_id = str(uuid.uuid4())
        rec["creation_task_id"] = task_id
        rec["status"] = "UPDATE_PENDING"
        rec["last_updated_at"] = now()
        await self.build_queue.put({"task_id": task_id, "endpoint_id": rec["id"], "bundle_changed": bundle_changed})
        return {"endpoint_creation_task_id": task_id}

    async def infra_state(self, rec: dict) -> dict | None:
        ns = self.config.endpoint_namespace
        name = resource_name(rec["id"])
        dep = await self.kube.get("Deployment", name, ns)
        if dep is None:
            return None
        hpa = await self.kube.get("HorizontalPodAutoscaler", name, ns)
        keda = None if hpa is not None else await self.kube.get("ScaledObject", name, ns)
        vpa = await self.kube.get("VerticalPodAutoscaler", name, ns)
        return {"deployment": dep, "hpa": hpa, "keda": keda, "vpa": vpa}

    async def update(self, user: str, name: str, req) -> dict:
        sent = req.model_fields_set
        if req.labels is not None:
            validate_labels(req.labels)
        validate_billing_tags(req.billing_tags)
        validate_hooks(req.post_inference_hooks)
        matches = self.find_by_name(name)
        if not matches:
            raise HTTPError(404, "The specified LLM endpoint could not be found.")
        if len(matches) > 1:
            raise RuntimeError(f"more than one endpoint named {name}")
        rec = matches[0]
        if rec["owner"] != user:
            raise HTTPError(404, "The specified LLM endpoint could not be found.")
        infra = await self.infra_state(rec)
        if infra is None:
            raise InfraStateNotFound(f"Endpoint infra state not found for model_endpoint_name={name!r}")
        llm = rec["metadata"].get(LLM_METADATA_KEY, {})
        new_bundle = None
        new_llm = None
        if (req.force_bundle_recreation or req.model_name or req.source or req.inference_framework_image_tag
                or req.num_shards or req.quantize or req.checkpoint_path or req.chat_template_override):
            framework = llm["inference_framework"]
            if req.inference_framework_image_tag == "latest":
                tag = await self.latest_tag(framework)
            else:
                tag = req.inference_framework_image_tag or llm["inference_framework_image_tag"]
            model_name = req.model_name or llm["model_name"]
            source = req.source.value if req.source else llm["source"]
            num_shards = req.num_shards or llm["num_shards"]
            quantize = req.quantize.value if req.quantize else llm.get("quantize")
            checkpoint_path = req.checkpoint_path or llm.get("checkpoint_path")
            validate_num_shards(num_shards, framework, req.gpus or rec["gpus"])
            validate_quantization(quantize, framework)
            validate_chat_template(req.chat_template_override, framework)
            chat = req.chat_template_override or llm.get("chat_template_override")
            merged_args = {**(llm.get("vllm_additional_args") or {}), **explicit_vllm_args(req)}
            new_bundle = await self.build_bundle(
                user=user, endpoint_name=name, model_name=model_name, source=source, framework=framework, tag=tag,
                num_shards=num_shards, quantize=quantize, checkpoint_path=checkpoint_path,
                chat_template_override=chat, nodes_per_worker=rec["nodes_per_worker"],
                additional_args={k: v for k, v in merged_args.items() if k != "enable_startup_metrics"})
            new_llm = {"model_name": model_name, "source": source, "inference_framework": framework,
                       "inference_framework_image_tag": tag, "num_shards": num_shards,
                       "model_cache_enabled": new_bundle.model_cache is not None,
                       "quantize": quantize, "checkpoint_path": checkpoint_path, "chat_template_override": chat}
            if merged_args:
                new_llm["vllm_additional_args"] = merged_args
        validate_resource_requests(req.cpus or rec["cpus"], req.memory or rec["memory"], req.storage or rec["storage"],
                                   req.gpus or rec["gpus"],
                                   (req.gpu_type.value if req.gpu_type else None) or rec["gpu_type"])
        validate_deployment_resources(req.min_workers, req.max_workers, rec["endpoint_type"],
                                      self.can_scale_from_zero())
        if req.metadata is not None:
            for key in RESERVED_METADATA_KEYS:
                if key in req.metadata:
                    raise InvalidValue(f"{key} is a reserved metadata key and cannot be used by user.")
        async with self.lock:
            if new_bundle is not None:
                rec["bundle_id"] = new_bundle.id
                rec["metadata"][LLM_METADATA_KEY] = new_llm
            if req.metadata is not None:
                rec["metadata"] = {**rec["metadata"], **req.metadata}
            for f in ("cpus", "gpus", "memory", "storage", "min_workers", "max_workers", "per_worker"):
                v = getattr(req, f)
                if v is not None:
                    rec[f] = v
            if req.gpu_type is not None:
                rec["gpu_type"] = GpuType(req.gpu_type).value
            if req.optimize_costs is not None:
                rec["optimize_costs"] = req.optimize_costs
            if req.labels is not None:
                rec["labels"] = {**rec["labels"], **req.labels}
            for f in ("post_inference_hooks", "prewarm", "high_priority", "default_callback_url",
                      "public_inference", "task_expires_seconds", "queue_message_timeout_seconds"):
                if f in sent and getattr(req, f) is not None:
                    rec[f] = getattr(req, f)
            if req.default_callback_auth is not None:
                rec["default_callback_auth"] = req.default_callback_auth.model_dump()
        return await self._enqueue(rec, bundle_changed=new_bundle is not None)

    async def delete_infra(self, rec: dict) -> None:
        """``_delete_resources_sync``: every kind the builder may have written, in upstream's order, each 404 tolerated
        (also for kinds the cluster does not serve); ConfigMaps are found by the ``endpoint_id`` label."""
        from .builder import DELETE_ORDER  # the builder owns the list of endpoint objects

        ns = self.config.endpoint_namespace
        name = resource_name(rec["id"])
        failed = set()
        for kind, counted in DELETE_ORDER:
            names = [f"{name}-model-cache" if kind == "PersistentVolumeClaim" else name]
            if kind == "ConfigMap":
                names = [cm["metadata"]["name"] for cm in await self.kube.list("ConfigMap", ns, f"endpoint_id={rec['id']}")]
            for n in names:
                try:
                    await self.kube.delete(kind, n, ns)
                except Exception:
                    log.exception("deletion of %s %s failed", kind, n)
                    if counted:
                        failed.add(kind)

        def ok(*kinds):
            return not failed.intersection(kinds)

        if not ((ok("Deployment", "ConfigMap", "Service", "DestinationRule", "VirtualService")
                 and (ok("HorizontalPodAutoscaler") or ok("ScaledObject"))) or ok("LeaderWorkerSet", "ConfigMap")):
            raise RuntimeError(f"deletion of the infrastructure of {rec['id']} failed: {sorted(failed)}")

    async def delete(self, rec: dict) -> None:
        rec["status"] = "DELETE_IN_PROGRESS"
        rec["last_updated_at"] = now()
        rec["creation_task_id"] = None   # queued builds of this endpoint are void
        async with self.endpoint_lock(rec["id"]):
            try:
                await self.delete_infra(rec)
            except Exception as exc:
                rec["status"] = "UPDATE_FAILED"
                rec["status_reason"] = "Failed to delete the endpoint's infrastructure."
                raise HTTPError(500, "deletion of endpoint failed.") from exc
            self.records.pop(rec["id"], None)
        self._endpoint_locks.pop(rec["id"], None)

    async def restart(self, rec: dict) -> None:
        if rec["nodes_per_worker"] > 1:
            raise HTTPError(400, f"Restarting model endpoint {rec['id']} is not supported")
        body = {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": iso(now())}}}}}
        await self.kube.patch("Deployment", resource_name(rec["id"]), self.config.endpoint_namespace, body)

    # ---- responses -----------------------------------------------------------------------------------------
    async def spec_response(self, rec: dict) -> dict:
        infra = await self.infra_state(rec)
        b = self.bundles.get(rec["bundle_id"])
        out = {
            "id": rec["id"], "name": rec["name"], "endpoint_type": rec["endpoint_type"],
            "destination": resource_name(rec["id"]), "deployment_name": None,
            "metadata": copy.deepcopy(rec["metadata"]), "bundle_name": b.name if b else rec["name"],
            "status": rec["status"], "status_reason": rec["status_reason"], "post_inference_hooks": [],
            "default_callback_url": None, "default_callback_auth": None, "labels": None, "aws_role": None,
            "results_s3_bucket": None, "created_by": rec["created_by"], "created_at": iso(rec["created_at"]),
            "last_updated_at": iso(rec["last_updated_at"]), "deployment_state": None, "resource_state": None,
            "num_queued_items": None, "public_inference": rec["public_inference"],
            "task_expires_seconds": rec["task_expires_seconds"],
            "queue_message_timeout_seconds": rec["queue_message_timeout_seconds"],
        }
        if infra is not None:
            dep = infra["deployment"]
            status = dep.get("status") or {}
            containers = {c["name"]: c for c in dep["spec"]["template"]["spec"]["containers"]}
            main = containers.get("main", {})
            req = (main.get("resources") or {}).get("requests") or {}
            autoscaling = self._autoscaling_params(rec, infra)
            # _get_common_endpoint_params: read from the forwarder's env, else the infra config
            fenv = {e["name"]: e.get("value") for e in (containers.get("http-forwarder") or main).get("env") or []}
            out.update({
                "deployment_name": dep["metadata"]["name"],
                "aws_role": fenv.get("AWS_PROFILE") or self.config.aws_profile,
                "results_s3_bucket": fenv.get("RESULTS_S3_BUCKET") or self.config.s3_bucket,
                "labels": dep["metadata"].get("labels"),
                "post_inference_hooks": rec["post_inference_hooks"] or [],
                "default_callback_url": rec["default_callback_url"],
                "default_callback_auth": rec["default_callback_auth"],
                "num_queued_items": 0,
                "deployment_state": {
                    **autoscaling,
                    "concurrent_requests_per_worker": LLM_MAX_CONCURRENCY_PER_WORKER,
                    "forwarder_max_concurrency": None,
                    "available_workers": status.get("availableReplicas") or 0,
                    "unavailable_workers": status.get("unavailableReplicas") or 0,
                },
                "resource_state": {
                    "cpus": req.get("cpu", str(rec["cpus"])),
                    "gpus": int(req.get("nvidia.com/gpu", rec["gpus"] or 0)),
                    "memory": req.get("memory", str(rec["memory"])),
                    "gpu_type": (dep["spec"]["template"]["spec"].get("nodeSelector") or {}).get(
                        "k8s.amazonaws.com/accelerator", rec["gpu_type"]),
                    "storage": req.get("ephemeral-storage", rec["storage"]),
                    "nodes_per_worker": rec["nodes_per_worker"],
                    "optimize_costs": infra["vpa"] is not None,   # upstream: a VPA exists
                },
            })
        return out

    @staticmethod
    def _autoscaling_params(rec: dict, infra: dict) -> dict:
        """From the HPA, else the KEDA ScaledObject (upstream reports per_worker 1 for it, a placeholder)."""
        if infra["hpa"] is not None:
            hspec = infra["hpa"].get("spec") or {}
            return {"min_workers": hspec.get("minReplicas", rec["min_workers"]),
                    "max_workers": hspec.get("maxReplicas", rec["max_workers"]), "per_worker": rec["per_worker"]}
        if infra["keda"] is not None:
            kspec = infra["keda"].get("spec") or {}
            return {"min_workers": kspec.get("minReplicaCount"), "max_workers": kspec.get("maxReplicaCount"),
                    "per_worker": 1}
        return {"min_workers": rec["min_workers"], "max_workers": rec["max_workers"], "per_worker": rec["per_worker"]}

    async def llm_response(self, rec: dict) -> dict:
        llm = rec["metadata"][LLM_METADATA_KEY]
        return {
            "id": rec["id"], "name": rec["name"], "model_name": llm["model_name"], "source": llm["source"],
            "status": rec["status"], "inference_framework": llm["inference_framework"],
            "inference_framework_image_tag": llm["inference_framework_image_tag"], "num_shards": llm["num_shards"],
            "quantize": llm.get("quantize"), "checkpoint_path": llm.get("checkpoint_path"),
            "chat_template_override": llm.get("chat_template_override"),
            "task_expires_seconds": rec["task_expires_seconds"],
            "queue_message_timeout_seconds": rec["queue_message_timeout_seconds"],
            "spec": await self.spec_response(rec),
        }


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()
