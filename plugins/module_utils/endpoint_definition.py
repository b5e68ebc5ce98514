# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An endpoint definition as an operator types it (the role's ``llm_endpoint_definition``, ``-e endpoint``, an
``endpoint_file``, a ``model_engine_endpoints`` declaration), checked before anything happens.

The one place that knows which keys a definition may have: the options of the llm_endpoint module
(``LLM_ENDPOINT_SPEC``, without ``state``). Every other key is refused, with the closest known field (``max_worker``:
did you mean ``max_workers``?), and the gateway's own fields that this collection does not manage get a message
that says so, instead of being dropped. Values are converted as the module will convert them (the same Ansible type
checkers), then ``endpoint_spec.INPUT_RULES`` run, the rules the module runs before its first request. Given the
lookup's answer (``endpoints``), the owner is compared with the caller and a create gets the create-only rules.
The module ``endpoint_spec_check`` is the role's (and the playbooks') way in.
"""

from __future__ import annotations

import json

from ansible.module_utils.common.validation import (
    check_type_bool,
    check_type_dict,
    check_type_float,
    check_type_int,
    check_type_list,
    check_type_path,
    check_type_raw,
    check_type_str,
)

from ansible_collections.odp.model_engine.plugins.module_utils.endpoint_spec import (
    CREATE_RULES,
    INPUT_RULES,
    VLLM_ARGS,
    check_owner,
    did_you_mean,
    problems,
)
from ansible_collections.odp.model_engine.plugins.module_utils.errors import SpecError
from ansible_collections.odp.model_engine.plugins.module_utils.llm_endpoint import LLM_ENDPOINT_SPEC

# The module's options that say what to do, not what the endpoint is.
BEHAVIOUR_KEYS = ("state", "remove_leftovers", "gpu_reservation", "reservation_lease", "reservation_timeout")
KNOWN_KEYS = tuple(key for key in LLM_ENDPOINT_SPEC if key not in BEHAVIOUR_KEYS)

_ASYNC_ONLY = "it applies to async endpoints only, and odp.model_engine manages streaming endpoints"
# Fields of CreateLLMModelEndpointV1Request (model-engine-facts §2.1) the gateway accepts but this collection does not
# manage: refused with the reason rather than sent half-managed or dropped.
NOT_SUPPORTED = {
    "billing_tags": "billing tags need the gateway's billing integration, which the on-prem platform does not run",
    "default_callback_auth": "callback credentials would be stored in the endpoint record in clear text; "
                             "use default_callback_url with an authenticating receiver",
    "enable_startup_metrics": "the OpenTelemetry startup wrapper needs a collector the platform does not run",
    "task_expires_seconds": _ASYNC_ONLY,
    "queue_message_timeout_seconds": _ASYNC_ONLY,
}
# Keys of the gateway's answer (GET), pasted along with a definition.
REPORTED_KEYS = ("id", "status", "status_reason", "spec", "created_by", "created_at", "last_updated_at", "owner",
                 "deployment_name", "destination", "bundle_name", "aws_role", "results_s3_bucket", "num_queued_items",
                 "deployment_state", "resource_state")
# Options of the role, not of the endpoint.
ROLE_KEYS = {"state": "llm_endpoint_state", "wait": "llm_endpoint_wait", "wait_timeout": "llm_endpoint_wait_timeout",
             "namespace": "llm_endpoint_namespace", "gpu_reservation": "llm_endpoint_gpu_reservation"}

_CHECKERS = {"str": check_type_str, "int": check_type_int, "bool": check_type_bool, "dict": check_type_dict,
             "list": check_type_list, "float": check_type_float, "path": check_type_path, "raw": check_type_raw}


# ---------------------------------------------------------------------------- parsing
def parse_definition(value, source):
    """The definition as a dict: a dict is taken as it is, text is read as JSON (or YAML, the form of an AWX
    survey answer or an endpoint_file). A parse error names ``source`` and the position."""
    if isinstance(value, dict):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SpecError("%s: is empty; give the endpoint as the runbook's JSON body (name, model_name, checkpoint_path, "
                        "hardware, workers, labels, metadata) for state present, or llm_endpoint_name for state absent" % source)
    if not isinstance(value, str):
        raise SpecError("%s: must be a dictionary (the endpoint as the runbook's JSON body), not a %s" % (source, _kind(value)))
    data = _parse_text(value, source)
    if not isinstance(data, dict):
        raise SpecError("%s: must be a dictionary (the endpoint as the runbook's JSON body), not a %s" % (source, _kind(data)))
    return data


def _kind(value):
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), type(value).__name__)


def _parse_text(text, source):
    try:
        return json.loads(text)
    except ValueError as e:
        json_error = "%s: is not valid JSON: %s at line %d, column %d (character %d)" % (source, e.msg, e.lineno, e.colno, e.pos + 1)
    if text.lstrip().startswith(("{", "[")):
        raise SpecError(json_error)
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
        raise SpecError(json_error)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = " at line %d, column %d" % (mark.line + 1, mark.column + 1) if mark is not None else ""
        raise SpecError("%s: is not valid JSON or YAML: %s%s" % (source, getattr(e, "problem", None) or e, where))


# ---------------------------------------------------------------------------- keys and types
# (is it this kind of key?, the message): keys the gateway or the role know, in that order, before the typo hint.
_KEY_KINDS = (
    (lambda key: key in NOT_SUPPORTED, lambda key: "%s: is not supported by odp.model_engine (%s); remove it" % (key, NOT_SUPPORTED[key])),
    (lambda key: key in VLLM_ARGS, lambda key: "%s: is a vLLM engine argument; put it under vllm_args (vllm_args: {%s: ...})" % (key, key)),
    (lambda key: key in ROLE_KEYS, lambda key: "%s: is not part of the endpoint; set the role variable %s instead" % (key, ROLE_KEYS[key])),
    (lambda key: key in REPORTED_KEYS, lambda key: "%s: is reported by the gateway, not part of an endpoint definition; remove it" % key),
)


def key_problem(key):
    """Why ``key`` cannot be in a definition, or None for a known field."""
    if key in KNOWN_KEYS:
        return None
    for matches, message in _KEY_KINDS:
        if matches(key):
            return message(key)
    hint = did_you_mean(key, KNOWN_KEYS) or did_you_mean(key, NOT_SUPPORTED)
    if hint:
        return "%s: is not a field of an endpoint definition%s" % (key, hint)
    return "%s: is not a field of an endpoint definition; known fields: %s" % (key, ", ".join(sorted(KNOWN_KEYS)))


_KIND_WORDS = {"int": "an integer", "bool": "true or false", "dict": "a dictionary", "list": "a list"}


def _convert(key, value):
    """(converted value, problem): the conversion the module's argument spec makes, with its choices."""
    spec = LLM_ENDPOINT_SPEC[key]
    kind = spec.get("type", "str")
    try:
        converted = _CHECKERS[kind](value)
    except (TypeError, ValueError):
        return value, "%s: must be %s (got %r)" % (key, _KIND_WORDS.get(kind, "a " + kind), value)
    choices = spec.get("choices")
    if choices and kind == "list":
        bad = [item for item in converted if item not in choices]
        if bad:
            return converted, "%s: %s is not one of %s" % (key, ", ".join(repr(b) for b in bad), ", ".join(choices))
    elif choices and converted not in choices:
        return converted, "%s: must be one of %s (got %r)%s" % (key, ", ".join(choices), converted, did_you_mean(converted, choices))
    return converted, None


