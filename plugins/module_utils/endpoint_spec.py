# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired state of an LLM endpoint: validation before any HTTP call, request bodies, and the
comparison with what the gateway reports (model-engine-facts §2 and §9)."""

from __future__ import annotations

import difflib
import re
from decimal import Decimal

from ansible_collections.odp.model_engine.plugins.module_utils.errors import OdpError, SpecError
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


def did_you_mean(key, known):
    """`` (did you mean max_workers?)`` for the closest of ``known`` (difflib), or an empty string."""
    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
    return " (did you mean %s?)" % close[0] if close else ""


# ---------------------------------------------------------------------------- the rules
# Each rule takes the desired state ``p`` (module params, or a definition converted like them) and returns
# the problems it finds, each "<field>: <rule>". INPUT_RULES need nothing but the input: they run before the
# first request. CREATE_RULES need to know that the endpoint does not exist yet (one GET), and still run
# before any write. Every rule is one the gateway would enforce with a 400/422/500, or one that makes the
# build fail later (UPDATE_FAILED), or one where the gateway would silently ignore what the user asked for.

def _name(p):
    name = p.get("name")
    if name is None:
        return ["name: is required"]
    problem = _label_value_problem(name) or (None if name else "must not be empty")
    return ["name: %s" % problem] if problem else []


def _framework(p):
    return p.get("inference_framework") or "vllm"


def _endpoint_type(p):
    endpoint_type, framework = p.get("endpoint_type"), _framework(p)
    if endpoint_type and framework in STREAMING_ONLY and endpoint_type != "streaming":
        return ["endpoint_type: must be 'streaming' for inference_framework %s (the gateway rejects %r with 400)" % (framework, endpoint_type)]
    return []


MIN_BYTES = 2 ** 20          # 1Mi: below it no LLM container starts
MIN_CPUS = Decimal("0.001")  # 1m, the smallest CPU quantity Kubernetes accepts
MAX_CPUS = 256               # per worker; more than any node of the ceilings below offers
EXAMPLE = {"cpus": "4 or 500m", "memory": "16Gi", "storage": "50Gi"}
_UNIT_RE = re.compile(r"(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])$")


def quantity_problem(field, value):
    """Why ``value`` is no plausible ``cpus``/``memory``/``storage`` of an LLM endpoint, or None.

    The message names the field, the value read and the form to use."""
    try:
        amount = parse_quantity(value, field)
    except QuantityError as e:
        return "%s; write it like %s" % (e, EXAMPLE[field])
    if amount <= 0:
        return "%s: must be greater than zero (read %r); write it like %s" % (field, value, EXAMPLE[field])
    return _cpus_problem(value, amount) if field == "cpus" else _bytes_problem(field, value, amount)


def _cpus_problem(value, amount):
    if amount < MIN_CPUS:
        return "cpus: %r is below 1m, the smallest CPU quantity Kubernetes accepts; write it like 4 or 500m" % (value,)
    if amount > MAX_CPUS:
        return ("cpus: %r reads as %s cores, more than any node offers to one worker (at most %d); for millicores write "
                "the m, e.g. 4000m" % (value, _plain(amount), MAX_CPUS))
    return None


def _bytes_problem(field, value, amount):
    if isinstance(value, (int, float)) or not _UNIT_RE.search(str(value).strip()):
        return ("%s: %r is a bare number, which Kubernetes reads as %s bytes; write the unit, e.g. %s"
                % (field, value, _plain(amount), EXAMPLE[field]))
    if amount < MIN_BYTES:
        return ("%s: %r is %s bytes, below 1Mi: far too little for an LLM endpoint; write it like %s"
                % (field, value, _plain(amount), EXAMPLE[field]))
    return None


def _plain(amount):
    text = format(amount.normalize(), "f") if isinstance(amount, Decimal) else str(amount)
    return text[:-2] if text.endswith(".0") else text


def _quantities(p):
    return [problem for problem in (quantity_problem(f, p[f]) for f in ("cpus", "memory", "storage") if p.get(f) is not None) if problem]


def _gpus(p):
    gpus = p.get("gpus")
    if gpus is not None and gpus < 1:
        return ["gpus: must be at least 1 for an LLM endpoint (0 makes the gateway fail with an internal error)"]
    return []


def _gpu_type(p):
    gpu_type = p.get("gpu_type")
    if gpu_type is None:
        return []
    if gpu_type not in GPU_TYPES:
        return ["gpu_type: must be one of %s (got %r)%s" % (", ".join(GPU_TYPES), gpu_type, did_you_mean(gpu_type, GPU_TYPES))]
    if gpu_type == "nvidia-ampere-a100e":
        return ["gpu_type: nvidia-ampere-a100e is rejected by the gateway for LLM endpoints; use nvidia-ampere-a100"]
    return []


def _nodes_per_worker(p):
    npw = p.get("nodes_per_worker")
    if npw is not None and npw < 1:
        return ["nodes_per_worker: must be at least 1"]
    if npw is not None and npw > 1 and _framework(p) != "vllm":
        return ["nodes_per_worker: more than 1 (multi-node) is only supported for inference_framework vllm"]
    return []


def _num_shards(p):
    gpus, num_shards = p.get("gpus"), p.get("num_shards")
    if gpus is not None:
        shards = 1 if num_shards is None else num_shards
        if shards != gpus:
            return ["num_shards: must equal gpus (num_shards %s, gpus %s); set num_shards: %s" % (shards, gpus, gpus)]
    elif num_shards is not None and num_shards < 1:
        return ["num_shards: must be at least 1"]
    return []


def _quantize(p):
    if p.get("quantize") is None:
        return []
    framework = _framework(p)
    allowed = {"vllm": ("awq",), "text_generation_inference": ("bitsandbytes",)}.get(framework, ())
    if p["quantize"] not in allowed:
        return ["quantize: %r is not supported for %s (allowed: %s)" % (p["quantize"], framework, ", ".join(allowed) or "none")]
    return []


def _checkpoint_path(p):
    ckpt = p.get("checkpoint_path")
    if ckpt is None:
        return []
    if not re.match(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/.*)?$", ckpt):
        return ["checkpoint_path: must be an s3:// URL with a bucket, e.g. s3://scale-gp-models/intermediate-model-aws/ (got %r)" % ckpt]
    if ckpt.rstrip("/").endswith(".tar"):
        return ["checkpoint_path: must be a prefix holding the model files, not a .tar archive"]
    return []


def _workers(p):
    out = ["%s: must not be negative" % f for f in ("min_workers", "max_workers", "per_worker") if p.get(f) is not None and p[f] < 0]
    min_w, max_w = p.get("min_workers"), p.get("max_workers")
    if min_w is not None and min_w < 1 and not p.get("allow_zero_min_workers"):
        out.append("min_workers: must be at least 1 for a streaming endpoint unless the platform has a Prometheus "
                   "server for scale-from-zero (then set allow_zero_min_workers: true)")
    if max_w is not None and max_w > MAX_ENDPOINT_SIZE:
        out.append("max_workers: must be at most %d" % MAX_ENDPOINT_SIZE)
    if min_w is not None and max_w is not None and min_w > max_w:
        out.append("min_workers: must not be greater than max_workers (%s > %s)" % (min_w, max_w))
    if p.get("per_worker") is not None and p["per_worker"] < 1:
        out.append("per_worker: must be at least 1")
    return out


def _labels(p):
    labels = p.get("labels")
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return ["labels: must be a dictionary"]
    out = ["labels.%s: is reserved: model-engine sets it itself" % key for key in RESERVED_LABELS if key in labels]
    for key, value in sorted(labels.items()):
        problem = _label_value_problem(value)
        if problem:
            out.append("labels.%s: %s" % (key, problem))
    if labels.get("team") == "_INVALID_TEAM":
        out.append("labels.team: _INVALID_TEAM is rejected by the gateway")
    return out


def _metadata(p):
    metadata = p.get("metadata")
    if not isinstance(metadata, dict):
        return []
    return ["metadata.%s: is reserved by model-engine" % key for key in RESERVED_METADATA if key in metadata]


def _hooks(p):
    return ["post_inference_hooks: %r is not one of %s" % (hook, ", ".join(HOOKS)) for hook in p.get("post_inference_hooks") or [] if hook not in HOOKS]


def _chat_template(p):
    tmpl = p.get("chat_template_override")
    if tmpl is None:
        return []
    if _framework(p) != "vllm":
        return ["chat_template_override: is only supported for inference_framework vllm"]
    if len(tmpl) > MAX_CHAT_TEMPLATE:
        return ["chat_template_override: must be at most %d characters (it is %d)" % (MAX_CHAT_TEMPLATE, len(tmpl))]
    return []


def _vllm_arg_problem(key, value):
    if key not in VLLM_ARGS:
        return ("vllm_args.%s: is not a vLLM argument model-engine accepts (the gateway would silently ignore it)%s; known: %s"
                % (key, did_you_mean(key, VLLM_ARGS), ", ".join(sorted(VLLM_ARGS))))
    expected = VLLM_ARGS[key]
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok and value is not None:
        return "vllm_args.%s: must be of type %s" % (key, expected.__name__)
    return None


def _vllm_args(p):
    vllm_args = p.get("vllm_args") or {}
    out = []
    if vllm_args and _framework(p) not in ("vllm", "sglang"):
        out.append("vllm_args: engine pass-through arguments are only accepted for vllm and sglang")
    out.extend(problem for problem in (_vllm_arg_problem(k, vllm_args[k]) for k in sorted(vllm_args)) if problem)
    return out


def _resource_ceilings(p):
    """common/resource_limits.py, once cpus, memory and storage are each plausible (else their rule speaks)."""
    fields = ("cpus", "memory", "storage")
    if any(p.get(f) is None or quantity_problem(f, p[f]) for f in fields):
        return []
    gpu_type = p.get("gpu_type") if p.get("gpus") else None
    if gpu_type is not None and gpu_type not in RESOURCE_CEILINGS:
        return []  # the gpu_type rule speaks
    ceiling = RESOURCE_CEILINGS[gpu_type]
    out = []
    for field, extra, cap in zip(fields, FORWARDER_OVERHEAD, ceiling):
        if parse_quantity(p[field]) + extra > cap:
            out.append("%s: %s plus the http-forwarder's share exceeds what model-engine allows for %s" % (field, p[field], gpu_type or "CPU-only"))
    return out


def _required(p):
    return ["%s: is required to create an endpoint" % f
            for f in ("model_name", "checkpoint_path", "labels", "min_workers", "max_workers", "per_worker") if p.get(f) in (None, "")]


def _hardware_all_or_none(p):
    given = [f for f in HARDWARE_FIELDS if p.get(f) is not None]
    if given and len(given) != len(HARDWARE_FIELDS):
        missing = [f for f in HARDWARE_FIELDS if f not in given]
        return ["cpus, gpus, memory, storage, gpu_type, nodes_per_worker: set all six or none (none lets the server infer them); "
                "missing: %s" % ", ".join(missing)]
    return []


def _required_labels(p):
    labels = p.get("labels")
    if not isinstance(labels, dict):
        return []
    return ["labels.%s: is required (the gateway rejects endpoints without team and product labels)" % key
            for key in ("team", "product") if key not in labels]


INPUT_RULES = (_name, _endpoint_type, _quantities, _gpus, _gpu_type, _nodes_per_worker, _num_shards, _quantize,
               _checkpoint_path, _workers, _labels, _metadata, _hooks, _chat_template, _vllm_args, _resource_ceilings)
CREATE_RULES = (_required, _hardware_all_or_none, _required_labels)


def problems(p, rules):
    """Every problem the ``rules`` find in ``p``, in rule order."""
    return [problem for rule in rules for problem in rule(p)]


def _raise(found):
    if found:
        raise SpecError("; ".join(found), problems=found)


def validate_input(p):
    """Raise SpecError for the rules that need nothing but the input (run before any request)."""
    _raise(problems(p, INPUT_RULES))


def validate_create(p):
    """Raise SpecError for the rules of a create (the endpoint does not exist), input rules included."""
    _raise(problems(p, INPUT_RULES + CREATE_RULES))


def validate(p, creating):
    """Raise SpecError listing every rule ``p`` breaks; ``creating`` adds the rules of a POST (required fields)."""
    _raise(problems(p, INPUT_RULES + (CREATE_RULES if creating else ())))


# ---------------------------------------------------------------------------- ownership
class OwnershipError(OdpError):
    """The endpoint of that name belongs to another model-engine user."""


def owners_of(record):
    """Who the record names as its owner: ``spec.created_by`` (the user id), then ``owner`` (the team id,
    top level, in ``spec`` or, once the cacher wrote them, in ``spec.labels``), without duplicates."""
    spec = (record or {}).get("spec") or {}
    labels = spec.get("labels") or {}
    found = []
    for value in (spec.get("created_by"), record.get("owner"), spec.get("owner"), labels.get("owner")):
        if value and value not in found:
            found.append(value)
    return found


def check_owner(record, user_id, state):
    """Raise OwnershipError when ``record`` belongs to someone other than ``user_id``.

    model-engine's GET by name is global: it returns another user's public endpoint of the same name, which
    this user can neither update (404) nor delete (403). A record that names no owner is taken as ours."""
    owners = owners_of(record)
    if not owners or user_id in owners:
        return
    name = record.get("name")
    doing = "deleted" if state == "absent" else "created or updated"
    raise OwnershipError(
        "Endpoint %s belongs to %s, not to %s: model-engine finds it by name for every user (it is public), but it "
        "cannot be %s by %s. Run as its owner (-e model_engine_user=%s), or choose another name for your endpoint."
        % (name, owners[0], user_id, doing, user_id, owners[0]),
        owner=owners[0], endpoint_id=record.get("id"))


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


def _check_immutable(p, cur):
    for field in IMMUTABLE:
        want = p.get(field)
        if field == "endpoint_type" and want is None:
            continue
        if want is not None and cur.get(field) is not None and not _same(field, cur[field], want):
            raise SpecError("%s: cannot change on an existing endpoint (it is %r, wanted %r); delete the endpoint "
                            "(state: absent) and create it again" % (field, cur[field], want))


def _scalar_changes(p, cur, body, changes):
    for field in SCALAR_FIELDS:
        want = p.get(field)
        if want is None or field in _WRITE_ONLY or field == "nodes_per_worker":
            continue
        if field == "inference_framework_image_tag" and want == "latest":
            continue  # resolved server-side at request time; not comparable
        if not _same(field, cur.get(field), want):
            body[field] = want
            changes[field] = (cur.get(field), want)


def _merged_changes(p, cur, field):
    """(differing keys of the dict option ``field``, the before view) — labels, metadata and vllm_args are merged server-side."""
    wanted = p.get(field) or {}
    differing = {k: v for k, v in wanted.items() if cur[field].get(k) != v}
    return differing, {k: cur[field].get(k) for k in differing}


def plan_update(p, record):
    """Compare desired params with the record; raise SpecError for an immutable field that differs."""
    cur = current_state(record)
    _check_immutable(p, cur)
    body, changes = {}, {}
    _scalar_changes(p, cur, body, changes)
    for field in ("labels", "metadata"):
        differing, before = _merged_changes(p, cur, field)
        if differing:
            body[field] = p[field]  # merged server-side
            changes[field] = (before, differing)
    differing, before = _merged_changes(p, cur, "vllm_args")
    bundle_rebuild = any(f in body for f in _BUNDLE_FIELDS)
    if differing:
        body.update(p["vllm_args"])
        changes["vllm_args"] = (before, differing)
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
