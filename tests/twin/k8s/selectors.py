"""Label and field selectors with the grammar of k8s.io/apimachinery (labels.Parse, fields.ParseSelector)."""

from __future__ import annotations

import re
from dataclasses import dataclass


class SelectorError(ValueError):
    pass


@dataclass
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict) -> bool:
        has = self.key in labels
        val = labels.get(self.key)
        if self.op == "=":
            return has and val == self.values[0]
        if self.op == "!=":
            return not has or val != self.values[0]
        if self.op == "in":
            return has and val in self.values
        if self.op == "notin":
            return not has or val not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        raise SelectorError(self.op)


_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _split_top(s: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_label_selector(text: str | None) -> list[Requirement]:
    reqs: list[Requirement] = []
    if not text or not text.strip():
        return reqs
    for raw in _split_top(text):
        term = raw.strip()
        if not term:
            raise SelectorError(f"unable to parse requirement: found '', expected: identifier in {text!r}")
        m = re.match(r"^([^\s!=()]+)\s+(in|notin)\s*\((.*)\)$", term)
        if m:
            key, op, vals = m.group(1), m.group(2), m.group(3)
            values = tuple(v.strip() for v in vals.split(",") if v.strip() != "") if vals.strip() else ()
            _check_key(key)
            for v in values:
                _check_value(v)
            reqs.append(Requirement(key, op, values))
            continue
        if term.startswith("!"):
            key = term[1:].strip()
            _check_key(key)
            reqs.append(Requirement(key, "!"))
            continue
        m = re.match(r"^([^\s!=]+)\s*(==|!=|=)\s*(\S*)$", term)
        if m:
            key, op, val = m.group(1), m.group(2), m.group(3)
            _check_key(key)
            _check_value(val)
            reqs.append(Requirement(key, "!=" if op == "!=" else "=", (val,)))
            continue
        if re.match(r"^[^\s!=()]+$", term):
            _check_key(term)
            reqs.append(Requirement(term, "exists"))
            continue
        raise SelectorError(f"unable to parse requirement: {term!r}")
    return reqs


def _check_key(key: str) -> None:
    if not _LABEL_KEY.match(key) or len(key.rsplit("/", maxsplit=1)[-1]) > 63:
        raise SelectorError(f"invalid label key {key!r}: name part must consist of alphanumeric characters, '-', '_' or '.'")


def _check_value(val: str) -> None:
    if len(val) > 63 or not _LABEL_VALUE.match(val):
        raise SelectorError(f"invalid label value: {val!r}: a valid label must be an empty string or consist of alphanumeric "
                            "characters, '-', '_' or '.', and must start and end with an alphanumeric character")


def labels_match(reqs: list[Requirement], labels: dict | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in reqs)


def selector_from_label_selector(sel: dict | None) -> list[Requirement] | None:
    """metav1.LabelSelector -> requirements. None selector matches nothing; {} matches everything."""
    if sel is None:
        return None
    reqs = [Requirement(k, "=", (v,)) for k, v in (sel.get("matchLabels") or {}).items()]
    for expr in sel.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(expr.get("operator"))
        if op is None:
            raise SelectorError(f"{expr.get('operator')!r} is not a valid label selector operator")
        reqs.append(Requirement(expr["key"], op, tuple(expr.get("values") or ())))
    return reqs


def format_label_selector(sel: dict | None) -> str:
    parts = [f"{k}={v}" for k, v in sorted((sel or {}).get("matchLabels", {}).items())]
    for expr in (sel or {}).get("matchExpressions") or []:
        op = expr.get("operator")
        if op in ("In", "NotIn"):
            parts.append(f"{expr['key']} {op.lower()} ({','.join(expr.get('values') or [])})")
        elif op == "Exists":
            parts.append(expr["key"])
        else:
            parts.append("!" + expr["key"])
    return ",".join(parts)


# ---------------------------------------------------------------------------------------------------------------------
# field selectors

SUPPORTED_FIELDS: dict[str, set[str]] = {
    "*": {"metadata.name", "metadata.namespace"},
    "/pods": {"status.phase", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
              "status.podIP", "status.nominatedNodeName", "spec.hostNetwork"},
    "/events": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                "reportingComponent", "source", "type", "regarding.kind", "regarding.name", "regarding.namespace",
                "regarding.uid", "note"},
    "/secrets": {"type"},
    "/nodes": {"spec.unschedulable"},
    "/namespaces": {"status.phase"},
    "apps/replicasets": {"status.replicas"},
}


@dataclass
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str


def parse_field_selector(text: str | None, storage_key: str) -> list[FieldRequirement]:
    reqs: list[FieldRequirement] = []
    if not text or not text.strip():
        return reqs
    allowed = SUPPORTED_FIELDS["*"] | SUPPORTED_FIELDS.get(storage_key, set())
    for raw in text.split(","):
        term = raw.strip()
        m = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", term)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        fld, op, val = m.group(1).strip(), m.group(2), m.group(3).strip()
        if fld not in allowed:
            raise SelectorError(f'field label not supported: {fld}')
        reqs.append(FieldRequirement(fld, "!=" if op == "!=" else "=", val))
    return reqs


def _field_value(obj: dict, path: str) -> str:
    if path == "source":
        src = obj.get("source") or {}
        return src.get("component", "")
    if path == "reportingComponent":
        return obj.get("reportingComponent", "")
    if path.startswith("regarding."):
        path = "involvedObject." + path[len("regarding."):]
    if path == "note":
        path = "message"
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
        if cur is None:
            return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(reqs: list[FieldRequirement], obj: dict) -> bool:
    for r in reqs:
        v = _field_value(obj, r.field)
        if r.field == "type" and not v and obj.get("kind") == "Secret":
            v = "Opaque"
        if (r.op == "=") != (v == r.value):
            return False
    return True
