"""Server side of SPDY/3.1 as Kubernetes clients speak it (moby/spdystream under k8s.io/apimachinery httpstream).

Only what the streaming protocols need: SYN_STREAM from the client, SYN_REPLY, DATA with FIN, RST_STREAM, PING echo
and GOAWAY. Headers are zlib-compressed with the SPDY/3 dictionary, one compression context per direction for the
whole connection. spdystream has no flow control (it ignores SETTINGS and WINDOW_UPDATE), so neither side sends them.

The session is transport-agnostic: bytes come in through ``feed``/``feed_eof`` (a raw upgraded HTTP connection, or the
binary messages of a WebSocket that tunnels SPDY) and go out through an async ``send`` callable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable

log = logging.getLogger("tests.twin.k8s")

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_CANCEL = 1, 5
MAX_DATA = 32 * 1024  # bytes per DATA frame we send

# The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1): 65 length-prefixed words
# (``~`` stands for a space inside a word), then a suffix.
_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age allow "
    "authorization cache-control connection content-base content-encoding content-language content-length "
    "content-location content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status 200~OK version HTTP/1.1 url public set-cookie "
    "keep-alive origin"
)
_SUFFIX = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


def _dictionary() -> bytes:
    words = [w.replace("~", " ") for w in _WORDS.split(" ")]
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + _SUFFIX.encode()


DICTIONARY = _dictionary()


class ProtocolError(Exception):
    pass


def encode_headers(headers: dict[str, str]) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for k, v in headers.items():
        kb, vb = k.lower().encode(), v.encode()
        out.append(struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb)
    return b"".join(out)


def decode_headers(block: bytes) -> dict[str, str]:
    try:
        (n,) = struct.unpack_from(">I", block, 0)
        pos, headers = 4, {}
        for _ in range(n):
            (ln,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + ln].decode()
            pos += 4 + ln
            (lv,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4:pos + 4 + lv].decode()
            pos += 4 + lv
            headers[name.lower()] = value.split("\x00")[0]
    except (struct.error, UnicodeDecodeError) as e:
        raise ProtocolError(f"bad header block: {e}") from e
    return headers


class Stream:
    """One SPDY stream opened by the client. ``reader`` carries the client's data; FIN ends it."""

    def __init__(self, session: Session, stream_id: int, headers: dict[str, str]):
        self.session = session
        self.id = stream_id
        self.headers = headers
        self.reader = asyncio.StreamReader(limit=1 << 24)
        self.remote_closed = False   # client sent FIN
        self.local_closed = False    # we sent FIN
        self.reset = False

    async def write(self, data: bytes) -> None:
        if self.local_closed or self.reset:
            return
        for i in range(0, len(data), MAX_DATA):
            await self.session.send_frame(_data_frame(self.id, 0, data[i:i + MAX_DATA]))

    async def close(self) -> None:
        """Half-close our side (DATA with FIN)."""
        if self.local_closed or self.reset:
            return
        self.local_closed = True
        await self.session.send_frame(_data_frame(self.id, FLAG_FIN, b""))

    async def send_reset(self, status: int = RST_CANCEL) -> None:
        if self.reset:
            return
        self._on_reset()
        await self.session.send_frame(_control(RST_STREAM, 0, struct.pack(">II", self.id, status)))

    def _on_remote_fin(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self.reader.feed_eof()

    def _on_reset(self) -> None:
        self.reset = True
        self._on_remote_fin()


def _control(frame_type: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, frame_type, (flags << 24) | len(payload)) + payload


def _data_frame(stream_id: int, flags: int, data: bytes) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


class Session:
    """A server-side SPDY/3.1 session.

    ``on_stream(stream)`` is awaited for every SYN_STREAM; it returns an error text to refuse the stream (RST_STREAM,
    like apimachinery's ``newSpdyStream``) or None to accept it (SYN_REPLY, then the handler may use the stream).
    """

    def __init__(self, send: Callable[[bytes], Awaitable[None]], on_stream: Callable[[Stream], Awaitable[str | None]]):
        self._send = send
        self._on_stream = on_stream
        self._in = asyncio.StreamReader(limit=1 << 24)
        self._lock = asyncio.Lock()
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self.streams: dict[int, Stream] = {}
        self.closed = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    # -- input ---------------------------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if data:
            self._in.feed_data(data)

    def feed_eof(self) -> None:
        self._in.feed_eof()

    async def send_frame(self, frame: bytes) -> None:
        if self.closed.is_set():
            return
        async with self._lock:
            try:
                await self._send(frame)
            except (ConnectionError, RuntimeError):
                self.closed.set()

    async def _reply(self, stream: Stream) -> None:
        block = self._deflate.compress(encode_headers({})) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        await self.send_frame(_control(SYN_REPLY, 0, struct.pack(">I", stream.id) + block))

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def serve(self) -> None:
        """Read frames until the client goes away (EOF, GOAWAY or a protocol error)."""
        try:
            while True:
                head = await self._in.readexactly(8)
                w1, w2 = struct.unpack(">II", head)
                flags, length = w2 >> 24, w2 & 0xFFFFFF
                payload = await self._in.readexactly(length) if length else b""
                if w1 & 0x80000000:
                    if not await self._control_frame(w1 & 0xFFFF, flags, payload):
                        break
                else:
                    self._data(w1 & 0x7FFFFFFF, flags, payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except ProtocolError as e:
            log.info("spdy: closing session: %s", e)
        finally:
            self.closed.set()
            for s in list(self.streams.values()):
                s._on_reset()
            for t in list(self._tasks):
                t.cancel()
            for t in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _control_frame(self, frame_type: int, flags: int, payload: bytes) -> bool:
        if frame_type == SYN_STREAM:
            await self._syn_stream(flags, payload)
        elif frame_type == RST_STREAM:
            (sid,) = struct.unpack_from(">I", payload)
            s = self.streams.pop(sid & 0x7FFFFFFF, None)
            if s:
                s._on_reset()
        elif frame_type == PING:
            (pid,) = struct.unpack_from(">I", payload)
            if pid & 1:  # client pings are odd; echo them (server pings would be even)
                await self.send_frame(_control(PING, 0, payload[:4]))
        elif frame_type == GOAWAY:
            return False
        elif frame_type == HEADERS:
            self._inflate.decompress(payload[4:])  # keep the shared compression context in step
        # SETTINGS, WINDOW_UPDATE and SYN_REPLY (we open no streams): nothing to do
        return True

    async def _syn_stream(self, flags: int, payload: bytes) -> None:
        if len(payload) < 10:
            raise ProtocolError("short SYN_STREAM")
        sid = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF
        try:
            block = self._inflate.decompress(payload[10:])
        except zlib.error as e:
            raise ProtocolError(f"header decompression failed: {e}") from e
        headers = decode_headers(block)
        if sid == 0 or sid % 2 == 0 or sid in self.streams:
            await self.send_frame(_control(RST_STREAM, 0, struct.pack(">II", sid, RST_PROTOCOL_ERROR)))
            return
        stream = Stream(self, sid, headers)
        refusal = await self._on_stream(stream)
        if refusal is not None:
            log.info("spdy: stream %d rejected: %s", sid, refusal)
            await stream.send_reset()
            return
        self.streams[sid] = stream
        await self._reply(stream)
        if flags & FLAG_FIN:
            stream._on_remote_fin()

    def _data(self, sid: int, flags: int, payload: bytes) -> None:
        s = self.streams.get(sid)
        if s is None or s.remote_closed:
            return
        if payload:
            s.reader.feed_data(payload)
        if flags & FLAG_FIN:
            s._on_remote_fin()

    def forget(self, stream: Stream) -> None:
        self.streams.pop(stream.id, None)


__all__ = ["DICTIONARY", "ProtocolError", "Session", "Stream", "decode_headers", "encode_headers"]
