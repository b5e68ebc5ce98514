"""Patch engines: JSON merge patch (RFC 7386), strategic merge patch, JSON patch (RFC 6902) and the field-ownership
bookkeeping behind server-side apply."""

from __future__ import annotations

import copy
import json
from typing import Any


class PatchError(ValueError):
    """The patch cannot be applied (becomes a 422/400 Status)."""


CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")

# (list field name) -> (strategies, merge key), the patchStrategy/patchMergeKey tags of the k8s Go types.
_LIST_META: dict[str, tuple[str, str | None]] = {
    "containers": ("merge", "name"),
    "initContainers": ("merge", "name"),
    "ephemeralContainers": ("merge", "name"),
    "env": ("merge", "name"),
    "volumes": ("merge,retainKeys", "name"),
    "volumeMounts": ("merge", "mountPath"),
    "volumeDevices": ("merge", "devicePath"),
    "imagePullSecrets": ("merge", "name"),
    "hostAliases": ("merge", "ip"),
    "ownerReferences": ("merge", "uid"),
    "finalizers": ("merge", None),
    "topologySpreadConstraints": ("merge", "topologyKey"),
    "secrets": ("merge", "name"),
    "addresses": ("merge", "type"),
}


def list_meta(path: tuple[str, ...], kind: str | None = None) -> tuple[str, str | None]:
    """Patch strategy and merge key for the list at ``path`` (field names from the object root, no indices)."""
    name = path[-1]
    parent = path[-2] if len(path) > 1 else ""
    if name == "ports":
        if parent in CONTAINER_LISTS:
            return "merge", "containerPort"
        if kind == "Service" and path[:1] == ("spec",):
            return "merge", "port"
        return "", None
    if name == "conditions" and "status" in path:
        return "merge", "type"
    if name == "finalizers" and parent != "metadata":
        return "", None
    if name == "secrets" and kind != "ServiceAccount":
        return "", None
    if name == "addresses" and kind != "Node":
        return "", None
    return _LIST_META.get(name, ("", None))


def map_retain_keys(path: tuple[str, ...]) -> bool:
    return path[-1:] == ("strategy",) or path[-1:] == ("updateStrategy",)


# ---------------------------------------------------------------------------------------------------------------------
# JSON merge patch


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# ---------------------------------------------------------------------------------------------------------------------
# strategic merge patch

_DIRECTIVE_PREFIXES = ("$setElementOrder/", "$deleteFromPrimitiveList/")


def _is_directive_key(k: str) -> bool:
    return k in ("$patch", "$retainKeys") or k.startswith(_DIRECTIVE_PREFIXES)


def strip_directives(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: strip_directives(x) for k, x in v.items() if not _is_directive_key(k) and x is not None}
    if isinstance(v, list):
        return [strip_directives(x) for x in v if not (isinstance(x, dict) and x.get("$patch") in ("delete", "replace") and len(x) <= 2)]
    return v


def strategic_merge_patch(original: dict, patch: dict, kind: str | None = None) -> dict:
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object")
    return _smp_map(original if isinstance(original, dict) else {}, patch, (), kind)


def _smp_map(orig: dict, patch: dict, path: tuple[str, ...], kind) -> dict:
    directive = patch.get("$patch")
    if directive == "replace":
        return strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive not in (None, "merge", "delete"):
        raise PatchError(f"Unknown patch type: {directive!r}")
    result = copy.deepcopy(orig)
    orders: dict[str, list] = {}
    for key, pv in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = pv
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            fld = key.split("/", 1)[1]
            if isinstance(result.get(fld), list):
                result[fld] = [x for x in result[fld] if x not in (pv or [])]
            continue
        if pv is None:
            result.pop(key, None)
            continue
        ov = result.get(key)
        sub = (*path, key)
        if isinstance(pv, dict):
            if pv.get("$patch") == "delete":
                result.pop(key, None)
                continue
            result[key] = _smp_map(ov if isinstance(ov, dict) else {}, pv, sub, kind)
        elif isinstance(pv, list):
            strategy, mkey = list_meta(sub, kind)
            if "merge" in strategy.split(","):
                result[key] = _smp_list(ov if isinstance(ov, list) else [], pv, mkey, sub, kind)
            else:
                result[key] = strip_directives(pv)
        else:
            result[key] = pv
    for fld, order in orders.items():
        if isinstance(result.get(fld), list):
            _, mkey = list_meta((*path, fld), kind)
            result[fld] = _reorder(result[fld], order, mkey)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _reorder(items: list, order: list, mkey: str | None) -> list:
    def ident(x):
        return x.get(mkey) if (mkey and isinstance(x, dict)) else (x.get(mkey) if isinstance(x, dict) and mkey else x)

    wanted = [ident(o) if isinstance(o, dict) else o for o in order]
    pos = {json.dumps(w, sort_keys=True): i for i, w in enumerate(wanted)}
    indexed = list(enumerate(items))
    indexed.sort(key=lambda p: (pos.get(json.dumps(ident(p[1]), sort_keys=True), len(wanted) + p[0])))
    return [x for _, x in indexed]


