"""The per-endpoint PVC model cache, as upstream model-engine builds it (facts §4.1, §6, §7).

* Control plane: ``modelCache.enabled`` in the chart puts ``MODEL_CACHE_ENABLED``, ``MODEL_CACHE_MOUNT_PATH`` and
  ``MODEL_CACHE_LOCK_STALE_SECONDS`` on the gateway and the builder, and the service template ConfigMap
  (``model-engine-service-template-config``) gets ``persistent-volume-claim.yaml`` with the claim's size, class and
  access mode. ``settings_from_deployment`` reads the env the way the processes do.
* Gateway: a vLLM bundle created while the cache is on records ``_llm.model_cache_enabled: true`` and downloads into
  ``<mountPath>/model_files`` inside the lock/marker protocol of ``wrap_download`` (cache mode is sticky per bundle).
* Builder: for such an endpoint it writes the claim ``<resource name>-model-cache`` (``pvc_manifest``) and mounts it as
  volume ``model-cache`` at the mount path; it deletes it with the endpoint.

The protocol (``wrap_download``): the cache is ready when ``.complete`` holds the bundle's fingerprint and
``config.json`` plus a top-level ``*.safetensors``/``*.bin`` exist; otherwise ``mkdir .download.lock`` takes the lock
(the others print "Another replica is downloading model files; waiting..." and sleep 10 s), a background loop rewrites
``.download.lock/heartbeat`` every 30 s (tmp file + ``mv``), a lock whose heartbeat is older than the stale seconds is
broken, the folder is emptied, the download runs, the marker is written and the lock removed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass

import yaml

VOLUME = "model-cache"
TEMPLATE_CONFIG_MAP = "model-engine-service-template-config"
PVC_TEMPLATE_KEY = "persistent-volume-claim.yaml"
DEFAULT_MOUNT_PATH = "/mnt/model-cache"
DEFAULT_LOCK_STALE_SECONDS = 600
HEARTBEAT_SECONDS = 30
WAIT_SECONDS = 10
WAITING_LINE = "Another replica is downloading model files; waiting..."
STALE_LINE = "Removing stale model cache lock"
ENV_ENABLED, ENV_MOUNT_PATH, ENV_LOCK_STALE = "MODEL_CACHE_ENABLED", "MODEL_CACHE_MOUNT_PATH", "MODEL_CACHE_LOCK_STALE_SECONDS"
ASYNC_BUG_WARNING = ("/workspace/model-engine/model_engine_server/infra/gateways/resources/k8s_endpoint_resource_delegate.py:"
                     "1873: RuntimeWarning: coroutine '_get_recommended_hardware_config_map' was never awaited")


@dataclass(frozen=True)
class CacheSettings:
    enabled: bool = False
    mount_path: str = DEFAULT_MOUNT_PATH
    lock_stale_seconds: int = DEFAULT_LOCK_STALE_SECONDS

    @property
    def model_dir(self) -> str:
        return self.mount_path.rstrip("/") + "/model_files"


def settings_from_env(env: dict) -> CacheSettings:
    enabled = str(env.get(ENV_ENABLED, "false")).strip().lower() in ("1", "true", "yes")
    stale = int(env.get(ENV_LOCK_STALE) or DEFAULT_LOCK_STALE_SECONDS)
    if stale <= 0:
        raise ValueError(f"{ENV_LOCK_STALE} must be positive, not {stale}")
    return CacheSettings(enabled, env.get(ENV_MOUNT_PATH) or DEFAULT_MOUNT_PATH, stale)


def settings_from_deployment(deployment: dict | None) -> CacheSettings:
    """The cache settings a control-plane process (gateway, builder) has: the env of its Deployment's first container."""
    if not deployment:
        return CacheSettings()
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [{}]
    return settings_from_env({e["name"]: e.get("value") for e in containers[0].get("env") or [] if "name" in e})


