"""pods/portforward: the three wire forms a real cluster serves (apiserver + kubelet).

* SPDY/3.1 upgrade (``Upgrade: SPDY/3.1``, ``X-Stream-Protocol-Version: portforward.k8s.io``): kubectl without
  WebSockets (``KUBECTL_PORT_FORWARD_WEBSOCKETS=false``, or as the fallback when the WebSocket upgrade fails).
* SPDY tunnelled through a WebSocket (subprotocol ``SPDY/3.1+portforward.k8s.io``, feature PortForwardWebsockets,
  beta and on since 1.31): what kubectl 1.31+ tries first. The WebSocket's binary messages carry the SPDY byte stream.
* The kubelet's WebSocket channel protocol (``v4.channel.k8s.io``, ``v4.base64.channel.k8s.io`` or none) with
  ``?ports=``: what the kubernetes Python client's ``kubernetes.stream.portforward`` speaks.

In every form a forwarded connection reaches what the pod's runtime ``expose``d for that container port; a port
nothing listens on gets the kubelet's error text on the error stream (kubectl then prints it and exits with
"lost connection to pod").
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import struct
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from . import resources as R
from .errors import bad_request, method_not_allowed
from .spdy import Session, Stream

if TYPE_CHECKING:
    from .emulator import Emulator
    from .server import Route

log = logging.getLogger("tests.twin.k8s")

PROTOCOL = "portforward.k8s.io"
TUNNEL_PREFIX = "SPDY/3.1+"
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "v4.base64.channel.k8s.io")
GRACE = 1.0  # like containerd: once one direction ends, the other gets a second to finish


def _split(values: list[str]) -> list[str]:
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


class _Feeder:
    """aiohttp payload parser that hands the raw bytes of an upgraded connection to a SPDY session."""

    def __init__(self, session: Session):
        self.session = session

    def feed_data(self, data: bytes):
        self.session.feed(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.session.feed_eof()


class PortForwarder:
    def __init__(self, emu: Emulator):
        self.emu = emu
        self._open: set = set()

    async def close(self) -> None:
        for closer in list(self._open):
            with contextlib.suppress(Exception):
                await closer()

    # -- entry ---------------------------------------------------------------------------------------------------------
    async def handle(self, request: web.Request, route: Route):
        if request.method not in ("GET", "POST"):
            raise method_not_allowed()
        pod = self.emu.store.get(R.POD, route.namespace, route.name)
        if not pod["spec"].get("nodeName"):
            raise bad_request(f"pod {route.name} does not have a host assigned")
        ports = self._query_ports(request)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            offered = _split(request.headers.getall("Sec-WebSocket-Protocol", []))
            tunnels = [p for p in offered if p.startswith(TUNNEL_PREFIX) and p.endswith(".k8s.io")]
            if tunnels:
                return await self._tunnel(request, pod, [p[len(TUNNEL_PREFIX):] for p in tunnels])
            return await self._channels(request, pod, ports, offered)
        return await self._spdy(request, pod)

    @staticmethod
    def _query_ports(request: web.Request) -> list[int]:
        ports = []
        for raw in _split(request.query.getall("ports", [])):
            try:
                n = int(raw)
            except ValueError:
                raise bad_request(f'unable to parse "{raw}" as a port: strconv.ParseUint: parsing "{raw}": invalid syntax')
            if not 0 < n < 65536:
                raise bad_request(f'port "{raw}" must be > 0')
            ports.append(n)
        return ports

    @staticmethod
    def _negotiate(clients: list[str]) -> web.Response | None:
        if not clients:
            return web.Response(status=400, text="unable to upgrade: X-Stream-Protocol-Version is required\n")
        if PROTOCOL not in clients:
            return web.Response(status=403, headers={"X-Accepted-Stream-Protocol-Versions": PROTOCOL},
                                text=f"unable to upgrade: unable to negotiate protocol: client supports [{' '.join(clients)}], "
                                     f"server accepts [{PROTOCOL}]\n")
        return None

    # -- SPDY over the upgraded HTTP connection ------------------------------------------------------------------------
    async def _spdy(self, request: web.Request, pod: dict):
        conn = request.headers.get("Connection", "").lower()
        upg = request.headers.get("Upgrade", "").lower()
        if "upgrade" not in conn or "spdy/3.1" not in upg:
            return web.Response(status=400, text="Upgrade request required\n")
        refusal = self._negotiate(_split(request.headers.getall("X-Stream-Protocol-Version", [])))
        if refusal is not None:
            return refusal
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("connection lost")

        async def send(frame: bytes) -> None:
            if transport.is_closing():
                raise ConnectionResetError("closed")
            transport.write(frame)
            while transport.get_write_buffer_size() > 1 << 20 and not transport.is_closing():
                await asyncio.sleep(0.005)

        session = Session(send, self._stream_handler(pod))
        resp = web.StreamResponse(status=101, headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                                        "X-Stream-Protocol-Version": PROTOCOL})
        resp.force_close()
        # Take the connection's bytes before the 101 goes out: the client starts talking SPDY as soon as it reads it.
        request.protocol.set_parser(_Feeder(session))
        request.protocol.keep_alive(False)
        await resp.prepare(request)
        await self._serve(session, transport.close)
        return resp

    # -- SPDY tunnelled through a WebSocket ----------------------------------------------------------------------------
    async def _tunnel(self, request: web.Request, pod: dict, spdy_protocols: list[str]):
        refusal = self._negotiate(spdy_protocols)
        if refusal is not None:
            return refusal
        ws = web.WebSocketResponse(protocols=(TUNNEL_PREFIX + PROTOCOL,), autoping=True, heartbeat=None, max_msg_size=0)
        await ws.prepare(request)
        session = Session(ws.send_bytes, self._stream_handler(pod))

        async def pump():
            try:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        session.feed(msg.data)
                    elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                        break
            finally:
                session.feed_eof()

        reader = asyncio.ensure_future(pump())
        try:
            await self._serve(session, ws.close)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            if not ws.closed:
                await ws.close()
        return ws

    async def _serve(self, session: Session, closer) -> None:
        self._open.add(closer)
        try:
            await session.serve()
        finally:
            self._open.discard(closer)

    def _stream_handler(self, pod: dict):
        pairs: dict[str, dict[str, Stream]] = {}

        async def on_stream(stream: Stream) -> str | None:
            h = stream.headers
            port = h.get("port", "")
            if not port:
                return '"port" header is required'
            if not port.isdigit() or not 0 < int(port) < 65536:
                return f'unable to parse "{port}" as a port'
            kind = h.get("streamtype", "")
            if not kind:
                return '"streamType" header is required'
            if kind not in ("error", "data"):
                return f'invalid stream type "{kind}"'
            request_id = h.get("requestid") or str(stream.id if kind == "error" else stream.id - 2)
            pair = pairs.setdefault(request_id, {})
            if kind in pair:
                pair["error"].session.spawn(pair["error"].write(
                    f"error processing stream for request {request_id}: {kind} stream already assigned".encode()))
                return None
            pair[kind] = stream
            if "error" in pair and "data" in pair:
                pairs.pop(request_id)
                stream.session.spawn(self._forward(pod, int(port), pair["data"], pair["error"]))
            return None

        return on_stream

    async def _forward(self, pod: dict, port: int, data: Stream, err: Stream) -> None:
        session = data.session
        try:
            conn = await self._connect(pod, port)
            if isinstance(conn, str):
                await err.write(conn.encode())
                return
            reader, writer = conn
            try:
                await _pipe(data.reader, data.write, reader, writer)
            finally:
                writer.close()
        finally:
            await data.close()
            await err.close()
            session.forget(data)
            session.forget(err)

    # -- the kubelet's WebSocket channel protocol (kubernetes Python client) -------------------------------------------
    async def _channels(self, request: web.Request, pod: dict, ports: list[int], offered: list[str]):
        if not ports:
            raise bad_request('query parameter "port" is required')
        protocols = [p for p in offered if p in CHANNEL_PROTOCOLS]
        ws = web.WebSocketResponse(protocols=tuple(protocols), autoping=True, heartbeat=None, max_msg_size=0)
        await ws.prepare(request)
        b64 = ws.ws_protocol == "v4.base64.channel.k8s.io"

        async def send(channel: int, payload: bytes) -> None:
            if ws.closed:
                return
            if b64:
                await ws.send_str(chr(ord("0") + channel) + base64.b64encode(payload).decode())
            else:
                await ws.send_bytes(bytes([channel]) + payload)

        inputs: list[asyncio.StreamReader] = []
        for i, port in enumerate(ports):
            inputs.append(asyncio.StreamReader(limit=1 << 24))
            for ch in (2 * i, 2 * i + 1):
                await send(ch, struct.pack("<H", port))

        async def pump():
            try:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.BINARY and msg.data:
                        ch, payload = msg.data[0], msg.data[1:]
                    elif msg.type == aiohttp.WSMsgType.TEXT and b64 and msg.data:
                        ch, payload = ord(msg.data[0]) - ord("0"), base64.b64decode(msg.data[1:])
                    elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                        break
                    else:
                        continue
                    if ch % 2 == 0 and ch // 2 < len(inputs) and payload:
                        inputs[ch // 2].feed_data(payload)
            finally:
                for r in inputs:
                    r.feed_eof()

        async def one(i: int, port: int) -> None:
            conn = await self._connect(pod, port)
            if isinstance(conn, str):
                await send(2 * i + 1, conn.encode())
                return
            reader, writer = conn
            try:
                await _pipe(inputs[i], lambda b: send(2 * i, b), reader, writer)
            finally:
                writer.close()

        reader_task = asyncio.ensure_future(pump())
        self._open.add(ws.close)
        try:
            await asyncio.gather(*(one(i, p) for i, p in enumerate(ports)))
        finally:
            self._open.discard(ws.close)
            reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader_task
            if not ws.closed:
                await ws.close()
        return ws

    # -- target --------------------------------------------------------------------------------------------------------
    async def _connect(self, pod: dict, port: int):
        """(reader, writer) to what the pod exposes on ``port``, or the kubelet's error text."""
        meta = pod["metadata"]
        h = self.emu.kubelet.handle_for(meta["namespace"], meta["name"])
        target = h.exposed.get(port) if h is not None else None
        if target is not None:
            try:
                return await asyncio.wait_for(asyncio.open_connection(*target), 5)
            except (OSError, TimeoutError):
                pass
        return forward_error(pod, port)


