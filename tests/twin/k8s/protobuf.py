"""Decoding of the Kubernetes protobuf wire format for the few kinds kubectl's imperative ``create`` commands send as
protobuf (ConfigMap, Secret, Namespace, ServiceAccount), and the self reviews of ``kubectl auth can-i`` / ``whoami``
(SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview). client-go does not retry a 415, so these must be
understood.
Other kinds sent as protobuf are answered with 415 (see README)."""

from __future__ import annotations

import base64

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    pass


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def fields(buf: bytes) -> list[tuple[int, int, object]]:
    out = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            val, i = buf[i:i + n], i + n
        elif wire == 1:
            val, i = buf[i:i + 8], i + 8
        elif wire == 5:
            val, i = buf[i:i + 4], i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((num, wire, val))
    return out


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _map(entries: list[bytes], value_bytes: bool = False) -> dict:
    out = {}
    for e in entries:
        k = v = b""
        for num, _, val in fields(e):
            if num == 1:
                k = val
            elif num == 2:
                v = val
        out[_s(k)] = base64.b64encode(v).decode() if value_bytes else _s(v)
    return out


def _object_meta(buf: bytes) -> dict:
    m: dict = {}
    labels, annotations, finalizers = [], [], []
    for num, _, val in fields(buf):
        if num in (1, 2, 3, 6) and not val:
            continue
        if num == 1:
            m["name"] = _s(val)
        elif num == 2:
            m["generateName"] = _s(val)
        elif num == 3:
            m["namespace"] = _s(val)
        elif num == 6:
            m["resourceVersion"] = _s(val)
        elif num == 11:
            labels.append(val)
        elif num == 12:
            annotations.append(val)
        elif num == 14:
            finalizers.append(_s(val))
    if labels:
        m["labels"] = _map(labels)
    if annotations:
        m["annotations"] = _map(annotations)
    if finalizers:
        m["finalizers"] = finalizers
    return m


def _local_refs(vals) -> list[dict]:
    out = []
    for v in vals:
        name = next((_s(x) for n, _, x in fields(v) if n == 1), "")
        out.append({"name": name})
    return out


def decode(body: bytes) -> dict:
    if not body.startswith(MAGIC):
        raise ProtobufError("missing k8s protobuf magic")
    api_version = kind = ""
    raw = b""
    for num, _, val in fields(body[len(MAGIC):]):
        if num == 1:
            for n, _, v in fields(val):
                if n == 1:
                    api_version = _s(v)
                elif n == 2:
                    kind = _s(v)
        elif num == 2:
            raw = val
    obj: dict = {"apiVersion": api_version, "kind": kind}
    f = fields(raw)
    meta = next((v for n, _, v in f if n == 1), b"")
    obj["metadata"] = _object_meta(meta)
    if kind == "ConfigMap" and api_version == "v1":
        data = [v for n, _, v in f if n == 2]
        bdata = [v for n, _, v in f if n == 3]
        if data:
            obj["data"] = _map(data)
        if bdata:
            obj["binaryData"] = _map(bdata, True)
        if any(n == 4 and v for n, _, v in f):
            obj["immutable"] = True
    elif kind == "Secret" and api_version == "v1":
        data = [v for n, _, v in f if n == 2]
        if data:
            obj["data"] = _map(data, True)
        t = next((_s(v) for n, _, v in f if n == 3), None)
        if t:
            obj["type"] = t
        sdata = [v for n, _, v in f if n == 4]
        if sdata:
            obj["stringData"] = _map(sdata)
        if any(n == 5 and v for n, _, v in f):
            obj["immutable"] = True
    elif kind == "Namespace" and api_version == "v1":
        spec = next((v for n, _, v in f if n == 2), None)
        if spec is not None:
            fin = [_s(v) for n, _, v in fields(spec) if n == 1]
            obj["spec"] = {"finalizers": fin} if fin else {}
    elif kind == "ServiceAccount" and api_version == "v1":
        secrets = [v for n, _, v in f if n == 2]
        ips = [v for n, _, v in f if n == 3]
        if secrets:
            obj["secrets"] = [{"name": next((_s(x) for nn, _, x in fields(s) if nn == 3), "")} for s in secrets]
        if ips:
            obj["imagePullSecrets"] = _local_refs(ips)
        auto = [v for n, _, v in f if n == 4]
        if auto:
            obj["automountServiceAccountToken"] = bool(auto[-1])
    elif api_version in ("authorization.k8s.io/v1", "authentication.k8s.io/v1") and kind in _REVIEWS:
        spec = next((v for n, _, v in f if n == 2), None)
        if kind != "SelfSubjectReview":
            obj["spec"] = _REVIEWS[kind](spec or b"")
    else:
        raise ProtobufError(f"protobuf decoding of {api_version}/{kind} is not implemented")
    return obj


_RESOURCE_ATTRIBUTES = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}


def _strings(buf: bytes, names: dict[int, str]) -> dict:
    return {names[n]: _s(v) for n, _, v in fields(buf) if n in names and v}


def _ssar_spec(buf: bytes) -> dict:
    spec: dict = {}
    for n, _, v in fields(buf):
        if n == 1:
            spec["resourceAttributes"] = _strings(v, _RESOURCE_ATTRIBUTES)
        elif n == 2:
            spec["nonResourceAttributes"] = _strings(v, {1: "path", 2: "verb"})
    return spec


_REVIEWS = {"SelfSubjectAccessReview": _ssar_spec,
            "SelfSubjectRulesReview": lambda buf: _strings(buf, {1: "namespace"}),
            "SelfSubjectReview": lambda buf: {}}


def decode_delete_options(body: bytes) -> dict:
    """meta/v1 DeleteOptions (gracePeriodSeconds=1, preconditions=2, orphanDependents=3, propagationPolicy=4, dryRun=5)."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing k8s protobuf magic")
    raw = next((v for n, _, v in fields(body[len(MAGIC):]) if n == 2), b"")
    opts: dict = {}
    for num, _, val in fields(raw):
        if num == 1:
            opts["gracePeriodSeconds"] = val
        elif num == 2:
            pre = {}
            for n, _, v in fields(val):
                if n == 1 and v:
                    pre["uid"] = _s(v)
                elif n == 2 and v:
                    pre["resourceVersion"] = _s(v)
            opts["preconditions"] = pre
        elif num == 3:
            opts["orphanDependents"] = bool(val)
        elif num == 4 and val:
            opts["propagationPolicy"] = _s(val)
        elif num == 5:
            opts.setdefault("dryRun", []).append(_s(val))
    return opts
