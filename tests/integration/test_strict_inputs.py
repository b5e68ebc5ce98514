"""Issue 13 on the twin: what an operator types is either done exactly or refused before anything happens.

Every wrong input goes through the role as a playbook user types it (``create_endpoint.yml -e ...``); the twin's
request log shows what the run sent to the gateway, the Kubernetes API and S3 after the play started (the
inventory plugin's list of the gateway, made while Ansible loads the inventory, is not the play's).
"""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils.endpoint_definition import check
from ansible_collections.odp.model_engine.plugins.module_utils.errors import SpecError
from tests.integration.conftest import create_endpoint
from tests.twin.tests.conftest_platform import RUNBOOK_BODY
from tests.unit.plugins.module_utils.test_endpoint_spec import BAD as UNIT_BAD
from tests.unit.plugins.module_utils.test_endpoint_spec import params

FAST = {"llm_endpoint_progress_interval": 1}
FIRST_CHECK = "Check the endpoint definition before any request"
SECOND_CHECK = "Read the endpoint and compare it with the definition (changes nothing)"
DELETE_TASK = "Delete the endpoint through the model-engine API, then whatever of its objects is left (every kind, by label)"


def body(**over):
    b = copy.deepcopy(RUNBOOK_BODY)
    for key, value in over.items():
        if value is ...:
            b.pop(key, None)
        else:
            b[key] = value
    return b


def failures(run):
    """(task name, msg) of every failed task of a run (of each failed item of a loop), from its job events."""
    out = []
    for ev in run.events:
        if ev.get("event") == "runner_on_failed":
            data = ev.get("event_data") or {}
            res = data.get("res") or {}
            items = [r for r in res.get("results") or [] if r.get("failed")]
            out.extend((data.get("task"), r.get("msg") or "") for r in items or [res])
    return out


def play_start(run):
    for ev in run.events:
        if ev.get("event") == "playbook_on_start":
            return dt.datetime.fromisoformat(ev["created"]).timestamp()
    raise AssertionError("no playbook_on_start event")


class Counted(object):
    """What a playbook run sent to the twin after its play started."""

    def __init__(self, odp_twin, playbook):
        self.odp_twin = odp_twin
        self.playbook = playbook

    def __call__(self, name, **kw):
        before = {k: len(v or []) for k, v in self.odp_twin.client_requests().items()}
        run = self.playbook(name, **kw)
        after = self.odp_twin.client_requests()
        start = play_start(run)
        run.sent = {
            "gateway": [(m, p) for t, m, p, _s, _u in after["gateway"][before["gateway"]:] if t >= start],
            "kubernetes": [(m, p) for _t, m, p, _s in after["kubernetes"][before["kubernetes"]:]],
            "s3": list((after["s3"] or [])[before["s3"]:]),
        }
        return run


@pytest.fixture
def counted(odp_twin, playbook):
    assert odp_twin.client_requests()["s3"] is not None, "the twin's S3 server does not record requests (moto needed)"
    return Counted(odp_twin, playbook)


# ------------------------------------------------------------------------------------------ the table
# (what the operator types, the field and rule the message must name). ``-e endpoint`` is a dict unless it is text.
NEW = [
    (body(max_worker=2), "max_worker: is not a field of an endpoint definition (did you mean max_workers?)"),
    (body(lables={"team": "test", "product": "llm-engine"}), "lables: is not a field of an endpoint definition (did you mean labels?)"),
    (body(min_worker=1), "min_worker: is not a field of an endpoint definition (did you mean min_workers?)"),
    (body(checkpoint="s3://scale-gp-models/intermediate-model-aws/"), "checkpoint: is not a field of an endpoint definition (did you mean"),
    (body(billing_tags={"product": "x"}), "billing_tags: is not supported by odp.model_engine ("),
    (body(default_callback_auth={"kind": "basic", "username": "u", "password": "p"}), "default_callback_auth: is not supported by odp.model_engine ("),
    (body(task_expires_seconds=60), "task_expires_seconds: is not supported by odp.model_engine (it applies to async endpoints only"),
    (body(max_model_len=4096), "max_model_len: is a vLLM engine argument; put it under vllm_args"),
    (body(state="absent"), "state: is not part of the endpoint; set the role variable llm_endpoint_state instead"),
    (body(id="end_cismpd08agn003rr2kc0"), "id: is reported by the gateway, not part of an endpoint definition"),
    (body(min_workers="two"), "min_workers: must be an integer (got 'two')"),
    (body(public_inference="sometimes"), "public_inference: must be true or false"),
    (body(source="hf"), "source: must be one of hugging_face (got 'hf')"),
    (json.dumps(body(max_worker=2)), "max_worker: is not a field of an endpoint definition (did you mean max_workers?)"),
    ('{"name": "survey-ep", "model_name": }', "-e endpoint: is not valid JSON: Expecting value at line 1, column 37"),
    ('{"name": "survey-ep",\n "memory": "16Gi"', "-e endpoint: is not valid JSON: Expecting ',' delimiter at line 2, column 18"),
    ("name: survey-ep\n  memory: [", "-e endpoint: is not valid JSON or YAML: mapping values are not allowed here at line 2, column 9"),
    ("[1, 2]", "-e endpoint: must be a dictionary (the endpoint as the runbook's JSON body), not a list"),
]
# Every third case of the module's own unit table (all of them run at module level in the unit tests, in
# milliseconds), typed as a definition, and every new one: a playbook run costs seconds, CI has a budget.
SAMPLED = UNIT_BAD[::3]
TABLE = [(params(**overrides), fragment) for overrides, fragment in SAMPLED] + NEW
IDS = ["unit: %s" % fragment[:50] for _o, fragment in SAMPLED] + ["new: %s" % fragment[:50] for _d, fragment in NEW]


