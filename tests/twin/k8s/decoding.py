"""Type checking of request bodies against the served OpenAPI schemas, with the apiserver's decode errors.

A real apiserver decodes a body into its Go type before anything else; a value of the wrong JSON type is refused:

* create/update (POST/PUT): 400 ``<Kind> in version "<v>" cannot be handled as a <Kind>: <decode error>``, where the
  decode error is sigs.k8s.io/json's (a copy of encoding/json): ``json: cannot unmarshal bool into Go struct field
  EnvVar.spec.template.spec.containers.env.name of type string`` (innermost struct, JSON field path without list
  indices or map keys, Go type). The first such error in document order is reported, unless a custom decoder
  (Quantity, IntOrString, Time) fails, which aborts decoding and wins. Base64 errors of ``[]byte`` fields read
  ``illegal base64 data at input byte N``.
* merge and JSON patches: 422 ``"" is invalid: patch: Invalid value: "<patched object JSON>": <decode error>``.
* strategic merge patches: 422 ``"" is invalid: patch: Invalid value: "<patch as a Go map>": <converter error>`` with the
  unstructured converter's texts (``unrecognized type: string``, ``cannot convert int64 to string``,
  ``cannot restore struct from: string`` ...).

The schemas are those ``openapi.py`` serves: fields under an open object (``x-kubernetes-preserve-unknown-fields``)
are not checked, and unknown fields are ignored (``fieldValidation`` is not enforced).
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal

from .errors import ApiError
from .openapi import _kind_props
from .resources import ResourceType

INT_RANGES = {"int32": (-(2 ** 31), 2 ** 31 - 1), "int64": (-(2 ** 63), 2 ** 63 - 1)}
QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
QUANTITY_FORMAT = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
QUANTITY_SUFFIXES = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"}
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class _Fatal(Exception):
    pass


def json_kind(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "object"
    return "array"


def go_float(f: float) -> str:
    """Go's %v (strconv 'g', shortest digits, exponent form below 1e-4 and from 1e6) of a float64."""
    if math.isnan(f):
        return "NaN"
    if f in (math.inf, -math.inf):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "0"
    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    nd, dp = len(ds), len(ds) + exp
    x = dp - 1
    out = "-" if sign else ""
    if x < -4 or x >= 6:
        return out + ds[0] + ("." + ds[1:] if nd > 1 else "") + f"e{'+' if x >= 0 else '-'}{abs(x):02d}"
    if dp >= nd:
        return out + ds + "0" * (dp - nd)
    if dp > 0:
        return out + ds[:dp] + "." + ds[dp:]
    return out + "0." + "0" * (-dp) + ds


def go_number(v) -> str:
    return str(v) if isinstance(v, int) else go_float(v)


def base64_error(s: str) -> str | None:
    """encoding/base64 StdEncoding.Decode's CorruptInputError text, or None when ``s`` decodes."""
    src, si = s, 0
    while True:
        j, n = 0, len(src)
        while j < 4:
            if si == n:
                if j == 0:
                    return None
                return f"illegal base64 data at input byte {si - j}"
            c = src[si]
            si += 1
            if c in B64:
                j += 1
                continue
            if c in "\r\n":
                continue
            if c != "=" or j in (0, 1):
                return f"illegal base64 data at input byte {si - 1}"
            if j == 2:
                while si < n and src[si] in "\r\n":
                    si += 1
                if si == n:
                    return f"illegal base64 data at input byte {n}"
                if src[si] != "=":
                    return f"illegal base64 data at input byte {si - 1}"
                si += 1
            while si < n and src[si] in "\r\n":
                si += 1
            return f"illegal base64 data at input byte {si}" if si < n else None


RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_TZ = re.compile(r"^(Z|[+-]\d{2}:\d{2})$")


def micro_time_error(v: str) -> str | None:
    """metav1.MicroTime.UnmarshalJSON: ``time.Parse(RFC3339Micro, v)``, whose layout demands exactly six fraction digits
    (``2024-01-02T03:04:05Z`` and ``...05.123Z`` are refused, as kubernetes/kubernetes#141204 describes), as Go words it:
    ``parsing time "<v>" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "<rest>" as "<layout element>"``."""
    def parse_error(rest: str, element: str) -> str:
        return f'parsing time "{v}" as "{RFC3339_MICRO}": cannot parse "{rest}" as "{element}"'

    if not _DATE_TIME.match(v):
        return parse_error(v, "2006")   # the first layout element that fails is the year for any other shape
    rest = v[19:]
    if len(rest) < 7 or rest[0] != "." or not rest[1:7].isdigit():
        return parse_error(rest, ".000000")
    if not _TZ.match(rest[7:]):
        return parse_error(rest[7:], "Z07:00")
    return None


