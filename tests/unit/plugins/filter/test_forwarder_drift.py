from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.odp.model_engine.plugins.filter.forwarder import forwarder_drift

ME = "registry.odp.om/odp-development/oman-national-llm/model-engine:"


def endpoint(name, forwarder, created_by="test-user-id"):
    containers = [{"name": "main", "image": "registry.odp.om/odp-development/oman-national-llm/vllm:vllm-onprem"}]
    if forwarder:
        containers.insert(0, {"name": "http-forwarder", "image": forwarder})
    return {"metadata": {"name": "launch-endpoint-id-end-%s" % name, "namespace": "llm-core",
                         "labels": {"endpoint_name": name, "endpoint_id": "end_%s" % name, "created_by": created_by}},
            "spec": {"template": {"spec": {"containers": containers}}}}


BUILDER = {"metadata": {"name": "model-engine-endpoint-builder"},
           "spec": {"template": {"spec": {"containers": [{"name": "model-engine-endpoint-builder", "image": ME + "onprem20"}]}}}}


def test_lists_each_endpoint_with_its_forwarder_and_marks_the_old_ones():
    deps = [endpoint("b-new", ME + "onprem20"), endpoint("a-old", ME + "onprem19", "other"), endpoint("no-forwarder", None)]
    out = forwarder_drift(deps, BUILDER)
    assert [(e["name"], e["forwarder_tag"], e["drifted"]) for e in out] == [("a-old", "onprem19", True), ("b-new", "onprem20", False)]
    assert out[0]["control_plane_tag"] == "onprem20" and out[0]["created_by"] == "other" and out[0]["endpoint_id"] == "end_a-old"
    assert [e["name"] for e in forwarder_drift(deps, ME + "onprem19", only_drifted=True)] == ["b-new"]
    assert forwarder_drift([], BUILDER) == []


def test_refuses_what_it_cannot_compare():
    with pytest.raises(AnsibleFilterError):
        forwarder_drift({"resources": []}, BUILDER)
    with pytest.raises(AnsibleFilterError):
        forwarder_drift([], {"spec": {}})
