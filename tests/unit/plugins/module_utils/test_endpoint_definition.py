"""Issue 13: an endpoint definition is either taken whole or refused, with the field and the rule, before any request."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.odp.model_engine.plugins.module_utils.endpoint_definition import (
    KNOWN_KEYS,
    NOT_SUPPORTED,
    check,
    parse_definition,
)
from ansible_collections.odp.model_engine.plugins.module_utils.endpoint_spec import OwnershipError
from ansible_collections.odp.model_engine.plugins.module_utils.errors import SpecError
from tests.unit.plugins.module_utils.test_endpoint_spec import RUNBOOK

REPO = Path(__file__).resolve().parents[4]


def definition(**over):
    d = copy.deepcopy(RUNBOOK)
    for key, value in over.items():
        if value is ...:
            d.pop(key, None)
        else:
            d[key] = value
    return d


def refused(value, **options):
    with pytest.raises(SpecError) as err:
        check(value, **options)
    return str(err.value)


def test_the_runbook_body_passes_as_a_dict_and_as_json_text():
    assert check(definition())["name"] == "test-endpoint-v1"
    out = check(json.dumps(definition()), source="-e endpoint")
    assert out["definition"] == definition() and out["exists"] is None


def test_yaml_text_like_an_endpoint_file_passes():
    assert check(yaml.safe_dump(definition()))["definition"]["memory"] == "16Gi"


@pytest.mark.parametrize("key, value, expected", [
    ("max_worker", 2, "max_worker: is not a field of an endpoint definition (did you mean max_workers?)"),
    ("lables", {"team": "t"}, "lables: is not a field of an endpoint definition (did you mean labels?)"),
    ("min_worker", 1, "(did you mean min_workers?)"),
    ("checkpoint", "s3://b/x/", "(did you mean checkpoint_path?)"),
    ("zzz", 1, "zzz: is not a field of an endpoint definition; known fields: allow_zero_min_workers, chat_template_override"),
    ("billing_tags", {}, "billing_tags: is not supported by odp.model_engine (billing tags need"),
    ("default_callback_auth", {"kind": "basic"}, "default_callback_auth: is not supported by odp.model_engine ("),
    ("task_expires_seconds", 60, "task_expires_seconds: is not supported by odp.model_engine (it applies to async endpoints only"),
    ("max_model_len", 4096, "max_model_len: is a vLLM engine argument; put it under vllm_args"),
    ("state", "absent", "state: is not part of the endpoint; set the role variable llm_endpoint_state instead"),
    ("id", "end_x", "id: is reported by the gateway, not part of an endpoint definition"),
])
def test_unknown_and_unmanaged_keys_are_refused_with_what_to_do(key, value, expected):
    text = refused(definition(**{key: value}), source="-e endpoint")
    assert text.startswith("Endpoint definition (-e endpoint): ") and expected in text


def test_every_problem_is_reported_at_once():
    text = refused(definition(max_worker=2, lables={}, memory=16, min_workers="two"))
    for fragment in ("max_worker:", "lables:", "min_workers: must be an integer (got 'two')"):
        assert fragment in text
    # the value rules run on converted values only: no spurious memory message when a type is wrong
    assert "memory" not in text


def test_values_are_converted_like_the_module_converts_them():
    check(definition(min_workers="1", max_workers="2", public_inference="yes", gpus="1"))
    assert "public_inference: must be true or false" in refused(definition(public_inference="sometimes"))
    assert "post_inference_hooks: 'audit' is not one of billing, callback, logging" in refused(definition(post_inference_hooks=["audit"]))
    assert "source: must be one of hugging_face (got 'hf')" in refused(definition(source="hf"))


@pytest.mark.parametrize("text, expected", [
    ('{"name": "x", "model_name": }', "-e endpoint: is not valid JSON: Expecting value at line 1, column 29"),
    ('{"name": "x",\n "memory": "16Gi"', "-e endpoint: is not valid JSON: Expecting ',' delimiter at line 2, column 18"),
    ("name: x\n  memory: [", "-e endpoint: is not valid JSON or YAML: mapping values are not allowed here at line 2, column 9"),
    ("[1, 2]", "-e endpoint: must be a dictionary (the endpoint as the runbook's JSON body), not a list"),
    ("", "-e endpoint: is empty"),
    ("just words", "-e endpoint: must be a dictionary (the endpoint as the runbook's JSON body), not a string"),
])
def test_malformed_text_names_the_variable_and_the_position(text, expected):
    with pytest.raises(SpecError) as err:
        parse_definition(text, "-e endpoint")
    assert str(err.value).startswith(expected), str(err.value)


def test_names_must_agree_and_absent_needs_only_a_name():
    assert "name: llm_endpoint_name 'a' and the definition's name 'test-endpoint-v1' differ" in refused(definition(), name="a")
    assert check({}, state="absent", name="Broken.Name.")["name"] == "Broken.Name."
    assert "name: is required (set llm_endpoint_name)" in refused({}, state="absent")
    assert "name: is required (the definition has no name)" in refused(definition(name=...))


def test_after_the_lookup_a_create_gets_the_create_rules():
    assert check(definition(), endpoints=[], user_id="u")["exists"] is False
    text = refused(definition(model_name=..., gpu_type=...), endpoints=[], user_id="u")
    assert text.startswith("Endpoint definition (llm_endpoint_definition), to create test-endpoint-v1: ")
    assert "model_name: is required to create an endpoint" in text and "set all six or none" in text
    # the same definition is a valid update of an existing endpoint
    mine = {"name": "test-endpoint-v1", "spec": {"created_by": "u"}}
    assert check(definition(model_name=..., gpu_type=...), endpoints=[mine], user_id="u") == {
        "definition": definition(model_name=..., gpu_type=...), "name": "test-endpoint-v1", "exists": True, "owner": "u"}


@pytest.mark.parametrize("state, verb", [("present", "created or updated"), ("absent", "deleted")])
def test_another_owners_endpoint_is_refused_with_the_owner_named(state, verb):
    theirs = {"name": "test-endpoint-v1", "id": "end_x", "spec": {"created_by": "someone-else"}}
    with pytest.raises(OwnershipError) as err:
        check(definition() if state == "present" else {}, name="test-endpoint-v1", state=state, endpoints=[theirs], user_id="test-user-id")
    text = str(err.value)
    assert "belongs to someone-else, not to test-user-id" in text and ("cannot be %s by test-user-id" % verb) in text
    assert "-e model_engine_user=someone-else" in text and "choose another name" in text


def test_the_role_maps_every_known_key_and_nothing_else():
    """present.yml passes the definition to the module key by key; the check refuses any other key, so the two
    must list the same keys (the list itself lives in the module's argument spec only)."""
    tasks = yaml.safe_load((REPO / "roles/llm_endpoint/tasks/present.yml").read_text())
    plan, write = [t["odp.model_engine.llm_endpoint"] for t in tasks if "odp.model_engine.llm_endpoint" in t]
    assert plan == write  # the write repeats the read-and-compare's arguments (a YAML alias)
    args = plan
    mapped = {k for k, v in args.items() if re.search(r"\.definition\.%s\b" % k, str(v))}
    assert mapped | {"name"} == set(KNOWN_KEYS)
    assert not set(NOT_SUPPORTED) & set(KNOWN_KEYS)