def _smp_list(orig: list, patch: list, mkey: str | None, path, kind) -> list:
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [strip_directives(x) for x in patch if not (isinstance(x, dict) and x.get("$patch") == "replace")]
    result = copy.deepcopy(orig)
    for item in patch:
        if mkey and isinstance(item, dict):
            if mkey not in item:
                raise PatchError(f"map: {item} does not contain declared merge key: {mkey}")
            idx = next((i for i, x in enumerate(result) if isinstance(x, dict) and x.get(mkey) == item[mkey]), None)
            if item.get("$patch") == "delete":
                if idx is not None:
                    result.pop(idx)
                continue
            if idx is None:
                result.append(strip_directives(item))
            else:
                result[idx] = _smp_map(result[idx], item, path, kind)
        elif isinstance(item, dict) and item.get("$patch") == "delete":
            continue
        elif item not in result:
            result.append(copy.deepcopy(item))
    return result


# ---------------------------------------------------------------------------------------------------------------------
# JSON patch


def _unescape(tok: str) -> str:
    return tok.replace("~1", "/").replace("~0", "~")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [_unescape(t) for t in path[1:].split("/")]


def _resolve(doc, toks: list[str], create=False):
    cur = doc
    for t in toks:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError(f"doc is missing path: {'/' + '/'.join(toks)}")
            cur = cur[t]
        elif isinstance(cur, list):
            try:
                cur = cur[int(t)]
            except (ValueError, IndexError):
                raise PatchError(f"doc is missing path: {'/' + '/'.join(toks)}")
        else:
            raise PatchError(f"doc is missing path: {'/' + '/'.join(toks)}")
    return cur


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError(f"invalid JSON patch operation {op!r}")
        kind = op["op"]
        toks = _pointer(op.get("path", ""))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"missing value for {kind} operation")
        if kind == "test":
            if _resolve(doc, toks) != op["value"]:
                raise PatchError(f"testing value {op['path']} failed")
            continue
        if kind in ("move", "copy"):
            src = _pointer(op["from"])
            value = copy.deepcopy(_resolve(doc, src))
            if kind == "move":
                doc = _remove(doc, src)
            doc = _add(doc, toks, value)
            continue
        if kind == "add":
            doc = _add(doc, toks, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc = _remove(doc, toks)
        elif kind == "replace":
            _resolve(doc, toks)
            doc = _remove(doc, toks)
            doc = _add(doc, toks, copy.deepcopy(op["value"]))
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


def _add(doc, toks, value):
    if not toks:
        return value
    parent = _resolve(doc, toks[:-1])
    last = toks[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                i = int(last)
            except ValueError:
                raise PatchError(f"invalid array index {last!r}")
            if i < 0 or i > len(parent):
                raise PatchError(f"add operation does not apply: doc is missing path: {'/' + '/'.join(toks)}")
            parent.insert(i, value)
    else:
        raise PatchError(f"doc is missing path: {'/' + '/'.join(toks)}")
    return doc


def _remove(doc, toks):
    if not toks:
        return None
    parent = _resolve(doc, toks[:-1])
    last = toks[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"remove operation does not apply: doc is missing path: {'/' + '/'.join(toks)}")
        del parent[last]
    elif isinstance(parent, list):
        try:
            parent.pop(int(last))
        except (ValueError, IndexError):
            raise PatchError(f"remove operation does not apply: doc is missing path: {'/' + '/'.join(toks)}")
    else:
        raise PatchError(f"doc is missing path: {'/' + '/'.join(toks)}")
    return doc


# ---------------------------------------------------------------------------------------------------------------------
# field ownership (server-side apply)

# A field path is a tuple of elements: ("f", name) for a map field, ("k", json-of-key-dict) for a list item with a merge
# key, ("v", json-of-value) for an element of a set-like primitive list.

IGNORED_TOP = {"apiVersion", "kind", "status"}


def leaf_paths(obj: dict, kind: str | None, prefix: tuple = (), names: tuple[str, ...] = ()) -> dict[tuple, Any]:
    out: dict[tuple, Any] = {}
    for k, v in obj.items():
        if not prefix and k in IGNORED_TOP:
            continue
        if prefix == (("f", "metadata"),) and k in ("name", "namespace", "uid", "resourceVersion", "generation",
                                                      "creationTimestamp", "managedFields", "selfLink", "deletionTimestamp"):
            continue
        p = (*prefix, ("f", k))
        n = (*names, k)
        if isinstance(v, dict) and v:
            out.update(leaf_paths(v, kind, p, n))
        elif isinstance(v, list) and v:
            strategy, mkey = list_meta(n, kind)
            if "merge" in strategy and mkey and all(isinstance(x, dict) and mkey in x for x in v):
                for item in v:
                    ip = (*p, ("k", json.dumps({mkey: item[mkey]}, sort_keys=True)))
                    out.update(leaf_paths(item, kind, ip, n))
            elif "merge" in strategy and not mkey and all(not isinstance(x, (dict, list)) for x in v):
                for item in v:
                    out[(*p, ("v", json.dumps(item)))] = item
            else:
                out[p] = v
        else:
            out[p] = v
    return out


def get_path(obj: Any, path: tuple) -> Any:
    cur = obj
    for kind, key in path:
        if kind == "f":
            if not isinstance(cur, dict) or key not in cur:
                return _MISSING
            cur = cur[key]
        elif kind == "k":
            want = json.loads(key)
            if not isinstance(cur, list):
                return _MISSING
            cur = next((x for x in cur if isinstance(x, dict) and all(x.get(a) == b for a, b in want.items())), _MISSING)
            if cur is _MISSING:
                return cur
        else:
            val = json.loads(key)
            if not isinstance(cur, list) or val not in cur:
                return _MISSING
            cur = val
    return cur


class _Missing:
    def __repr__(self):
        return "<missing>"


_MISSING = _Missing()


def remove_path(obj: dict, path: tuple) -> None:
    """Remove the field at ``path``; a keyed list item whose key field is removed disappears entirely."""
    if not path:
        return
    # removing the merge-key field of a keyed item removes the item
    if len(path) >= 2 and path[-2][0] == "k" and path[-1][0] == "f" and path[-1][1] in json.loads(path[-2][1]):
        path = path[:-1]
    parent = get_path(obj, path[:-1])
    kind, key = path[-1]
    if kind == "f" and isinstance(parent, dict):
        parent.pop(key, None)
    elif kind == "k" and isinstance(parent, list):
        want = json.loads(key)
        parent[:] = [x for x in parent if not (isinstance(x, dict) and all(x.get(a) == b for a, b in want.items()))]
    elif kind == "v" and isinstance(parent, list):
        val = json.loads(key)
        parent[:] = [x for x in parent if x != val]


def format_path(path: tuple) -> str:
    out = []
    for kind, key in path:
        if kind == "f":
            out.append("." + key)
        elif kind == "k":
            d = json.loads(key)
            out.append("[" + ",".join(f"{a}={json.dumps(b)}" for a, b in d.items()) + "]")
        else:
            out.append(f"[{key}]")
    return "".join(out)


def fields_v1(paths) -> dict:
    """Render a set of leaf paths in the FieldsV1 JSON format used by managedFields."""
    root: dict = {}
    for path in sorted(paths, key=json.dumps):
        cur = root
        for kind, key in path:
            if kind == "f":
                tok = "f:" + key
            elif kind == "k":
                tok = "k:" + json.dumps(json.loads(key), separators=(",", ":"), sort_keys=True)
            else:
                tok = "v:" + key
            if kind == "k" and tok in cur:
                cur[tok].setdefault(".", {})
            cur = cur.setdefault(tok, {})
    return root
