"""Fault injection, switchable per test and per endpoint name (``*`` = every endpoint).

Kinds (params in brackets):

* ``storage_exceeded`` [declared_size_multiplier=1e6]: the simulated eviction manager counts the bytes on disk
  under ``main`` times the multiplier against its ephemeral-storage limit; over it the pod is evicted.
* ``slow_tool_install`` [seconds=30]: ``pip install awscli`` takes that long (awscli form only).
* ``s3_credentials_rejected``: the S3 tool gets AccessDenied; no ``model_files``; container exits non-zero.
* ``download_stall`` [after_bytes=0]: the download stops growing after that many bytes; the process lives.
* ``corrupt_shard`` [file=None -> first shard]: bytes flipped after the safetensors header (sizes match).
* ``corrupt_header`` [file=None]: the shard's JSON header is garbled (vLLM crashes on load).
* ``download_form`` [tool="awscli", wait_guard=False]: the builder renders this endpoint's command so.
* ``builder_stalled``: the endpoint builder does not consume this endpoint's build tasks.
* ``download_rate`` [bytes_per_second]: per-endpoint download speed.
* ``model_cache_async_bug``: the on-prem PVC code path's bug (runbook "PVC Functionality Broken"): the builder logs
  ``RuntimeWarning: coroutine '_get_recommended_hardware_config_map' was never awaited``, writes no claim and gives the
  pod an EmptyDir as its ``model-cache`` volume (the endpoint still records ``model_cache_enabled``).
* ``api_error`` [route regex, status=500|503|429|"timeout", count=1, delay=...]: the model-engine API
  answers that way for matching ``"METHOD /path"`` requests, ``count`` times (global; endpoint ignored).
"""

from __future__ import annotations

import re
import threading

KINDS = {"storage_exceeded", "slow_tool_install", "s3_credentials_rejected", "download_stall", "corrupt_shard",
         "corrupt_header", "download_form", "builder_stalled", "download_rate", "api_error", "model_cache_async_bug"}


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[dict] = []
        self._next = 1

    def add(self, kind: str, endpoint: str = "*", **params) -> dict:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(KINDS)}")
        if kind == "api_error":
            re.compile(params.get("route", ".*"))
        with self._lock:
            fault = {"id": self._next, "kind": kind, "endpoint": endpoint, "params": params}
            self._next += 1
            self._faults.append(fault)
            return dict(fault)

    def clear(self, kind: str | None = None, endpoint: str | None = None) -> int:
        with self._lock:
            keep = [f for f in self._faults
                    if not ((kind is None or f["kind"] == kind) and (endpoint is None or f["endpoint"] == endpoint))]
            removed = len(self._faults) - len(keep)
            self._faults = keep
            return removed

    def list(self) -> list[dict]:
        with self._lock:
            return [dict(f) for f in self._faults]

    def get(self, kind: str, endpoint: str | None) -> dict | None:
        """Params of the most recent matching fault for this endpoint name, else None."""
        with self._lock:
            for f in reversed(self._faults):
                if f["kind"] == kind and (f["endpoint"] == "*" or f["endpoint"] == endpoint):
                    return dict(f["params"])
        return None

    def take_api_error(self, method: str, path: str) -> dict | None:
        """Consume one matching api_error fault occurrence."""
        key = f"{method} {path}"
        with self._lock:
            for f in self._faults:
                if f["kind"] != "api_error":
                    continue
                p = f["params"]
                if not re.search(p.get("route", ".*"), key):
                    continue
                count = p.get("count", 1)
                if count is not None and count <= 0:
                    continue
                if count is not None:
                    p["count"] = count - 1
                return dict(p)
        return None
