"""In-memory object store: resourceVersions, create/update/delete semantics, garbage collection, watch fan-out and
field ownership (managedFields)."""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from . import objects
from . import resources as R
from .errors import ApiError, already_exists, bad_request, conflict, not_found
from .patching import (
    _MISSING,
    PatchError,
    fields_v1,
    format_path,
    get_path,
    leaf_paths,
    remove_path,
    strategic_merge_patch,
)
from .resources import ResourceType
from .selectors import FieldRequirement, Requirement, fields_match, labels_match

GENERATION_KINDS = {"Deployment", "ReplicaSet", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Pod"}
STATUS_RESET_ON_CREATE = {"Namespace", "Pod", "Deployment", "ReplicaSet", "Service", "PersistentVolumeClaim", "PersistentVolume",
                          "HorizontalPodAutoscaler", "PodDisruptionBudget"}
HISTORY = 20000

_ALNUM = "bcdfghjklmnpqrstvwxz2456789"


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    key: str
    obj: dict
    old: dict | None
    rv: int


@dataclass(eq=False)
class Watcher:
    key: str
    namespace: str | None
    labels: list[Requirement]
    fields: list[FieldRequirement]
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)

    def matches(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        if self.namespace and (obj.get("metadata") or {}).get("namespace") != self.namespace:
            return False
        return labels_match(self.labels, (obj.get("metadata") or {}).get("labels")) and fields_match(self.fields, obj)

    def translate(self, ev: WatchEvent) -> tuple[str, dict] | None:
        """Map a store event to the event this watcher sees (selector transitions become ADDED/DELETED)."""
        now = self.matches(ev.obj)
        if ev.type == "ADDED":
            return ("ADDED", ev.obj) if now else None
        if ev.type == "DELETED":
            return ("DELETED", ev.obj) if now else None
        before = self.matches(ev.old)
        if now and before:
            return ("MODIFIED", ev.obj)
        if now:
            return ("ADDED", ev.obj)
        if before:
            return ("DELETED", ev.obj)
        return None


def manager_from_user_agent(ua: str | None) -> str:
    if not ua:
        return "unknown"
    return ua.split("/", 1)[0].strip() or "unknown"


class Store:
    def __init__(self):
        self._objs: dict[str, dict[tuple[str, str], dict]] = {}
        self._rv = 1
        self.history: deque[WatchEvent] = deque(maxlen=HISTORY)
        self._dropped_rv = 0
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[WatchEvent], None]] = []
        # uid -> {(manager, operation, subresource): {"apiVersion", "time", "paths": {path: value}}}
        self._managed: dict[str, dict[tuple[str, str, str], dict]] = {}
        self._ip = 10
        self._svc_ip = 10
        self._node_port = 30000

    # -- cluster allocations -------------------------------------------------------------------------------------------
    def allocate_cluster_ip(self) -> str:
        self._svc_ip += 1
        return f"10.96.{self._svc_ip // 250}.{self._svc_ip % 250 + 1}"

    def allocate_node_port(self) -> int:
        self._node_port += 1
        return self._node_port

    def allocate_pod_ip(self) -> str:
        self._ip += 1
        return f"10.244.{self._ip // 250}.{self._ip % 250 + 1}"

    # -- basics --------------------------------------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        return self._rv

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def add_listener(self, fn: Callable[[WatchEvent], None]) -> None:
        self._listeners.append(fn)

    def add_watcher(self, w: Watcher) -> None:
        self._watchers.add(w)

    def remove_watcher(self, w: Watcher) -> None:
        self._watchers.discard(w)

    def events_since(self, key: str, rv: int) -> list[WatchEvent]:
        if rv < self._dropped_rv:
            raise ApiError(410, f"too old resource version: {rv} ({self._dropped_rv})", "Expired")
        return [ev for ev in self.history if ev.key == key and ev.rv > rv]

    def _emit(self, ev: WatchEvent) -> None:
        if len(self.history) == self.history.maxlen:
            self._dropped_rv = self.history[0].rv
        self.history.append(ev)
        for w in list(self._watchers):
            if w.key == ev.key:
                w.queue.put_nowait(ev)
        for fn in self._listeners:
            fn(ev)

    def bucket(self, key: str) -> dict[tuple[str, str], dict]:
        return self._objs.setdefault(key, {})

    def get_raw(self, key: str, ns: str, name: str) -> dict | None:
        return self._objs.get(key, {}).get((ns or "", name))

    def list_raw(self, key: str, ns: str | None = None) -> list[dict]:
        items = self._objs.get(key, {})
        if ns:
            return [o for (n, _), o in items.items() if n == ns]
        return list(items.values())

    def get(self, rt: ResourceType, ns: str, name: str) -> dict:
        obj = self.get_raw(rt.key, ns if rt.namespaced else "", name)
        if obj is None:
            raise not_found(rt, name)
        return copy.deepcopy(obj)

    def list(self, rt: ResourceType, ns: str | None, labels=(), fields=()) -> list[dict]:
        out = []
        for o in self.list_raw(rt.key, ns if rt.namespaced else None):
            if labels_match(list(labels), o["metadata"].get("labels")) and fields_match(list(fields), o):
                out.append(o)
        out.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return [copy.deepcopy(o) for o in out]

    # -- managed fields ------------------------------------------------------------------------------------------------
    def _render_managed(self, obj: dict) -> None:
        uid = obj["metadata"].get("uid")
        entries = []
        for (manager, operation, sub), info in sorted(self._managed.get(uid, {}).items(), key=lambda kv: kv[1]["time"]):
            if not info["paths"]:
                continue
            e = {"manager": manager, "operation": operation, "apiVersion": info["apiVersion"], "time": info["time"],
                 "fieldsType": "FieldsV1", "fieldsV1": fields_v1(info["paths"].keys())}
            if sub:
                e["subresource"] = sub
            entries.append(e)
        if entries:
            obj["metadata"]["managedFields"] = entries
        else:
            obj["metadata"].pop("managedFields", None)

    def _record_update(self, managed: dict, rt: ResourceType, old: dict | None, new: dict, manager: str, sub: str) -> None:
        """Fields an Update operation changed become owned by ``manager`` (and are released by everybody else)."""
        new_paths = leaf_paths(_for_paths(new, sub), rt.kind)
        old_paths = leaf_paths(_for_paths(old, sub), rt.kind) if old else {}
        changed = {p: v for p, v in new_paths.items() if old_paths.get(p, _MISSING) != v}
        gone = set(old_paths) - set(new_paths)
        for info in managed.values():
            for p in list(info["paths"]):
                if p in changed or p in gone or _is_prefix_of_any(p, gone):
                    del info["paths"][p]
        if changed:
            entry = managed.setdefault((manager, "Update", sub), {"paths": {}})
            entry["paths"].update(changed)
            entry["apiVersion"] = rt.api_version
            entry["time"] = objects.now_iso()
        for k in [k for k, v in managed.items() if not v["paths"]]:
            del managed[k]

    # -- writes --------------------------------------------------------------------------------------------------------
    def _check_namespace(self, rt: ResourceType, ns: str) -> None:
        if rt.namespaced and self.get_raw(R.NAMESPACE.key, "", ns) is None:
            raise ApiError(404, f'namespaces "{ns}" not found', "NotFound", {"name": ns, "kind": "namespaces"})

    def create(self, rt: ResourceType, body: dict, ns: str | None = None, *, dry_run: bool = False,
               manager: str = "unknown", validate: bool = True, keep_status: bool = False) -> dict:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = R.storage_type(rt.key).api_version, rt.kind
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if ns and body_ns and body_ns != ns:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            ns = ns or body_ns or "default"
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
            ns = ""
        if not meta.get("name") and meta.get("generateName"):
            for _ in range(20):
                cand = meta["generateName"] + random_suffix()
                if self.get_raw(rt.key, ns, cand) is None:
                    meta["name"] = cand
                    break
        for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation", "selfLink", "managedFields"):
            meta.pop(k, None)
        if _resets_status(rt) and not keep_status:
            st = objects.initial_status(rt, obj)
            if st is None:
                obj.pop("status", None)
            else:
                obj["status"] = st
        objects.apply_defaults(rt, obj, cluster=self)
        objects.admit_create(rt, obj, cluster=self)
        if validate:
            objects.validate(rt, obj)
        if rt.namespaced:
            self._check_namespace(rt, ns)
        name = meta["name"]
        if self.get_raw(rt.key, ns, name) is not None:
            raise already_exists(rt, name)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = objects.now_iso()
        if rt.kind in GENERATION_KINDS or rt.custom:
            meta["generation"] = 1
        managed: dict = {}
        self._record_update(managed, rt, None, obj, manager, "")
        if dry_run:
            meta["resourceVersion"] = str(self._rv)
            self._managed[meta["uid"]] = managed
            self._render_managed(obj)
            del self._managed[meta["uid"]]
            return obj
        self._managed[meta["uid"]] = managed
        self._render_managed(obj)
        rv = self._next_rv()
        meta["resourceVersion"] = str(rv)
        self.bucket(rt.key)[(ns, name)] = obj
        self._emit(WatchEvent("ADDED", rt.key, obj, None, rv))
        return copy.deepcopy(obj)

    def update(self, rt: ResourceType, body: dict, ns: str | None, name: str, *, subresource: str = "", dry_run: bool = False,
               manager: str = "unknown", validate: bool = True, operation: str = "Update",
               managed_override: dict | None = None) -> dict:
        ns = ns if rt.namespaced else ""
        old = self.get_raw(rt.key, ns, name)
        if old is None:
            raise not_found(rt, name)
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        new = copy.deepcopy(body)
        meta = new.get("metadata")
        if not isinstance(meta, dict):
            meta = new["metadata"] = {}
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        rv = meta.get("resourceVersion")
        if rv and str(rv) != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        has_status = "status" in rt.subresources or _resets_status(rt)
        if subresource == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            new = result
        else:
            if has_status and subresource == "":
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
            nm = new["metadata"]
            om = old["metadata"]
            for k in ("uid", "creationTimestamp", "name", "namespace", "generateName"):
                if k in om:
                    nm[k] = om[k]
                else:
                    nm.pop(k, None)
            nm.pop("generation", None)
            if "generation" in om:
                nm["generation"] = om["generation"]
            objects.apply_defaults(rt, new, cluster=self)
            if validate:
                objects.validate(rt, new, old)
            if "generation" in om and _spec_of(new) != _spec_of(old):
                nm["generation"] = om["generation"] + 1
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        uid = old["metadata"]["uid"]
        managed = managed_override if managed_override is not None else copy.deepcopy(self._managed.get(uid, {}))
        if managed_override is None:
            self._record_update(managed, rt, old, new, manager, subresource if subresource in ("status", "scale") else "")
        new["metadata"].pop("managedFields", None)
        saved = self._managed.get(uid)
        self._managed[uid] = managed
        self._render_managed(new)
        if _same(new, old):
            self._managed[uid] = saved if saved is not None else {}
            return copy.deepcopy(old)
        if dry_run:
            self._managed[uid] = saved if saved is not None else {}
            return new
        rvn = self._next_rv()
        new["metadata"]["resourceVersion"] = str(rvn)
        self.bucket(rt.key)[(ns, name)] = new
        self._emit(WatchEvent("MODIFIED", rt.key, new, old, rvn))
        return copy.deepcopy(new)

    def delete(self, rt: ResourceType, ns: str | None, name: str, *, propagation: str | None = None, dry_run: bool = False,
               preconditions: dict | None = None) -> dict:
        ns = ns if rt.namespaced else ""
        obj = self.get_raw(rt.key, ns, name)
        if obj is None:
            raise not_found(rt, name)
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
            raise conflict(rt, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {obj['metadata']['uid']}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise conflict(rt, name, "the object has been modified; please apply your changes to the latest version and try again")
        if dry_run:
            return copy.deepcopy(obj)
        return self._delete_now(rt.key, ns, name, propagation or "Background")

    def _delete_now(self, key: str, ns: str, name: str, propagation: str) -> dict:
        obj = self.bucket(key).pop((ns, name), None)
        if obj is None:
            return {}
        uid = obj["metadata"]["uid"]
        self._managed.pop(uid, None)
        rv = self._next_rv()
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(rv)
        self._emit(WatchEvent("DELETED", key, gone, obj, rv))
        if key == R.NAMESPACE.key:
            for k, bucket in list(self._objs.items()):
                for (n, nm) in [kk for kk in bucket if kk[0] == name]:
                    self._delete_now(k, n, nm, "Background")
        self._collect_dependents(uid, propagation)
        return gone

    def _collect_dependents(self, uid: str, propagation: str) -> None:
        for key, bucket in list(self._objs.items()):
            for (ns, name), o in list(bucket.items()):
                refs = o["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == uid for r in refs):
                    continue
                if propagation == "Orphan":
                    new = copy.deepcopy(o)
                    new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                    if not new["metadata"]["ownerReferences"]:
                        del new["metadata"]["ownerReferences"]
                    self.update(R.storage_type(key), new, ns, name, manager="kube-controller-manager", validate=False)
                else:
                    self._delete_now(key, ns, name, propagation)

    # -- server-side apply ---------------------------------------------------------------------------------------------
    def apply(self, rt: ResourceType, applied: dict, ns: str | None, name: str, *, manager: str, force: bool,
              dry_run: bool = False, subresource: str = "") -> tuple[dict, bool]:
        """Server-side apply. Returns (object, created)."""
        if not isinstance(applied, dict):
            raise bad_request("the body of the request was in an unknown format")
        meta = applied.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        for k in ("apiVersion", "kind"):
            if not applied.get(k):
                raise bad_request(f"{k} must be set for an apply patch")
        ns_key = ns if rt.namespaced else ""
        live = self.get_raw(rt.key, ns_key, name)
        applied_paths = leaf_paths(_for_paths(applied, subresource), rt.kind)
        if live is None:
            if subresource:
                raise not_found(rt, name)
            body = copy.deepcopy(applied)
            body.setdefault("metadata", {})["name"] = name
            obj = self.create(rt, body, ns, dry_run=dry_run, manager=manager)
            if not dry_run:
                uid = obj["metadata"]["uid"]
                self._managed[uid] = {(manager, "Apply", subresource): {"paths": applied_paths, "apiVersion": rt.api_version,
                                                                         "time": objects.now_iso()}}
                stored = self.get_raw(rt.key, ns_key, name)
                self._render_managed(stored)
                obj = copy.deepcopy(stored)
            return obj, True
        uid = live["metadata"]["uid"]
        managed = copy.deepcopy(self._managed.get(uid, {}))
        me = (manager, "Apply", subresource)
        conflicts = []
        for p, v in applied_paths.items():
            live_v = get_path(live, p)
            if live_v == v:
                continue
            for owner, info in managed.items():
                if owner != me and owner[0] != manager and p in info["paths"]:
                    conflicts.append((owner, p))
        if conflicts and not force:
            causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{o[0]}"' +
                       (f' using {rt.api_version}' if o[1] == "Update" else ""), "field": format_path(p)} for o, p in conflicts]
            n = len(conflicts)
            lines = "\n".join(f"- {c['message']}: {c['field']}" for c in causes) if n > 1 else ""
            msg = (f"Apply failed with {n} conflict{'s' if n > 1 else ''}: " +
                   (f"{causes[0]['message']}: {causes[0]['field']}" if n == 1 else "\n" + lines))
            raise ApiError(409, msg, "Conflict", {"causes": causes})
        work = copy.deepcopy(live)
        prev = managed.get(me, {}).get("paths", {})
        others = set()
        for owner, info in managed.items():
            if owner != me:
                others |= set(info["paths"])
        for p in sorted(set(prev) - set(applied_paths), key=len, reverse=True):
            if p not in others:
                remove_path(work, p)
        body = copy.deepcopy(applied)
        body.pop("apiVersion", None)
        body.pop("kind", None)
        for k in ("name", "namespace", "resourceVersion", "uid", "managedFields", "creationTimestamp", "generation"):
            (body.get("metadata") or {}).pop(k, None)
        rv = meta.get("resourceVersion")
        if rv and str(rv) != live["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        try:
            merged = strategic_merge_patch(work, body, rt.kind)
        except PatchError as e:
            raise ApiError(422, str(e), "Invalid")
        if force:
            for owner, info in managed.items():
                if owner != me:
                    for p in applied_paths:
                        info["paths"].pop(p, None)
        managed[me] = {"paths": applied_paths, "apiVersion": rt.api_version, "time": objects.now_iso()}
        if not prev or set(prev) != set(applied_paths) or conflicts:
            pass
        else:
            managed[me]["time"] = self._managed.get(uid, {}).get(me, {}).get("time", managed[me]["time"])
        for k in [k for k, v in managed.items() if not v["paths"]]:
            del managed[k]
        merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        obj = self.update(rt, merged, ns, name, subresource=subresource, dry_run=dry_run, manager=manager,
                          managed_override=managed)
        return obj, False


def _resets_status(rt: ResourceType) -> bool:
    """Kinds whose create ignores a sent status (built-ins with a status, CRs with the status subresource)."""
    return rt.kind in STATUS_RESET_ON_CREATE or (rt.custom and "status" in rt.subresources)


def _for_paths(obj: dict | None, sub: str) -> dict:
    if not obj:
        return {}
    if sub == "status":
        return {"status": obj.get("status")} if obj.get("status") is not None else {}
    return {k: v for k, v in obj.items() if k != "status"}


def _is_prefix_of_any(p: tuple, paths: set) -> bool:
    return any(len(q) < len(p) and p[: len(q)] == q for q in paths)


def _spec_of(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _same(a: dict, b: dict) -> bool:
    def strip(o):
        o = dict(o)
        m = dict(o.get("metadata") or {})
        mf = m.pop("managedFields", None)
        if mf:
            m["managedFields"] = [{k: v for k, v in e.items() if k != "time"} for e in mf]
        o["metadata"] = m
        return o

    return json.dumps(strip(a), sort_keys=True) == json.dumps(strip(b), sort_keys=True)


def event_name(obj_name: str) -> str:
    return f"{obj_name}.{secrets.token_hex(8)}"


__all__ = ["Store", "WatchEvent", "Watcher", "event_name", "manager_from_user_agent", "random_suffix"]
