"""The odp.model_engine.endpoints inventory plugin, against a scripted gateway (tests/unit/fake_gateway.py).

The inventories are built the way ansible-inventory builds them (InventoryManager over a directory with
group_vars/, a static hosts.yml and the plugin's config file); failures are asserted on the plugin's own
parse(), since the InventoryManager turns a failed source into warnings.
"""

from __future__ import annotations

import base64
import socket
import sys

import pytest
import yaml
from ansible import constants as C
from ansible import context
from ansible.errors import AnsibleError
from ansible.inventory.data import InventoryData
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.template import Templar, trust_as_template
from ansible.utils.context_objects import CLIArgs
from ansible.utils.vars import load_extra_vars
from ansible.vars.manager import VariableManager

from ansible_collections.odp.model_engine.plugins.inventory.endpoints import host_groups, live_summary

LIST = "/v1/llm/model-endpoints"
USER = "u-123"

DECLARED_A = {"name": "ep-a", "model_name": "m", "gpu_type": "nvidia-tesla-t4", "gpus": 1, "labels": {"team": "search", "product": "p"}}
DECLARED_B = {"name": "ep-b", "model_name": "m", "gpu_type": "nvidia-ampere-a10", "labels": {"team": "search", "product": "p"}}


def record(name, status="READY", user=USER, eid=None, gpu_type="nvidia-tesla-t4", labels=None, available=1, tag="vllm-onprem", reason=None):
    return {
        "id": eid or "end_%s" % name.replace("-", "_"), "name": name, "model_name": "m", "status": status,
        "inference_framework": "vllm", "inference_framework_image_tag": tag,
        "spec": {
            "created_by": user, "labels": labels if labels is not None else {"team": "search", "product": "p"},
            "status_reason": reason, "public_inference": True, "created_at": "2026-01-01T00:00:00Z", "last_updated_at": "2026-01-02T00:00:00Z",
            "deployment_state": {"available_workers": available, "unavailable_workers": 1 - available if available <= 1 else 0},
            "resource_state": {"gpu_type": gpu_type, "gpus": 1},
        },
    }


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_inventory(root, config=None, group_vars=None, name="endpoints.model_engine.yml"):
    """An inventory directory as in inventories/<env>: group_vars/all/main.yml, hosts.yml, the plugin config."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    (root / "group_vars" / "all" / "main.yml").write_text("---\n" + yaml.safe_dump(group_vars or {}))
    (root / "hosts.yml").write_text("---\nmodel_engine:\n  hosts:\n    control-host:\n      ansible_connection: local\n")
    (root / name).write_text("---\n" + yaml.safe_dump(dict({"plugin": "odp.model_engine.endpoints", "retries": 0}, **(config or {}))))
    return root


def build(root, cache=True):
    return InventoryManager(loader=DataLoader(), sources=[str(root)], cache=cache)


def parse(root, name="endpoints.model_engine.yml", cache=True):
    """The plugin alone on its config file; raises what the InventoryManager would only warn about."""
    plugin = inventory_loader.get("odp.model_engine.endpoints")
    data = InventoryData()
    plugin.parse(data, DataLoader(), str(root / name), cache=cache)
    return data


def members(inv, group):
    return sorted(h.name for h in inv.groups[group].get_hosts()) if group in inv.groups else None


def hostvars(inv, name):
    return inv.get_host(name).get_vars()


@pytest.fixture(autouse=True)
def no_extra_vars(monkeypatch):
    """No -e and no MODEL_ENGINE_* variable, unless a test sets them (load_extra_vars memoizes its answer)."""
    monkeypatch.setattr(context, "CLIARGS", CLIArgs({}))
    monkeypatch.setattr(load_extra_vars, "extra_vars", None, raising=False)
    for var in ("MODEL_ENGINE_URL", "MODEL_ENGINE_USER_ID", "MODEL_ENGINE_VALIDATE_CERTS", "MODEL_ENGINE_CA_PATH",
                "MODEL_ENGINE_INVENTORY_INCLUDE_LIVE"):
        monkeypatch.delenv(var, raising=False)
    yield
    load_extra_vars.extra_vars = None


def extra_vars(monkeypatch, **values):
    monkeypatch.setattr(context, "CLIARGS", CLIArgs({"extra_vars": tuple("%s=%s" % kv for kv in values.items())}))
    load_extra_vars.extra_vars = None


@pytest.fixture
def fleet(gateway, tmp_path):
    """ep-a declared and READY, ep-b declared but absent, ep-c live only (UPDATE_FAILED, other team, A10),
    ep-d live only and building, and a public endpoint of another user that is not ours."""
    gateway.default("GET", LIST, 200, {"model_endpoints": [
        record("ep-a"),
        record("ep-c", status="UPDATE_FAILED", gpu_type="nvidia-ampere-a10", labels={"team": "nlp", "product": "p"}, available=0,
               reason="model files do not fit in ephemeral storage"),
        record("ep-d", status="UPDATE_IN_PROGRESS", available=0),
        record("theirs", user="someone-else"),
    ]})
    group_vars = {"model_engine_url": gateway.url, "model_engine_user": USER, "model_engine_endpoints": [DECLARED_A, DECLARED_B]}
    return write_inventory(tmp_path / "local", group_vars=group_vars)


# ---------------------------------------------------------------------------- hosts, groups, host vars
def test_one_host_per_endpoint_with_declared_live_and_status_groups(gateway, fleet):
    inv = build(fleet)
    assert members(inv, "llm_endpoints") == ["ep-a", "ep-b", "ep-c", "ep-d"]  # not 'theirs': public, but another user's
    assert members(inv, "declared") == ["ep-a", "ep-b"]
    assert members(inv, "undeclared") == ["ep-c", "ep-d"]
    assert members(inv, "absent") == ["ep-b"]
    assert members(inv, "ready") == ["ep-a"]
    assert members(inv, "pending") == ["ep-d"]
    assert members(inv, "failed") == ["ep-c"]
    assert members(inv, "deleting") == []
    assert members(inv, "gpu_type_nvidia_tesla_t4") == ["ep-a", "ep-d"]
    assert members(inv, "gpu_type_nvidia_ampere_a10") == ["ep-b", "ep-c"]  # ep-b from its declaration, ep-c from the live record
    assert members(inv, "team_search") == ["ep-a", "ep-b", "ep-d"]
    assert members(inv, "team_nlp") == ["ep-c"]
    # every group of the plugin hangs under the parent group; the static control-plane host is untouched
    children = sorted(g.name for g in inv.groups["llm_endpoints"].child_groups)
    assert children == sorted(["declared", "undeclared", "absent", "ready", "pending", "failed", "deleting",
                               "gpu_type_nvidia_tesla_t4", "gpu_type_nvidia_ampere_a10", "team_search", "team_nlp"])
    assert members(inv, "model_engine") == ["control-host"]
    assert "control-host" not in members(inv, "llm_endpoints")
    # one list request, authenticated as the user (HTTP Basic, empty password)
    calls = gateway.calls("GET", LIST)
    assert len(calls) == 1
    assert calls[0]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"u-123:").decode()


def test_host_vars_hold_the_declaration_and_the_live_record(fleet):
    inv = build(fleet)
    a = hostvars(inv, "ep-a")
    assert a["ansible_connection"] == "local"
    assert a["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"
    assert a["model_engine_endpoint"] == DECLARED_A
    live = a["model_engine_endpoint_live"]
    assert live["id"] == "end_ep_a" and live["status"] == "READY" and live["serving"] is True
    assert live["k8s_resource_name"] == "launch-endpoint-id-end-ep-a"
    assert live["owner"] == USER and live["image_tag"] == "vllm-onprem" and live["available_workers"] == 1
    assert hostvars(inv, "ep-b")["model_engine_endpoint_live"] is None  # declared, not live
    c = hostvars(inv, "ep-c")
    assert c["model_engine_endpoint"] is None  # live, not declared
    assert c["model_engine_endpoint_live"]["status_reason"] == "model files do not fit in ephemeral storage"
    assert c["model_engine_endpoint_live"]["serving"] is False


def test_playbook_variables_resolve_and_live_strings_are_never_templated(gateway, tmp_path):
    """The interpreter template resolves in a play; a gateway string that looks like a template stays text."""
    gateway.default("GET", LIST, 200, {"model_endpoints": [record("ep-x", status="UPDATE_FAILED", reason="{{ 6 * 7 }}")]})
    root = write_inventory(tmp_path / "inv", group_vars={"model_engine_url": gateway.url, "model_engine_user": USER})
    loader = DataLoader()
    inv = InventoryManager(loader=loader, sources=[str(root)])
    variables = VariableManager(loader=loader, inventory=inv).get_vars(host=inv.get_host("ep-x"))
    templar = Templar(loader=loader, variables=variables)
    assert templar.template(trust_as_template("{{ ansible_python_interpreter }}")) == sys.executable
    assert templar.template(trust_as_template("{{ model_engine_endpoint_live.status_reason }}")) == "{{ 6 * 7 }}"


def test_live_summary_and_groups_of_a_record_without_spec():
    live = live_summary({"id": "end_a_b", "name": "e", "status": "UPDATE_PENDING", "spec": None})
    assert live["k8s_resource_name"] == "launch-endpoint-id-end-a-b" and live["available_workers"] == 0 and live["owner"] is None
    assert host_groups(None, live, True, ["team"]) == ["undeclared", "pending"]
    assert host_groups({"name": "e"}, None, False, ["team"]) == ["declared"]  # live state unknown: not 'absent'


# ---------------------------------------------------------------------------- where the settings come from
def test_group_vars_are_templated_and_extra_vars_win(gateway, tmp_path, monkeypatch):
    gateway.default("GET", LIST, 200, {"model_endpoints": [record("ep-a", user="from-env")]})
    monkeypatch.setenv("ODP_TEST_INVENTORY_USER", "from-env")
    group_vars = {"model_engine_url": "http://127.0.0.1:%d" % free_port(),  # nothing listens there
                  "model_engine_user": "{{ lookup('ansible.builtin.env', 'ODP_TEST_INVENTORY_USER') }}"}
    root = write_inventory(tmp_path / "dev", group_vars=group_vars)
    extra_vars(monkeypatch, model_engine_url=gateway.url)
    inv = build(root)
    assert members(inv, "undeclared") == ["ep-a"]
    assert gateway.calls("GET", LIST)[0]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"from-env:").decode()


def test_config_options_win_over_group_vars_and_may_be_templates(gateway, tmp_path):
    gateway.default("GET", LIST, 200, {"model_endpoints": [record("ep-a", user="cfg-user")]})
    group_vars = {"model_engine_url": "http://127.0.0.1:%d" % free_port(), "model_engine_user": USER, "gw": gateway.url}
    root = write_inventory(tmp_path / "inv", config={"url": "{{ gw }}", "user_id": "cfg-user"}, group_vars=group_vars)
    assert members(build(root), "undeclared") == ["ep-a"]


def test_env_var_is_the_last_fallback(gateway, tmp_path, monkeypatch):
    gateway.default("GET", LIST, 200, {"model_endpoints": [record("ep-a")]})
    monkeypatch.setenv("MODEL_ENGINE_URL", gateway.url)
    monkeypatch.setenv("MODEL_ENGINE_USER_ID", USER)
    root = write_inventory(tmp_path / "inv")
    assert members(build(root), "undeclared") == ["ep-a"]


def test_inline_declarations_and_another_declarations_var(gateway, tmp_path):
    gateway.default("GET", LIST, 200, {"model_endpoints": []})
    base = {"model_engine_url": gateway.url, "model_engine_user": USER, "model_engine_endpoints": [DECLARED_A]}
    inline = write_inventory(tmp_path / "inline", config={"declarations": [DECLARED_B]}, group_vars=base)
    assert members(build(inline), "absent") == ["ep-b"]
    other = write_inventory(tmp_path / "other", config={"declarations_var": "fleet"}, group_vars=dict(base, fleet=[DECLARED_B]))
    assert members(build(other), "declared") == ["ep-b"]


def test_include_live_false_makes_no_request(gateway, tmp_path):
    root = write_inventory(tmp_path / "inv", config={"include_live": False}, group_vars={"model_engine_endpoints": [DECLARED_A, DECLARED_B]})
    inv = build(root)
    assert members(inv, "declared") == ["ep-a", "ep-b"] and members(inv, "absent") == [] and members(inv, "ready") == []
    assert "model_engine_endpoint_live" not in hostvars(inv, "ep-a")  # unknown, not absent
    assert gateway.requests == []


# ---------------------------------------------------------------------------- constructed features
def test_compose_keyed_groups_and_groups(gateway, tmp_path):
    gateway.default("GET", LIST, 200, {"model_endpoints": [record("ep-a", tag="0.10.1"), record("ep-z", available=0)]})
    config = {
        "compose": {"endpoint_url": "model_engine_url ~ '/v1/llm/model-endpoints/' ~ inventory_hostname",
                    "ansible_connection": "'local'", "env_name": "odp_environment"},
        "keyed_groups": [{"prefix": "image", "key": "model_engine_endpoint_live.image_tag"}],
        "groups": {"not_serving": "not model_engine_endpoint_live.serving"},
        "label_groups": ["team", "product"],
    }
    group_vars = {"model_engine_url": gateway.url, "model_engine_user": USER, "odp_environment": "dev",
                  "model_engine_endpoints": [DECLARED_A]}
    inv = build(write_inventory(tmp_path / "inv", config=config, group_vars=group_vars))
    assert hostvars(inv, "ep-a")["endpoint_url"] == gateway.url + "/v1/llm/model-endpoints/ep-a"
    assert hostvars(inv, "ep-z")["env_name"] == "dev"  # group_vars/all are visible to compose
    assert members(inv, "image_0_10_1") == ["ep-a"] and members(inv, "image_vllm_onprem") == ["ep-z"]
    assert members(inv, "not_serving") == ["ep-z"]
    assert members(inv, "product_p") == ["ep-a", "ep-z"]


def test_strict_compose_errors_fail_the_source(gateway, tmp_path):
    gateway.default("GET", LIST, 200, {"model_endpoints": [record("ep-a")]})
    group_vars = {"model_engine_url": gateway.url, "model_engine_user": USER}
    lenient = write_inventory(tmp_path / "lenient", config={"compose": {"x": "no_such_var.field"}}, group_vars=group_vars)
    assert "x" not in hostvars(build(lenient), "ep-a")
    strict = write_inventory(tmp_path / "strict", config={"compose": {"x": "no_such_var.field"}, "strict": True}, group_vars=group_vars)
    with pytest.raises(AnsibleError, match="Could not set x for host ep-a"):
        parse(strict)


# ---------------------------------------------------------------------------- cache
def test_cache_hit_within_the_timeout_does_not_call_the_gateway(gateway, tmp_path):
    gateway.default("GET", LIST, 200, {"model_endpoints": [record("ep-a")]})
    config = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache"), "cache_timeout": 300}
    root = write_inventory(tmp_path / "inv", config=config, group_vars={"model_engine_url": gateway.url, "model_engine_user": USER})
    assert members(build(root), "ready") == ["ep-a"]
    assert len(gateway.calls("GET", LIST)) == 1
    assert list((tmp_path / "cache").iterdir()), "the jsonfile cache wrote nothing"

    gateway.default("GET", LIST, 200, {"model_endpoints": [record("ep-a"), record("ep-new")]})
    again = build(root)
    assert members(again, "ready") == ["ep-a"]  # the cached list, not the gateway's new one
    assert hostvars(again, "ep-a")["model_engine_endpoint_live"]["k8s_resource_name"] == "launch-endpoint-id-end-ep-a"
    assert len(gateway.calls("GET", LIST)) == 1

    flushed = build(root, cache=False)  # ansible-inventory --flush-cache
    assert members(flushed, "ready") == ["ep-a", "ep-new"]
    assert len(gateway.calls("GET", LIST)) == 2
    assert members(build(root), "ready") == ["ep-a", "ep-new"]  # the refreshed list was cached
    assert len(gateway.calls("GET", LIST)) == 2


def test_cache_serves_while_the_gateway_is_down_and_expires(gateway, tmp_path):
    port = free_port()
    cache = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache"), "request_timeout": 5}
    gateway.default("GET", LIST, 200, {"model_endpoints": [record("ep-a")]})
    group_vars = {"model_engine_url": gateway.url, "model_engine_user": USER}
    root = write_inventory(tmp_path / "inv", config=dict(cache, cache_timeout=300), group_vars=group_vars)
    assert members(build(root), "ready") == ["ep-a"]
    # the same config file, now pointing at a dead gateway: a cache entry for another URL is not used
    write_inventory(root, config=dict(cache, cache_timeout=300), group_vars=dict(group_vars, model_engine_url="http://127.0.0.1:%d" % port))
    with pytest.raises(AnsibleError, match="cannot list the endpoints"):
        parse(root)
    write_inventory(root, config=dict(cache, cache_timeout=300), group_vars=group_vars)
    gateway.server.shutdown()  # the gateway goes down: nothing listens on its port any more
    gateway.server.server_close()
    assert members(build(root), "ready") == ["ep-a"]  # served from the cache
    write_inventory(root, config=dict(cache, cache_timeout=-1), group_vars=group_vars)  # every entry has expired
    with pytest.raises(AnsibleError, match="cannot list the endpoints of the model-engine gateway at %s" % gateway.url):
        parse(root)


# ---------------------------------------------------------------------------- errors
def test_gateway_down_names_the_url_and_the_cause(tmp_path):
    url = "http://127.0.0.1:%d" % free_port()
    root = write_inventory(tmp_path / "inv",
                           group_vars={"model_engine_url": url, "model_engine_user": USER, "model_engine_endpoints": [DECLARED_A]})
    with pytest.raises(AnsibleError) as e:
        parse(root)
    msg = str(e.value)
    assert "cannot list the endpoints of the model-engine gateway at %s for user %s" % (url, USER) in msg
    assert "Connection refused" in msg and "include_live: false" in msg
    # Ansible goes on with the other sources: the control-plane host stays usable, no endpoint host appears
    inv = build(root)
    assert members(inv, "model_engine") == ["control-host"] and "ep-a" not in inv.hosts


@pytest.mark.parametrize("status, body, expect", [
    (401, {"detail": "Not authenticated"}, "returned HTTP 401: Not authenticated"),
    (500, {"error": "Internal error occurred.", "request_id": "r-1"}, "returned HTTP 500: Internal error occurred. (request_id r-1)"),
])
def test_gateway_errors_name_the_status_and_detail(gateway, tmp_path, status, body, expect):
    gateway.default("GET", LIST, status, body)
    root = write_inventory(tmp_path / "inv", group_vars={"model_engine_url": gateway.url, "model_engine_user": USER})
    with pytest.raises(AnsibleError, match="gateway at %s" % gateway.url) as e:
        parse(root)
    assert expect in str(e.value)


def test_a_failed_source_asks_the_gateway_once_although_auto_tries_it_again(gateway, tmp_path):
    assert "odp.model_engine.endpoints" in C.INVENTORY_ENABLED and "auto" in C.INVENTORY_ENABLED, "run from the repo root (ansible.cfg)"
    gateway.default("GET", LIST, 503, {"detail": "down"})
    root = write_inventory(tmp_path / "inv", group_vars={"model_engine_url": gateway.url, "model_engine_user": USER})
    inv = build(root)
    assert members(inv, "model_engine") == ["control-host"]
    assert len(gateway.calls("GET", LIST)) == 1  # retries: 0; the 'auto' plugin's second attempt re-raised the first failure
    build(root)  # a new inventory (ansible-playbook run, meta: refresh_inventory) asks again
    assert len(gateway.calls("GET", LIST)) == 2


@pytest.mark.parametrize("group_vars, expect", [
    ({"model_engine_user": USER}, "no gateway URL"),
    ({"model_engine_url": "http://127.0.0.1:1", "model_engine_user": ""}, "no model-engine user for http://127.0.0.1:1"),
    ({"model_engine_url": "ftp://gw", "model_engine_user": USER}, "must start with http:// or https://"),
    ({"model_engine_url": "http://127.0.0.1:1", "model_engine_user": "{{ undefined_user_var }}"}, "cannot resolve the variable model_engine_user"),
    ({"model_engine_endpoints": [{"model_name": "m"}]}, r"model_engine_endpoints\[0\] must be a mapping with a non-empty 'name'"),
    ({"model_engine_endpoints": [DECLARED_A, DECLARED_A]}, "model_engine_endpoints declares endpoint 'ep-a' twice"),
    ({"model_engine_endpoints": {"ep-a": DECLARED_A}}, "model_engine_endpoints must be a list"),
])
def test_configuration_errors_say_what_to_set(tmp_path, group_vars, expect):
    root = write_inventory(tmp_path / "inv", group_vars=group_vars)
    with pytest.raises(AnsibleError, match=expect):
        parse(root)


@pytest.mark.parametrize("name, accepted", [
    ("endpoints.model_engine.yml", True), ("dev.model_engine.yaml", True), ("model_engine.yml", True),
    ("hosts.yml", False), ("model_engine.json", False), ("endpoints.model_engine.yml.bak", False),
])
def test_verify_file_takes_only_model_engine_configs(tmp_path, name, accepted):
    path = tmp_path / name
    path.write_text("plugin: odp.model_engine.endpoints\n")
    assert inventory_loader.get("odp.model_engine.endpoints").verify_file(str(path)) is accepted
