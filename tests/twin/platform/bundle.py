"""Model bundles: the vLLM container command, built like ``_create_vllm_bundle_command`` upstream.

Two download forms exist, chosen by the twin's service config like the real chart's service template:

* ``s5cmd`` (upstream default): ``./s5cmd [--endpoint-url URL] --numworkers 512 cp --concurrency 10
  <filters> s3://bucket/prefix/* model_files`` run in the foreground before vLLM.
* ``awscli`` (the on-prem runbook): ``pip install --quiet awscli --no-cache-dir`` then
  ``aws s3 sync s3://bucket/prefix model_files --no-progress`` started in the background, optionally
  followed by the runbook's wait-for-files ``while`` guard; without the guard vLLM may start on a
  half-downloaded folder (``No supported config format found``).
"""

from __future__ import annotations

import base64
import os
import re
import shlex
from dataclasses import dataclass, field

from . import model_cache
from .dtos import VLLM_ARG_FIELDS, VLLM_NON_FLAG_FIELDS

S5CMD_FILTERS = ('--include "*.model" --include "*.model.v*" --include "*.json" --include "*.safetensors" '
                 '--include "*.txt" --include "*.jinja" --exclude "optimizer*"')
WAIT_GUARD = ("while [ ! -f model_files/config.json ] || ! ls model_files/*.safetensors >/dev/null 2>&1 || "
              "ls model_files/ | grep -qE '\\.[A-Za-z0-9]{8}$'; do echo 'Waiting for model files...'; sleep 5; "
              "done")
GUARD_RE = re.compile(r"while \[ ! -f (\S*)model_files/config\.json \]")


def guard_for(folder: str = "model_files") -> str:
    """The runbook's guard on ``folder`` (``model_files``, or the model cache's ``<mountPath>/model_files``)."""
    return WAIT_GUARD.replace("model_files", folder)


class InvalidValue(Exception):
    """ObjectHasInvalidValueException -> 400 with str(exc)."""


class InvalidRequest(Exception):
    """InvalidRequestException: unmapped in the LLM routes -> 500 internal error shape."""


def param_count_b(model_name: str) -> int:
    specials = [("mixtral-8x7b", 47), ("mixtral-8x22b", 140), ("phi-3-mini", 4), ("phi-3-small", 8),
                ("phi-3-medium", 15), ("deepseek-coder-v2-lite", 16), ("deepseek-coder-v2", 237)]
    for key, val in specials:
        if key in model_name:
            return val
    numbers = re.findall(r"(\d+)b", model_name)
    if not numbers:
        raise InvalidValue(f"Unable to infer number of parameters for {model_name}.")
    return int(numbers[-1])


def inferred_engine_args(model_name: str) -> dict:
    gmu = 0.9
    try:
        if param_count_b(model_name) >= 70:
            gmu = 0.95
    except InvalidValue:
        pass
    out: dict = {"gpu_memory_utilization": gmu}
    if model_name.startswith("gemma-2"):
        out["attention_backend"] = "FLASHINFER"
    if model_name.startswith("deepseek"):
        out["trust_remote_code"] = True
    return out


def validate_checkpoint_uri(path: str) -> None:
    if (not path.startswith("s3://") and not path.startswith("azure://") and "blob.core.windows.net" not in path
            and not path.startswith("gs://")):
        raise InvalidValue(f"Only S3, Azure Blob Storage, and GCS paths are supported. Given checkpoint path: {path}.")
    if path.endswith(".tar"):
        raise InvalidValue(f"Tar files are not supported. Given checkpoint path: {path}.")


def get_checkpoint_path(model_name: str, checkpoint_path: str | None) -> str:
    if not checkpoint_path:
        raise InvalidRequest(f"No checkpoint path found for model {model_name}")
    validate_checkpoint_uri(checkpoint_path)
    return checkpoint_path


def _cli_value(v) -> str:
    import json

    if isinstance(v, (dict, list)):
        return shlex.quote(json.dumps(v, separators=(",", ":")))
    return shlex.quote(str(v))


@dataclass
class Bundle:
    id: str
    name: str
    repository: str
    tag: str
    command: list
    env: dict = field(default_factory=dict)
    created_at: str = ""
    model_cache: model_cache.CacheSettings | None = None   # the cache settings it was built with (sticky per bundle)


def download_subcommands(*, checkpoint_path: str, folder: str, download_tool: str, wait_guard: bool,
                         s3_endpoint_url: str | None, trust_remote_code: bool) -> list:
    """The download step into ``folder``: awscli in the background (+ the runbook's guard) or s5cmd."""
    out = []
    if download_tool == "awscli":
        out.append("pip install --quiet awscli --no-cache-dir")
        flag = f" --endpoint-url {s3_endpoint_url}" if s3_endpoint_url else ""
        out.append(f"aws s3 sync {checkpoint_path.rstrip('/')} {folder} --no-progress{flag} & sync_pid=$!")
        if wait_guard:
            out.append(guard_for(folder))
        return out
    flag = f"--endpoint-url {s3_endpoint_url} " if s3_endpoint_url else ""
    filters = S5CMD_FILTERS + (' --include "*.py"' if trust_remote_code else "")
    out.append(f"./s5cmd {flag}--numworkers 512 cp --concurrency 10 {filters} {os.path.join(checkpoint_path, '*')} {folder}")
    return out


