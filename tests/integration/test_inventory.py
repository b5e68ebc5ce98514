"""Issue 14, item 1: the endpoint fleet as Ansible inventory, with the real ansible-inventory and
ansible-playbook against the twin's gateway.

Each test works on a copy of inventories/local (its hosts.yml, endpoints.model_engine.yml and
group_vars/all/main.yml) with this session's twin.yml beside main.yml, as `python -m tests.twin up`
writes it for the repo's own inventories/local.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import REPO, create_endpoint
from tests.twin.tests.conftest_platform import RUNBOOK_BODY

BIN = Path(sys.executable).parent
LIST_ROUTE = r"^GET /v1/llm/model-endpoints$"


def run(tool, *args, env_extra=None, timeout=120):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PATH="%s:%s" % (BIN, os.environ.get("PATH", "")))
    for var in ("MODEL_ENGINE_URL", "MODEL_ENGINE_USER_ID", "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED"):
        env.pop(var, None)
    env.update(env_extra or {})
    return subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False)


@pytest.fixture
def inventory(tmp_path, twin_vars):
    """A copy of inventories/local for this twin; ``inventory(url=..., config=...)`` makes variants."""
    def make(name="local", url=None, config=None):
        root = tmp_path / name
        (root / "group_vars" / "all").mkdir(parents=True)
        for rel in ("hosts.yml", "endpoints.model_engine.yml", "group_vars/all/main.yml"):
            shutil.copy(REPO / "inventories" / "local" / rel, root / rel)
        tv = twin_vars.read_text()
        if url:
            tv = re.sub(r"(?m)^model_engine_url: .*$", "model_engine_url: %s" % json.dumps(url), tv)
        (root / "group_vars" / "all" / "twin.yml").write_text(tv)
        if config:
            cfg = yaml.safe_load((root / "endpoints.model_engine.yml").read_text())
            cfg.update(config)
            (root / "endpoints.model_engine.yml").write_text("---\n" + yaml.safe_dump(cfg))
        return root

    return make


def graph(text):
    """ansible-inventory --graph as {group: [direct members, hosts and @groups]}."""
    out, stack = {}, []
    for line in text.splitlines():
        m = re.match(r"^((?:\s*\|)*)\s*(?:--)?(@?)([^:\s]+):?$", line.rstrip())
        if not m:
            continue
        depth = m.group(1).count("|")
        name = m.group(2) + m.group(3)
        del stack[depth:]
        if stack:
            out.setdefault(stack[-1], []).append(name)
        if name.startswith("@"):
            out.setdefault(name, [])
            stack.append(name)
    return out


def plain(value):
    """ansible-inventory --list JSON with the {"__ansible_unsafe": text} markers read back as text."""
    if isinstance(value, dict):
        return value["__ansible_unsafe"] if set(value) == {"__ansible_unsafe"} else {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_endpoints(gateway):
    """test-endpoint-v1 (declared in inventories/local) and undeclared-ep (not declared), both serving, plus
    a public endpoint of another user, which is not ours (created last: the node has two GPUs)."""
    create_endpoint(gateway, "test-endpoint-v1", wait=False)
    create_endpoint(gateway, "undeclared-ep", wait=False, labels={"team": "nlp", "product": "llm-engine"})
    serving = {}
    for name in ("test-endpoint-v1", "undeclared-ep"):
        serving[name] = gateway.wait(name, lambda e: e["status"] == "READY" and e["spec"]["deployment_state"]["available_workers"] >= 1,
                                     timeout=60)
    body = copy.deepcopy(RUNBOOK_BODY)
    body.update(name="someone-elses", labels={"team": "other", "product": "llm-engine"})
    assert gateway.as_user("someone-else").post("/v1/llm/model-endpoints", body).status == 200
    assert "someone-elses" in [e["name"] for e in gateway.get("/v1/llm/model-endpoints").json()["model_endpoints"]]
    return serving


def test_graph_list_and_limit_show_the_endpoints_as_hosts(inventory, two_endpoints, tmp_path):
    inv = inventory()
    g = run("ansible-inventory", "-i", str(inv), "--graph")
    assert g.returncode == 0 and "WARNING" not in g.stderr, g.stderr
    tree = graph(g.stdout)
    assert set(tree["@all"]) >= {"@llm_endpoints", "@model_engine"}
    assert tree["@model_engine"] == ["local-twin"]  # the control-plane host stays one host
    assert {"@declared", "@undeclared", "@absent", "@ready", "@pending", "@failed", "@gpu_type_nvidia_tesla_t4",
            "@team_test", "@team_nlp"} <= set(tree["@llm_endpoints"])
    assert tree["@declared"] == ["test-endpoint-v1"] and tree["@undeclared"] == ["undeclared-ep"]
    assert sorted(tree["@ready"]) == ["test-endpoint-v1", "undeclared-ep"]
    assert tree["@absent"] == [] and tree["@failed"] == []
    assert tree["@team_test"] == ["test-endpoint-v1"] and tree["@team_nlp"] == ["undeclared-ep"]
    assert "someone-elses" not in g.stdout  # public, listed by the gateway, but another user's

    listed = run("ansible-inventory", "-i", str(inv), "--list")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    hostvars = data["_meta"]["hostvars"]
    assert set(hostvars) == {"local-twin", "test-endpoint-v1", "undeclared-ep"}
    declared = yaml.safe_load((REPO / "inventories" / "local" / "group_vars" / "all" / "main.yml").read_text())["model_engine_endpoints"][0]
    # strings from the gateway are never templated: ansible-inventory prints them as unsafe (AWX keeps them so)
    assert hostvars["undeclared-ep"]["model_engine_endpoint_live"]["status"] == {"__ansible_unsafe": "READY"}
    hostvars = plain(hostvars)
    for name, rec in two_endpoints.items():
        hv = hostvars[name]
        assert hv["ansible_connection"] == "local" and hv["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"
        live = hv["model_engine_endpoint_live"]
        assert live["id"] == rec["id"] and live["status"] == "READY" and live["serving"] is True
        assert live["k8s_resource_name"] == "launch-endpoint-id-" + rec["id"].replace("_", "-")
        assert live["owner"] == "test-user-id" and live["image_tag"] == "vllm-onprem" and live["available_workers"] == 1
    assert hostvars["test-endpoint-v1"]["model_engine_endpoint"] == declared
    assert hostvars["undeclared-ep"]["model_engine_endpoint"] is None

    playbook = tmp_path / "probe.yml"
    playbook.write_text(
        "- name: Probe the endpoint hosts\n  hosts: llm_endpoints\n  gather_facts: false\n  tasks:\n"
        "    - name: Run a module with the host's interpreter\n      ansible.builtin.ping:\n"
        "    - name: Show the endpoint's live record\n      ansible.builtin.debug:\n"
        "        msg: \"{{ inventory_hostname }} is {{ model_engine_endpoint_live.status }} as {{ model_engine_endpoint_live.k8s_resource_name }}\"\n")
    pb = run("ansible-playbook", "-i", str(inv), str(playbook), "--limit", "undeclared-ep")
    assert pb.returncode == 0, pb.stdout + pb.stderr
    recap = re.findall(r"^(\S+)\s+: ok=(\d+)", pb.stdout, re.M)
    assert recap == [("undeclared-ep", "2")], pb.stdout
    assert "undeclared-ep is READY as launch-endpoint-id-%s" % two_endpoints["undeclared-ep"]["id"].replace("_", "-") in pb.stdout


def test_a_gateway_that_is_down_gives_a_clear_message(inventory):
    url = "http://127.0.0.1:%d" % free_port()
    inv = inventory("down", url=url, config={"retries": 1})
    g = run("ansible-inventory", "-i", str(inv), "--graph")
    err = " ".join(g.stderr.split())
    assert ("odp.model_engine.endpoints: cannot list the endpoints of the model-engine gateway at %s for user test-user-id: "
            "GET /v1/llm/model-endpoints failed after 2 attempt(s): URLError: [Errno 111] Connection refused" % url) in err
    # Ansible goes on with the other sources, so the control-plane playbooks (an emergency revert) still run ...
    assert g.returncode == 0 and "local-twin" in g.stdout and "@llm_endpoints" not in g.stdout
    # ... and a run that must not go on without its endpoints makes a failed source fatal
    strict = run("ansible-inventory", "-i", str(inv), "--graph", env_extra={"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true"})
    assert strict.returncode != 0 and "Completely failed to parse inventory source" in strict.stderr
    assert "cannot list the endpoints of the model-engine gateway at %s" % url in " ".join(strict.stderr.split())


def test_gateway_errors_fail_the_source_and_the_cache_serves_within_its_timeout(inventory, gateway, odp_twin, tmp_path):
    create_endpoint(gateway, "undeclared-ep", wait=False)
    cache = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache"), "cache_timeout": 600}
    inv = inventory(config=cache)

    odp_twin.faults.add("api_error", route=LIST_ROUTE, status=500, count=1)  # before anything is cached: the source fails
    failed = run("ansible-inventory", "-i", str(inv), "--graph")
    assert "cannot list the endpoints of the model-engine gateway at %s" % odp_twin.api_url in " ".join(failed.stderr.split())
    assert "returned HTTP 500" in failed.stderr and "undeclared-ep" not in failed.stdout
    assert odp_twin.faults.list()[0]["params"]["count"] == 0  # one request: the 'auto' plugin did not ask again

    first = run("ansible-inventory", "-i", str(inv), "--graph")
    assert first.returncode == 0 and "WARNING" not in first.stderr, first.stderr
    assert graph(first.stdout)["@undeclared"] == ["undeclared-ep"]
    assert list((tmp_path / "cache").iterdir())

    odp_twin.faults.clear()
    fault = odp_twin.faults.add("api_error", route=LIST_ROUTE, status=500, count=1)
    second = run("ansible-inventory", "-i", str(inv), "--graph")
    assert second.returncode == 0 and "WARNING" not in second.stderr, second.stderr
    assert graph(second.stdout)["@undeclared"] == ["undeclared-ep"]
    assert [f["params"]["count"] for f in odp_twin.faults.list() if f["id"] == fault["id"]] == [1], "the cached run called the gateway"

    flushed = run("ansible-inventory", "-i", str(inv), "--graph", "--flush-cache")  # reads the gateway: the fault answers
    assert "returned HTTP 500" in flushed.stderr and "undeclared-ep" not in flushed.stdout
    assert [f["params"]["count"] for f in odp_twin.faults.list() if f["id"] == fault["id"]] == [0]