def forward_error(pod: dict, port: int) -> str:
    """containerd's text for a port nothing listens on inside the pod's network namespace."""
    uid = pod["metadata"].get("uid", "")
    sandbox = hashlib.sha256(uid.encode()).hexdigest()
    netns = f"/var/run/netns/cni-{uid[:8]}-{uid[9:13]}-{uid[14:18]}-{uid[19:23]}-{uid[24:36]}" if len(uid) == 36 else "/var/run/netns/cni"
    return (f"error forwarding port {port} to pod {sandbox}, uid : failed to execute portforward in network namespace "
            f'"{netns}": failed to connect to localhost:{port} inside namespace "{sandbox}", IPv4: dial tcp4 '
            f"127.0.0.1:{port}: connect: connection refused IPv6 dial tcp6 [::1]:{port}: connect: connection refused ")


async def _pipe(client_in: asyncio.StreamReader, client_write, target_in: asyncio.StreamReader,
                target_out: asyncio.StreamWriter) -> None:
    """Copy both ways; when one direction ends, give the other GRACE seconds, then stop."""

    async def up():
        while True:
            chunk = await client_in.read(65536)
            if not chunk:
                break
            target_out.write(chunk)
            await target_out.drain()
        with contextlib.suppress(OSError, RuntimeError):
            if target_out.can_write_eof():
                target_out.write_eof()

    async def down():
        while True:
            chunk = await target_in.read(65536)
            if not chunk:
                return
            await client_write(chunk)

    tasks = {asyncio.ensure_future(up()), asyncio.ensure_future(down())}
    try:
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending, timeout=GRACE)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await t


__all__ = ["PortForwarder", "forward_error"]
