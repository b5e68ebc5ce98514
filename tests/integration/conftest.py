"""Integration tests: real ansible-playbook runs of the collection against the local platform twin."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

from tests.twin.tests.conftest_platform import ModelEngineClient

REPO = Path(__file__).resolve().parents[2]
RECAP_RE = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
                      r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)", re.M)


class PlaybookRun:
    """One playbook run through ansible-runner, as AWX runs it: rc, stdout, recap, the job events."""

    def __init__(self, runner, cmdline):
        self.rc = runner.rc
        self.status = runner.status
        self.stdout = runner.stdout.read()
        self.stderr = runner.stderr.read() if hasattr(runner, "stderr") and runner.stderr else ""
        self.events = list(runner.events)
        self.stats = runner.stats or {}
        self.cmdline = cmdline
        # per host (an endpoint fleet run has one host per endpoint), and the totals over all hosts
        self.hosts = {m.group("host"): {k: int(v) for k, v in m.groupdict().items() if k != "host"} for m in RECAP_RE.finditer(self.stdout)}
        self.recap = {k: sum(h[k] for h in self.hosts.values()) for k in next(iter(self.hosts.values()), {})}

    @property
    def changed(self):
        return self.recap.get("changed")

    def __repr__(self):
        return "<PlaybookRun rc=%s recap=%s>\n%s\n%s" % (self.rc, self.recap, self.stdout[-6000:], self.stderr[-2000:])


def check_job_events(run, secrets, artifact_dir):
    """What AWX users rely on, for every playbook the suite runs: no secret in any job event, the stdout or an
    artifact, a play recap that agrees with the runner's stats, and a readable name on every task."""
    blob = json.dumps(run.events)
    for secret in secrets:
        assert secret not in blob, "a secret value appears in the job events of %s" % run.cmdline
        assert secret not in run.stdout and secret not in run.stderr, "a secret value appears in the output of %s" % run.cmdline
        for path in Path(artifact_dir).rglob("*"):
            if path.is_file():
                assert secret not in path.read_text(errors="replace"), "a secret value appears in artifact %s" % path
    if run.recap:
        for key in ("ok", "changed", "failures", "skipped"):
            stat = sum((run.stats.get(key) or {}).values())
            recap_key = {"failures": "failed"}.get(key, key)
            assert stat == run.recap[recap_key], "recap %s=%s but runner stats say %s" % (recap_key, run.recap[recap_key], stat)
    for ev in run.events:
        if ev.get("event") == "playbook_on_task_start":
            name = (ev.get("event_data") or {}).get("name") or ""
            action = (ev.get("event_data") or {}).get("task_action") or ""
            assert name and name != action and len(name) > 8, "task without a readable name: %r (%s)" % (name, action)


@pytest.fixture(scope="session")
def twin_vars(odp_twin):
    """The group vars `python -m tests.twin up` writes for inventories/local, for this session's twin."""
    path = Path(odp_twin.state_dir) / "inventories" / "local" / "group_vars" / "all" / "twin.yml"
    assert path.exists(), "the twin did not write %s" % path
    return path


def twin_secrets(twin_vars):
    """Every credential value of the twin a run could leak: the S3 access and secret keys, the Kubernetes tokens
    (admin and read-only), the registry's pull password and the HTTP Basic token the modules send for the
    model-engine user (the user id itself is no secret: it is every endpoint's owner, shown by the reports)."""
    import base64

    import yaml

    tv = yaml.safe_load(Path(twin_vars).read_text())
    info = json.loads((Path(tv["odp_twin_state_dir"]) / "twin.json").read_text())
    tokens = list((info.get("kube_tokens") or {}).values())
    basic = base64.b64encode(("%s:" % tv["model_engine_user"]).encode()).decode()
    values = [tv["s3_access_key"], tv["s3_secret_key"], basic, *tokens]
    if (info.get("registry") or {}).get("password"):
        values.append(info["registry"]["password"])
    assert all(len(v) >= 8 for v in values), values  # short values would match by chance
    return values


