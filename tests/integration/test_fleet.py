"""Issue 14, items 2 and 3: the playbooks run per endpoint host (forks, --limit, the -e forms), one endpoint that
fails fails alone, and parallel creates never oversubscribe the GPUs (the reservation Lease and its ledger).

Each test declares its endpoints in a copy of inventories/local (the plugin inventory) and runs the playbooks through
ansible-runner, as AWX does; ``--limit declared`` leaves the control-plane play out where it is not the subject.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import declaration, endpoint_names, kubectl

FAST = {"llm_endpoint_progress_interval": 1}
GPU_NODE = "hpc-k8s-phy-wrk-g01"


def resize(odp_twin, gpus, storage):
    """Set the GPU node's capacity with real kubectl (the node status subresource), as a node that grew would report it."""
    res = {"nvidia.com/gpu": str(gpus), "ephemeral-storage": storage}
    kubectl(odp_twin, "patch", "node", GPU_NODE, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"allocatable": res, "capacity": res}}))


@pytest.fixture
def four_gpu_node(odp_twin):
    """The GPU node with 4 GPUs and room for four 50Gi pods (set up before ``gateway``, so restored after its clean-up)."""
    resize(odp_twin, 4, "210Gi")
    yield
    resize(odp_twin, 2, "189Gi")
    kubectl(odp_twin, "delete", "lease", "odp-model-engine-gpu-reservation", "--ignore-not-found")   # its ledger names this test's endpoints


def endpoint_pods(odp_twin):
    return odp_twin.call(odp_twin.kube.list_pods(odp_twin.config.endpoint_namespace, "managed-by=model-engine"))


def serving(gateway, name):
    return gateway.wait(name, lambda e: e["status"] == "READY" and e["spec"]["deployment_state"]["available_workers"] >= 1, timeout=90)


def task_results(run, task_name):
    return {e["event_data"]["host"]: e["event_data"]["res"] for e in run.events
            if e.get("event") == "runner_on_ok" and e["event_data"].get("task") == task_name}


def skipped_tasks(run, task_name):
    return sorted(e["event_data"]["host"] for e in run.events
                  if e.get("event") == "runner_on_skipped" and e["event_data"].get("task") == task_name)


def test_six_parallel_creates_on_a_node_that_fits_four(four_gpu_node, gateway, playbook, fleet_inventory, odp_twin):
    names = ["fleet-%d" % i for i in range(1, 7)]
    inv = fleet_inventory([declaration(n) for n in names])
    run = playbook("site.yml", "-f", "6", "--limit", "declared", extra=FAST, inventory=inv)
    assert run.rc == 2, run   # some hosts failed
    assert set(run.hosts) == set(names)
    failed = sorted(h for h, r in run.hosts.items() if r["failed"])
    created = sorted(h for h, r in run.hosts.items() if not r["failed"])
    assert len(failed) == 2 and len(created) == 4, run.hosts
    text = " ".join(run.stdout.split())
    for name in failed:
        # refused by the reservation (the GPUs of the creates in flight counted) or, once their pods were bound, by the preflight
        assert ("Endpoint %s was not created: no free GPU for %s: no nvidia-tesla-t4 node can take 1 pod(s)" % (name, name) in text
                or "no nvidia-tesla-t4 node has 1 free nvidia.com/gpu" in text), text[-4000:]
        assert gateway.get("/v1/llm/model-endpoints/%s" % name).status == 404
    for name in created:
        assert run.hosts[name]["changed"] == 1
        serving(gateway, name)
    pods = endpoint_pods(odp_twin)
    assert len(pods) == 4 and all(p["spec"].get("nodeName") == GPU_NODE for p in pods), [p["status"].get("phase") for p in pods]
    assert not [p for p in pods if p["status"].get("phase") == "Pending"]   # nothing oversubscribed


def test_creates_in_flight_are_counted_before_their_pods_exist(four_gpu_node, gateway, playbook, fleet_inventory, odp_twin):
    """With the builder held back no create has a pod yet, so only the Lease's ledger can count them: the fifth and
    sixth creates are refused with the four in flight named."""
    names = ["flight-%d" % i for i in range(1, 7)]
    for name in names:
        odp_twin.faults.add("builder_stalled", name)
    inv = fleet_inventory([declaration(n) for n in names])
    run = playbook("site.yml", "-f", "6", "--limit", "declared", extra=dict(FAST, llm_endpoint_wait=False), inventory=inv)
    assert run.rc == 2, run
    failed = sorted(h for h, r in run.hosts.items() if r["failed"])
    created = sorted(h for h, r in run.hosts.items() if not r["failed"])
    assert len(failed) == 2 and len(created) == 4, run.hosts
    text = " ".join(run.stdout.split())
    for name in failed:
        assert ("Endpoint %s was not created: no free GPU for %s: no nvidia-tesla-t4 node can take 1 pod(s) of 1 nvidia.com/gpu and "
                "50.0 GiB ephemeral storage after counting the pods on the nodes and the 4 endpoint(s) being created (%s: 4 GPU) "
                "(hpc-k8s-phy-wrk-g01: 4 of 4 GPU free now" % (name, name, ", ".join(created))) in text, text[-4000:]
    assert sorted(n for n in endpoint_names(gateway) if n.startswith("flight-")) == created
    assert endpoint_pods(odp_twin) == []
    lease = json.loads(kubectl(odp_twin, "get", "lease", "odp-model-engine-gpu-reservation", "-o", "json").stdout)
    assert sorted(e["name"] for e in json.loads(lease["metadata"]["annotations"]["odp.model-engine/reservations"])) == created
    assert not lease["spec"].get("holderIdentity")   # released

    odp_twin.faults.clear()   # the builder catches up: the four get their GPUs, nothing waits for one
    for name in created:
        serving(gateway, name)
    pods = endpoint_pods(odp_twin)
    assert len(pods) == 4 and not [p for p in pods if not p["spec"].get("nodeName")]