def input_only(definition):
    """Whether the rule needs nothing but the input; else it is a create rule, which needs to know that the
    endpoint does not exist yet (one GET)."""
    try:
        check(definition, source="-e endpoint")
    except SpecError:
        return True
    return False


def test_the_table_is_big_enough():
    assert len(TABLE) >= 30 and len(UNIT_BAD) >= 44


@pytest.mark.parametrize("definition, fragment", TABLE, ids=IDS)
def test_a_wrong_input_is_refused_with_field_and_rule_and_nothing_happens(counted, gateway, odp_twin, definition, fragment):
    records = len(odp_twin.engine.records)
    run = counted("create_endpoint.yml", extra=dict(FAST, endpoint=definition))
    assert run.rc != 0, run
    [(task, msg)] = failures(run)
    assert fragment in msg, msg
    assert run.sent["kubernetes"] == [] and run.sent["s3"] == [], run.sent
    if input_only(definition):
        assert task == FIRST_CHECK, (task, msg)
        assert run.sent["gateway"] == [], run.sent  # refused before the first request
    else:  # a create rule: after the one read that says the endpoint does not exist, before any write
        assert task == SECOND_CHECK, (task, msg)
        assert run.sent["gateway"] == [("GET", "/v1/llm/model-endpoints/%s" % definition["name"])], run.sent
    assert len(odp_twin.engine.records) == records  # nothing created


def test_an_endpoint_file_with_a_typo_names_the_file(counted, gateway, tmp_path):
    path = tmp_path / "my-endpoint.yml"
    path.write_text("name: file-ep\nmodel_name: test-model\nmax_worker: 2\n")
    run = counted("create_endpoint.yml", extra=dict(FAST, endpoint_file=str(path)))
    assert run.rc != 0
    [(task, msg)] = failures(run)
    assert task == FIRST_CHECK
    assert msg.startswith("Endpoint definition (endpoint_file %s): " % path) and "(did you mean max_workers?)" in msg
    assert run.sent == {"gateway": [], "kubernetes": [], "s3": []}


def test_a_typo_on_an_existing_endpoint_is_refused_not_reported_as_unchanged(counted, gateway, odp_twin):
    """The issue's first finding: re-running create with max_worker: 2 on an existing endpoint said 'already as
    described' (rc 0, changed 0)."""
    create_endpoint(gateway, "typo-ep", wait=False)
    [record] = [r for r in odp_twin.engine.records.values() if r["name"] == "typo-ep"]
    run = counted("create_endpoint.yml", extra=dict(FAST, endpoint=body(name="typo-ep", max_worker=2)))
    assert run.rc != 0 and run.changed == 0
    assert "max_worker: is not a field of an endpoint definition (did you mean max_workers?)" in failures(run)[0][1]
    assert "already as described" not in run.stdout
    assert run.sent == {"gateway": [], "kubernetes": [], "s3": []}  # no PUT: nothing was changed either
    assert record["max_workers"] == 1


