"""A vLLM-shaped OpenAI server and the http-forwarder, as aiohttp apps on free loopback ports."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import aiohttp
from aiohttp import web

WORDS = ("the model engine serves tokens from weights on a gpu node while the forwarder routes requests "
         "through the service to vllm which answers with deterministic text for every prompt it receives").split()


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def generate(seed: str, prompt: str, max_tokens: int) -> tuple[str, int]:
    h = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    out = []
    for i in range(max_tokens):
        out.append(WORDS[h[i % len(h)] % len(WORDS)] if i < len(h) else WORDS[(h[i % len(h)] + i) % len(WORDS)])
    return " " + " ".join(out), max_tokens


class VLLMServer:
    """States: loading (health 503) -> ready (health 200)."""

    def __init__(self, served_names: list[str], max_model_len: int, weights_digest: str = ""):
        self.served_names = served_names
        self.max_model_len = max_model_len
        self.weights_digest = weights_digest
        self.ready = False
        self.created = int(time.time())
        self.runner: web.AppRunner | None = None
        self.port: int | None = None
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/chat/completions", self.chat)
        self.app = app

    async def start(self) -> int:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
            self.runner = None

    async def health(self, request):
        if not self.ready:
            return web.Response(status=503, text="")
        return web.Response(status=200, text="")

    def _error(self, status: int, message: str, typ: str):
        return web.json_response({"object": "error", "message": message, "type": typ, "param": None,
                                  "code": status}, status=status)

    async def models(self, request):
        if not self.ready:
            return web.Response(status=503)
        return web.json_response({"object": "list", "data": [
            {"id": n, "object": "model", "created": self.created, "owned_by": "vllm", "root": "model_files",
             "parent": None, "max_model_len": self.max_model_len,
             "permission": [{"id": f"modelperm-{uuid.uuid5(uuid.NAMESPACE_DNS, n).hex}", "object": "model_permission",
                             "created": self.created, "allow_create_engine": False, "allow_sampling": True,
                             "allow_logprobs": True, "allow_search_indices": False, "allow_view": True,
                             "allow_fine_tuning": False, "organization": "*", "group": None,
                             "is_blocking": False}]} for n in self.served_names]})

    async def _body(self, request):
        if not self.ready:
            return None, web.Response(status=503)
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return None, self._error(400, "Invalid JSON body", "BadRequestError")
        model = body.get("model")
        if model not in self.served_names:
            return None, self._error(404, f"The model `{model}` does not exist.", "NotFoundError")
        return body, None

    def _max_tokens(self, body, prompt_tokens: int):
        mt = body.get("max_tokens") or body.get("max_completion_tokens") or 16
        if prompt_tokens + mt > self.max_model_len:
            return None, self._error(400, f"This model's maximum context length is {self.max_model_len} tokens. "
                                          f"However, you requested {prompt_tokens + mt} tokens "
                                          f"({prompt_tokens} in the messages, {mt} in the completion). Please reduce "
                                          "the length of the messages or completion.", "BadRequestError")
        return mt, None

    async def completions(self, request):
        body, err = await self._body(request)
        if err:
            return err
        prompt = body.get("prompt", "")
        prompt = prompt if isinstance(prompt, str) else " ".join(map(str, prompt))
        pt = _tokens(prompt)
        mt, err = self._max_tokens(body, pt)
        if err:
            return err
        text, ct = generate(self.weights_digest, prompt, mt)
        rid = "cmpl-" + uuid.uuid4().hex
        if body.get("stream"):
            return await self._stream(request, rid, "text_completion", body["model"],
                                      lambda piece, fin: {"index": 0, "text": piece, "logprobs": None,
                                                          "finish_reason": fin, "stop_reason": None}, text, pt, ct)
        return web.json_response({
            "id": rid, "object": "text_completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "length", "stop_reason": None,
                         "prompt_logprobs": None}],
            "usage": {"prompt_tokens": pt, "total_tokens": pt + ct, "completion_tokens": ct,
                      "prompt_tokens_details": None}})

    async def chat(self, request):
        body, err = await self._body(request)
        if err:
            return err
        messages = body.get("messages") or []
        prompt = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in messages if isinstance(m, dict))
        pt = _tokens(prompt) + 3 * len(messages)
        mt, err = self._max_tokens(body, pt)
        if err:
            return err
        text, ct = generate(self.weights_digest, prompt, mt)
        text = text.strip()
        rid = "chatcmpl-" + uuid.uuid4().hex
        if body.get("stream"):
            return await self._stream(request, rid, "chat.completion.chunk", body["model"],
                                      lambda piece, fin: {"index": 0, "delta": {"content": piece} if piece else {},
                                                          "logprobs": None, "finish_reason": fin}, text, pt, ct)
        return web.json_response({
            "id": rid, "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "reasoning_content": None, "content": text,
                                                 "tool_calls": []},
                         "logprobs": None, "finish_reason": "length", "stop_reason": None}],
            "usage": {"prompt_tokens": pt, "total_tokens": pt + ct, "completion_tokens": ct,
                      "prompt_tokens_details": None},
            "prompt_logprobs": None})

    async def _stream(self, request, rid, obj, model, choice, text, pt, ct):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        created = int(time.time())
        words = text.split(" ")
        for i, w in enumerate(words):
            piece = (" " if i else "") + w
            chunk = {"id": rid, "object": obj, "created": created, "model": model, "choices": [choice(piece, None)]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        final = {"id": rid, "object": obj, "created": created, "model": model, "choices": [choice("", "length")],
                 "usage": {"prompt_tokens": pt, "total_tokens": pt + ct, "completion_tokens": ct}}
        await resp.write(f"data: {json.dumps(final)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


class Forwarder:
    """http-forwarder: /readyz 200 once main's /health answers 200; forwards /v1/* to main."""

    def __init__(self, main_port_getter):
        self.main_port_getter = main_port_getter
        self.runner: web.AppRunner | None = None
        self.port: int | None = None
        self.session: aiohttp.ClientSession | None = None
        app = web.Application()
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/healthz", self.readyz)
        app.router.add_route("*", "/v1/{tail:.*}", self.forward)
        app.router.add_post("/predict", self.forward)
        app.router.add_post("/stream", self.forward)
        self.app = app

    async def start(self) -> int:
        self.session = aiohttp.ClientSession()
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
            self.runner = None
        if self.session:
            await self.session.close()
            self.session = None

    async def main_healthy(self) -> bool:
        port = self.main_port_getter()
        if not port or not self.session:
            return False
        try:
            async with self.session.get(f"http://127.0.0.1:{port}/health",
                                        timeout=aiohttp.ClientTimeout(total=2)) as r:
                return r.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def readyz(self, request):
        if await self.main_healthy():
            return web.Response(text="OK")
        return web.Response(status=503, text="main container not healthy")

    async def forward(self, request):
        port = self.main_port_getter()
        if not port:
            return web.json_response({"detail": "upstream not available"}, status=503)
        url = f"http://127.0.0.1:{port}{request.path_qs}"
        data = await request.read()
        try:
            upstream = await self.session.request(request.method, url, data=data, headers={
                "Content-Type": request.headers.get("Content-Type", "application/json")},
                timeout=aiohttp.ClientTimeout(total=300))
        except aiohttp.ClientError:
            return web.json_response({"detail": "upstream not available"}, status=503)
        try:
            ctype = upstream.headers.get("Content-Type", "application/json")
            if ctype.startswith("text/event-stream"):
                resp = web.StreamResponse(status=upstream.status, headers={"Content-Type": ctype})
                await resp.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
            return web.Response(status=upstream.status, body=await upstream.read(),
                                headers={"Content-Type": ctype})
        finally:
            upstream.release()
