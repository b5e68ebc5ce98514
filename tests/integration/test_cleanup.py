"""Issue 8: cleanup_failed_endpoints.yml removes exactly the failed endpoints and orphans; check mode deletes nothing."""

from __future__ import annotations

import time

from tests.integration.conftest import crashed, create_endpoint, endpoint_names, kubectl, objects_with_id, settle, wait_no_objects

KINDS = ("Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "PodDisruptionBudget")


def objects_of(odp_twin, endpoint_id):
    name = "launch-endpoint-id-" + endpoint_id.replace("_", "-")
    ns = odp_twin.config.endpoint_namespace
    return [k for k in KINDS if odp_twin.call(odp_twin.kube.get(k, name, ns)) is not None]


def test_cleanup_removes_exactly_the_failed_and_orphaned(playbook, gateway, odp_twin):
    keep = create_endpoint(gateway, "keep-ep")
    crash = create_endpoint(gateway, "crash-ep", wait=False, inference_framework_image_tag="0.6.3-rc1")
    settle(gateway, odp_twin, "crash-ep", crashed)
    odp_twin.faults.add("builder_stalled", "stuck-ep")
    stuck = create_endpoint(gateway, "stuck-ep", wait=False)
    orphan = create_endpoint(gateway, "orphan-ep", wait=False, optimize_costs=True)  # no GPU left: Pending; a VPA too
    gateway.wait("orphan-ep", lambda e: e["status"] == "READY", timeout=30)
    odp_twin.engine.records.pop(orphan["id"])  # the API forgot it; its Kubernetes objects stayed
    assert objects_of(odp_twin, orphan["id"])
    assert any(x.startswith("VerticalPodAutoscaler/") for x in objects_with_id(odp_twin, orphan["id"]))

    extra = {"cleanup_min_age": 0, "cleanup_pending_timeout": 1}
    dry = playbook("cleanup_failed_endpoints.yml", check=True, extra=extra)
    assert dry.rc == 0, dry
    text = " ".join(dry.stdout.split())
    assert "crash-ep: unsupported_architecture" in text and "stuck-ep: stuck_pending" in text and "Kept: keep-ep serving" in text
    assert sorted(endpoint_names(gateway)) == ["crash-ep", "keep-ep", "stuck-ep"]
    assert objects_of(odp_twin, orphan["id"]) and objects_of(odp_twin, crash["id"])

    run = playbook("cleanup_failed_endpoints.yml", extra=extra)
    assert run.rc == 0, run
    assert endpoint_names(gateway) == ["keep-ep"]
    for ep in (crash, stuck, orphan):
        # nothing of any kind the cluster serves is left: PDB, VPA and ConfigMaps included (the runbook's cleanup
        # of Deployment, Service and HPA leaves those behind)
        assert wait_no_objects(odp_twin, ep["id"]) == [], ep["name"]
    assert objects_of(odp_twin, keep["id"]) == list(KINDS)
    assert gateway.get("/v1/llm/model-endpoints/keep-ep").json()["status"] == "READY"

    again = playbook("cleanup_failed_endpoints.yml", extra=extra)
    assert again.rc == 0 and again.changed == 0, again


def test_cleanup_prunes_control_plane_replicasets_keeping_history(playbook, gateway, odp_twin):
    for _ in range(3):
        time.sleep(1.1)  # kubectl refuses two restarts within one second (restartedAt has second precision)
        kubectl(odp_twin, "rollout", "restart", "deployment/model-engine")
        kubectl(odp_twin, "rollout", "status", "deployment/model-engine", "--timeout=60s")
    before = kubectl(odp_twin, "get", "rs", "-o", "name").stdout.split()
    run = playbook("cleanup_failed_endpoints.yml", extra={"cleanup_keep_replicasets": 1})
    assert run.rc == 0, run
    after = kubectl(odp_twin, "get", "rs", "-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.replicas} "
                    "{.metadata.ownerReferences[0].name}{'\\n'}{end}").stdout.splitlines()
    idle_me = [line for line in after if line.split()[1] == "0" and line.split()[2] == "model-engine"]
    assert len(idle_me) == 1 and len(before) > len(after)
    undo = kubectl(odp_twin, "rollout", "undo", "deployment/model-engine")
    assert "rolled back" in undo.stdout


def test_cleanup_never_touches_other_users_endpoints(playbook, gateway, odp_twin):
    import copy

    from tests.twin.tests.conftest_platform import RUNBOOK_BODY

    other = gateway.as_user("other-user")
    public = dict(copy.deepcopy(RUNBOOK_BODY), name="theirs-public")
    private = dict(copy.deepcopy(RUNBOOK_BODY), name="theirs-private", public_inference=False)
    for b in (public, private):
        assert other.post("/v1/llm/model-endpoints", b).status == 200
    ids = [other.wait(n, lambda e: e["status"] == "READY", timeout=30)["id"] for n in ("theirs-public", "theirs-private")]
    extra = {"cleanup_min_age": 0, "cleanup_pending_timeout": 1}
    for check in (True, False):
        run = playbook("cleanup_failed_endpoints.yml", check=check, extra=extra)
        assert run.rc == 0, run
        assert "Orphaned objects to delete: 0" in run.stdout and "theirs" not in run.stdout.split("Kept:")[0]
    for ep_id in ids:
        assert objects_of(odp_twin, ep_id) == list(KINDS)
