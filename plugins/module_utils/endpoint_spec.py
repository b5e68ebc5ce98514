# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired state of an LLM endpoint: validation before any HTTP call, request bodies, and the
comparison with what the gateway reports (model-engine-facts §2 and §9)."""

from __future__ import annotations

import re

from ansible_collections.odp.model_engine.plugins.module_utils.errors import SpecError
from ansible_collections.odp.model_engine.plugins.module_utils.quantity import QuantityError, parse_quantity

FRAMEWORKS = ("vllm", "sglang", "deepspeed", "text_generation_inference", "lightllm", "tensorrt_llm")
UPDATABLE_FRAMEWORKS = ("vllm", "sglang", "deepspeed", "text_generation_inference")
STREAMING_ONLY = ("vllm", "text_generation_inference", "lightllm", "tensorrt_llm")
GPU_TYPES = (
    "nvidia-tesla-t4", "nvidia-ampere-a10", "nvidia-ampere-a100", "nvidia-ampere-a100e",
    "nvidia-hopper-h100", "nvidia-hopper-h100-1g20gb", "nvidia-hopper-h100-3g40gb",
)
HARDWARE_FIELDS = ("cpus", "gpus", "memory", "storage", "gpu_type", "nodes_per_worker")
RESERVED_LABELS = ("user_id", "endpoint_name")
RESERVED_METADATA = ("_llm", "_CONVERTED_FROM_ARTIFACT_LIKE")
HOOKS = ("billing", "callback", "logging")
MAX_ENDPOINT_SIZE = 250
MAX_CHAT_TEMPLATE = 10000
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# VLLMEndpointAdditionalArgs (facts §2.2): the only pass-through keys the API knows; anything else
# would be silently ignored by the gateway, so it is rejected here.
VLLM_ARGS = {
    "max_model_len": int, "max_num_seqs": int, "enforce_eager": bool, "trust_remote_code": bool,
    "pipeline_parallel_size": int, "tensor_parallel_size": int, "quantization": str,
    "disable_log_requests": bool, "chat_template": str, "tool_call_parser": str,
    "enable_auto_tool_choice": bool, "load_format": str, "config_format": str, "tokenizer_mode": str,
    "limit_mm_per_prompt": str, "max_num_batched_tokens": int, "tokenizer": str, "dtype": str,
    "seed": int, "revision": str, "code_revision": str, "rope_scaling": dict, "tokenizer_revision": str,
    "quantization_param_path": str, "max_seq_len_to_capture": int, "disable_sliding_window": bool,
    "skip_tokenizer_init": bool, "served_model_name": str, "override_neuron_config": dict,
    "mm_processor_kwargs": dict, "block_size": int, "gpu_memory_utilization": float, "swap_space": float,
    "cache_dtype": str, "num_gpu_blocks_override": int, "enable_prefix_caching": bool,
    "max_gpu_memory_utilization": float, "attention_backend": str,
}

# common/resource_limits.py: per GPU type (cpus, memory, storage) ceilings; the http-forwarder's
# 1 cpu / 2Gi / 1G are added to the request before comparing.
_GI = 2 ** 30
RESOURCE_CEILINGS = {
    None: (7, 30 * _GI, 640 * _GI),
    "nvidia-tesla-t4": (63, 250 * _GI, 640 * _GI),
    "nvidia-ampere-a10": (63, 250 * _GI, 640 * _GI),
    "nvidia-ampere-a100": (95, 1000 * _GI, 640 * _GI),
    "nvidia-ampere-a100e": (95, 1000 * _GI, 640 * _GI),
    "nvidia-hopper-h100": (191, 2000 * _GI, 1300 * _GI),
    "nvidia-hopper-h100-1g20gb": (47, 500 * _GI, 640 * _GI),
    "nvidia-hopper-h100-3g40gb": (95, 1000 * _GI, 640 * _GI),
}
FORWARDER_OVERHEAD = (1, 2 * _GI, 10 ** 9)

# Options that map 1:1 onto request fields (create and update).
SCALAR_FIELDS = (
    "model_name", "source", "inference_framework_image_tag", "num_shards", "quantize", "checkpoint_path",
    "cpus", "gpus", "memory", "storage", "gpu_type", "nodes_per_worker", "min_workers", "max_workers",
    "per_worker", "post_inference_hooks", "default_callback_url", "public_inference", "high_priority",
    "prewarm", "optimize_costs", "chat_template_override",
)
# Fields that cannot change once the endpoint exists.
IMMUTABLE = ("inference_framework", "endpoint_type", "nodes_per_worker")


def _label_value_problem(value):
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > 63:
        return "must be at most 63 characters (it is %d)" % len(value)
    if not LABEL_VALUE_RE.match(value):
        return "must be a valid Kubernetes label value: letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
    return None


def validate(p, creating):
    """Raise SpecError for the first rule the desired state ``p`` (module params) breaks.

    ``creating`` adds the rules that only apply to a POST (required fields). Every rule here is one
    the gateway would enforce with a 400/422/500, or one that makes the build fail later
    (UPDATE_FAILED), or one where the gateway would silently ignore what the user asked for.
    """
    errors = []

    def err(field, rule):
        errors.append("%s: %s" % (field, rule))

    name = p.get("name")
    problem = _label_value_problem(name) if name is not None else "is required"
    if problem or not name:
        err("name", problem or "must not be empty")

    framework = p.get("inference_framework") or "vllm"
    if creating:
        for field in ("model_name", "checkpoint_path", "labels", "min_workers", "max_workers", "per_worker"):
            if p.get(field) in (None, ""):
                err(field, "is required to create an endpoint")

    endpoint_type = p.get("endpoint_type")
    if endpoint_type and framework in STREAMING_ONLY and endpoint_type != "streaming":
        err("endpoint_type", "must be 'streaming' for inference_framework %s (the gateway rejects %r with 400)" % (framework, endpoint_type))

    hardware_given = [f for f in HARDWARE_FIELDS if p.get(f) is not None]
    if creating and hardware_given and len(hardware_given) != len(HARDWARE_FIELDS):
        missing = [f for f in HARDWARE_FIELDS if f not in hardware_given]
        err("cpus, gpus, memory, storage, gpu_type, nodes_per_worker",
            "set all six or none (none lets the server infer them); missing: %s" % ", ".join(missing))

    for field in ("cpus", "memory", "storage"):
        if p.get(field) is not None:
            try:
                if parse_quantity(p[field], field) <= 0:
                    err(field, "must be greater than zero")
            except QuantityError as e:
                errors.append(str(e))
    gpus = p.get("gpus")
    if gpus is not None and gpus < 1:
        err("gpus", "must be at least 1 for an LLM endpoint (0 makes the gateway fail with an internal error)")
    gpu_type = p.get("gpu_type")
    if gpu_type is not None:
        if gpu_type not in GPU_TYPES:
            err("gpu_type", "must be one of %s" % ", ".join(GPU_TYPES))
        elif gpu_type == "nvidia-ampere-a100e":
            err("gpu_type", "nvidia-ampere-a100e is rejected by the gateway for LLM endpoints; use nvidia-ampere-a100")
    npw = p.get("nodes_per_worker")
    if npw is not None:
        if npw < 1:
            err("nodes_per_worker", "must be at least 1")
        elif npw > 1 and framework != "vllm":
            err("nodes_per_worker", "more than 1 (multi-node) is only supported for inference_framework vllm")

    num_shards = p.get("num_shards")
    if gpus is not None:
        shards = 1 if num_shards is None else num_shards
        if shards != gpus:
            err("num_shards", "must equal gpus (num_shards %s, gpus %s); set num_shards: %s" % (shards, gpus, gpus))
    elif num_shards is not None and num_shards < 1:
        err("num_shards", "must be at least 1")

    if p.get("quantize") is not None:
        allowed = {"vllm": ("awq",), "text_generation_inference": ("bitsandbytes",)}.get(framework, ())
        if p["quantize"] not in allowed:
            err("quantize", "%r is not supported for %s (allowed: %s)" % (p["quantize"], framework, ", ".join(allowed) or "none"))

    ckpt = p.get("checkpoint_path")
    if ckpt is not None:
        m = re.match(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/.*)?$", ckpt)
        if not m:
            err("checkpoint_path", "must be an s3:// URL with a bucket, e.g. s3://scale-gp-models/intermediate-model-aws/ (got %r)" % ckpt)
        elif ckpt.rstrip("/").endswith(".tar"):
            err("checkpoint_path", "must be a prefix holding the model files, not a .tar archive")

    for field in ("min_workers", "max_workers", "per_worker"):
        if p.get(field) is not None and p[field] < 0:
            err(field, "must not be negative")
    min_w, max_w = p.get("min_workers"), p.get("max_workers")
    if min_w is not None and min_w < 1 and not p.get("allow_zero_min_workers"):
        err("min_workers", "must be at least 1 for a streaming endpoint unless the platform has a Prometheus "
                           "server for scale-from-zero (then set allow_zero_min_workers: true)")
    if max_w is not None and max_w > MAX_ENDPOINT_SIZE:
        err("max_workers", "must be at most %d" % MAX_ENDPOINT_SIZE)
    if min_w is not None and max_w is not None and min_w > max_w:
        err("min_workers", "must not be greater than max_workers (%s > %s)" % (min_w, max_w))
    if p.get("per_worker") is not None and p["per_worker"] < 1:
        err("per_worker", "must be at least 1")

    labels = p.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            err("labels", "must be a dictionary")
        else:
            for key in ("team", "product"):
                if creating and key not in labels:
                    err("labels.%s" % key, "is required (the gateway rejects endpoints without team and product labels)")
            for key in RESERVED_LABELS:
                if key in labels:
                    err("labels.%s" % key, "is reserved: model-engine sets it itself")
            for key, value in sorted(labels.items()):
                problem = _label_value_problem(value)
                if problem:
                    err("labels.%s" % key, problem)
            if labels.get("team") == "_INVALID_TEAM":
                err("labels.team", "_INVALID_TEAM is rejected by the gateway")

    metadata = p.get("metadata")
    if isinstance(metadata, dict):
        for key in RESERVED_METADATA:
            if key in metadata:
                err("metadata.%s" % key, "is reserved by model-engine")

    hooks = p.get("post_inference_hooks") or []
    for hook in hooks:
        if hook not in HOOKS:
            err("post_inference_hooks", "%r is not one of %s" % (hook, ", ".join(HOOKS)))

    tmpl = p.get("chat_template_override")
    if tmpl is not None:
        if framework != "vllm":
            err("chat_template_override", "is only supported for inference_framework vllm")
        elif len(tmpl) > MAX_CHAT_TEMPLATE:
            err("chat_template_override", "must be at most %d characters (it is %d)" % (MAX_CHAT_TEMPLATE, len(tmpl)))

    vllm_args = p.get("vllm_args") or {}
    if vllm_args and framework not in ("vllm", "sglang"):
        err("vllm_args", "engine pass-through arguments are only accepted for vllm and sglang")
    for key in sorted(vllm_args):
        if key not in VLLM_ARGS:
            err("vllm_args.%s" % key, "is not a vLLM argument model-engine accepts (the gateway would silently ignore it); "
                                      "known: %s" % ", ".join(sorted(VLLM_ARGS)))
            continue
        expected = VLLM_ARGS[key]
        value = vllm_args[key]
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok and value is not None:
            err("vllm_args.%s" % key, "must be of type %s" % expected.__name__)

    if not errors and all(p.get(f) is not None for f in ("cpus", "memory", "storage")):
        ceiling = RESOURCE_CEILINGS.get(gpu_type if gpus else None, RESOURCE_CEILINGS[None])
        requested = (parse_quantity(p["cpus"]), parse_quantity(p["memory"]), parse_quantity(p["storage"]))
        for label, req, extra, cap in zip(("cpus", "memory", "storage"), requested, FORWARDER_OVERHEAD, ceiling):
            if req + extra > cap:
                err(label, "%s plus the http-forwarder's share exceeds what model-engine allows for %s" % (p[label], gpu_type or "CPU-only"))

    if errors:
        raise SpecError("; ".join(errors))


def _drop_none(d):
    return {k: v for k, v in d.items() if v is not None}


def create_body(p):
    """POST /v1/llm/model-endpoints body (facts §9.1: explicit streaming type, metadata {})."""
    body = {"name": p["name"], "inference_framework": p.get("inference_framework") or "vllm",
            "endpoint_type": p.get("endpoint_type") or "streaming", "metadata": p.get("metadata") or {},
            "labels": p.get("labels")}
    for field in SCALAR_FIELDS:
        body[field] = p.get(field)
    body.update(p.get("vllm_args") or {})
    return _drop_none(body)


def _norm_ckpt(value):
    return value.rstrip("/") + "/" if isinstance(value, str) else value


def _same(field, current, desired):
    if field in ("cpus", "memory", "storage"):
        try:
            return current is not None and parse_quantity(current) == parse_quantity(desired)
        except QuantityError:
            return str(current) == str(desired)
    if field == "checkpoint_path":
        return _norm_ckpt(current) == _norm_ckpt(desired)
    if field == "post_inference_hooks":
        return sorted(current or []) == sorted(desired or [])
    return current == desired


def current_state(record):
    """The comparable view of an endpoint record (what the diff's ``before`` shows)."""
    spec = record.get("spec") or {}
    res = spec.get("resource_state") or {}
    dep = spec.get("deployment_state") or {}
    meta = dict(spec.get("metadata") or {})
    llm = meta.pop("_llm", None) or {}
    state = {
        "name": record.get("name"),
        "model_name": record.get("model_name"),
        "source": record.get("source"),
        "inference_framework": record.get("inference_framework"),
        "inference_framework_image_tag": record.get("inference_framework_image_tag"),
        "num_shards": record.get("num_shards"),
        "quantize": record.get("quantize"),
        "checkpoint_path": record.get("checkpoint_path"),
        "chat_template_override": record.get("chat_template_override"),
        "endpoint_type": spec.get("endpoint_type"),
        "post_inference_hooks": spec.get("post_inference_hooks"),
        "default_callback_url": spec.get("default_callback_url"),
        "public_inference": spec.get("public_inference"),
        "labels": spec.get("labels") or {},
        "metadata": meta,
        "vllm_args": llm.get("vllm_additional_args") or {},
        "optimize_costs": res.get("optimize_costs"),
    }
    for field in ("cpus", "gpus", "memory", "storage", "gpu_type", "nodes_per_worker"):
        state[field] = res.get(field)
    for field in ("min_workers", "max_workers", "per_worker"):
        state[field] = dep.get(field)
    return state


class Plan(object):
    """What an update must send: ``body`` (PUT), ``changes`` {field: (before, after)}."""

    def __init__(self, body, changes, bundle_rebuild):
        self.body = body
        self.changes = changes
        self.bundle_rebuild = bundle_rebuild

    @property
    def changed(self):
        return bool(self.changes)


# Fields whose change makes model-engine build a new bundle (facts §2.3).
_BUNDLE_FIELDS = ("model_name", "source", "inference_framework_image_tag", "num_shards", "quantize",
                  "checkpoint_path", "chat_template_override")
# Not reported back by GET: sent on create only, never compared.
_WRITE_ONLY = ("high_priority", "prewarm")


def plan_update(p, record):
    """Compare desired params with the record; raise SpecError for an immutable field that differs."""
    cur = current_state(record)
    body, changes = {}, {}
    for field in IMMUTABLE:
        want = p.get(field)
        if field == "endpoint_type" and want is None:
            continue
        if want is not None and cur.get(field) is not None and not _same(field, cur[field], want):
            raise SpecError("%s: cannot change on an existing endpoint (it is %r, wanted %r); delete the endpoint "
                            "(state: absent) and create it again" % (field, cur[field], want))
    for field in SCALAR_FIELDS:
        want = p.get(field)
        if want is None or field in _WRITE_ONLY or field == "nodes_per_worker":
            continue
        if field == "inference_framework_image_tag" and want == "latest":
            continue  # resolved server-side at request time; not comparable
        if not _same(field, cur.get(field), want):
            body[field] = want
            changes[field] = (cur.get(field), want)
    labels = p.get("labels") or {}
    differing = {k: v for k, v in labels.items() if cur["labels"].get(k) != v}
    if differing:
        body["labels"] = labels  # merged server-side
        changes["labels"] = ({k: cur["labels"].get(k) for k in differing}, differing)
    metadata = p.get("metadata") or {}
    differing = {k: v for k, v in metadata.items() if cur["metadata"].get(k) != v}
    if differing:
        body["metadata"] = metadata  # merged server-side
        changes["metadata"] = ({k: cur["metadata"].get(k) for k in differing}, differing)
    vllm_args = p.get("vllm_args") or {}
    differing = {k: v for k, v in vllm_args.items() if cur["vllm_args"].get(k) != v}
    bundle_rebuild = any(f in body for f in _BUNDLE_FIELDS)
    if differing:
        body.update(vllm_args)
        changes["vllm_args"] = ({k: cur["vllm_args"].get(k) for k in differing}, differing)
        bundle_rebuild = True
    if differing or (p.get("force_bundle_recreation") and changes):
        # The API ignores pass-through args unless a new bundle is forced (facts §2.3).
        body["force_bundle_recreation"] = True
    return Plan(body, changes, bundle_rebuild)


def desired_view(p, before):
    """``after`` for diff mode: the comparable state once the plan is applied."""
    after = dict(before)
    for field in (*SCALAR_FIELDS, "inference_framework", "endpoint_type"):
        if p.get(field) is not None and field not in _WRITE_ONLY:
            after[field] = p[field]
    after["labels"] = dict(before.get("labels") or {}, **(p.get("labels") or {}))
    after["metadata"] = dict(before.get("metadata") or {}, **(p.get("metadata") or {}))
    after["vllm_args"] = dict(before.get("vllm_args") or {}, **(p.get("vllm_args") or {}))
    after["name"] = p["name"]
    return after
