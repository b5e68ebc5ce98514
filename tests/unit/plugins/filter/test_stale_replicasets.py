from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.odp.model_engine.plugins.filter.replicasets import stale_replicasets


def rs(name, owner, revision, replicas):
    return {"metadata": {"name": name, "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                         "ownerReferences": [{"kind": "Deployment", "name": owner}]},
            "spec": {"replicas": replicas}, "status": {"replicas": replicas}}


RS = [rs("me-1", "model-engine", 1, 0), rs("me-2", "model-engine", 2, 0), rs("me-3", "model-engine", 3, 0),
      rs("me-4", "model-engine", 4, 1), rs("b-1", "model-engine-endpoint-builder", 1, 0),
      rs("b-2", "model-engine-endpoint-builder", 2, 1), rs("other-1", "something-else", 1, 0)]


def test_keeps_the_newest_idle_and_never_the_running_or_foreign_ones():
    assert stale_replicasets(RS, ["model-engine", "model-engine-endpoint-builder"], keep=1) == ["me-1", "me-2"]
    assert stale_replicasets(RS, ["model-engine", "model-engine-endpoint-builder"], keep=0) == ["me-1", "me-2", "me-3", "b-1"]
    assert stale_replicasets(RS, ["model-engine"], keep=5) == []


def test_bad_input():
    with pytest.raises(AnsibleFilterError):
        stale_replicasets("x", ["model-engine"])
    with pytest.raises(AnsibleFilterError):
        stale_replicasets(RS, ["model-engine"], keep=-1)
