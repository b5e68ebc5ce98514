"""The GPU reservation: the fit of a create after the creates in flight, the ledger, and the Lease as a lock
against the twin's Kubernetes emulator (real kubernetes client, real 409s)."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube, node_capacity
from ansible_collections.odp.model_engine.plugins.module_utils.reservation import (
    LEDGER_TTL,
    Lease,
    ReservationError,
    check_fit,
    prune_ledger,
    shape,
    waiting_pods,
)

GI = 2 ** 30
T4 = "nvidia-tesla-t4"


def node(name, gpus, eph="400Gi", gpu_type=T4):
    return {"metadata": {"name": name, "labels": {"k8s.amazonaws.com/accelerator": gpu_type}}, "spec": {},
            "status": {"allocatable": {"nvidia.com/gpu": str(gpus), "ephemeral-storage": eph}}}


def pod(name, endpoint, node_name=None, gpus=1, eph="50Gi", phase="Running"):
    spec = {"containers": [{"resources": {"limits": {"nvidia.com/gpu": str(gpus), "ephemeral-storage": eph}}}],
            "nodeSelector": {"k8s.amazonaws.com/accelerator": T4}}
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"name": name, "namespace": "llm-core", "labels": {"endpoint_name": endpoint}}, "spec": spec,
            "status": {"phase": phase if node_name else "Pending"}}


def body(name, gpus=1, min_workers=1, storage="50Gi"):
    return {"name": name, "gpus": gpus, "gpu_type": T4, "storage": storage, "min_workers": min_workers, "nodes_per_worker": 1}


def entry(name, at, pods=1):
    return dict(shape(body(name)), pods=pods, at=at)


def nodes_of(nodes, pods):
    return list(node_capacity(nodes, pods).values())


def test_a_create_fits_until_the_creates_in_flight_take_the_gpus():
    nodes = nodes_of([node("g1", 4)], [])
    in_flight = [{"name": "ep-%d" % i, "gpus": 1, "storage": 50 * GI} for i in range(1, 4)]
    assert check_fit(shape(body("ep-4")), nodes, in_flight, []) == []
    in_flight.append({"name": "ep-4", "gpus": 1, "storage": 50 * GI})
    problems = check_fit(shape(body("ep-5")), nodes, in_flight, [])
    assert problems == ["no free GPU for ep-5: no nvidia-tesla-t4 node can take 1 pod(s) of 1 nvidia.com/gpu and 50.0 GiB ephemeral storage "
                        "after counting the pods on the nodes and the 4 endpoint(s) being created (ep-1, ep-2, ep-3, ep-4: 4 GPU) (g1: 4 of 4 GPU free now, "
                        "400.0 GiB ephemeral free); free a GPU (delete an idle endpoint) or create it again once those serve"]


def test_bound_pods_waiting_pods_storage_and_workers_count():
    bound = [pod("a-1", "a", "g1"), pod("b-1", "b", "g2")]
    nodes = nodes_of([node("g1", 2), node("g2", 2, eph="120Gi")], bound)
    waiting = waiting_pods([*bound, pod("c-1", "c")], T4)
    assert waiting == [{"name": "c-1", "gpus": 1, "storage": 50 * GI}]
    # 2 GPUs free after the bound pods, one goes to the waiting pod: one 1-GPU pod fits, two do not
    assert check_fit(shape(body("d")), nodes, [], waiting) == []
    assert "after counting the pods on the nodes and 1 pod(s) waiting for a node (1 GPU) (" in check_fit(shape(body("d", min_workers=2)), nodes, [], waiting)[0]
    # g2 has a GPU but not the storage left for a second 50Gi pod (120Gi - 50Gi - 50Gi)
    assert check_fit(shape(body("e", storage="60Gi")), nodes, [], waiting) == []
    assert check_fit(shape(body("f", storage="60Gi", min_workers=2)), nodes, [], waiting) != []
    # no GPU wanted now (min_workers 0), or a GPU type without nodes (the preflight names that): nothing to refuse
    assert check_fit(shape(body("g", min_workers=0)), nodes, [{"name": "x", "gpus": 9, "storage": 0}], []) == []


def test_the_ledger_keeps_creates_until_their_pods_exist():
    now = time.time()
    ledger = [entry("fresh", now - 5), entry("has-pod", now - 5), entry("failed", now - 5), entry("gone", now - 30),
              entry("young-unlisted", now - 5), entry("too-old", now - LEDGER_TTL - 1), entry("two-pods", now - 5, pods=2)]
    records = [{"name": n, "status": "UPDATE_PENDING"} for n in ("fresh", "has-pod", "too-old", "two-pods")]
    records.append({"name": "failed", "status": "UPDATE_FAILED"})
    pods = [pod("has-pod-1", "has-pod"), pod("two-pods-1", "two-pods", "g1")]
    kept, demand = prune_ledger(ledger, pods, records, now)
    assert [e["name"] for e in kept] == ["fresh", "young-unlisted", "two-pods"]
    assert [d["name"] for d in demand] == ["fresh", "young-unlisted", "two-pods"]   # two-pods: one of its two pods exists


@pytest.fixture
def kube(tmp_path):
    from kubernetes import config

    from tests.twin.k8s import EmulatorThread

    twin = EmulatorThread(tmp_path / "k8s").start()
    client = config.new_client_from_config(str(twin.kubeconfig_path))
    try:
        yield Kube(client=client)
    finally:
        client.close()
        twin.stop()


def test_the_lease_is_a_lock_with_expiry(kube):
    a = Lease(kube, "default", holder="a", duration=2)
    b = Lease(kube, "default", holder="b", duration=2)
    assert a.acquire(5) < 1
    assert a.read()["spec"]["holderIdentity"] == "a"
    assert b.try_take() == (False, "a")
    with pytest.raises(ReservationError, match=r"Could not take the GPU reservation Lease default/odp-model-engine-gpu-reservation within 0s: held by a"):
        b.acquire(0)
    a.release([{"name": "ep-1", "gpus": 1, "pods": 1, "at": 1.0}])
    assert b.acquire(1) < 1
    assert b.ledger() == [{"name": "ep-1", "gpus": 1, "pods": 1, "at": 1.0}]
    spec = b.read()["spec"]
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    # b dies holding it: a takes it over once b's lease has expired
    c = Lease(kube, "default", holder="a", duration=2)
    assert c.try_take()[0] is False
    time.sleep(2.2)
    assert c.try_take() == (True, None)


def test_parallel_takers_never_overlap(kube):
    inside, overlaps, order = [0], [], []
    lock = threading.Lock()

    def worker(i):
        lease = Lease(kube, "default", holder="w%d" % i)
        lease.acquire(60)
        with lock:
            inside[0] += 1
            if inside[0] > 1:
                overlaps.append(i)
        time.sleep(0.05)
        with lock:
            inside[0] -= 1
            order.append(i)
        lease.release([*lease.ledger(), {"name": "w%d" % i}])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(order) == list(range(6)) and overlaps == []
    last = Lease(kube, "default", holder="reader")
    last.acquire(5)
    assert sorted(e["name"] for e in last.ledger()) == ["w%d" % i for i in range(6)]   # no lost update
