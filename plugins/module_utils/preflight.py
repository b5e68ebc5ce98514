# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks to run before creating an LLM endpoint; each failure says what to change.

Pure functions over what was read (the checkpoint listing, node capacity), so that they are tested
without a cluster; endpoint_preflight does the reading.
"""

from __future__ import annotations

from ansible_collections.odp.model_engine.plugins.module_utils.errors import OdpError
from ansible_collections.odp.model_engine.plugins.module_utils.quantity import format_bytes, quantity_to_bytes
from ansible_collections.odp.model_engine.plugins.module_utils.s3 import is_model_file


def check_checkpoint(listing, checkpoint_path, config=None, index=None):
    """listing: {relative key: {"size", "etag"}}; config/index: parsed config.json / index JSON."""
    problems, facts = [], {}
    model_files = {k: v for k, v in listing.items() if is_model_file(k)}
    shards = sorted(k for k in listing if k.endswith(".safetensors"))
    facts.update(files=len(listing), model_files=len(model_files), safetensors=len(shards),
                 bytes=sum(v["size"] for v in model_files.values()))
    if not listing:
        problems.append("checkpoint_path %s holds no objects: check the prefix (a trailing path component "
                        "missing?) and that the credentials may list the bucket" % checkpoint_path)
        return problems, facts
    if "config.json" not in listing:
        problems.append("checkpoint_path %s has no config.json at its top level: vLLM cannot start without it "
                        "(point checkpoint_path at the folder that holds config.json)" % checkpoint_path)
    if not shards:
        problems.append("checkpoint_path %s has no *.safetensors files: model-engine rejects it "
                        "(convert the weights to safetensors)" % checkpoint_path)
    if isinstance(config, dict):
        facts["architectures"] = config.get("architectures") or []
    if isinstance(index, dict):
        named = sorted(set((index.get("weight_map") or {}).values()))
        missing = [s for s in named if s not in listing]
        facts["index_shards"] = len(named)
        if missing:
            problems.append("model.safetensors.index.json names %d shard(s) missing from %s: %s (re-upload them)"
                            % (len(missing), checkpoint_path, ", ".join(missing[:5])))
    return problems, facts


def check_image_tag(tag, allowed):
    if not allowed or tag is None:
        return []
    if tag not in allowed:
        return ["inference_framework_image_tag %r is not allowed here; use one of: %s (version-specific vLLM tags "
                "lack the on-prem architecture fixes)" % (tag, ", ".join(allowed))]
    return []


def check_registry_image(module, problems):
    """The vLLM image ``registry_image:inference_framework_image_tag`` exists in its registry; facts of the answer.

    A missing image is a problem; a registry that cannot answer raises (unknown is not missing). ``latest`` is
    resolved by the gateway at request time, so it is not asked about."""
    from ansible_collections.odp.model_engine.plugins.module_utils import registry

    p = module.params
    tag = p.get("inference_framework_image_tag")
    if not p.get("registry_image") or not tag:
        return None
    if tag == "latest":
        return {"image": "%s:latest" % p["registry_image"], "skipped": "latest is resolved by the gateway from its ConfigMap"}
    if p.get("registry_pull_secret"):
        module.require("kubernetes")
    params = dict(p, images=["%s:%s" % (p["registry_image"], tag)], registry_url=p.get("registry_url"), username=p.get("registry_username"),
                  password=p.get("registry_password"), pull_secret=p.get("registry_pull_secret"), namespace=p["registry_namespace"],
                  validate_certs=p["registry_validate_certs"], ca_path=p.get("registry_ca_path"), timeout=p["registry_timeout"])
    answer = registry.image_info(params, module.no_log_values)["images"][0]
    if not answer["exists"]:
        problems.append("inference_framework_image_tag %r: %s is not in the registry (%s at %s); push it or use a tag the registry "
                        "has" % (tag, answer["image"], answer["message"], answer["registry"]))
    return {k: answer.get(k) for k in ("image", "exists", "digest", "message", "registry")}


def _storage_problems(want, nodes, storage_bytes, problems, facts):
    storage, gpu_type = want.get("storage"), want.get("gpu_type")
    limit = (want.get("policy") or {}).get(gpu_type) if gpu_type else None
    if storage_bytes is not None and limit is not None and storage_bytes > quantity_to_bytes(limit, "storage_policy"):
        problems.append("storage %s exceeds the %s policy for %s (larger requests get the pod evicted for "
                        "ephemeral storage); set storage: %s" % (storage, limit, gpu_type, limit))
    if nodes and storage_bytes is not None:
        largest = max(n["ephemeral_allocatable"] for n in nodes)
        facts["largest_ephemeral_allocatable"] = largest
        if storage_bytes > largest:
            problems.append("storage %s is more than any %s node can hold (largest allocatable ephemeral storage %s); "
                            "lower storage to at most %s" % (storage, gpu_type, format_bytes(largest), format_bytes(largest)))
    checkpoint_bytes = want.get("checkpoint_bytes")
    if storage_bytes is not None and checkpoint_bytes:
        needed = int(checkpoint_bytes * want.get("headroom", 1.05))
        facts["checkpoint_bytes"] = checkpoint_bytes
        if storage_bytes < needed:
            problems.append("storage %s cannot hold the checkpoint (%s of model files, %s with headroom); "
                            "raise storage" % (storage, format_bytes(checkpoint_bytes), format_bytes(needed)))


def _gpu_problems(want, nodes, storage_bytes, problems, facts):
    gpus = want.get("gpus")
    if not (nodes and gpus and want.get("require_free_gpu", True)):
        return
    best = max(nodes, key=lambda n: n["gpu_free"])
    facts["max_free_gpus"] = best["gpu_free"]
    fit = [n for n in nodes if n["gpu_free"] >= gpus and (storage_bytes is None or n["ephemeral_free"] >= storage_bytes)]
    facts["nodes_that_fit"] = sorted(n["name"] for n in fit)
    if not fit:
        detail = ", ".join("%s: %d of %d GPU free, %s ephemeral free" % (
            n["name"], n["gpu_free"], n["gpu_allocatable"], format_bytes(n["ephemeral_free"])) for n in nodes)
        problems.append("no %s node has %d free nvidia.com/gpu and %s of free ephemeral storage now (%s); "
                        "free a GPU (delete an idle endpoint) or wait" % (want.get("gpu_type"), gpus, want.get("storage") or "the requested", detail))


def check_storage_and_capacity(want, capacity):
    """Problems and facts of an endpoint shape against the cluster. ``want``: ``storage``, ``gpu_type``, ``gpus``,
    ``policy`` ({gpu type: largest storage}), ``checkpoint_bytes``, ``headroom`` (1.05), ``require_free_gpu`` (true).

    storage against the policy table, the GPU nodes' ephemeral storage and the checkpoint size; a schedulable
    node of that GPU type with enough free GPUs."""
    problems, facts = [], {}
    gpu_type = want.get("gpu_type")
    nodes = [n for n in capacity.values() if n["gpu_type"] == gpu_type and n["schedulable"]] if gpu_type else []
    facts["matching_nodes"] = sorted(n["name"] for n in nodes)
    storage_bytes = quantity_to_bytes(want["storage"], "storage") if want.get("storage") is not None else None
    if gpu_type and not nodes:
        _storage_problems(dict(want, checkpoint_bytes=None), [], storage_bytes, problems, facts)
        known = sorted({n["gpu_type"] for n in capacity.values() if n["gpu_type"]})
        problems.append("no schedulable node is labelled k8s.amazonaws.com/accelerator=%s (GPU types present: %s); "
                        "choose one of those gpu_type values or label the GPU node" % (gpu_type, ", ".join(known) or "none"))
        return problems, facts
    _storage_problems(want, nodes, storage_bytes, problems, facts)
    _gpu_problems(want, nodes, storage_bytes, problems, facts)
    return problems, facts


def _read_checkpoint(module, problems):
    """(facts, checkpoint bytes) of the checkpoint; an unreadable one is a problem, not an error."""
    from ansible_collections.odp.model_engine.plugins.module_utils import s3

    p = module.params
    module.require("boto3")
    bucket, prefix = s3.parse_s3_url(p["checkpoint_path"])
    try:
        client = s3.client_from_params(p)
        listing = s3.list_prefix(client, bucket, prefix)
        config = s3.get_json(client, bucket, prefix + "config.json") if "config.json" in listing else None
        index_key = "model.safetensors.index.json"
        index = s3.get_json(client, bucket, prefix + index_key) if index_key in listing else None
    except s3.S3Error as e:
        problems.append("%s (checkpoint_path %s)" % (e, p["checkpoint_path"]))
        return None, None
    found, facts = check_checkpoint(listing, p["checkpoint_path"], config, index)
    problems.extend(found)
    return facts, facts.get("bytes")


def run(module):
    """endpoint_preflight: read S3 and the cluster, then evaluate every requested check."""
    from ansible_collections.odp.model_engine.plugins.module_utils import s3
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    p = module.params
    checks = set(p["checks"])
    problems, result = [], {"changed": False}
    if p.get("storage") is not None:
        quantity_to_bytes(p["storage"], "storage")
    for gpu_type, limit in (p["storage_policy"] or {}).items():
        quantity_to_bytes(limit, "storage_policy.%s" % gpu_type)
    s3.parse_s3_url(p["checkpoint_path"])

    checkpoint_bytes = None
    if "checkpoint" in checks:
        result["checkpoint"], checkpoint_bytes = _read_checkpoint(module, problems)
        if result["checkpoint"] is None:
            result.pop("checkpoint")
    if "image_tag" in checks:
        problems.extend(check_image_tag(p.get("inference_framework_image_tag"), p["allowed_image_tags"]))
    if "registry" in checks and p.get("registry_image"):
        result["registry"] = check_registry_image(module, problems)
    if checks & {"storage", "capacity"}:
        module.require("kubernetes")
        capacity = Kube(p).capacity()
        found, facts = check_storage_and_capacity({
            "storage": p.get("storage") if "storage" in checks else None, "gpu_type": p.get("gpu_type"), "gpus": p["gpus"],
            "policy": p["storage_policy"] if "storage" in checks else {}, "checkpoint_bytes": checkpoint_bytes,
            "headroom": p["storage_headroom"], "require_free_gpu": "capacity" in checks and p["require_free_gpu"]}, capacity)
        problems.extend(found)
        result["capacity"] = facts
    result.update(ok=not problems, problems=problems)
    if problems and p["fail_on_problems"]:
        raise PreflightError("Preflight found %d problem(s): %s" % (len(problems), " | ".join(problems)), **result)
    return result


class PreflightError(OdpError):
    """A check found problems; the result lists each with what to change."""


def run_capacity(module):
    """cluster_capacity_info: node capacity, and which endpoint shapes fit."""
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    p = module.params
    for ep in p["endpoints"]:
        if ep.get("storage") is not None:
            quantity_to_bytes(ep["storage"], "endpoints[%s].storage" % ep.get("name", "?"))
    capacity = Kube(p).capacity()
    fits, warnings = [], []
    for ep in p["endpoints"]:
        name = ep.get("name") or "?"
        problems, facts = check_storage_and_capacity({"storage": ep.get("storage"), "gpu_type": ep.get("gpu_type"),
                                                      "gpus": int(ep.get("gpus", 1))}, capacity)
        fits.append({"name": name, "fits": not problems, "nodes": facts.get("nodes_that_fit", []), "problems": problems})
        warnings += ["%s: %s" % (name, x) for x in problems if "more than any" in x]
    nodes = [{k: v for k, v in node.items() if k != "labels"} for _name, node in sorted(capacity.items())]
    return dict(changed=False, nodes=nodes, fits=fits, warnings_list=warnings)
