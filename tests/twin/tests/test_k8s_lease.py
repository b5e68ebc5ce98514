"""coordination.k8s.io/v1 Lease as a real apiserver serves it: CRUD, the optimistic lock (409 on a stale
resourceVersion, 409 AlreadyExists on a second create), MicroTime decoding, validation, kubectl, RBAC, and the
request counters the fleet benchmark reads."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.twin

NOW = "2026-01-02T03:04:05.123456Z"


def lease(name="gpu-lock", holder="run-a", duration=30, **spec):
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "acquireTime": NOW, "renewTime": NOW,
                     "leaseTransitions": 0}}
    body["spec"].update(spec)
    return body


def error(e):
    return e.value.status, json.loads(e.value.body)


def raw_create(twin, body, namespace="default"):
    """POST the JSON as written (the typed client re-serializes MicroTime fields through datetime)."""
    req = urllib.request.Request("%s/apis/coordination.k8s.io/v1/namespaces/%s/leases" % (twin.emulator.url, namespace),
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer twin-token"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_lease_crud_and_the_optimistic_lock(api):
    coord = client.CoordinationV1Api(api)
    created = coord.create_namespaced_lease("default", lease())
    assert created.spec.holder_identity == "run-a" and created.spec.lease_duration_seconds == 30
    assert created.metadata.resource_version and created.spec.renew_time.microsecond == 123456
    with pytest.raises(ApiException) as e:   # the second taker of a free lock loses the create race
        coord.create_namespaced_lease("default", lease(holder="run-b"))
    status, body = error(e)
    assert status == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'leases.coordination.k8s.io "gpu-lock" already exists'

    a = coord.read_namespaced_lease("gpu-lock", "default")
    b = coord.read_namespaced_lease("gpu-lock", "default")
    a.spec.holder_identity = "run-a2"
    a.spec.lease_transitions = 1
    moved = coord.replace_namespaced_lease("gpu-lock", "default", a)
    assert int(moved.metadata.resource_version) > int(created.metadata.resource_version)
    b.spec.holder_identity = "run-b"   # taken from a stale read: refused
    with pytest.raises(ApiException) as e:
        coord.replace_namespaced_lease("gpu-lock", "default", b)
    status, body = error(e)
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on leases.coordination.k8s.io "gpu-lock": the object has been '
                               "modified; please apply your changes to the latest version and try again")
    assert coord.read_namespaced_lease("gpu-lock", "default").spec.holder_identity == "run-a2"
    assert [x.metadata.name for x in coord.list_namespaced_lease("default").items] == ["gpu-lock"]
    coord.delete_namespaced_lease("gpu-lock", "default")
    with pytest.raises(ApiException) as e:
        coord.read_namespaced_lease("gpu-lock", "default")
    assert error(e) == (404, {**error(e)[1], "message": 'leases.coordination.k8s.io "gpu-lock" not found'})


def test_micro_time_needs_six_fraction_digits_and_the_spec_is_validated(twin, api):
    coord = client.CoordinationV1Api(api)
    for value, rest, element in (("2026-01-02T03:04:05Z", "Z", ".000000"), ("2026-01-02T03:04:05.123Z", ".123Z", ".000000"),
                                 ("2026-01-02T03:04:05.123456789Z", "789Z", "Z07:00"),
                                 ("2026-01-02T03:04:05+00:00", "+00:00", ".000000")):   # datetime.isoformat() at microsecond 0
        status, body = raw_create(twin, lease(renewTime=value))
        assert status == 400 and body["reason"] == "BadRequest"
        assert body["message"] == ('Lease in version "v1" cannot be handled as a Lease: parsing time "%s" as '
                                   '"2006-01-02T15:04:05.000000Z07:00": cannot parse "%s" as "%s"' % (value, rest, element))
    status, created = raw_create(twin, lease("offset", renewTime="2026-01-02T07:04:05.000001+04:00"))
    assert status == 201 and created["spec"]["renewTime"] == "2026-01-02T03:04:05.000001Z"   # served in UTC
    with pytest.raises(ApiException) as e:
        coord.create_namespaced_lease("default", lease("bad", duration=0, leaseTransitions=-1))
    status, body = error(e)
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"] == ('Lease.coordination.k8s.io "bad" is invalid: [spec.leaseDurationSeconds: Invalid value: 0: must be '
                               "greater than 0, spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0]")
    status, body = raw_create(twin, lease("typed", duration="30"))
    assert status == 400 and body["message"] == ('Lease in version "v1" cannot be handled as a Lease: json: cannot unmarshal string '
                                                 "into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32")


def test_kubectl_lists_leases_with_their_holder_and_the_readonly_user_cannot_take_one(api, kubectl):
    client.CoordinationV1Api(api).create_namespaced_lease("default", lease("gpu-lock", holder="fleet-ep-1@controller"))
    resources = kubectl("api-resources", "--api-group=coordination.k8s.io").stdout
    assert resources.split("\n")[1].split() == ["leases", "coordination.k8s.io/v1", "true", "Lease"]
    out = kubectl("get", "leases", "-n", "default").stdout.splitlines()
    assert out[0].split() == ["NAME", "HOLDER", "AGE"] and out[1].split()[:2] == ["gpu-lock", "fleet-ep-1@controller"]
    assert kubectl("--context", "twin-readonly", "get", "lease", "gpu-lock", "-n", "default", "-o", "name").stdout.strip() == \
        "lease.coordination.k8s.io/gpu-lock"
    refused = kubectl("--context", "twin-readonly", "delete", "lease", "gpu-lock", "-n", "default", check=False)
    assert refused.returncode != 0
    assert ('leases.coordination.k8s.io "gpu-lock" is forbidden: User "twin-readonly" cannot delete resource "leases" in API '
            'group "coordination.k8s.io" in the namespace "default"') in refused.stderr


def test_request_counts_name_the_client(twin, api):
    before = dict(twin.emulator.api.request_counts)
    client.CoordinationV1Api(api).list_namespaced_lease("default")
    api.set_default_header("X-Odp-Twin", "control-plane")
    client.CoordinationV1Api(api).list_namespaced_lease("default")
    after = twin.emulator.api.request_counts
    assert after[("OpenAPI-Generator", "GET")] - before.get(("OpenAPI-Generator", "GET"), 0) == 1
    assert after[("twin", "GET")] - before.get(("twin", "GET"), 0) == 1
    log = twin.emulator.api.request_log
    assert log[-1][1:] == ("GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases", 200)  # the client's, not the twin's
    assert sum(1 for r in log if r[2].startswith("/apis/coordination.k8s.io/v1/namespaces/default/leases")) == 1


def test_a_bug_in_the_twin_is_a_500_on_record_whoever_asked(twin, api, monkeypatch):
    """A handler that raises answers 500 as an apiserver would and keeps serving; the request is on the twin's error
    record (which the fixtures assert empty), for the twin's own clients too."""
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(twin.emulator.api, "list_or_watch", broken)
    api.set_default_header("X-Odp-Twin", "control-plane")
    with pytest.raises(ApiException) as e:
        client.CoordinationV1Api(api).list_namespaced_lease("default")
    assert e.value.status == 500 and "twin internal error: RuntimeError: boom" in json.loads(e.value.body)["message"]
    assert twin.emulator.api.errors == [("GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases", 500)]
    twin.emulator.api.errors.clear()  # this test's own, on purpose