@pytest.fixture
def playbook(twin_vars, tmp_path):
    """Run a playbook from playbooks/ against inventories/local (or ``inventory=``, a copy of it) + this twin through
    ansible-runner (as AWX does), and check its job events (no secret, recap, readable task names). The inventory is
    the plugin inventory: hosts.yml's model_engine host and one host per endpoint (endpoints.model_engine.yml)."""
    import ansible_runner

    secrets = twin_secrets(twin_vars)
    count = [0]

    def run(name, *args, check=False, diff=False, extra=None, timeout=600, verbosity=0, inventory=None):
        count[0] += 1
        private = tmp_path / ("runner-%d" % count[0])
        private.mkdir()
        cmd = ["-e", "@%s" % twin_vars]
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        if extra:
            cmd += ["-e", "'%s'" % json.dumps(extra)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        cmd += list(args)
        env = {"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"), "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
               "PATH": "%s:%s" % (Path(sys.executable).parent, os.environ.get("PATH", ""))}
        if os.environ.get("ODP_PROFILE_TASKS"):  # where a run's time goes: per-task durations in its stdout
            env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
        runner = ansible_runner.run(private_data_dir=str(private), project_dir=str(REPO), playbook=str(REPO / "playbooks" / name),
                                    inventory=str(inventory or REPO / "inventories" / "local"), cmdline=" ".join(cmd), envvars=env,
                                    quiet=True, timeout=timeout)
        result = PlaybookRun(runner, "%s %s" % (name, " ".join(cmd)))
        if os.environ.get("ODP_PLAYBOOK_LOG_DIR"):  # keep every run's output for a look after the test
            Path(os.environ["ODP_PLAYBOOK_LOG_DIR"], "%s-%d.log" % (tmp_path.name, count[0])).write_text(result.stdout)
        check_job_events(result, secrets, private / "artifacts")
        return result

    return run


@pytest.fixture
def control_plane(odp_twin, playbook):
    """Start on onprem20 recorded as last-known-good by a first deploy; leave onprem20 without a record."""
    from tests.integration.test_deploy import leave_onprem20_without_record, recorded_onprem20

    recorded_onprem20(odp_twin, playbook)
    yield
    leave_onprem20_without_record(odp_twin, playbook)


@pytest.fixture
def fresh_control_plane(odp_twin, playbook):
    """Start on onprem20 with no record at all (a first deploy, a revert with nothing to revert to); leave it so."""
    from tests.integration.test_deploy import LKG, leave_onprem20_without_record

    kubectl(odp_twin, "delete", "cm", LKG, "--ignore-not-found")
    yield
    leave_onprem20_without_record(odp_twin, playbook)


