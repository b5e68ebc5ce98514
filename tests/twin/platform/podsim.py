"""Pod simulator: a ``PodRuntime`` for model-engine endpoint pods and for the twin's control plane.

Endpoint pods (label ``managed-by: model-engine`` + ``endpoint_id``): the ``main`` container's command is
parsed (tool, checkpoint URL, guard, served names, port); the S3 tool install is simulated (awscli: delay);
the checkpoint is really downloaded through the S3 protocol (boto3, the pod's env/envFrom credentials) into
``container_root("main")/model_files/`` under the real tools' temp names, renamed on completion, at a
configurable rate; then a vLLM-shaped HTTP server starts, validates config.json (architecture) and every
safetensors header, and serves.  ``http-forwarder`` becomes ready once main's /health is 200.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import random
import shutil
import string
import time
from fnmatch import fnmatch
from pathlib import Path

from . import model_cache, safetensors
from .bundle import parse_command
from .config import ARCH_FIXED_TAGS, BASE_VLLM_ARCHITECTURES
from .service import parse_mem
from .vllm_sim import Forwarder, VLLMServer

try:  # the emulator is written by another engineer; the contract lives in tests/twin/k8s/runtime.py
    from tests.twin.k8s.runtime import PodRuntime
except ImportError:  # pragma: no cover - only while the emulator is not there yet
    class PodRuntime:  # type: ignore[no-redef]
        def handles(self, pod: dict) -> bool:
            return False

log = logging.getLogger("twin.podsim")
S5CMD_INCLUDE = ["*.model", "*.model.v*", "*.json", "*.safetensors", "*.txt", "*.jinja"]


class ContainerExit(Exception):
    def __init__(self, code: int, reason: str = "Error", message: str | None = None):
        super().__init__(f"exit {code}")
        self.code = code
        self.reason = reason
        self.message = message


class Evicted(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _disk_usage(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _ts() -> str:
    return time.strftime("%m-%d %H:%M:%S")


def vllm_log(level: str, src: str, msg: str) -> str:
    return f"{level} {_ts()} [{src}] {msg}\n"


def supported_architectures(image: str) -> list[str]:
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else "latest"
    archs = list(BASE_VLLM_ARCHITECTURES)
    if tag in ARCH_FIXED_TAGS:
        archs += ["Qwen3ForCausalLM", "Qwen3MoeForCausalLM"]
    return archs


def _gi(n: float) -> str:
    return f"{int(n // 1024 ** 2)}Mi" if n < 1024 ** 3 else f"{int(n // 1024 ** 2) // 1024}Gi"


class PodState:
    def __init__(self):
        self.vllm: VLLMServer | None = None
        self.forwarder: Forwarder | None = None

    def main_port(self):
        return self.vllm.port if (self.vllm and self.vllm.ready) else None


class EndpointPodRuntime(PodRuntime):
    def __init__(self, *, config, faults, kube, s3_accepted, registry=None):
        # endpoint name -> time.time() when its vLLM /health last turned 200 (benchmarks measure detection latency)
        self.ready_times: dict = {}
        self.config = config
        self.faults = faults
        self.kube = kube
        self.s3_accepted = s3_accepted     # callable(access_key, secret_key) -> bool
        self.registry = registry

    def handles(self, pod: dict) -> bool:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        return labels.get("managed-by") == "model-engine" and "endpoint_id" in labels

    # ---- lifecycle -----------------------------------------------------------------------------------------
    async def run(self, pod: dict, handle) -> None:
        state = PodState()
        endpoint = pod["metadata"]["labels"].get("endpoint_name")
        fwd_task = asyncio.get_running_loop().create_task(self.run_forwarder(handle, state))
        try:
            await self.run_main(pod, handle, state, endpoint)
        finally:
            fwd_task.cancel()
            try:
                await fwd_task
            except (asyncio.CancelledError, Exception):
                pass
            if state.forwarder:
                await state.forwarder.stop()
            if state.vllm:
                await state.vllm.stop()

    async def run_forwarder(self, handle, state: PodState) -> None:
        fwd = Forwarder(state.main_port)
        state.forwarder = fwd
        port = await fwd.start()
        handle.expose(5000, "127.0.0.1", port)
        await handle.set_container_state("http-forwarder", "running", ready=False)
        handle.log("http-forwarder", f"INFO:     Started server process [{os.getpid()}]\n"
                                     "INFO:     Waiting for application startup.\n"
                                     "INFO:     Uvicorn running on http://0.0.0.0:5000 (Press CTRL+C to quit)\n")
        ready = False
        while True:
            healthy = await fwd.main_healthy()
            if healthy != ready:
                ready = healthy
                await handle.set_ready("http-forwarder", ready)
                if ready:
                    handle.log("http-forwarder", "INFO - Forwarder loaded: http://localhost:5005/health is healthy\n")
            await asyncio.sleep(0.2)

    async def run_main(self, pod, handle, state: PodState, endpoint: str) -> None:
        restarts = 0
        while True:
            pod = handle.pod
            try:
                await self.run_with_storage_monitor(pod, handle, state, endpoint)
                code, reason, message = 0, "Completed", None
            except ContainerExit as exc:
                code, reason, message = exc.code, exc.reason, exc.message
            except Evicted as exc:
                await self._stop_vllm(state)
                msg = exc.message
                handle.log("main", "Killed\n")
                await handle.set_container_state("main", "terminated", reason="Error", exit_code=137, message=msg)
                await handle.set_container_state("http-forwarder", "terminated", reason="Error", exit_code=137)
                await handle.event("Evicted", msg, type="Warning")
                await handle.evict("Evicted", msg)
                return
            await self._stop_vllm(state)
            await handle.set_container_state("main", "terminated", reason=reason, exit_code=code, message=message)
            backoff = min(self.config.crash_backoff_base * (2 ** restarts), self.config.crash_backoff_max)
            await asyncio.sleep(min(0.2, backoff))
            restarts += 1
            await handle.event("BackOff", "Back-off restarting failed container main in pod "
                                          f"{handle.name}_{handle.namespace}({handle.uid})", type="Warning")
            await handle.set_container_state(
                "main", "waiting", reason="CrashLoopBackOff", restart=True,
                message=f"back-off {int(10 * 2 ** (restarts - 1))}s restarting failed container=main "
                        f"pod={handle.name}_{handle.namespace}({handle.uid})")
            # a restarted container gets a fresh writable layer: model_files (under WORKDIR) is gone
            shutil.rmtree(handle.container_root("main") / "model_files", ignore_errors=True)
            await asyncio.sleep(backoff)

    async def run_with_storage_monitor(self, pod, handle, state: PodState, endpoint: str) -> None:
        """The kubelet's eviction manager: every ``eviction_check_seconds`` it measures the container's
        ephemeral usage (bytes on disk x the ``storage_exceeded`` multiplier) against the limit."""
        loop = asyncio.get_running_loop()
        work = loop.create_task(self.run_main_once(pod, handle, state, endpoint))
        monitor = loop.create_task(self.storage_monitor(pod, handle, endpoint))
        try:
            done, _ = await asyncio.wait({work, monitor}, return_when=asyncio.FIRST_COMPLETED)
            if monitor in done and monitor.exception() is None and monitor.result():
                raise Evicted(monitor.result())
            await work
        finally:
            for t in (work, monitor):
                if not t.done():
                    t.cancel()
                    try:
                        await t
                    except (asyncio.CancelledError, Exception):
                        pass

    @staticmethod
    def ephemeral_roots(pod, handle) -> list[Path]:
        """What counts as the pod's ephemeral storage: main's writable layer and its disk emptyDirs (a claim does not)."""
        roots = [handle.container_root("main")]
        for v in (pod.get("spec") or {}).get("volumes") or []:
            if isinstance(v.get("emptyDir"), dict) and v["emptyDir"].get("medium") != "Memory" and handle.volume_path(v["name"]):
                roots.append(handle.volume_path(v["name"]))
        return roots

    async def storage_monitor(self, pod, handle, endpoint: str) -> str:
        spec = next(c for c in pod["spec"]["containers"] if c["name"] == "main")
        limit_q = ((spec.get("resources") or {}).get("limits") or {}).get("ephemeral-storage")
        if not limit_q:   # nothing of its own bounds the container: only node-pressure eviction does
            return await self.node_pressure_monitor(pod, handle, endpoint)
        limit = parse_mem(limit_q)
        roots = self.ephemeral_roots(pod, handle)
        while True:
            await asyncio.sleep(self.config.eviction_check_seconds)
            fault = self.faults.get("storage_exceeded", endpoint)
            multiplier = float(fault.get("declared_size_multiplier", 1e6)) if fault is not None else 1.0
            used = sum([await asyncio.to_thread(_disk_usage, r) for r in roots])
            if used * multiplier > limit:
                return f"Pod ephemeral local storage usage exceeds the total limit of containers {limit_q}."

    async def node_pressure_monitor(self, pod, handle, endpoint: str) -> str:
        """The kubelet's hard eviction ``nodefs.available<10%``: the container's usage (x the storage_exceeded
        multiplier) against the node's allocatable ephemeral storage; the message is the kubelet's."""
        node = await asyncio.to_thread(self.kube.core.read_node, pod["spec"].get("nodeName") or "")
        capacity = parse_mem((node.status.allocatable or {}).get("ephemeral-storage") or "0")
        root = handle.container_root("main")
        while capacity:
            await asyncio.sleep(self.config.eviction_check_seconds)
            fault = self.faults.get("storage_exceeded", endpoint)
            used = await asyncio.to_thread(_disk_usage, root) * (
                float(fault.get("declared_size_multiplier", 1e6)) if fault is not None else 1.0)
            if capacity - used < capacity * 0.1:
                return (f"The node was low on resource: ephemeral-storage. Threshold quantity: {_gi(capacity * 0.1)}, "
                        f"available: {_gi(max(capacity - used, 0))}. Container main was using {_gi(used)}, request is 0, "
                        "has larger consumption of ephemeral-storage. ")
        await asyncio.Event().wait()
        return ""

    async def _stop_vllm(self, state: PodState) -> None:
        if state.vllm:
            await state.vllm.stop()
            state.vllm = None

    # ---- main container ------------------------------------------------------------------------------------
    async def pod_env(self, pod: dict, container: dict) -> dict:
        env: dict[str, str] = {}
        for ef in container.get("envFrom") or []:
            ref = ef.get("secretRef") or ef.get("configMapRef")
            if not ref:
                continue
            kind = "Secret" if "secretRef" in ef else "ConfigMap"
            obj = await self.kube.get(kind, ref["name"], pod["metadata"]["namespace"])
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ContainerExit(1, "CreateContainerConfigError", f'secret "{ref["name"]}" not found')
            data = obj.get("data") or {}
            for k, v in data.items():
                env[ef.get("prefix", "") + k] = base64.b64decode(v).decode() if kind == "Secret" else v
            for k, v in (obj.get("stringData") or {}).items():
                env[k] = v
        for e in container.get("env") or []:
            if "value" in e:
                env[e["name"]] = e["value"]
        return env

    @staticmethod
    def host_path(handle, spec: dict, path: str) -> Path:
        """The host folder behind a path of the main container: under a volume's mountPath (a claim, an emptyDir) the
        volume's folder, else the container's root (a relative path is relative to the image's WORKDIR)."""
        if not path.startswith("/"):
            return handle.container_root("main") / path
        for m in sorted(spec.get("volumeMounts") or [], key=lambda m: -len(m.get("mountPath") or "")):
            mp = (m.get("mountPath") or "").rstrip("/")
            if mp and (path == mp or path.startswith(mp + "/")) and handle.volume_path(m["name"]) is not None:
                return handle.volume_path(m["name"]) / path[len(mp):].lstrip("/")
        return handle.container_root("main") / path.lstrip("/")

    async def fetch(self, handle, cmd, env: dict, dest: Path, endpoint: str, storage_limit):
        """The command's download step into ``dest``: the S3 tool install, the download (awscli: in the background) and
        the runbook's guard; returns the background download task (or None)."""
        download_task = None
        if cmd.tool == "awscli":
            install = self.faults.get("slow_tool_install", endpoint)
            await asyncio.sleep(float(install.get("seconds", 30)) if install else self.config.awscli_install_seconds)
        if cmd.tool in ("s5cmd", "awscli"):
            coro = self.download(handle, cmd, env, dest, endpoint, storage_limit)
            if cmd.background:
                download_task = asyncio.get_running_loop().create_task(coro)
            else:
                await coro
        try:
            while cmd.background and cmd.wait_guard and not self.guard_satisfied(dest):
                handle.log("main", "Waiting for model files...\n")
                if download_task.done() and download_task.exception():
                    exc = download_task.exception()
                    if isinstance(exc, Evicted):
                        raise exc
                await asyncio.sleep(self.config.guard_poll_seconds)
        except BaseException:
            if download_task is not None and not download_task.done():
                download_task.cancel()
            raise
        return download_task

    async def run_main_once(self, pod, handle, state: PodState, endpoint: str) -> None:
        spec = next(c for c in pod["spec"]["containers"] if c["name"] == "main")
        await handle.set_container_state("main", "running", ready=False)
        cmd = parse_command(spec.get("command") or [])
        env = await self.pod_env(pod, spec)
        limits = (spec.get("resources") or {}).get("limits") or {}
        storage_limit = limits.get("ephemeral-storage")
        dest = self.host_path(handle, spec, cmd.dest)
        download_task = None
        try:
            if cmd.cache:
                download_task = await self.cached_fetch(handle, cmd, env, dest, endpoint, storage_limit)
            else:
                download_task = await self.fetch(handle, cmd, env, dest, endpoint, storage_limit)
            await self.start_vllm(pod, handle, state, cmd, self.host_path(handle, spec, cmd.model_dir), spec)
            if download_task is not None:
                await asyncio.wait({download_task})
                exc = download_task.exception()
                if isinstance(exc, Evicted):
                    raise exc
            await asyncio.Event().wait()   # vLLM serves until the pod is deleted
        finally:
            if download_task is not None:
                if download_task.done():
                    if not download_task.cancelled():
                        download_task.exception()   # retrieved: a failed background sync is normal here
                else:
                    download_task.cancel()

    @staticmethod
    def guard_satisfied(folder: Path) -> bool:
        if not (folder / "config.json").is_file():
            return False
        names = [p.name for p in folder.iterdir() if not p.name.startswith(".")] if folder.is_dir() else []   # `ls`
        if not any(n.endswith(".safetensors") for n in names):
            return False
        return not any(len(n.rsplit(".", 1)[-1]) == 8 and n.rsplit(".", 1)[-1].isalnum() and "." in n for n in names)

    def s3_client(self, endpoint_url: str, env: dict):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=endpoint_url, region_name=env.get("AWS_REGION", "us-east-1"),
                            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or "missing",
                            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or "missing",
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required",
                                          user_agent_extra="odp-twin/pod"))   # not a client's request (S3Server.client_requests)

    # ---- the model cache (model_cache.wrap_download's protocol, on the claim's folder) -----------------------------
    @staticmethod
    def cache_ready(folder: Path, fp: str) -> bool:
        marker = folder / ".complete"
        try:
            if not marker.is_file() or marker.read_text().strip() != fp or not (folder / "config.json").is_file():
                return False
            return any(p.suffix in (".safetensors", ".bin") for p in folder.iterdir() if p.is_file())
        except OSError:
            return False

    @staticmethod
    def lock_stale(lock: Path, stale_seconds: int) -> bool:
        try:
            last = int((lock / "heartbeat").read_text().strip() or 0)
        except (OSError, ValueError):
            try:
                last = int(lock.stat().st_mtime)
            except OSError:
                last = 0
        return int(time.time()) - last > stale_seconds

    @staticmethod
    def write_heartbeat(lock: Path) -> None:
        tmp = lock / f"heartbeat.{os.getpid()}"
        tmp.write_text(f"{int(time.time())}\n")
        os.replace(tmp, lock / "heartbeat")

    async def heartbeat(self, lock: Path) -> None:
        while True:
            try:
                self.write_heartbeat(lock)
            except OSError:   # the lock was broken by another replica, or the claim is gone
                return
            await asyncio.sleep(self.config.model_cache_heartbeat_seconds)

    async def cached_fetch(self, handle, cmd, env: dict, dest: Path, endpoint: str, storage_limit):
        """The lock/marker protocol around ``fetch``: a ready cache skips the download (and the S3 tool install)."""
        fp, stale = cmd.cache["fingerprint"], cmd.cache["lock_stale_seconds"]
        lock, task = dest / ".download.lock", None
        dest.mkdir(parents=True, exist_ok=True)
        while not self.cache_ready(dest, fp):
            try:
                lock.mkdir()
            except FileExistsError:
                if self.lock_stale(lock, stale):
                    handle.log("main", model_cache.STALE_LINE + "\n")
                    shutil.rmtree(lock, ignore_errors=True)
                else:
                    handle.log("main", model_cache.WAITING_LINE + "\n")
                    await asyncio.sleep(self.config.model_cache_wait_seconds)
                continue
            beat = asyncio.get_running_loop().create_task(self.heartbeat(lock))
            try:
                for p in dest.iterdir():
                    if p.name != ".download.lock":
                        shutil.rmtree(p) if p.is_dir() else p.unlink()
                task = await self.fetch(handle, cmd, env, dest, endpoint, storage_limit)
                (dest / ".complete").write_text(fp + "\n")
            except (ContainerExit, Evicted):
                shutil.rmtree(lock, ignore_errors=True)   # the EXIT trap (a killed pod leaves its lock behind)
                raise
            finally:
                beat.cancel()
            shutil.rmtree(lock, ignore_errors=True)
        return task

    async def download(self, handle, cmd, env: dict, dest: Path, endpoint: str, storage_limit) -> None:
        tool = cmd.tool
        endpoint_url = cmd.endpoint_url or env.get("AWS_ENDPOINT_URL") or env.get("S3_ENDPOINT_URL")
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        rejected = self.faults.get("s3_credentials_rejected", endpoint) is not None or not self.s3_accepted(key, secret)
        if rejected:
            if tool == "s5cmd":
                handle.log("main", f'ERROR "cp {cmd.checkpoint} model_files": AccessDenied: Access Denied\n'
                                   f"\tstatus code: 403, request id: {random.getrandbits(64):016X}, host id: \n")
            else:
                handle.log("main", "fatal error: An error occurred (AccessDenied) when calling the ListObjectsV2 "
                                   "operation: Access Denied\n")
            raise ContainerExit(1)
        client = self.s3_client(endpoint_url, env)
        if tool == "awscli":
            await asyncio.sleep(self.config.awscli_startup_seconds)

        def list_keys():
            out = []
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=cmd.bucket, Prefix=cmd.prefix):
                out += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
            return out

        try:
            objects = await asyncio.to_thread(list_keys)
        except Exception as exc:
            handle.log("main", f"fatal error: {exc}\n" if tool == "awscli" else f'ERROR "cp {cmd.checkpoint} '
                               f'model_files": {exc}\n')
            raise ContainerExit(1) from exc
        selected = []
        for k, size in objects:
            rel = k[len(cmd.prefix):]
            if not rel or rel.endswith("/"):
                continue
            base = rel.rsplit("/", 1)[-1]
            if tool == "s5cmd":
                incl = S5CMD_INCLUDE + (["*.py"] if cmd.trust_remote_code else [])
                if fnmatch(base, "optimizer*") or not any(fnmatch(base, p) for p in incl):
                    continue
            selected.append((k, rel, size))
        if tool == "s5cmd" and not selected:
            handle.log("main", f'ERROR "cp {cmd.checkpoint} model_files": no object found\n')
            raise ContainerExit(1)
        dest.mkdir(parents=True, exist_ok=True)
        rate_fault = self.faults.get("download_rate", endpoint)
        rate = float(rate_fault["bytes_per_second"]) if rate_fault else self.config.download_rate
        stall = self.faults.get("download_stall", endpoint)
        written = 0
        chunk = 64 * 1024
        for k, rel, _size in selected:
            final = dest / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            if tool == "s5cmd":
                tmp = final.parent / f"{final.name}{random.randint(10 ** 8, 4 * 10 ** 9)}"
            else:
                tmp = final.parent / f"{final.name}.{''.join(random.choice(string.hexdigits) for _ in range(8))}"
            # the temp file exists from the moment the next object is requested (no gap between two files in which
            # the runbook's guard could see a folder without temp names)
            with tmp.open("wb") as fh:
                body = (await asyncio.to_thread(client.get_object, Bucket=cmd.bucket, Key=k))["Body"]
                while True:
                    data = await asyncio.to_thread(body.read, chunk)
                    if not data:
                        break
                    if stall is not None and written + len(data) > int(stall.get("after_bytes", 0)):
                        keep = max(0, int(stall.get("after_bytes", 0)) - written)
                        fh.write(data[:keep])
                        fh.flush()
                        written += keep
                        await asyncio.Event().wait()   # stalled: the process lives, bytes stop growing
                    fh.write(data)
                    written += len(data)
                    if rate > 0:
                        await asyncio.sleep(len(data) / rate)
            os.replace(tmp, final)
            self.apply_corruption(final, endpoint)
            if tool == "s5cmd":
                handle.log("main", f"cp s3://{cmd.bucket}/{k} {cmd.dest}/{rel}\n")
            else:
                handle.log("main", f"download: s3://{cmd.bucket}/{k} to {cmd.dest}/{rel}\n")

    def apply_corruption(self, path: Path, endpoint: str) -> None:
        for kind in ("corrupt_shard", "corrupt_header"):
            f = self.faults.get(kind, endpoint)
            if f is None or not path.name.endswith(".safetensors"):
                continue
            target = f.get("file")
            if (target is None and not path.name.startswith("model-00001-of-")) or (target and target != path.name):
                continue
            data = bytearray(path.read_bytes())
            n = int.from_bytes(data[:8], "little")
            if kind == "corrupt_shard":
                start = 8 + n
                for i in range(start, min(len(data), start + 4096)):
                    data[i] ^= 0xFF
            else:
                for i in range(8, min(8 + n, 8 + 16)):
                    data[i] = ord("#")
            path.write_bytes(bytes(data))

    async def start_vllm(self, pod, handle, state: PodState, cmd, folder: Path, spec: dict) -> None:
        handle.log("main", vllm_log("INFO", "api_server.py:1090", "vLLM API server version 0.10.1"))
        handle.log("main", vllm_log("INFO", "api_server.py:1091", f"args: Namespace(model='{cmd.model_dir}', "
                                                                  f"served_model_name={cmd.served_names}, "
                                                                  f"port={cmd.port}, host='::')"))
        server = VLLMServer(cmd.served_names or ["model_files"], 40960)
        state.vllm = server
        port = await server.start()
        handle.expose(cmd.port, "127.0.0.1", port)
        await asyncio.sleep(min(0.2, self.config.vllm_load_seconds))
        if not (folder / "config.json").is_file():
            self.crash(handle, [f"ValueError: No supported config format found in {cmd.model_dir}"],
                       lead="No config format found")
        try:
            cfg = json.loads((folder / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            self.crash(handle, [f"json.decoder.JSONDecodeError: {exc}"])
        archs = cfg.get("architectures") or []
        supported = supported_architectures(spec.get("image", ""))
        if not any(a in supported for a in archs):
            self.crash(handle, [f"ValueError: Model architectures {archs} are not supported for now. Supported "
                                f"architectures: {supported}"])
        shards = sorted(folder.glob("*.safetensors"))
        if not shards:
            self.crash(handle, [f"RuntimeError: Cannot find any model weights with `{cmd.model_dir}`"])
        index_file = folder / "model.safetensors.index.json"
        if index_file.is_file():
            wanted = set(json.loads(index_file.read_text()).get("weight_map", {}).values())
            missing = sorted(w for w in wanted if not (folder / w).is_file())
            if missing:
                self.crash(handle, [f"FileNotFoundError: [Errno 2] No such file or directory: "
                                    f"'{cmd.model_dir}/{missing[0]}'"])
        digest = hashlib.sha256()
        for shard in shards:
            try:
                safetensors.read_file_header(shard)
            except (safetensors.SafetensorsError, OSError) as exc:
                self.crash(handle, [f"safetensors_rust.SafetensorError: {exc}"])
            digest.update(safetensors.data_digest(shard).encode())
        server.weights_digest = digest.hexdigest()
        handle.log("main", vllm_log("INFO", "loader.py:447", f"Loading weights took {self.config.vllm_load_seconds:.2f}"
                                                             " seconds"))
        await asyncio.sleep(self.config.vllm_load_seconds)
        server.ready = True
        self.ready_times[(pod.get("metadata", {}).get("labels") or {}).get("endpoint_name")] = time.time()
        handle.log("main", vllm_log("INFO", "launcher.py:29", "Available routes are: /health, /v1/models, "
                                                              "/v1/completions, /v1/chat/completions"))
        handle.log("main", "INFO:     Started server process [1]\nINFO:     Waiting for application startup.\n"
                           "INFO:     Application startup complete.\n")
        handle.log("main", f"INFO:     Uvicorn running on http://[::]:{cmd.port} (Press CTRL+C to quit)\n")
        await handle.set_ready("main", True)

    @staticmethod
    def crash(handle, lines: list[str], lead: str | None = None) -> None:
        if lead:
            handle.log("main", vllm_log("ERROR", "engine.py:366", lead))
        handle.log("main", "Traceback (most recent call last):\n"
                           '  File "/usr/local/lib/python3.12/dist-packages/vllm/entrypoints/openai/api_server.py", '
                           "line 1130, in <module>\n    uvloop.run(run_server(args))\n" + "".join(line + "\n" for line in lines))
        raise ContainerExit(1)


class ControlPlaneRuntime(PodRuntime):
    """Pods of the twin's control-plane Deployments (model-engine gateway and endpoint builder).

    A running gateway pod's container port 5000 is backed by the twin's model-engine API server (``gateway_address``,
    set by the twin once that server listens), so the ``model-engine`` Service, ``kubectl port-forward`` and the
    Kubernetes service proxy reach the same API as ``model_engine_url``."""

    APPS = {"model-engine", "model-engine-endpoint-builder"}
    GATEWAY_PORT = 5000

    def __init__(self, registry, config):
        self.registry = registry
        self.config = config
        self.gateway_address: tuple[str, int] | None = None
        self._running: dict[str, list] = {}   # app -> handles of pods whose container runs (for log lines)

    async def _expose_gateway(self, handle) -> None:
        while self.gateway_address is None:
            await asyncio.sleep(0.05)
        handle.expose(self.GATEWAY_PORT, *self.gateway_address)

    def log(self, app: str, text: str) -> None:
        """Append to the log of every running pod of that control-plane Deployment (e.g. builder task logs)."""
        for handle, container in list(self._running.get(app, [])):
            try:
                handle.log(container, text)
            except Exception:  # pod just went away
                pass

    def handles(self, pod: dict) -> bool:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        return labels.get("app") in self.APPS and "endpoint_id" not in labels

    async def run(self, pod: dict, handle) -> None:
        container = pod["spec"]["containers"][0]
        name, image = container["name"], container["image"]
        restarts = 0
        while True:
            await handle.set_container_state(name, "running", ready=False)
            if self.registry.is_broken(image):
                handle.log(name, "Traceback (most recent call last):\n  File \"<frozen runpy>\", line 198, in "
                                 "_run_module_as_main\nModuleNotFoundError: No module named "
                                 "'model_engine_server.entrypoints'\n")
                await handle.set_container_state(name, "terminated", reason="Error", exit_code=1)
                restarts += 1
                await asyncio.sleep(0.2)
                await handle.set_container_state(name, "waiting", reason="CrashLoopBackOff", restart=True,
                                                 message=f"back-off {10 * 2 ** (restarts - 1)}s restarting failed "
                                                         f"container={name} pod={handle.name}_{handle.namespace}"
                                                         f"({handle.uid})")
                await asyncio.sleep(min(self.config.crash_backoff_base * 2 ** restarts, self.config.crash_backoff_max))
                continue
            if name == "model-engine-endpoint-builder":
                handle.log(name, "[INFO] celery@builder ready.\n")
            else:
                await self._expose_gateway(handle)
                handle.log(name, "INFO:     Uvicorn running on http://0.0.0.0:5000 (Press CTRL+C to quit)\n")
            await handle.set_ready(name, True)
            app = pod["metadata"]["labels"]["app"]
            entry = (handle, name)
            self._running.setdefault(app, []).append(entry)
            try:
                await asyncio.Event().wait()
            finally:
                self._running[app].remove(entry)