def vllm_command(*, model_name: str, checkpoint_path: str, num_shards: int, quantize: str | None,
                 chat_template_override: str | None, additional_args: dict, download_tool: str,
                 wait_guard: bool, s3_endpoint_url: str | None, image_tag: str = "",
                 cache: model_cache.CacheSettings | None = None) -> list:
    """``_create_vllm_bundle_command``; with ``cache`` (enabled) the download goes into ``<mountPath>/model_files``
    inside the model cache's lock/marker protocol and vLLM loads from there."""
    subcommands = ["set -euo pipefail"]
    args = {**inferred_engine_args(model_name), **{k: v for k, v in additional_args.items() if v is not None}}
    trust_remote_code = bool(args.get("trust_remote_code"))
    folder = cache.model_dir if cache and cache.enabled else "model_files"
    download = download_subcommands(checkpoint_path=checkpoint_path, folder=folder, download_tool=download_tool,
                                    wait_guard=wait_guard, s3_endpoint_url=s3_endpoint_url, trust_remote_code=trust_remote_code)
    if cache and cache.enabled:
        fp = model_cache.fingerprint(model_name=model_name, framework_image_tag=image_tag, checkpoint_path=checkpoint_path,
                                     num_shards=num_shards, quantize=quantize, chat_template_override=chat_template_override,
                                     trust_remote_code=trust_remote_code, download_subcommands=download)
        download = model_cache.wrap_download(download, folder, fp, cache.lock_stale_seconds)
    subcommands += download
    args["tensor_parallel_size"] = num_shards
    if args.get("gpu_memory_utilization") is not None:
        args["enforce_eager"] = True
    if chat_template_override:
        args["chat_template"] = chat_template_override
    if quantize:
        args["quantization"] = quantize
    served = f"{shlex.quote(model_name)} model_files" + (f" {folder}" if folder != "model_files" else "")
    cmd = f'python -m vllm_server --model {folder} --served-model-name {served} --port 5005 --host "::"'
    for name in VLLM_ARG_FIELDS:
        value = args.get(name)
        if value is None or name in VLLM_NON_FLAG_FIELDS:
            continue
        flag_name = "--" + name.replace("_", "-")
        if name == "chat_template":
            enc = base64.b64encode(str(value).encode()).decode()
            subcommands.append(f'export CHAT_TEMPLATE=$(echo "{enc}" | base64 --decode)')
            cmd += f' {flag_name} "$CHAT_TEMPLATE"'
        elif isinstance(value, bool):
            if value:
                cmd += f" {flag_name}"
        else:
            cmd += f" {flag_name} {_cli_value(value)}"
    if args.get("attention_backend"):
        subcommands.append(f"export VLLM_ATTENTION_BACKEND={args['attention_backend']}")
    subcommands.append(cmd)
    return ["/bin/bash", "-c", ";".join(subcommands)]


@dataclass
class ParsedCommand:
    tool: str                      # "s5cmd" | "awscli" | "unknown"
    checkpoint: str | None
    bucket: str | None
    prefix: str | None
    endpoint_url: str | None
    wait_guard: bool
    background: bool
    model_name: str | None
    served_names: list
    port: int
    trust_remote_code: bool
    dest: str = "model_files"          # where the S3 tool writes
    model_dir: str = "model_files"     # what vLLM loads (--model)
    cache: dict | None = None          # the model cache protocol: fingerprint, model_dir, lock_stale_seconds


def parse_command(command: list) -> ParsedCommand:
    """What the pod simulator learns from a ``main`` container command (no access to the API)."""
    script = command[2] if len(command) >= 3 and command[:2] == ["/bin/bash", "-c"] else " ".join(command)
    tool, checkpoint, endpoint_url, background, dest = "unknown", None, None, False, "model_files"
    parts = [p.strip() for p in script.split(";")]
    for part in parts:
        bg = "& sync_pid=$!" in part
        try:
            toks = shlex.split(part.split("& sync_pid=$!")[0]) if part else []
        except ValueError:
            toks = []
        if not toks:
            continue
        if toks[0].endswith("s5cmd"):
            tool = "s5cmd"
            if "--endpoint-url" in toks:
                endpoint_url = toks[toks.index("--endpoint-url") + 1]
            checkpoint = next((t for t in toks if t.startswith("s3://")), None)
            dest = toks[-1] if checkpoint and toks[-1] != checkpoint else dest
        elif toks[:3] == ["aws", "s3", "sync"]:
            tool = "awscli"
            background = bg
            if "--endpoint-url" in toks:
                endpoint_url = toks[toks.index("--endpoint-url") + 1]
            checkpoint = toks[3]
            dest = toks[4] if len(toks) > 4 else dest
    model_name, served, port, model_dir = None, [], 5005, "model_files"
    m = re.search(r"python -m vllm_(?:server|startup_wrapper) (.*)$", script)
    if m:
        toks = shlex.split(m.group(1))
        if "--served-model-name" in toks:
            i = toks.index("--served-model-name") + 1
            while i < len(toks) and not toks[i].startswith("--"):
                served.append(toks[i])
                i += 1
            model_name = served[0] if served else None
        if "--port" in toks:
            port = int(toks[toks.index("--port") + 1])
        if "--model" in toks:
            model_dir = toks[toks.index("--model") + 1]
    bucket = prefix = None
    if checkpoint:
        rest = checkpoint[len("s3://"):]
        if rest.endswith("/*"):
            rest = rest[:-2]
        bucket, _, prefix = rest.partition("/")
        prefix = prefix.rstrip("/")
        prefix = prefix + "/" if prefix else ""
    return ParsedCommand(tool=tool, checkpoint=checkpoint, bucket=bucket, prefix=prefix, endpoint_url=endpoint_url,
                         wait_guard=GUARD_RE.search(script) is not None, background=background,
                         model_name=model_name, served_names=served, port=port,
                         trust_remote_code="--trust-remote-code" in script, dest=dest, model_dir=model_dir,
                         cache=model_cache.parse(script))
