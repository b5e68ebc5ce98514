"""Issue 7: site.yml rolls an environment forward and reports drift between inventory and cluster; issue 14: with
the plugin inventory (one host per endpoint), never touching another owner's endpoints."""

from __future__ import annotations

import copy

from tests.integration.conftest import create_endpoint, endpoint_names
from tests.integration.test_deploy import lkg
from tests.twin.tests.conftest_platform import RUNBOOK_BODY


def test_site_rolls_forward_reconciles_and_reports_drift(playbook, gateway, odp_twin, fresh_control_plane):
    # no record: site.yml rolls the control plane forward with a first deploy (its canary) before the endpoints
    create_endpoint(gateway, "undeclared-ep")
    # another user's public endpoint: listed to us, never ours to reconcile or delete (issue 13)
    odp_twin.faults.add("builder_stalled", "their-ep")  # never built: the node's two GPUs stay for ours
    create_endpoint(gateway.as_user("someone-else"), "their-ep", wait=False)
    run = playbook("site.yml", extra={"llm_endpoint_progress_interval": 1})
    assert run.rc == 0, run
    assert set(run.hosts) == {"local-twin", "test-endpoint-v1", "undeclared-ep"}   # the control plane and one host per endpoint
    assert lkg(odp_twin)["model_engine_tag"] == "onprem20"
    assert gateway.get("/v1/llm/model-endpoints/test-endpoint-v1").json()["status"] == "READY"
    text = " ".join(run.stdout.split())
    assert "1 endpoint(s) exist but are not declared in the inventory: undeclared-ep" in text
    assert "1 endpoint(s) of other owners are visible and left alone: their-ep (owner someone-else)" in text
    assert "undeclared-ep" in endpoint_names(gateway)  # reported, not deleted

    again = playbook("site.yml", extra={"llm_endpoint_progress_interval": 1})
    assert again.rc == 0 and again.changed == 0, again

    # another user's public endpoint: the gateway lists it to us, but it is not ours, so it is neither reported nor deleted
    body = copy.deepcopy(RUNBOOK_BODY)
    body.update(name="someone-elses", public_inference=True, labels={"team": "other", "product": "llm-engine"})
    assert gateway.as_user("someone-else").post("/v1/llm/model-endpoints", body).status == 200
    assert "someone-elses" in endpoint_names(gateway)
    prune = playbook("site.yml", extra={"llm_endpoint_progress_interval": 1, "site_delete_undeclared": True})
    assert prune.rc == 0 and prune.changed == 1, prune
    assert "someone-elses" not in prune.hosts and "1 endpoint(s) exist but are not declared in the inventory: undeclared-ep (deleting them)" \
        in " ".join(prune.stdout.split())
    assert sorted(endpoint_names(gateway)) == ["someone-elses", "test-endpoint-v1", "their-ep"]
    assert [r["owner"] for r in odp_twin.engine.records.values() if r["name"] == "their-ep"] == ["someone-else"]