def fingerprint(*, model_name: str, framework_image_tag: str, checkpoint_path: str, num_shards: int, quantize,
                chat_template_override, trust_remote_code: bool, download_subcommands: list) -> str:
    """sha256 of what makes the downloaded files what they are (a change re-downloads into the same claim)."""
    blob = json.dumps({"model_name": model_name, "framework_image_tag": framework_image_tag, "checkpoint_path": checkpoint_path,
                       "num_shards": num_shards, "quantize": quantize, "chat_template_override": chat_template_override,
                       "trust_remote_code": bool(trust_remote_code), "download_subcommands": list(download_subcommands)},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def wrap_download(download: list[str], model_dir: str, fp: str, stale_seconds: int) -> list[str]:
    """The download subcommands inside the lock/marker protocol (subcommands joined by ';' like the rest)."""
    d, lock = shlex.quote(model_dir), shlex.quote(f"{model_dir}/.download.lock")
    marker, hb = shlex.quote(f"{model_dir}/.complete"), shlex.quote(f"{model_dir}/.download.lock/heartbeat")
    functions = (
        f'model_cache_ready() {{ [ -f {marker} ] && [ "$(cat {marker})" = "$expected_model_cache_fingerprint" ] && '
        f"[ -f {d}/config.json ] && {{ ls {d}/*.safetensors >/dev/null 2>&1 || ls {d}/*.bin >/dev/null 2>&1; }}; }}; "
        f"model_cache_lock_stale() {{ last_heartbeat=$(cat {hb} 2>/dev/null || stat -c %Y {lock} 2>/dev/null || echo 0); "
        f"now=$(date +%s); [ $((now - last_heartbeat)) -gt {int(stale_seconds)} ]; }}; "
        f'cleanup_model_cache_lock() {{ if [ -n "${{model_cache_heartbeat_pid:-}}" ]; then kill "$model_cache_heartbeat_pid" '
        f"2>/dev/null || true; fi; rm -rf {lock}; }}; "
        f'write_model_cache_heartbeat() {{ heartbeat_tmp_file={lock}/heartbeat.$$; date +%s > "$heartbeat_tmp_file"; '
        f'mv "$heartbeat_tmp_file" {hb}; }}')
    body = [f"while ! model_cache_ready; do if mkdir {lock} 2>/dev/null",
            "then trap cleanup_model_cache_lock EXIT", "write_model_cache_heartbeat",
            f"(while true; do write_model_cache_heartbeat; sleep {HEARTBEAT_SECONDS}; done) & model_cache_heartbeat_pid=$!",
            f"find {d} -mindepth 1 -maxdepth 1 ! -name .download.lock -exec rm -rf {{}} +",
            *download,
            f'echo "$expected_model_cache_fingerprint" > {marker}', "cleanup_model_cache_lock", "trap - EXIT",
            f"elif model_cache_lock_stale; then echo '{STALE_LINE}'", f"rm -rf {lock}",
            f"else echo '{WAITING_LINE}'", f"sleep {WAIT_SECONDS}", "fi", "done"]
    return [f"expected_model_cache_fingerprint={fp}", functions, f"mkdir -p {d}", ";".join(body)]


_FP_RE = re.compile(r"expected_model_cache_fingerprint=([0-9a-f]+)")
_MARKER_RE = re.compile(r"model_cache_ready\(\) \{ \[ -f (\S+)/\.complete \]")
_STALE_RE = re.compile(r"-gt (\d+) \]")


def parse(script: str) -> dict | None:
    """{fingerprint, model_dir, lock_stale_seconds} of a main command that runs the protocol, else None."""
    fp, marker = _FP_RE.search(script), _MARKER_RE.search(script)
    if not (fp and marker):
        return None
    stale = _STALE_RE.search(script)
    return {"fingerprint": fp.group(1), "model_dir": shlex.split(marker.group(1))[0],
            "lock_stale_seconds": int(stale.group(1)) if stale else DEFAULT_LOCK_STALE_SECONDS}


def pvc_manifest(template: str, name: str, namespace: str, labels: dict) -> dict:
    """``persistent-volume-claim.yaml`` of the service template with the endpoint's values substituted."""
    text = template.replace("${RESOURCE_NAME}", name).replace("${NAMESPACE}", namespace)
    body = yaml.safe_load(text)
    meta = body.setdefault("metadata", {})
    meta.setdefault("name", f"{name}-model-cache")
    meta["namespace"] = namespace
    meta["labels"] = {**dict(labels), **(meta.get("labels") or {})}
    return body


def render_template(values: dict) -> str:
    """What the chart renders for ``modelCache`` (the stand-in's ``templates/configmaps.yaml`` writes the same)."""
    lines = ["apiVersion: v1", "kind: PersistentVolumeClaim", "metadata:", "  name: ${RESOURCE_NAME}-model-cache",
             "  namespace: ${NAMESPACE}", "spec:", "  accessModes:", f"    - {values.get('accessMode') or 'ReadWriteMany'}"]
    if values.get("storageClassName"):
        lines.append(f"  storageClassName: {values['storageClassName']}")
    lines += ["  resources:", "    requests:", f"      storage: {values.get('storage') or '100Gi'}"]
    return "\n".join(lines)