def quantity_error(v) -> str | None:
    if v is None:
        return None
    text = (v if isinstance(v, str) else json.dumps(v) if not isinstance(v, (int, float)) or isinstance(v, bool)
            else go_number(v)).strip()
    if text == "0":
        return None
    m = QUANTITY_RE.match(text)
    if not text or not m or text.count(".") > 1:
        return QUANTITY_FORMAT
    suffix = m.group(2)
    if suffix not in QUANTITY_SUFFIXES and not re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
        return "unable to parse quantity's suffix"
    return None


class Decoder:
    """Checks objects against the v2 definitions of an ``openapi.OpenAPI``."""

    def __init__(self, definitions: dict):
        self.defs = definitions

    # -- schema helpers ------------------------------------------------------------------------------------------------
    def _deref(self, schema: dict) -> tuple[dict, str | None]:
        name = None
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.defs.get(name, {})
        return schema, name

    @staticmethod
    def _short(defname: str) -> tuple[str, str]:
        parts = defname.split(".")
        return parts[-1], f"{parts[-2]}.{parts[-1]}"

    def kind_of(self, schema: dict) -> str:
        schema, name = self._deref(schema)
        fmt, typ = schema.get("format"), schema.get("type")
        if fmt == "int-or-string":
            return "intstr"
        if fmt == "quantity":
            return "quantity"
        if fmt == "date-time":
            return "microtime" if (name or "").endswith(".MicroTime") else "time"
        if typ == "string":
            return "bytes" if fmt == "byte" else "string"
        if typ == "integer":
            return fmt if fmt in INT_RANGES else "int64"
        if typ in ("boolean", "number", "array"):
            return {"boolean": "bool", "number": "float64", "array": "array"}[typ]
        if typ == "object" and "properties" in schema and name:
            return "struct"
        ap = schema.get("additionalProperties")
        if typ == "object" and isinstance(ap, dict) and ap != {"description": "arbitrary"}:
            return "map"
        return "open"

    def go_type(self, schema: dict) -> str:
        kind = self.kind_of(schema)
        resolved, name = self._deref(schema)
        if kind == "struct":
            return self._short(name)[1]
        if kind == "array":
            return "[]" + self.go_type(resolved["items"])
        if kind == "map":
            value = resolved["additionalProperties"]
            if self.kind_of(value) == "quantity":
                return "v1.ResourceList"
            return "map[string]" + self.go_type(value)
        return {"bytes": "[]uint8", "intstr": "intstr.IntOrString", "quantity": "resource.Quantity", "time": "v1.Time",
                "microtime": "v1.MicroTime",
                "open": "interface {}"}.get(kind, kind)

    # -- JSON decoding (create/update, merge and JSON patches) ---------------------------------------------------------
    def decode_error(self, rt: ResourceType, obj: dict) -> str | None:
        _, props = _kind_props(rt)
        state = {"first": None}
        try:
            for k, v in obj.items():
                if k in props:
                    self._value(v, props[k], rt.kind, [k], state)
        except _Fatal as e:
            return str(e)
        return state["first"]

    def _value(self, v, schema: dict, struct: str, stack: list[str], state: dict) -> None:
        if v is None:
            return
        kind = self.kind_of(schema)
        where = f"Go struct field {struct}.{'.'.join(stack)}"

        def type_error(value_desc: str, go_type: str | None = None) -> None:
            if state["first"] is None:
                state["first"] = f"json: cannot unmarshal {value_desc} into {where} of type {go_type or self.go_type(schema)}"

        if kind == "open":
            return
        if kind in ("intstr", "time", "microtime", "quantity"):
            self._custom(v, kind, where)
            return
        resolved, name = self._deref(schema)
        if kind == "struct":
            if not isinstance(v, dict):
                type_error(json_kind(v))
                return
            inner = self._short(name)[0]
            props = resolved.get("properties") or {}
            for k, sub in v.items():
                if k in props:
                    self._value(sub, props[k], inner, [*stack, k], state)
        elif kind == "map":
            if not isinstance(v, dict):
                type_error(json_kind(v))
                return
            for sub in v.values():
                self._value(sub, resolved["additionalProperties"], struct, stack, state)
        elif kind == "array":
            if not isinstance(v, list):
                type_error(json_kind(v))
                return
            for sub in v:
                self._value(sub, resolved["items"], struct, stack, state)
        elif kind == "bytes":
            if isinstance(v, str):
                err = base64_error(v)
                if err and state["first"] is None:
                    state["first"] = err
            elif not isinstance(v, list):
                type_error(json_kind(v))
        else:
            self._scalar(v, kind, type_error)

    @staticmethod
    def _scalar(v, kind: str, type_error) -> None:
        if kind == "string":
            if not isinstance(v, str):
                type_error(json_kind(v))
        elif kind == "bool":
            if not isinstance(v, bool):
                type_error(json_kind(v))
        elif kind in INT_RANGES:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                type_error(json_kind(v))
            elif isinstance(v, float) or not INT_RANGES[kind][0] <= v <= INT_RANGES[kind][1]:
                type_error(f"number {go_number(v)}")
        elif kind == "float64" and (isinstance(v, bool) or not isinstance(v, (int, float))):
            type_error(json_kind(v))

    @staticmethod
    def _custom(v, kind: str, where: str) -> None:
        """Types with their own UnmarshalJSON: an error there aborts decoding (it wins over earlier type errors)."""
        if kind == "quantity":
            err = quantity_error(v)
            if err:
                raise _Fatal(err)
            return
        if kind in ("time", "microtime"):
            if not isinstance(v, str):
                raise _Fatal(f"json: cannot unmarshal {json_kind(v)} into {where} of type string")
            err = micro_time_error(v) if kind == "microtime" else None
            if err:
                raise _Fatal(err)
            return
        if isinstance(v, str):
            return
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _Fatal(f"json: cannot unmarshal {json_kind(v)} into {where} of type int32")
        if isinstance(v, float) or not INT_RANGES["int32"][0] <= v <= INT_RANGES["int32"][1]:
            raise _Fatal(f"json: cannot unmarshal number {go_number(v)} into {where} of type int32")

    # -- the unstructured converter (strategic merge patches) ----------------------------------------------------------
    def convert_error(self, rt: ResourceType, obj: dict) -> str | None:
        _, props = _kind_props(rt)
        for k, v in obj.items():
            if k in props:
                err = self._convert(v, props[k])
                if err:
                    return err
        return None

    def _convert(self, v, schema: dict) -> str | None:
        if v is None:
            return None
        kind = self.kind_of(schema)
        if kind == "open":
            return None
        resolved, _ = self._deref(schema)
        if kind in ("intstr", "time", "microtime", "quantity"):
            try:
                self._custom(v, kind, "Go value")   # the converter calls UnmarshalJSON without a field context
            except _Fatal as e:
                return str(e)
            return None
        if kind == "struct":
            if not isinstance(v, dict):
                return f"cannot restore struct from: {_go_kind(v)}"
            props = resolved.get("properties") or {}
            return next((e for k, sub in v.items() if k in props for e in [self._convert(sub, props[k])] if e), None)
        if kind == "map":
            if not isinstance(v, dict):
                return f"cannot restore map from {_go_kind(v)}"
            return next((e for sub in v.values() for e in [self._convert(sub, resolved["additionalProperties"])] if e), None)
        if kind in ("array", "bytes"):
            if kind == "bytes" and isinstance(v, str):
                return None
            if not isinstance(v, list):
                return f"cannot restore slice from {_go_kind(v)}"
            if kind == "bytes":
                return None
            return next((e for sub in v for e in [self._convert(sub, resolved["items"])] if e), None)
        return _convert_scalar(v, kind)