def convert(definition):
    """(params as the module would see them, problems): unknown keys and values the module would refuse."""
    found, params = [], {}
    for key in sorted(definition, key=str):
        problem = key_problem(key)
        if problem:
            found.append(problem)
            continue
        value = definition[key]
        if value is None:
            params[key] = None
            continue
        params[key], problem = _convert(key, value)
        if problem:
            found.append(problem)
    for key, spec in LLM_ENDPOINT_SPEC.items():
        if key not in BEHAVIOUR_KEYS and "default" in spec:
            params.setdefault(key, spec["default"])
    return params, found


# ---------------------------------------------------------------------------- the check
def _effective_name(definition, name, state):
    given = definition.get("name")
    if name and given and name != given:
        return name, ["name: llm_endpoint_name %r and the definition's name %r differ; give one name" % (name, given)]
    if not (name or given):
        return None, ["name: is required (%s)" % ("set llm_endpoint_name" if state == "absent" else "the definition has no name")]
    return name or given, []


def check(value, **options):
    """Check a definition; raise SpecError naming ``source`` and every problem, else return what the role uses.

    ``options``: ``source`` (how the operator gave it, for messages), ``name`` (llm_endpoint_name), ``state``,
    ``endpoints`` (llm_endpoint_info's answer for the name: None before the lookup) and ``user_id``.
    Returns ``definition`` (the parsed dict, values as given), ``name``, ``exists`` (None before the lookup), ``owner``.
    """
    source = options.get("source") or "llm_endpoint_definition"
    state = options.get("state") or "present"
    if state == "absent" and not value:
        definition = {}
    else:
        definition = parse_definition(value, source)
    name, found = _effective_name(definition, options.get("name"), state)
    params = {}
    if state == "present":
        params, more = convert(definition)
        found += more
        if not more:
            params["name"] = name
            found += problems(params, INPUT_RULES)
    if found:
        raise SpecError("Endpoint definition (%s): %s" % (source, "; ".join(found)), problems=found)
    out = {"definition": definition, "name": name, "exists": None, "owner": None}
    endpoints = options.get("endpoints")
    if endpoints is None:
        return out
    out["exists"] = bool(endpoints)
    if endpoints:
        check_owner(endpoints[0], options.get("user_id"), state)
        out["owner"] = options.get("user_id")
    elif state == "present":
        found = problems(params, CREATE_RULES)
        if found:
            raise SpecError("Endpoint definition (%s), to create %s: %s" % (source, name, "; ".join(found)), problems=found)
    return out


def run(module):
    """endpoint_spec_check: the check, nothing else (no request, no change)."""
    p = module.params
    if p["endpoints"] is not None and not p["user_id"]:
        raise SpecError("user_id: is required with endpoints (the caller whose ownership is checked)")
    result = check(p["definition"], source=p["definition_source"], name=p["name"], state=p["state"],
                   endpoints=p["endpoints"], user_id=p["user_id"])
    result["changed"] = False
    return result
