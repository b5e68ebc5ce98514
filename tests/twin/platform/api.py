"""The twin's model-engine HTTP API (aiohttp), following model-engine-api-contract.json."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import time
import uuid
from collections import Counter

import aiohttp
from aiohttp import web

from . import dtos
from .bundle import InvalidRequest, InvalidValue
from .kube import TWIN_HEADER
from .service import (
    BillingTagsMalformed,
    DockerImageNotFound,
    FailToInferHardware,
    HTTPError,
    InfraStateNotFound,
    LabelsInvalid,
    ModelEngine,
    PostInferenceHooksInvalid,
    ResourceInvalid,
    resource_name,
)

log = logging.getLogger("twin.model_engine.api")
CONCURRENCY_LIMIT = 500
HEALTH_PATHS = {"/healthz", "/healthcheck", "/readyz"}


def _timestamp() -> str:
    pacific = dt.timezone(dt.timedelta(hours=-8), "PST")
    return dt.datetime.now(pacific).strftime("%Y-%m-%d %H:%M:%S %Z")


def detail(status: int, text: str, headers=None) -> web.Response:
    return web.json_response({"detail": text}, status=status, headers=headers)


def internal_error() -> web.Response:
    return web.json_response({"error": "Internal error occurred. Our team has been notified.",
                              "timestamp": _timestamp(), "request_id": str(uuid.uuid4())}, status=500)


def user_of(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            username = base64.b64decode(value.strip()).decode("utf-8").partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return None
        return username or None
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class ModelEngineAPI:
    def __init__(self, engine: ModelEngine, faults, control_plane, proxy):
        self.engine = engine
        self.faults = faults
        self.control_plane = control_plane   # has .gateway_ready() -> (bool, reason)
        self.proxy = proxy                   # async (rec, path, body, stream) -> web.StreamResponse
        self.in_flight = 0
        # Every request a client made (not the /_twin/ admin routes): (unix time, method, path and query, status,
        # user). Tests take len() before a run and read what came after (Twin.client_requests).
        self.request_log: list[tuple[float, str, str, int, str | None]] = []
        # (client, method, route) -> requests: client is the first token of the User-Agent (the collection's urllib client
        # sends "ansible-httpget"), route the matched route's pattern; /_twin/ requests are not counted
        self.request_counts: Counter = Counter()
        self.app = web.Application(middlewares=[self.log_requests, self.middleware], client_max_size=64 * 1024 * 1024)
        r = self.app.router
        r.add_get("/healthz", self.health)
        r.add_get("/healthcheck", self.health)
        r.add_get("/readyz", self.readyz)
        r.add_post("/v1/llm/model-endpoints", self.create)
        r.add_get("/v1/llm/model-endpoints", self.list)
        r.add_get("/v1/llm/model-endpoints/{name}", self.get)
        r.add_put("/v1/llm/model-endpoints/{name}", self.update)
        r.add_delete("/v1/llm/model-endpoints/{name}", self.delete)
        r.add_get("/v1/model-endpoints/{id}", self.get_by_id)
        r.add_delete("/v1/model-endpoints/{id}", self.delete_by_id)
        r.add_post("/v1/model-endpoints/{id}/restart", self.restart)
        r.add_post("/v1/llm/completions-sync", self.v1_completions_sync)
        r.add_post("/v2/chat/completions", self.v2_chat)
        r.add_post("/v2/completions", self.v2_completions)
        r.add_get("/_twin/faults", self.faults_list)
        r.add_post("/_twin/faults", self.faults_add)
        r.add_delete("/_twin/faults", self.faults_clear)

    # ---- middleware ----------------------------------------------------------------------------------------
    @web.middleware
    async def log_requests(self, request: web.Request, handler):
        if request.path.startswith("/_twin/"):
            return await handler(request)
        status = 500
        try:
            resp = await handler(request)
            status = getattr(resp, "status", 200)
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.request_log.append((time.time(), request.method, request.path_qs, status, user_of(request)))

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        path = request.path
        if not path.startswith("/_twin/"):
            route = getattr(request.match_info.route.resource, "canonical", path) if request.match_info.route.resource else path
            agent = (request.headers.get("User-Agent") or "unknown").split("/", 1)[0].strip() or "unknown"
            self.request_counts[(agent, request.method, route)] += 1
            fault = self.faults.take_api_error(request.method, path)
            if fault:
                if fault.get("delay"):
                    await asyncio.sleep(float(fault["delay"]))
                status = fault.get("status", 500)
                if status == "timeout":
                    await asyncio.sleep(float(fault.get("seconds", 3600)))
                    status = 504
                if status == 429:
                    return web.json_response({"error": "Too many requests", "timestamp": _timestamp()}, status=429)
                if status == 500 and not fault.get("detail"):
                    return internal_error()
                return detail(int(status), fault.get("detail") or "Service temporarily unavailable.")
        if path in HEALTH_PATHS or path.startswith("/_twin/"):
            return await handler(request)
        if self.in_flight >= CONCURRENCY_LIMIT:
            return web.json_response({"error": "Too many requests", "timestamp": _timestamp()}, status=429)
        self.in_flight += 1
        try:
            if user_of(request) is None:
                return detail(401, "No authentication was passed in", headers={"WWW-Authenticate": "Bearer"})
            try:
                return await handler(request)
            except web.HTTPException:
                raise
            except HTTPError as exc:
                return detail(exc.status, exc.detail)
            except Exception:  # unmapped exception -> CustomMiddleware shape
                log.exception("unmapped exception in %s %s", request.method, path)
                return internal_error()
        finally:
            self.in_flight -= 1

    async def _json(self, request: web.Request):
        try:
            return await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _Validation([{"type": "json_invalid", "loc": ["body", getattr(exc, "pos", 0)],
                                "msg": "JSON decode error", "input": {},
                                "ctx": {"error": str(getattr(exc, "msg", exc))}}]) from None

    # ---- health --------------------------------------------------------------------------------------------
    async def health(self, request):
        return web.json_response("OK")

    async def readyz(self, request):
        ok, reason = self.control_plane.gateway_ready()
        if ok:
            return web.json_response("OK")
        return detail(503, reason)

    # ---- LLM endpoints -------------------------------------------------------------------------------------
    async def create(self, request):
        try:
            body = await self._json(request)
        except _Validation as v:
            return web.json_response({"detail": v.errors}, status=422)
        model, errors = dtos.parse(dtos.CreateRequest, body)
        if errors:
            return web.json_response({"detail": errors}, status=422)
        user = user_of(request)
        try:
            return web.json_response(await self.engine.create(user, model))
        except (InvalidValue, ResourceInvalid, LabelsInvalid) as exc:
            return detail(400, str(exc))
        except DockerImageNotFound:
            return detail(404, "The specified docker image could not be found.")
        except FailToInferHardware:
            return detail(500, "Failed to infer hardware exception.")
        except (InvalidRequest, BillingTagsMalformed, PostInferenceHooksInvalid, LookupError):
            return internal_error()

    async def list(self, request):
        user = user_of(request)
        name = request.query.get("name")
        order_by = request.query.get("order_by")
        if order_by is not None and order_by not in ("newest", "oldest", "alphabetical"):
            return web.json_response({"detail": [{
                "type": "enum", "loc": ["query", "order_by"],
                "msg": "Input should be 'newest', 'oldest' or 'alphabetical'", "input": order_by,
                "ctx": {"expected": "'newest', 'oldest' or 'alphabetical'"}}]}, status=422)
        recs = [r for r in self.engine.records.values()
                if (r["owner"] == user or r["public_inference"]) and (name is None or r["name"] == name)]
        if order_by == "newest":
            recs.sort(key=lambda r: r["created_at"], reverse=True)
        elif order_by == "oldest":
            recs.sort(key=lambda r: r["created_at"])
        return web.json_response({"model_endpoints": [await self.engine.llm_response(r) for r in recs]})

    async def get(self, request):
        name = request.match_info["name"]
        user = user_of(request)
        matches = self.engine.find_by_name(name)
        if len(matches) > 1:
            raise RuntimeError(f"Expected 1 LLM endpoint named {name}, got {len(matches)}")
        if not matches or not (matches[0]["owner"] == user or matches[0]["public_inference"]):
            return detail(404, f"Model Endpoint {name}  was not found.")
        return web.json_response(await self.engine.llm_response(matches[0]))

    async def update(self, request):
        name = request.match_info["name"]
        try:
            body = await self._json(request)
        except _Validation as v:
            return web.json_response({"detail": v.errors}, status=422)
        model, errors = dtos.parse(dtos.UpdateRequest, body)
        if errors:
            return web.json_response({"detail": errors}, status=422)
        try:
            return web.json_response(await self.engine.update(user_of(request), name, model))
        except (InvalidValue, ResourceInvalid, LabelsInvalid) as exc:
            return detail(400, str(exc))
        except DockerImageNotFound:
            return detail(404, "The specified docker image could not be found.")
        except (InfraStateNotFound, InvalidRequest, BillingTagsMalformed, PostInferenceHooksInvalid, LookupError):
            return internal_error()

    async def delete(self, request):
        name = request.match_info["name"]
        user = user_of(request)
        matches = [r for r in self.engine.find_by_name(name) if r["owner"] == user or r["public_inference"]]
        if len(matches) != 1:
            return detail(404, "The requested model endpoint could not be found.")
        rec = matches[0]
        if rec["owner"] != user:
            return detail(403, "You don't have permission to delete the requested model endpoint.")
        await self.engine.delete(rec)
        return web.json_response({"deleted": True})

    # ---- generic by id -------------------------------------------------------------------------------------
    def _by_id(self, request):
        rec = self.engine.records.get(request.match_info["id"])
        if rec is None or rec["owner"] != user_of(request):
            return None
        return rec

    async def get_by_id(self, request):
        rec = self._by_id(request)
        if rec is None:
            return detail(404, f"Model Endpoint {request.match_info['id']}  was not found.")
        return web.json_response(await self.engine.spec_response(rec))

    async def delete_by_id(self, request):
        rec = self._by_id(request)
        if rec is None:
            return detail(404, f"Model Endpoint {request.match_info['id']}  was not found.")
        try:
            await self.engine.delete(rec)
        except HTTPError:
            return detail(500, "deletion of endpoint failed, compute resources still exist.")
        return web.json_response({"deleted": True})

    async def restart(self, request):
        rec = self._by_id(request)
        if rec is None:
            return detail(404, f"Model Endpoint {request.match_info['id']} was not found.")
        await self.engine.restart(rec)
        return web.json_response({"restarted": True})

    # ---- inference -----------------------------------------------------------------------------------------
    async def _inference(self, request, vllm_path: str):
        try:
            body = await self._json(request)
        except _Validation as v:
            return web.json_response({"detail": v.errors}, status=422)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return web.json_response({"detail": [{"type": "missing", "loc": ["body", "model"],
                                                  "msg": "Field required", "input": body}]}, status=422)
        user = user_of(request)
        name = body["model"]
        recs = [r for r in self.engine.find_by_name(name) if r["owner"] == user or r["public_inference"]]
        if not recs:
            return detail(404, "The specified endpoint could not be found.")
        if len(recs) > 1:
            return detail(400, f"Expected 1 LLM model endpoint for model name {name}, got {len(recs)}")
        rec = recs[0]
        if rec["max_workers"] == 0:
            return detail(410, f"The endpoint {name} is deprecated. max_workers is 0.")
        # like the v2 use cases: vLLM serves the model under the endpoint's model_name
        body = dict(body, model=rec["metadata"]["_llm"]["model_name"])
        return await self.proxy(request, rec, vllm_path, body)

    async def v1_completions_sync(self, request):
        """Legacy v1 route: forwards to the bundle's predict_route (/predict), which current vLLM images no
        longer serve, so it ends in an upstream error exactly like upstream (facts §3, inferred)."""
        name = request.query.get("model_endpoint_name")
        if name is None:
            return web.json_response({"detail": [{"type": "missing", "loc": ["query", "model_endpoint_name"],
                                                  "msg": "Field required", "input": None}]}, status=422)
        try:
            body = await self._json(request)
        except _Validation as v:
            return web.json_response({"detail": v.errors}, status=422)
        missing = [f for f in ("prompt", "max_new_tokens", "temperature") if not isinstance(body, dict) or f not in body]
        if missing:
            return web.json_response({"detail": [{"type": "missing", "loc": ["body", f], "msg": "Field required",
                                                  "input": body} for f in missing]}, status=422)
        user = user_of(request)
        recs = [r for r in self.engine.find_by_name(name) if r["owner"] == user or r["public_inference"]]
        if not recs:
            return detail(404, "The specified endpoint could not be found.")
        if len(recs) > 1:
            return detail(400, f"Expected 1 LLM model endpoint for model name {name}, got {len(recs)}")
        if recs[0]["max_workers"] == 0:
            return detail(410, f"The endpoint {name} is deprecated. max_workers is 0.")
        return await self.proxy(request, recs[0], "/predict", {"args": body}, upstream_error_on_4xx=True)

    async def v2_chat(self, request):
        return await self._inference(request, "/v1/chat/completions")

    async def v2_completions(self, request):
        return await self._inference(request, "/v1/completions")

    # ---- twin admin ----------------------------------------------------------------------------------------
    async def faults_list(self, request):
        return web.json_response({"faults": self.faults.list()})

    async def faults_add(self, request):
        body = await request.json()
        try:
            kind = body.pop("fault")
            endpoint = body.pop("endpoint", "*")
            return web.json_response(self.faults.add(kind, endpoint, **body))
        except (KeyError, ValueError) as exc:
            return detail(400, str(exc))

    async def faults_clear(self, request):
        n = self.faults.clear(request.query.get("fault"), request.query.get("endpoint"))
        return web.json_response({"removed": n})


class _Validation(Exception):
    def __init__(self, errors):
        super().__init__("validation")
        self.errors = errors


async def k8s_service_proxy(kube, namespace: str, session_factory):
    """Return a proxy coroutine forwarding inference requests through the Kubernetes Service proxy."""

    async def proxy(request: web.Request, rec: dict, path: str, body: dict, upstream_error_on_4xx: bool = False):
        svc = resource_name(rec["id"])
        url = f"{kube.host}/api/v1/namespaces/{namespace}/services/{svc}:80/proxy{path}"
        request_id = str(uuid.uuid4())
        session: aiohttp.ClientSession = session_factory()
        try:
            upstream = await session.post(url, json=body, headers=dict(kube.auth_headers(), **{TWIN_HEADER: "gateway"}),
                                          timeout=aiohttp.ClientTimeout(total=300))
        except aiohttp.ClientError:
            return detail(500, f"Upstream service error for request_id {request_id}.")
        try:
            if upstream.status >= 500 or (upstream_error_on_4xx and upstream.status >= 400):
                return detail(500, f"Upstream service error for request_id {request_id}.")
            if body.get("stream"):
                resp = web.StreamResponse(status=upstream.status, headers={
                    "Content-Type": upstream.headers.get("Content-Type", "text/event-stream")})
                await resp.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
            data = await upstream.read()
            return web.Response(status=upstream.status, body=data,
                                content_type=upstream.headers.get("Content-Type", "application/json").split(";")[0])
        finally:
            upstream.release()

    return proxy
