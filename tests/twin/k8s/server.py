"""The HTTP front end: routing, content negotiation, REST verbs, watch, discovery and OpenAPI endpoints."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING

import yaml
from aiohttp import web

from . import auth, decoding, discovery, protobuf
from . import resources as R
from .errors import ApiError, bad_request, method_not_allowed
from .patching import PatchError, json_patch, merge_patch, strategic_merge_patch
from .resources import ResourceType
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import Watcher, manager_from_user_agent

if TYPE_CHECKING:
    from .emulator import Emulator

log = logging.getLogger("tests.twin.k8s")

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
# Requests carrying this header come from the platform twin's own control plane (builder, pod simulator, watchers,
# the gateway's proxy); request_counts files them under "twin" and request_log leaves them out, so that a test
# or benchmark can count what a client under test sent. (tests.twin.platform.kube.TWIN_HEADER is the same header.)
TWIN_CLIENT_HEADER = "X-Odp-Twin"


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj, status: int = 200) -> web.Response:
    return web.Response(body=dumps(obj), status=status, content_type=JSON)


def error_response(err: ApiError) -> web.Response:
    return json_response(err.status(), err.code)


# ---------------------------------------------------------------------------------------------------------------------
# conversion between the storage form and served versions


def to_version(rt: ResourceType, obj: dict) -> dict:
    """Render a stored object as ``rt`` (only events.k8s.io/v1 differs from the storage form)."""
    if rt.group == "events.k8s.io":
        o = {"apiVersion": rt.api_version, "kind": "Event", "metadata": copy.deepcopy(obj.get("metadata", {})),
             "eventTime": obj.get("eventTime"), "reason": obj.get("reason"), "note": obj.get("message"),
             "type": obj.get("type"), "regarding": obj.get("involvedObject"),
             "reportingController": obj.get("reportingComponent") or (obj.get("source") or {}).get("component", ""),
             "reportingInstance": obj.get("reportingInstance") or (obj.get("source") or {}).get("host", ""),
             "deprecatedSource": obj.get("source"), "deprecatedFirstTimestamp": obj.get("firstTimestamp"),
             "deprecatedLastTimestamp": obj.get("lastTimestamp"), "deprecatedCount": obj.get("count")}
        return {k: v for k, v in o.items() if v is not None}
    if obj.get("apiVersion") != rt.api_version:
        obj = dict(obj)
        obj["apiVersion"] = rt.api_version
    return obj


class Route:
    def __init__(self, rt: ResourceType, namespace: str | None, name: str | None, sub: str = "", rest: str = ""):
        self.rt, self.namespace, self.name, self.sub, self.rest = rt, namespace, name, sub, rest


def parse_resource_path(path: str) -> Route | None:
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    ns = None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        ns, rest = rest[1], rest[2:]
    plural = rest[0]
    rt = R.find(group, version, plural)
    if rt is None:
        raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
    if rt.namespaced and ns is None and len(rest) > 1:
        raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
    if not rt.namespaced and ns is not None:
        raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    tail = "/".join(rest[3:]) if len(rest) > 3 else ""
    if sub and sub not in rt.subresources:
        raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
    return Route(rt, ns, name, sub, tail)


class ApiServer:
    def __init__(self, emu: Emulator):
        self.emu = emu
        self.store = emu.store
        self.app = web.Application(middlewares=[self.middleware], client_max_size=256 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.dispatch)
        # The one request log: every request of a client other than the twin itself (TWIN_CLIENT_HEADER), oldest first:
        # (unix time the request started, method, path and query, status). Tests count and read what a run sent.
        self.request_log: list[tuple[float, str, str, int]] = []
        # (client, method) -> requests served, the twin's own included: client is "twin" for the twin's own control
        # plane, else the first token of the User-Agent (as the apiserver's field manager is derived)
        self.request_counts: Counter = Counter()
        # Requests anyone (the twin too) got a 500 for: a bug in the twin, as the controllers' and kubelet's errors
        self.errors: list[tuple[str, str, int]] = []

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        started = time.time()   # logged with the request's start: a watch is logged when it ends, maybe minutes later
        client = "twin" if TWIN_CLIENT_HEADER in request.headers else manager_from_user_agent(request.headers.get("User-Agent"))
        self.request_counts[(client, request.method)] += 1
        try:
            resp = await handler(request)
        except ApiError as e:
            resp = error_response(e)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # a bug in the twin: answer like an apiserver would, keep serving
            log.exception("internal error serving %s %s", request.method, request.path_qs)
            resp = error_response(ApiError(500, f"twin internal error: {type(e).__name__}: {e}", "InternalError"))
        status = getattr(resp, "status", 0)
        if client != "twin":
            self.request_log.append((started, request.method, request.path_qs, status))
        if status == 500:
            self.errors.append((request.method, request.path_qs, status))
        return resp

    # -- dispatch ------------------------------------------------------------------------------------------------------
    async def dispatch(self, request: web.Request):
        path = request.path.rstrip("/") or "/"
        method = request.method
        user = auth.check(request.headers, method, request.path, request.query)
        if path == "/version":
            return json_response(discovery.SERVER_VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/api":
            return json_response(discovery.api_versions(f"{self.emu.host}:{self.emu.port}"))
        if path == "/apis":
            return json_response(discovery.api_group_list())
        if path == "/openapi/v2":
            return self.openapi_v2(request)
        if path == "/openapi/v3":
            return json_response(self.emu.openapi.v3_root())
        if path.startswith("/openapi/v3/"):
            key = path[len("/openapi/v3/"):]
            body = self.emu.openapi.v3.get(key)
            if body is None:
                raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
            return web.Response(body=body, content_type=JSON, headers={"Cache-Control": "public, immutable",
                                                                        "Etag": '"' + self.emu.openapi.v3_hash[key] + '"'})
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            if parts[1] != "v1":
                raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
            return json_response(discovery.resource_list("", "v1"))
        if parts[0] == "apis" and len(parts) == 2:
            if parts[1] not in R.GROUP_VERSIONS or not parts[1]:
                raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
            return json_response(discovery.api_group(parts[1]))
        if parts[0] == "apis" and len(parts) == 3:
            if parts[1] not in R.GROUP_VERSIONS or parts[2] not in R.GROUP_VERSIONS[parts[1]]:
                raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
            return json_response(discovery.resource_list(parts[1], parts[2]))
        route = parse_resource_path(path)
        if route is None:
            raise ApiError(404, "the server could not find the requested resource", "NotFound", {})
        if route.rt.kind in auth.REVIEW_KINDS:
            return await self.review(request, route, user)
        if route.sub == "portforward":
            return await self.emu.portforward.handle(request, route)
        if route.sub in ("exec", "log", "proxy", "binding", "eviction", "scale"):
            return await self.emu.streams.handle(request, route)
        if route.sub == "finalize":
            raise method_not_allowed()
        self._check_content_type(request)
        if route.name is None:
            if method == "GET":
                return await self.list_or_watch(request, route)
            if method == "POST":
                return await self.create(request, route)
            if method == "DELETE":
                return await self.delete_collection(request, route)
            raise method_not_allowed()
        if method == "GET":
            return self.get(request, route)
        if method == "PUT":
            return await self.replace(request, route)
        if method == "PATCH":
            return await self.patch(request, route)
        if method == "DELETE":
            return await self.delete(request, route)
        raise method_not_allowed()

    # -- helpers -------------------------------------------------------------------------------------------------------
    def _check_content_type(self, request: web.Request) -> None:
        ct = request.headers.get("Content-Type", "")
        if request.method == "PATCH" and PROTOBUF in ct:
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types include: "
                                f"{JSON}, application/yaml", "UnsupportedMediaType")
        accept = request.headers.get("Accept", "")
        if accept and PROTOBUF in accept and JSON not in accept and "*/*" not in accept:
            raise ApiError(406, "only the following media types are accepted: application/json, application/yaml",
                           "NotAcceptable")

    async def _body(self, request: web.Request):
        raw = await request.read()
        if not raw:
            raise bad_request("the body of the request was in an unknown format - accepted media types include: "
                              "application/json, application/yaml")
        ct = request.headers.get("Content-Type", JSON)
        if PROTOBUF in ct:
            try:
                return protobuf.decode(raw)
            except protobuf.ProtobufError as e:
                raise ApiError(415, f"the body of the request was in an unknown format - accepted media types include: "
                                    f"{JSON}, application/yaml ({e})", "UnsupportedMediaType")
        try:
            if "yaml" in ct:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            raise bad_request(f"the body of the request was in an unknown format: {e}")

    @staticmethod
    def _dry_run(request: web.Request, body: dict | None = None) -> bool:
        vals = request.query.getall("dryRun", [])
        if body and isinstance(body.get("dryRun"), list):
            vals += body["dryRun"]
        for v in vals:
            if v != "All":
                raise bad_request(f'Invalid dry run value: "{v}", valid values are: "All"')
        return bool(vals)

    @staticmethod
    def _manager(request: web.Request, default: str | None = None) -> str:
        fm = request.query.get("fieldManager")
        if fm:
            if len(fm) > 128:
                raise ApiError(422, "fieldManager: Too long: may not be more than 128 bytes", "Invalid")
            return fm
        return default or manager_from_user_agent(request.headers.get("User-Agent"))

    @staticmethod
    def _wants_table(request: web.Request) -> bool:
        accept = request.headers.get("Accept", "")
        return "as=Table" in accept

    def _render(self, rt: ResourceType, obj: dict) -> dict:
        return to_version(rt, obj)

    def _selectors(self, request: web.Request, rt: ResourceType):
        try:
            labels = parse_label_selector(request.query.get("labelSelector"))
            fields = parse_field_selector(request.query.get("fieldSelector"), rt.key)
        except SelectorError as e:
            raise bad_request(str(e))
        return labels, fields

    # -- read ----------------------------------------------------------------------------------------------------------
    def get(self, request: web.Request, route: Route):
        rt = route.rt
        obj = self.store.get(rt, route.namespace or "", route.name)
        obj = self._render(rt, obj)
        if self._wants_table(request):
            return json_response(discovery.table_for(rt, [obj], request.query.get("includeObject", "Metadata"),
                                                     {"resourceVersion": obj["metadata"]["resourceVersion"]}))
        return json_response(obj)

    async def list_or_watch(self, request: web.Request, route: Route):
        rt = route.rt
        labels, fields = self._selectors(request, rt)
        if request.query.get("watch") in ("1", "true", "True"):
            return await self.watch(request, route, labels, fields)
        items = self.store.list(rt, route.namespace, labels, fields)
        rv = str(self.store.resource_version)
        meta: dict = {"resourceVersion": rv}
        limit = request.query.get("limit")
        cont = request.query.get("continue")
        if cont:
            try:
                tok = json.loads(base64.urlsafe_b64decode(cont.encode() + b"=="))
                start = tuple(tok["start"])
                meta["resourceVersion"] = tok["rv"]
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
        if limit:
            try:
                n = int(limit)
            except ValueError:
                raise bad_request(f"invalid limit {limit!r}")
            if 0 < n < len(items):
                last = items[n - 1]["metadata"]
                tok = {"rv": meta["resourceVersion"], "start": [last.get("namespace", ""), last["name"]]}
                meta["continue"] = base64.urlsafe_b64encode(json.dumps(tok).encode()).decode().rstrip("=")
                meta["remainingItemCount"] = len(items) - n
                items = items[:n]
        rendered = [self._render(rt, o) for o in items]
        if self._wants_table(request):
            return json_response(discovery.table_for(rt, rendered, request.query.get("includeObject", "Metadata"), meta))
        for o in rendered:
            o.pop("apiVersion", None)
            o.pop("kind", None)
        return json_response({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": rendered})

    async def watch(self, request: web.Request, route: Route, labels, fields):
        rt = route.rt
        table = self._wants_table(request)
        try:
            timeout = float(request.query.get("timeoutSeconds") or 1800)
        except ValueError:
            raise bad_request("invalid timeoutSeconds")
        bookmarks = request.query.get("allowWatchBookmarks") in ("1", "true", "True")
        send_initial = request.query.get("sendInitialEvents") in ("1", "true", "True")
        rv_param = request.query.get("resourceVersion", "")
        if route.name:  # watch on a single object: /namespaces/x/pods?watch=1&fieldSelector=metadata.name=y also works
            fields = [*fields, *parse_field_selector(f"metadata.name={route.name}", rt.key)]
        watcher = Watcher(rt.key, route.namespace if rt.namespaced else None, labels, fields)
        self.store.add_watcher(watcher)
        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        try:
            await resp.prepare(request)
            initial: list[tuple[str, dict]] = []
            if rv_param in ("", "0") or send_initial:
                for o in self.store.list(rt, route.namespace, labels, fields):
                    initial.append(("ADDED", o))
            else:
                try:
                    start = int(rv_param)
                except ValueError:
                    raise bad_request(f"invalid resourceVersion {rv_param!r}")
                try:
                    for ev in self.store.events_since(rt.key, start):
                        t = watcher.translate(ev)
                        if t:
                            initial.append(t)
                except ApiError as e:
                    await resp.write(dumps({"type": "ERROR", "object": e.status()}) + b"\n")
                    return resp
            last_rv = self.store.resource_version
            for typ, o in initial:
                await resp.write(self._event_line(rt, typ, o, table, request))
            if send_initial and bookmarks:
                await resp.write(dumps({"type": "BOOKMARK", "object": {
                    "kind": rt.kind, "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(last_rv), "annotations": {"k8s.io/initial-events-end": "true"}}}}) + b"\n")
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + 5
            while True:
                now = time.monotonic()
                if now >= deadline or self.emu.stopping:
                    break
                wait = min(deadline, next_bookmark if bookmarks else deadline, now + 1.0) - now
                try:
                    ev = await asyncio.wait_for(watcher.queue.get(), timeout=max(wait, 0.01))
                except TimeoutError:
                    if bookmarks and time.monotonic() >= next_bookmark:
                        next_bookmark = time.monotonic() + 5
                        await resp.write(dumps({"type": "BOOKMARK", "object": {
                            "kind": rt.kind, "apiVersion": rt.api_version,
                            "metadata": {"resourceVersion": str(self.store.resource_version)}}}) + b"\n")
                    if request.transport is None or request.transport.is_closing():
                        break
                    continue
                if ev.rv <= last_rv:
                    continue
                t = watcher.translate(ev)
                if t:
                    await resp.write(self._event_line(rt, t[0], t[1], table, request))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.remove_watcher(watcher)
        try:
            await resp.write_eof()
        except (ConnectionResetError, RuntimeError):
            pass
        return resp

    def _event_line(self, rt: ResourceType, typ: str, obj: dict, table: bool, request: web.Request) -> bytes:
        o = self._render(rt, copy.deepcopy(obj))
        if table:
            o = discovery.table_for(rt, [o], request.query.get("includeObject", "Metadata"),
                                    {"resourceVersion": o["metadata"].get("resourceVersion", "")})
        return dumps({"type": typ, "object": o}) + b"\n"

    async def review(self, request: web.Request, route: Route, user: auth.User):
        """Self{SubjectAccess,SubjectRules,Subject}Review: answered from the caller's identity, never stored."""
        if request.method != "POST" or route.name is not None:
            raise method_not_allowed()
        self._check_content_type(request)
        body = await self._body(request)
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        self._check_kind(route.rt, body)
        return json_response(auth.review(user, route.rt.kind, body), 201)

    # -- writes --------------------------------------------------------------------------------------------------------
    def _check_writable(self, rt: ResourceType, verb: str) -> None:
        if verb not in rt.verbs:
            raise method_not_allowed()

    async def create(self, request: web.Request, route: Route):
        rt = route.rt
        self._check_writable(rt, "create")
        body = await self._body(request)
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        self._check_kind(rt, body)
        self._check_types(rt, body)
        dry = self._dry_run(request)
        obj = self.store.create(rt, body, route.namespace, dry_run=dry, manager=self._manager(request))
        return json_response(self._render(rt, obj), 201)

    def _check_types(self, rt: ResourceType, body: dict) -> None:
        """The apiserver decodes the body into its Go type first: a wrongly typed field is a 400 (decoding.py)."""
        err = self.emu.decoder.decode_error(rt, body)
        if err:
            raise decoding.create_error(rt, body, err)

    def _check_kind(self, rt: ResourceType, body: dict) -> None:
        kind, av = body.get("kind"), body.get("apiVersion")
        if kind and kind != rt.kind:
            raise bad_request(f"the API version in the data ({av}) does not match the expected API version ({rt.api_version})"
                              if av and av != rt.api_version else
                              f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: kind {kind} does not match')
        if av and av != rt.api_version:
            raise bad_request(f"the API version in the data ({av}) does not match the expected API version ({rt.api_version})")

    async def replace(self, request: web.Request, route: Route):
        rt = route.rt
        self._check_writable(rt, "update")
        body = await self._body(request)
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        if route.sub != "status":
            self._check_kind(rt, body)
        self._check_types(rt, body)
        obj = self.store.update(rt, body, route.namespace, route.name, subresource=route.sub, dry_run=self._dry_run(request),
                                manager=self._manager(request))
        return json_response(self._render(rt, obj))

    async def patch(self, request: web.Request, route: Route):
        rt = route.rt
        self._check_writable(rt, "patch")
        ct = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        raw = await request.read()
        dry = self._dry_run(request)
        if ct == "application/apply-patch+yaml":
            try:
                applied = yaml.safe_load(raw) if raw else None
            except yaml.YAMLError as e:
                raise bad_request(f"error decoding YAML: {e}")
            fm = request.query.get("fieldManager")
            if not fm:
                raise ApiError(422, "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                               "Invalid")
            force = request.query.get("force") in ("true", "1", "True")
            obj, created = self.store.apply(rt, applied, route.namespace, route.name, manager=fm, force=force, dry_run=dry,
                                            subresource=route.sub)
            return json_response(self._render(rt, obj), 201 if created else 200)
        try:
            patch = json.loads(raw) if raw else None
        except ValueError as e:
            raise bad_request(f"error decoding patch: {e}")
        current = self.store.get(rt, route.namespace or "", route.name)
        try:
            if ct == "application/json-patch+json":
                new = json_patch(current, patch)
            elif ct == "application/merge-patch+json":
                if not isinstance(patch, dict):
                    raise PatchError("merge patch must be a JSON object")
                new = merge_patch(current, patch)
            elif ct == "application/strategic-merge-patch+json" and not rt.custom:
                new = strategic_merge_patch(current, patch, rt.kind)
            elif ct == "application/strategic-merge-patch+json":
                # custom resources have no Go types to merge by (apiextensions-apiserver)
                raise ApiError(415, "the body of the request was in an unknown format - accepted media types include: "
                                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                               "UnsupportedMediaType")
            else:
                raise ApiError(415, "the body of the request was in an unknown format - accepted media types include: "
                                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
                                    "application/strategic-merge-patch+json", "UnsupportedMediaType")
        except PatchError as e:
            raise ApiError(422, str(e), "Invalid")
        if not isinstance(new, dict):
            raise ApiError(422, "the patch produced something that is not an object", "Invalid")
        if ct == "application/strategic-merge-patch+json":
            err = self.emu.decoder.convert_error(rt, new)
            if err:
                raise decoding.patch_error(decoding.go_format(patch), err)
        else:
            err = self.emu.decoder.decode_error(rt, new)
            if err:
                raise decoding.patch_error(json.dumps(new, separators=(",", ":"), sort_keys=True), err)
        # a patch only carries a resourceVersion precondition when the client put one in the patch
        meta = new.setdefault("metadata", {})
        if not (isinstance(patch, dict) and (patch.get("metadata") or {}).get("resourceVersion")) and ct != "application/json-patch+json":
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        obj = self.store.update(rt, new, route.namespace, route.name, subresource=route.sub, dry_run=dry,
                                manager=self._manager(request))
        return json_response(self._render(rt, obj))

    async def _delete_options(self, request: web.Request) -> dict:
        raw = await request.read()
        opts = {}
        if raw and PROTOBUF in request.headers.get("Content-Type", ""):
            try:
                opts = protobuf.decode_delete_options(raw)
            except protobuf.ProtobufError as e:
                raise bad_request(f"the body of the request was in an unknown format: {e}")
        elif raw:
            try:
                opts = json.loads(raw) or {}
            except ValueError:
                raise bad_request("the body of the request was in an unknown format")
        if request.query.get("propagationPolicy"):
            opts["propagationPolicy"] = request.query["propagationPolicy"]
        if request.query.get("orphanDependents") in ("true", "false"):
            opts["propagationPolicy"] = "Orphan" if request.query["orphanDependents"] == "true" else "Background"
        elif opts.get("orphanDependents") is not None:
            opts["propagationPolicy"] = "Orphan" if opts["orphanDependents"] else "Background"
        pp = opts.get("propagationPolicy")
        if pp not in (None, "Orphan", "Background", "Foreground"):
            raise ApiError(422, f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "{pp}": '
                                'supported values: "Foreground", "Background", "Orphan", "nil"', "Invalid")
        return opts

    async def delete(self, request: web.Request, route: Route):
        rt = route.rt
        self._check_writable(rt, "delete")
        opts = await self._delete_options(request)
        dry = self._dry_run(request, opts)
        obj = self.store.delete(rt, route.namespace, route.name, propagation=opts.get("propagationPolicy"), dry_run=dry,
                                preconditions=opts.get("preconditions"))
        if rt.kind in ("Pod", "Namespace") or rt.custom:   # the CR registry returns the deleted object
            return json_response(self._render(rt, obj))
        details = {"name": route.name, "kind": rt.plural, "uid": obj["metadata"]["uid"]}
        if rt.group:
            details["group"] = rt.group
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})

    async def delete_collection(self, request: web.Request, route: Route):
        rt = route.rt
        self._check_writable(rt, "deletecollection")
        labels, fields = self._selectors(request, rt)
        opts = await self._delete_options(request)
        dry = self._dry_run(request, opts)
        gone = []
        for o in self.store.list(rt, route.namespace, labels, fields):
            m = o["metadata"]
            try:
                gone.append(self.store.delete(rt, m.get("namespace"), m["name"], propagation=opts.get("propagationPolicy"),
                                              dry_run=dry))
            except ApiError as e:
                if e.code != 404:
                    raise
        rendered = [self._render(rt, o) for o in gone]
        return json_response({"kind": rt.list_kind, "apiVersion": rt.api_version,
                              "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": rendered})

    # -- openapi -------------------------------------------------------------------------------------------------------
    def openapi_v2(self, request: web.Request):
        accept = request.headers.get("Accept", "")
        oa = self.emu.openapi
        headers = {"Etag": f'"{oa.v2_etag}"', "Vary": "Accept"}
        if "protobuf" in accept:
            return web.Response(body=oa.v2_pb, headers=headers, content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        return web.Response(body=oa.v2_json, headers=headers, content_type=JSON)


__all__ = ["ApiServer", "to_version"]