def _go_kind(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "map"
    return "slice"


def _convert_scalar(v, kind: str) -> str | None:
    src = _go_kind(v)
    numeric = ("int32", "int64", "float64")
    if (kind == "string" and src == "string") or (kind == "bool" and src == "bool"):
        return None
    if kind in numeric and src == "int64":
        return None
    if kind in numeric and src == "float64":
        return None if kind == "float64" or float(v).is_integer() else f"cannot convert float64 to {kind}"
    if kind == "string" and src == "int64":
        return "cannot convert int64 to string"
    return f"unrecognized type: {kind}"


def go_format(v) -> str:
    """fmt.Sprintf("%+v", v) of a JSON value decoded into Go interface{} maps (sorted keys)."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_format(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_format(x) for x in v) + "]"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return go_number(v)
    return str(v)


def go_quote(s: str) -> str:
    """Go's %q of a string (close enough: JSON string escaping without escaping non-ASCII)."""
    return json.dumps(s, ensure_ascii=False)


def create_error(rt: ResourceType, body: dict, message: str) -> ApiError:
    kind = body.get("kind") or rt.kind
    av = body.get("apiVersion") or rt.api_version
    version = av.rsplit("/", 1)[-1]
    return ApiError(400, f'{kind} in version "{version}" cannot be handled as a {rt.kind}: {message}', "BadRequest")


def patch_error(value: str, message: str) -> ApiError:
    detail = f"Invalid value: {go_quote(value)}: {message}"
    return ApiError(422, f'"" is invalid: patch: {detail}', "Invalid",
                    {"causes": [{"reason": "FieldValueInvalid", "message": detail, "field": "patch"}]})


__all__ = ["Decoder", "base64_error", "create_error", "go_float", "go_format", "patch_error", "quantity_error"]