def test_one_bad_endpoint_fails_alone_and_the_recap_names_it(gateway, playbook, fleet_inventory):
    inv = fleet_inventory([declaration("fleet-bad", storage="100Gi"), declaration("fleet-good")])
    run = playbook("site.yml", "-f", "2", extra=FAST, inventory=inv)
    assert run.rc == 2, run
    assert run.hosts["fleet-bad"]["failed"] == 1 and run.hosts["fleet-good"] == dict(run.hosts["fleet-good"], failed=0, changed=1)
    assert run.hosts["local-twin"]["failed"] == 0   # the control plane stays one host, and its plays all ran
    text = " ".join(run.stdout.split())
    assert "fatal: [fleet-bad]" in text and "storage 100Gi exceeds the 50Gi policy for nvidia-tesla-t4" in text
    assert "0 endpoint(s) exist but are not declared in the inventory: none" in text
    serving(gateway, "fleet-good")
    assert "fleet-bad" not in endpoint_names(gateway)


def test_a_failed_control_plane_deploy_stops_the_endpoint_plays(gateway, playbook, fleet_inventory, control_plane):
    inv = fleet_inventory([declaration("fleet-cp")])
    run = playbook("site.yml", extra=dict(FAST, model_engine_tag="onprem99"), inventory=inv)   # not in the registry
    assert run.rc == 2 and run.hosts["local-twin"]["failed"] == 1, run
    text = " ".join(run.stdout.split())
    assert "1 image(s) not in the registry" in text and "Nothing was changed" in text
    # The deploy play's only host failed, so Ansible ends the run there: the endpoint play never starts (its guard,
    # site_control_plane, is for an inventory with several control planes of which one failed) and nothing is made.
    assert "fleet-cp" not in run.hosts and "PLAY [Reconcile the declared endpoints]" not in run.stdout, run.hosts
    assert "fleet-cp" not in endpoint_names(gateway)


def test_check_mode_changes_nothing_and_a_second_run_is_a_cheap_no_op(gateway, playbook, fleet_inventory, odp_twin):
    inv = fleet_inventory([declaration("fleet-a"), declaration("fleet-b")])
    check = playbook("site.yml", "--limit", "declared", check=True, extra=FAST, inventory=inv)
    assert check.rc == 0 and check.hosts == {h: dict(check.hosts[h], changed=1, failed=0) for h in ("fleet-a", "fleet-b")}, check
    assert {h: r["msg"] for h, r in task_results(check, "Create or update the endpoint").items()} == {
        "fleet-a": "Endpoint fleet-a would be created", "fleet-b": "Endpoint fleet-b would be created"}
    assert not [n for n in endpoint_names(gateway) if n.startswith("fleet-")]

    first = playbook("site.yml", "-f", "2", "--limit", "declared", extra=FAST, inventory=inv)
    assert first.rc == 0 and first.changed == 2, first
    before = odp_twin.request_counts()
    again = playbook("site.yml", "-f", "2", "--limit", "declared", extra=FAST, inventory=inv)
    assert again.rc == 0 and again.changed == 0, again
    after = odp_twin.request_counts()
    gateway_requests = {(m, r): c for (_a, m, r), c in (after["gateway"] - before["gateway"]).items()}
    kube_requests = sum(c for (client, _m), c in (after["kubernetes"] - before["kubernetes"]).items() if client != "twin")
    # one list for the inventory, one read per endpoint (the judge's check reuses it), and per endpoint the
    # Deployment, its ReplicaSets and its pods (plus discovery, when kubernetes.core's cache is cold)
    assert gateway_requests == {("GET", "/v1/llm/model-endpoints"): 1, ("GET", "/v1/llm/model-endpoints/{name}"): 2}, gateway_requests
    assert 6 <= kube_requests <= 8, after["kubernetes"] - before["kubernetes"]
    # an endpoint that exists as declared and serves: no preflight, no write, one check by the judge
    for task in ("Preflight the checkpoint, storage, GPU capacity and image tag", "Create or update the endpoint"):
        assert skipped_tasks(again, task) == ["fleet-a", "fleet-b"], task
    assert again.stdout.count(": READY; 1 pod(s) ready") == 2


def test_limit_and_the_extra_var_forms_target_single_endpoints(gateway, playbook, fleet_inventory):
    inv = fleet_inventory([declaration("fleet-x"), declaration("fleet-y")])
    made = playbook("create_endpoint.yml", "--limit", "fleet-y", extra=FAST, inventory=inv)
    assert made.rc == 0 and set(made.hosts) == {"fleet-y"} and made.changed == 1, made
    assert [n for n in endpoint_names(gateway) if n.startswith("fleet-")] == ["fleet-y"]

    verified = playbook("verify_endpoint.yml", "--limit", "ready", extra={"verify_mode": "quick"}, inventory=inv)
    assert verified.rc == 0 and set(verified.hosts) == {"fleet-y"}, verified
    assert "fleet-y: " in verified.stdout and "quick check passed" in verified.stdout

    refused = playbook("delete_endpoint.yml", inventory=inv)
    assert refused.rc != 0 and "delete_endpoint.yml never deletes every endpoint by default" in " ".join(refused.stdout.split())
    assert "fleet-y" in endpoint_names(gateway)

    named = playbook("delete_endpoint.yml", extra={"endpoint_name": "fleet-y"}, inventory=inv)
    assert named.rc == 0 and named.hosts["fleet-y"]["changed"] == 1 and "fleet-x" not in named.hosts, named
    assert "fleet-y" not in endpoint_names(gateway)