def test_site_refuses_a_declaration_with_a_typo_before_it_deploys_anything(counted, gateway):
    declared = [body(), body(name="second-ep", lables={"team": "t", "product": "p"}, labels=...)]
    run = counted("site.yml", extra={"model_engine_endpoints": declared})
    assert run.rc != 0
    [(task, msg)] = failures(run)
    assert task == "Check each declaration (keys, values, quantities) without any request"
    assert "Endpoint definition (model_engine_endpoints[1]): lables: is not a field of an endpoint definition (did you mean labels?)" in msg
    assert run.sent == {"gateway": [], "kubernetes": [], "s3": []}  # not even the deploy's reads


# ------------------------------------------------------------------------------------------ ownership
OWNER = "someone-else"


@pytest.fixture
def theirs(gateway):
    """An endpoint of another user, public (the gateway's default), with the name this user wants."""
    create_endpoint(gateway.as_user(OWNER), "shared-name", wait=False)
    return gateway.get("/v1/llm/model-endpoints/shared-name").json()


def assert_refused_for_the_owner(run, odp_twin, theirs, task):
    assert run.rc != 0 and run.changed == 0, run
    [(failed_task, msg)] = failures(run)
    assert failed_task == task, (failed_task, msg)
    assert "Endpoint shared-name belongs to %s, not to test-user-id" % OWNER in msg
    assert "-e model_engine_user=%s" % OWNER in msg and "choose another name" in msg
    assert not [m for m, _p in run.sent["gateway"] if m != "GET"], run.sent  # no POST, PUT or DELETE
    [record] = [r for r in odp_twin.engine.records.values() if r["name"] == "shared-name"]  # no second one either
    assert record["id"] == theirs["id"] and record["owner"] == OWNER and record["max_workers"] == 1


def test_create_with_another_owners_name_is_refused_with_the_owner_named(counted, gateway, theirs, odp_twin):
    run = counted("create_endpoint.yml", extra=dict(FAST, endpoint=body(name="shared-name")))
    assert_refused_for_the_owner(run, odp_twin, theirs, SECOND_CHECK)
    assert run.sent["gateway"] == [("GET", "/v1/llm/model-endpoints/shared-name")]
    assert run.sent["kubernetes"] == [] and run.sent["s3"] == []  # before the preflight


def test_update_of_another_owners_endpoint_is_refused_with_the_owner_named(counted, gateway, theirs, odp_twin):
    run = counted("create_endpoint.yml", extra=dict(FAST, endpoint=body(name="shared-name", max_workers=2)))
    assert_refused_for_the_owner(run, odp_twin, theirs, SECOND_CHECK)


def test_delete_of_another_owners_endpoint_is_refused_with_the_owner_named(counted, gateway, theirs, odp_twin):
    run = counted("delete_endpoint.yml", extra={"endpoint_name": "shared-name"})
    assert_refused_for_the_owner(run, odp_twin, theirs, DELETE_TASK)
    assert "403" not in failures(run)[0][1]


@pytest.mark.parametrize("args", [dict(state="absent"), dict(max_workers=2), dict(RUNBOOK_BODY, name="shared-name")],
                         ids=["delete", "update", "create"])
def test_the_module_itself_refuses_another_owners_endpoint(module, gateway, theirs, odp_twin, args):
    seen = len(odp_twin.client_requests()["gateway"])
    res = module("llm_endpoint", **dict(args, name="shared-name"))
    assert res["failed"] is True and res["changed"] is False
    assert "belongs to %s, not to test-user-id" % OWNER in res["msg"] and res["owner"] == OWNER
    sent = [(m, p) for _t, m, p, _s, _u in odp_twin.client_requests()["gateway"][seen:]]
    assert sent == [("GET", "/v1/llm/model-endpoints/shared-name")]


# ------------------------------------------------------------------------------------------ the create's attempts
def test_a_persistent_503_on_create_counts_every_attempt_in_the_message(module, gateway, odp_twin):
    odp_twin.faults.add("api_error", route=r"^POST /v1/llm/model-endpoints$", status=503, count=50)
    res = module("llm_endpoint", **dict(RUNBOOK_BODY, name="busy-ep"))
    assert res["failed"] is True
    assert res["api_error"]["attempts"] == 5
    assert "returned HTTP 503 after 5 attempt(s)" in res["msg"]


# ------------------------------------------------------------------------------------------ the CA bundle
def test_model_engine_ca_path_reaches_the_modules(playbook, gateway, tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    run = playbook("endpoint_status.yml", extra={"model_engine_ca_path": str(missing)})
    assert run.rc != 0
    assert any("ca_path: %s is not a file" % missing in msg for _t, msg in failures(run)), failures(run)
    import certifi

    assert playbook("endpoint_status.yml", extra={"model_engine_ca_path": certifi.where()}).rc == 0
