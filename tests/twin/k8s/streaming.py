"""Connect-style subresources: pods/log, pods/exec (WebSocket channel protocol), pods/proxy, services/proxy, plus the
small subresources pods/binding, pods/eviction and <deployments|replicasets>/scale."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import os
import shutil
import time
from typing import TYPE_CHECKING

import aiohttp
import yaml
from aiohttp import web

from . import mounts, objects
from . import resources as R
from .errors import ApiError, bad_request, method_not_allowed, not_found
from .patching import PatchError, json_patch, merge_patch, strategic_merge_patch
from .selectors import format_label_selector

if TYPE_CHECKING:
    from .emulator import Emulator
    from .kubelet import KubeletPodHandle
    from .server import Route

log = logging.getLogger("tests.twin.k8s")

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length", "host", "authorization"}
RESPONSE_HOP_BY_HOP = HOP_BY_HOP - {"authorization"}
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")


def _json(obj, status=200) -> web.Response:
    return web.Response(body=json.dumps(obj).encode(), status=status, content_type="application/json")


def _status_success(details: dict | None = None) -> dict:
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        st["details"] = details
    return st


class Streams:
    def __init__(self, emu: Emulator):
        self.emu = emu
        self._session: aiohttp.ClientSession | None = None
        self._ws: set[web.WebSocketResponse] = set()
        self._procs: set[asyncio.subprocess.Process] = set()

    async def close(self) -> None:
        for p in list(self._procs):
            try:
                p.kill()
            except ProcessLookupError:
                pass
        for ws in list(self._ws):
            await ws.close()
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: web.Request, route: Route):
        if route.sub == "scale":
            return await self.scale(request, route)
        if route.sub == "proxy":
            return await self.proxy(request, route)
        if route.rt.kind != "Pod":
            raise not_found(route.rt, route.name or "")
        if route.sub == "log":
            if request.method != "GET":
                raise method_not_allowed()
            return await self.logs(request, route)
        if route.sub == "exec":
            return await self.exec(request, route)
        if route.sub == "binding":
            return await self.binding(request, route)
        if route.sub == "eviction":
            return await self.eviction(request, route)
        raise not_found(route.rt, route.name or "")

    # -- helpers -------------------------------------------------------------------------------------------------------
    def _pod(self, route: Route) -> dict:
        return self.emu.store.get(R.POD, route.namespace, route.name)

    @staticmethod
    def _container(pod: dict, name: str | None) -> tuple[str, bool]:
        spec = pod["spec"]
        names = [c["name"] for c in spec.get("containers") or []]
        inits = [c["name"] for c in spec.get("initContainers") or []]
        pname = pod["metadata"]["name"]
        if not name:
            default = (pod["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
            if default in names:
                return default, False
            if len(names) == 1:
                return names[0], False
            msg = f"a container name must be specified for pod {pname}, choose one of: [{' '.join(names)}]"
            if inits:
                msg += f" or one of the init containers: [{' '.join(inits)}]"
            raise bad_request(msg)
        if name in names:
            return name, False
        if name in inits:
            return name, True
        raise bad_request(f"container {name} is not valid for pod {pname}")

    # -- logs ----------------------------------------------------------------------------------------------------------
    async def logs(self, request: web.Request, route: Route):
        pod = self._pod(route)
        q = request.query
        container, _ = self._container(pod, q.get("container"))
        h = self.emu.kubelet.handle_for(route.namespace, route.name)
        pname = pod["metadata"]["name"]
        if h is None:
            reason = "ContainerCreating"
            for cs in ((pod.get("status") or {}).get("containerStatuses") or []):
                if cs.get("name") == container:
                    reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason", reason)
            raise bad_request(f'container "{container}" in pod "{pname}" is waiting to start: {reason}')
        cs = h._cs(container)
        previous = q.get("previous") in ("true", "1", "True")
        if previous:
            if cs.restart_count == 0:
                raise bad_request(f'previous terminated container "{container}" in pod "{pname}" not found')
            path = h.log_path(container, cs.restart_count - 1)
        else:
            if not cs.ever_ran:
                reason = (cs.state.get("waiting") or {}).get("reason", "ContainerCreating")
                if reason in ("ErrImagePull", "ImagePullBackOff"):
                    reason = "trying and failing to pull image"
                raise bad_request(f'container "{container}" in pod "{pname}" is waiting to start: {reason}')
            path = h.log_path(container)
        timestamps = q.get("timestamps") in ("true", "1", "True")
        tail = q.get("tailLines")
        limit_bytes = q.get("limitBytes")
        since = q.get("sinceSeconds")
        try:
            tail_n = int(tail) if tail is not None else None
            limit_n = int(limit_bytes) if limit_bytes is not None else None
            since_n = int(since) if since is not None else None
        except ValueError:
            raise bad_request("invalid log options")

        def render(lines: list[str]) -> bytes:
            out = []
            cutoff = time.time() - since_n if since_n is not None else None
            for line in lines:
                ts, _, text = line.partition(" ")
                if cutoff is not None and objects.parse_time(ts) < cutoff:
                    continue
                out.append(f"{ts} {text}\n" if timestamps else f"{text}\n")
            return "".join(out).encode()

        content = path.read_text() if path.exists() else ""
        lines = content.splitlines()
        if tail_n is not None:
            lines = lines[-tail_n:] if tail_n > 0 else []
        body = render(lines)
        if limit_n is not None:
            body = body[:limit_n]
        follow = q.get("follow") in ("true", "1", "True") and not previous
        if not follow:
            return web.Response(body=body, content_type="text/plain")
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(body)
        offset = len(content.encode())
        restarts = cs.restart_count
        try:
            while not self.emu.stopping:
                await asyncio.sleep(0.1)
                if path.exists():
                    with path.open("rb") as f:
                        f.seek(offset)
                        chunk = f.read()
                    if chunk:
                        complete = chunk[: chunk.rfind(b"\n") + 1]
                        if complete:
                            offset += len(complete)
                            await resp.write(render(complete.decode(errors="replace").splitlines()))
                if h.deleted or cs.restart_count != restarts or "running" not in cs.state:
                    break
                if request.transport is None or request.transport.is_closing():
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            return resp
        try:
            await resp.write_eof()
        except (ConnectionResetError, RuntimeError):
            pass
        return resp

    # -- exec ----------------------------------------------------------------------------------------------------------
    def _container_env(self, pod: dict, container: str, h: KubeletPodHandle) -> dict:
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOSTNAME": pod["metadata"]["name"],
               "HOME": str(h.container_root(container)), "LANG": os.environ.get("LANG", "C.UTF-8")}
        spec = next((c for c in (pod["spec"].get("containers") or []) + (pod["spec"].get("initContainers") or [])
                     if c["name"] == container), {})
        ns = pod["metadata"]["namespace"]
        for ef in spec.get("envFrom") or []:
            prefix = ef.get("prefix", "")
            if ef.get("configMapRef"):
                cm = self.emu.store.get_raw(R.CONFIGMAP.key, ns, ef["configMapRef"].get("name"))
                for k, v in ((cm or {}).get("data") or {}).items():
                    env[prefix + k] = v
            if ef.get("secretRef"):
                sec = self.emu.store.get_raw(R.SECRET.key, ns, ef["secretRef"].get("name"))
                for k, v in ((sec or {}).get("data") or {}).items():
                    env[prefix + k] = base64.b64decode(v).decode(errors="replace")
        for e in spec.get("env") or []:
            if "value" in e:
                env[e["name"]] = str(e["value"])
            elif e.get("valueFrom"):
                vf = e["valueFrom"]
                val = None
                if vf.get("fieldRef"):
                    fp = vf["fieldRef"].get("fieldPath", "")
                    val = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": ns,
                           "metadata.uid": pod["metadata"]["uid"], "spec.nodeName": pod["spec"].get("nodeName"),
                           "status.podIP": (pod.get("status") or {}).get("podIP"),
                           "status.hostIP": (pod.get("status") or {}).get("hostIP"),
                           "spec.serviceAccountName": pod["spec"].get("serviceAccountName")}.get(fp)
                elif vf.get("configMapKeyRef"):
                    cm = self.emu.store.get_raw(R.CONFIGMAP.key, ns, vf["configMapKeyRef"].get("name"))
                    val = ((cm or {}).get("data") or {}).get(vf["configMapKeyRef"].get("key"))
                elif vf.get("secretKeyRef"):
                    sec = self.emu.store.get_raw(R.SECRET.key, ns, vf["secretKeyRef"].get("name"))
                    raw = ((sec or {}).get("data") or {}).get(vf["secretKeyRef"].get("key"))
                    val = base64.b64decode(raw).decode(errors="replace") if raw is not None else None
                if val is not None:
                    env[e["name"]] = str(val)
            else:
                env[e["name"]] = ""
        return env

    async def exec(self, request: web.Request, route: Route):
        pod = self._pod(route)
        q = request.query
        container, _ = self._container(pod, q.get("container"))
        command = q.getall("command", [])
        if not command:
            raise bad_request("you must specify at least 1 command")
        pname = pod["metadata"]["name"]
        if not pod["spec"].get("nodeName"):
            raise bad_request(f"pod {pname} does not have a host assigned")
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            raise bad_request(f"cannot exec into a container in a completed pod; current phase is {phase}")
        h = self.emu.kubelet.handle_for(route.namespace, route.name)
        if h is None or "running" not in h._cs(container).state:
            raise bad_request(f'unable to upgrade connection: container not found ("{container}")')
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise bad_request("Upgrade request required (the twin serves exec over WebSocket only; SPDY is not implemented)")
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, autoping=True, heartbeat=None, max_msg_size=0)
        await ws.prepare(request)
        self._ws.add(ws)
        protocol = ws.ws_protocol or "channel.k8s.io"
        want_stdin = q.get("stdin") in ("true", "1", "True")
        cwd = h.container_root(container)
        env = self._container_env(pod, container, h)
        if shutil.which(command[0], path=env.get("PATH")) or "/" in command[0]:   # a missing binary keeps its own error
            command = mounts.wrap(command, h.mounts(container))
        try:
            await self._run_exec(ws, protocol, command, cwd, env, want_stdin,
                                 q.get("stdout", "true") in ("true", "1", "True"), q.get("stderr", "true") in ("true", "1", "True"))
        finally:
            self._ws.discard(ws)
            if not ws.closed:
                await ws.close()
        return ws

    async def _run_exec(self, ws, protocol, command, cwd, env, want_stdin, want_stdout, want_stderr):
        v4 = protocol in ("v4.channel.k8s.io", "v5.channel.k8s.io")

        async def send(channel: int, data: bytes):
            if not ws.closed:
                await ws.send_bytes(bytes([channel]) + data)

        async def send_status(code: int | None, error: str | None = None):
            if not v4:
                if error or code:
                    await send(3, (error or f"command terminated with non-zero exit code: exit status {code}").encode())
                return
            if error:
                st = {"metadata": {}, "status": "Failure", "message": error, "reason": "InternalError",
                      "details": {"causes": [{"message": error}]}, "code": 500}
            elif code:
                st = {"metadata": {}, "status": "Failure", "message": f"command terminated with non-zero exit code: exit status {code}",
                      "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
            else:
                st = {"metadata": {}, "status": "Success"}
            await send(3, json.dumps(st).encode())

        try:
            proc = await asyncio.create_subprocess_exec(
                *command, cwd=str(cwd), env=env, stdin=asyncio.subprocess.PIPE if want_stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except (FileNotFoundError, PermissionError, OSError) as e:
            msg = (f"failed to exec in container: failed to start exec: OCI runtime exec failed: exec failed: unable to start "
                   f'container process: exec: "{command[0]}": executable file not found in $PATH: unknown'
                   if isinstance(e, FileNotFoundError) else f"failed to exec in container: {e}")
            await send_status(None, msg)
            return
        self._procs.add(proc)

        async def pump(stream, channel, enabled):
            while True:
                chunk = await stream.read(65536)
                if not chunk:
                    return
                if enabled:
                    await send(channel, chunk)

        async def reader():
            async for msg in ws:
                if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                    if not data:
                        continue
                    ch, payload = data[0], data[1:]
                    if ch == 0 and proc.stdin is not None:
                        try:
                            proc.stdin.write(payload)
                            await proc.stdin.drain()
                        except (BrokenPipeError, ConnectionResetError):
                            pass
                    elif ch == 255 and payload[:1] == b"\x00" and proc.stdin is not None:
                        proc.stdin.close()
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                    break
            return "closed"

        pumps = asyncio.gather(pump(proc.stdout, 1, want_stdout), pump(proc.stderr, 2, want_stderr))
        reader_task = asyncio.ensure_future(reader())
        waiter = asyncio.ensure_future(proc.wait())
        try:
            done, _ = await asyncio.wait({waiter, reader_task}, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                # client went away before the command ended
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
                await waiter
            await pumps
            await send_status(proc.returncode if proc.returncode and proc.returncode > 0 else
                              (128 - proc.returncode if proc.returncode and proc.returncode < 0 else 0))
        finally:
            reader_task.cancel()
            self._procs.discard(proc)
            if proc.returncode is None:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass

    # -- proxy ---------------------------------------------------------------------------------------------------------
    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        return self._session

    def _resolve_pod_target(self, pod: dict, port: str | None) -> tuple[str, int] | None:
        h = self.emu.kubelet.handle_for(pod["metadata"]["namespace"], pod["metadata"]["name"])
        if h is None:
            return None
        if port is None or port == "":
            if len(h.exposed) == 1:
                return next(iter(h.exposed.values()))
            return h.exposed.get(80)
        if not port.isdigit():
            num = next((p.get("containerPort") for c in pod["spec"].get("containers") or [] for p in c.get("ports") or []
                        if p.get("name") == port), None)
            if num is None:
                return None
            port = str(num)
        return h.exposed.get(int(port))

    async def proxy(self, request: web.Request, route: Route):
        rt = route.rt
        ns = route.namespace
        if rt.kind == "Pod":
            name = route.name or ""
            parts = name.split(":")
            obj_name, port = (parts[-2], parts[-1]) if len(parts) >= 2 else (name, None)
            pod = self.emu.store.get(R.POD, ns, obj_name)
            target = self._resolve_pod_target(pod, port)
            ip = (pod.get("status") or {}).get("podIP", "")
            if target is None:
                p = port or "80"
                raise ApiError(503, f"error trying to reach service: dial tcp {ip}:{p}: connect: connection refused",
                               "ServiceUnavailable")
        elif rt.kind == "Service":
            target = self._service_location(ns, route.name or "")
        else:
            raise ApiError(503, "the twin does not proxy to nodes", "ServiceUnavailable")
        host, tport = target
        path = "/" + route.rest
        if request.path.endswith("/") and not path.endswith("/"):
            path += "/"
        url = f"http://{host}:{tport}{path}"
        # Like the apiserver's reverse proxy: hop-by-hop headers go, the client's address is added. Authorization never
        # arrives here: the apiserver's authentication filter deletes it once it has authenticated the request.
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        peer = request.remote or "127.0.0.1"
        headers["X-Forwarded-For"] = f"{headers['X-Forwarded-For']}, {peer}" if headers.get("X-Forwarded-For") else peer
        body = await request.read()
        session = await self._client()
        try:
            async with session.request(request.method, url, params=list(request.query.items()), headers=headers,
                                       data=body or None, allow_redirects=False,
                                       timeout=aiohttp.ClientTimeout(total=300, sock_connect=5)) as upstream:
                resp = web.StreamResponse(status=upstream.status,
                                          headers={k: v for k, v in upstream.headers.items() if k.lower() not in RESPONSE_HOP_BY_HOP})
                await resp.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        except (aiohttp.ClientConnectionError, TimeoutError) as e:
            raise ApiError(503, f"error trying to reach service: dial tcp {host}:{tport}: connect: connection refused ({e})",
                           "ServiceUnavailable")

    def _service_location(self, ns: str, id_: str) -> tuple[str, int]:
        """The apiserver's Service ResourceLocation: ``name``, ``name:port`` or ``scheme:name:port``, resolved through the
        Service's Endpoints (ready addresses only), with the same errors."""
        parts = id_.split(":")
        scheme, name, port = ("", parts[0], "") if len(parts) == 1 else ("", parts[0], parts[1]) if len(parts) == 2 else \
            (parts[0], parts[1], parts[2]) if len(parts) == 3 else ("", "", "")
        if not name or scheme not in ("", "http", "https"):
            raise bad_request(f'invalid service request "{id_}"')
        if port.isdigit():
            svc = self.emu.store.get(R.SERVICE, ns, name)
            sp = next((p for p in (svc.get("spec") or {}).get("ports") or [] if int(p.get("port", -1)) == int(port)), None)
            if sp is None:
                raise ApiError(503, f'no service port {int(port)} found for service "{name}"', "ServiceUnavailable")
            port = sp.get("name", "")
        eps = self.emu.store.get(R.ENDPOINTS, ns, name)
        subsets = eps.get("subsets") or []
        if not subsets:
            raise ApiError(503, f'no endpoints available for service "{name}"', "ServiceUnavailable")
        for ss in subsets:
            epp = next((p for p in ss.get("ports") or [] if p.get("name", "") == port), None)
            if epp is None:
                continue
            for addr in ss.get("addresses") or []:
                ref = addr.get("targetRef") or {}
                pod = self.emu.store.get_raw(R.POD.key, ref.get("namespace") or ns, ref.get("name", ""))
                if pod is None:
                    continue
                target = self._resolve_pod_target(pod, str(epp["port"]))
                if target is None:
                    raise ApiError(503, f"error trying to reach service: dial tcp {addr.get('ip')}:{epp['port']}: connect: "
                                        "connection refused", "ServiceUnavailable")
                return target
        raise ApiError(503, f'no endpoints available for service "{id_}"', "ServiceUnavailable")

    # -- binding / eviction --------------------------------------------------------------------------------------------
    async def binding(self, request: web.Request, route: Route):
        if request.method != "POST":
            raise method_not_allowed()
        body = json.loads(await request.read() or b"{}")
        node = (body.get("target") or {}).get("name")
        pod = self._pod(route)
        if pod["spec"].get("nodeName"):
            raise ApiError(409, f'Operation cannot be fulfilled on pods/binding "{route.name}": pod {route.name} is already '
                                f"assigned to node \"{pod['spec']['nodeName']}\"", "Conflict")
        self.emu.controllers._bind(pod, node)
        return _json(_status_success(), 201)

    async def eviction(self, request: web.Request, route: Route):
        if request.method != "POST":
            raise method_not_allowed()
        self._pod(route)
        self.emu.store.delete(R.POD, route.namespace, route.name)
        return _json(_status_success(), 201)

    # -- scale ---------------------------------------------------------------------------------------------------------
    def _scale_obj(self, obj: dict) -> dict:
        m = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                             "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
                "spec": {"replicas": obj["spec"].get("replicas", 1)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": format_label_selector(obj["spec"].get("selector"))}}

    async def scale(self, request: web.Request, route: Route):
        rt = route.rt
        obj = self.emu.store.get(rt, route.namespace, route.name)
        if request.method == "GET":
            return _json(self._scale_obj(obj))
        raw = await request.read()
        dry = bool(request.query.getall("dryRun", []))
        manager = request.query.get("fieldManager") or (request.headers.get("User-Agent") or "unknown").split("/", 1)[0]
        scale = self._scale_obj(obj)
        try:
            if request.method == "PUT":
                new_scale = json.loads(raw)
                rv = (new_scale.get("metadata") or {}).get("resourceVersion")
                if rv and rv != obj["metadata"]["resourceVersion"]:
                    from .errors import conflict

                    raise conflict(rt, route.name)
            elif request.method == "PATCH":
                ct = (request.headers.get("Content-Type") or "").split(";")[0]
                if ct == "application/json-patch+json":
                    new_scale = json_patch(scale, json.loads(raw))
                elif ct == "application/merge-patch+json":
                    new_scale = merge_patch(scale, json.loads(raw))
                elif ct == "application/strategic-merge-patch+json":
                    new_scale = strategic_merge_patch(scale, json.loads(raw))
                elif ct == "application/apply-patch+yaml":
                    new_scale = merge_patch(scale, yaml.safe_load(raw))
                else:
                    raise ApiError(415, "unsupported patch type", "UnsupportedMediaType")
            else:
                raise method_not_allowed()
        except (ValueError, PatchError) as e:
            raise bad_request(str(e))
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(422, f'Scale.autoscaling "{route.name}" is invalid: spec.replicas: Invalid value: {replicas}: '
                                "must be greater than or equal to 0", "Invalid")
        new = copy.deepcopy(obj)
        new["spec"]["replicas"] = replicas
        updated = self.emu.store.update(rt, new, route.namespace, route.name, subresource="scale", dry_run=dry, manager=manager)
        return _json(self._scale_obj(updated))