@pytest.fixture
def gateway(odp_twin):
    """Direct model-engine API access for assertions; deletes every endpoint and clears faults afterwards."""
    client = ModelEngineClient(odp_twin.api_url)
    yield client
    odp_twin.faults.clear()
    for rec in list(odp_twin.engine.records.values()):
        client.as_user(rec["owner"]).delete("/v1/llm/model-endpoints/%s" % rec["name"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not odp_twin.call(odp_twin.kube.list_pods(odp_twin.config.endpoint_namespace, "managed-by=model-engine")):
            break
        time.sleep(0.1)


def endpoint_names(gateway):
    r = gateway.get("/v1/llm/model-endpoints")
    return [e["name"] for e in r.json()["model_endpoints"]]


def create_endpoint(gateway, name, wait=True, timeout=60, **over):
    """POST the runbook's endpoint (with ``over`` applied) straight to the API; optionally wait until it
    serves (READY and an available worker). Returns the record."""
    import copy

    from tests.twin.tests.conftest_platform import RUNBOOK_BODY

    body = copy.deepcopy(RUNBOOK_BODY)
    body.update(over, name=name)
    r = gateway.post("/v1/llm/model-endpoints", body)
    assert r.status == 200, r
    if not wait:
        return gateway.get("/v1/llm/model-endpoints/%s" % name).json()
    return gateway.wait(name, lambda e: e["status"] == "READY" and e["spec"]["deployment_state"]["available_workers"] >= 1,
                        timeout=timeout)


@pytest.fixture
def module(localhost, twin_vars):
    """Run one collection module on localhost with the twin's connection settings filled in."""
    import yaml

    tv = yaml.safe_load(twin_vars.read_text())
    groups = {
        "model_engine": {"url": tv["model_engine_url"], "user_id": tv["model_engine_user"], "validate_certs": False},
        "k8s": {"kubeconfig": tv["k8s_kubeconfig"]},
        "s3": {"s3_endpoint_url": tv["s3_endpoint_url"], "s3_access_key": tv["s3_access_key"], "s3_secret_key": tv["s3_secret_key"]},
    }
    uses = {
        "s3_sync_verify": ("k8s", "s3"), "vllm_ready": ("k8s",), "endpoint_preflight": ("k8s", "s3"),
        "llm_endpoint_progress": ("model_engine", "k8s", "s3"), "llm_endpoint": ("model_engine", "k8s", "s3"),
        "llm_endpoint_info": ("model_engine",), "endpoint_diagnose": ("model_engine", "k8s", "s3"), "cluster_capacity_info": ("k8s",),
        "endpoint_health_info": ("model_engine", "k8s", "s3"), "rollout_verify": ("k8s",), "gateway_info": (),
    }

    def run(module_name, /, **args):
        merged = {}
        for group in uses[module_name]:
            merged.update(groups[group])
        merged.update(args)
        return getattr(localhost, "odp.model_engine." + module_name)(**merged)["localhost"]

    run.vars = tv
    return run


def pod_of(odp_twin, endpoint_id):
    pods = odp_twin.call(odp_twin.kube.list_pods(odp_twin.config.endpoint_namespace, "app=launch-endpoint-id-%s" % endpoint_id.replace("_", "-")))
    assert pods, "no pod for %s" % endpoint_id
    return pods[0]["metadata"]["name"]


def kubectl(odp_twin, *args):
    """Real kubectl against the twin, in llm-core; fails the test on a non-zero exit."""
    import subprocess

    proc = subprocess.run([str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(odp_twin.emulator.kubeconfig_path),
                           "-n", "llm-core", *args], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc


def settle(gateway, odp_twin, name, predicate, timeout=60):
    """Wait until one of the endpoint's pods satisfies ``predicate`` (evicted pods are replaced, so the
    one that shows the fault is not always the newest)."""
    deadline = time.monotonic() + timeout
    pods = []
    while time.monotonic() < deadline:
        pods = odp_twin.call(odp_twin.kube.list_pods(odp_twin.config.endpoint_namespace, "endpoint_name=%s" % name))
        if any(predicate(p) for p in pods):
            return pods
        time.sleep(0.2)
    raise AssertionError("pods of %s never reached the state; last phases: %s" % (name, [p["status"].get("phase") for p in pods]))


def main_state(pod):
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        if cs["name"] == "main":
            return cs
    return {}


def crashed(pod):
    cs = main_state(pod)
    return cs.get("restartCount", 0) >= 1 or "terminated" in cs.get("state", {}) or pod["status"].get("phase") == "Failed"


def running_main(pod):
    return "running" in main_state(pod).get("state", {})


def served_list_paths(odp_twin):
    """(path, kind) of every listable resource of every group/version the emulator serves, from discovery."""
    import urllib.request

    base = odp_twin.emulator.url

    def get(path):
        with urllib.request.urlopen(base + path, timeout=10) as r:
            return json.loads(r.read())

    gvs = ["/api/v1"] + ["/apis/%s" % v["groupVersion"] for g in get("/apis")["groups"] for v in g["versions"]]
    return [("%s/%s" % (gv, res["name"]), res["kind"]) for gv in gvs for res in get(gv)["resources"]
            if "/" not in res["name"] and "list" in res["verbs"]]


def objects_with_id(odp_twin, endpoint_id):
    """Every object, of every kind the emulator serves (Events aside: they outlive objects for an hour, as on a real
    cluster), labelled with the endpoint's id or named after it, as "Kind/name"."""
    import urllib.request

    name = "launch-endpoint-id-" + endpoint_id.replace("_", "-")
    found = []
    for path, kind in served_list_paths(odp_twin):
        if kind == "Event":
            continue
        with urllib.request.urlopen(odp_twin.emulator.url + path, timeout=10) as r:
            for o in json.loads(r.read())["items"]:
                m = o["metadata"]
                if (m.get("labels") or {}).get("endpoint_id") == endpoint_id or name in m["name"]:
                    found.append("%s/%s" % (kind, m["name"]))
    return sorted(found)


def wait_no_objects(odp_twin, endpoint_id, timeout=20):
    deadline = time.monotonic() + timeout
    left = objects_with_id(odp_twin, endpoint_id)
    while left and time.monotonic() < deadline:
        time.sleep(0.3)  # ReplicaSets, pods and Endpoints go through the garbage collector and controllers
        left = objects_with_id(odp_twin, endpoint_id)
    return left


@pytest.fixture
def fleet_inventory(tmp_path, twin_vars):
    """``fleet_inventory(declarations)``: a copy of inventories/local (hosts.yml, endpoints.model_engine.yml,
    group_vars/all/main.yml, this twin's twin.yml) whose model_engine_endpoints are ``declarations``."""
    import shutil

    import yaml

    count = [0]

    def make(declarations):
        count[0] += 1
        root = tmp_path / ("fleet-inventory-%d" % count[0])
        (root / "group_vars" / "all").mkdir(parents=True)
        for rel in ("hosts.yml", "endpoints.model_engine.yml"):
            shutil.copy(REPO / "inventories" / "local" / rel, root / rel)
        main = yaml.safe_load((REPO / "inventories" / "local" / "group_vars" / "all" / "main.yml").read_text())
        main["model_engine_endpoints"] = declarations
        main["model_engine_chart_ref"] = str(REPO / "tests" / "twin" / "charts" / "model-engine")
        (root / "group_vars" / "all" / "main.yml").write_text("---\n" + yaml.safe_dump(main, sort_keys=False))
        shutil.copy(twin_vars, root / "group_vars" / "all" / "twin.yml")
        return root

    return make


def declaration(name, **over):
    """The runbook's endpoint as inventories/local declares it, renamed (``over`` applied)."""
    import copy

    import yaml

    main = yaml.safe_load((REPO / "inventories" / "local" / "group_vars" / "all" / "main.yml").read_text())
    body = copy.deepcopy(main["model_engine_endpoints"][0])
    body.update(over, name=name)
    return body
