"""Kube: the request count a wait reports, and the log reads the judge's observation makes."""

from __future__ import annotations

import json

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError
from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube


@pytest.fixture
def kube(tmp_path):
    from kubernetes import config

    from tests.twin.k8s import EmulatorThread

    twin = EmulatorThread(tmp_path / "k8s").start()
    client = config.new_client_from_config(str(twin.kubeconfig_path))
    try:
        yield Kube(client=client), twin
    finally:
        client.close()
        twin.stop()


def test_every_request_the_client_sends_is_counted(kube):
    """What vllm_ready reports as its Kubernetes requests is what the API server saw, reads and misses alike."""
    k, twin = kube
    log = twin.emulator.api.request_log
    before = len(log)
    k.list("Pod", "default")
    k.get("Pod", "nope", "default")  # a 404 is a request too
    k.events("default")
    assert k.requests == 3 == len(log) - before


def test_objects_round_trip_as_the_api_servers_json(kube):
    """Create, read, list by label, patch, delete through the REST paths, with the API server's own refusals."""
    k, _twin = kube
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1", "labels": {"app": "x"}}, "data": {"a": "1"}}
    assert k.create("ConfigMap", cm, "default")["metadata"]["uid"]
    with pytest.raises(KubeError) as refused:
        k.create("ConfigMap", cm, "default")
    assert refused.value.status == 409 and 'configmaps "c1" already exists' in str(refused.value)
    assert k.get("ConfigMap", "c1", "default")["data"] == {"a": "1"} and k.get("ConfigMap", "c2", "default") is None
    assert [c["metadata"]["name"] for c in k.list("ConfigMap", "default", "app=x")] == ["c1"] and not k.list("ConfigMap", "default", "app=y")
    pod_body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"}, "spec": {"containers": [{"name": "main", "image": "i"}]}}
    k.create("Pod", pod_body, "default")
    k.patch_pod_annotations("default", "p1", {"odp/x": "y"})
    assert k.get("Pod", "p1", "default")["metadata"]["annotations"]["odp/x"] == "y"
    assert "p1" in [p["metadata"]["name"] for p in k.list_all_pods()]
    assert k.delete("ConfigMap", "c1", "default") is True and k.delete("ConfigMap", "c1", "default") is False


def answer_logs(k, current="line 1\nline 2\n", previous=None):
    """Kube.request for log reads as the API server answers them: 400 for a previous instance that does not exist."""
    calls = []

    def request(what, method, path, query=None, **options):
        calls.append(dict(query or {}, path=path))
        if (query or {}).get("previous") == "true":
            if previous is None:
                raise KubeError("%s: HTTP 400 previous terminated container not found" % what, status=400)
            return previous
        return current

    k.request = request
    return calls


def pod(restarts):
    return {"metadata": {"name": "p"}, "status": {"containerStatuses": [{"name": "main", "restartCount": restarts}]}}


@pytest.mark.parametrize("which, previous_asked", [(pod(0), False), (pod(2), True), ("p", True)])
def test_a_previous_log_is_asked_for_only_when_the_container_restarted(which, previous_asked):
    """Given the pod as read, a container that never restarted costs one log request, not two; given only a name,
    both are asked (a crash-looping container's error is in the previous instance's log)."""
    k = Kube(client=object())
    calls = answer_logs(k)
    assert k.logs("ns", which, "main", 5) == ["line 1", "line 2"]
    assert [c["previous"] for c in calls] == (["false", "true"] if previous_asked else ["false"])
    assert {c["path"] for c in calls} == {"/api/v1/namespaces/ns/pods/p/log"} and {c["tailLines"] for c in calls} == {5}


def test_an_empty_current_log_asks_the_previous_instance_even_when_the_pod_as_read_never_restarted():
    """The pod was read before its container crashed and restarted: the new instance has printed nothing yet and the
    crash's lines are in the previous instance; a failed wait must show them, not an empty log."""
    k = Kube(client=object())
    calls = answer_logs(k, current="", previous="Traceback\nRuntimeError: CUDA out of memory\n")
    assert k.logs("ns", pod(0), "main", 5) == ["--- previous instance ---", "Traceback", "RuntimeError: CUDA out of memory",
                                               "--- current instance ---"]
    assert [c["previous"] for c in calls] == ["false", "true"]
    calls = answer_logs(k, current="")  # nothing anywhere: an empty log, no error
    assert k.logs("ns", pod(0), "main", 5) == [] and [c["previous"] for c in calls] == ["false", "true"]


def test_refused_credentials_are_an_error_not_an_empty_log():
    k = Kube(client=object())

    def request(what, method, path, query=None, **options):
        raise KubeError("%s: HTTP 403 forbidden" % what, status=403)

    k.request = request
    with pytest.raises(KubeError, match="Reading the log of ns/p container main: HTTP 403"):
        k.logs("ns", pod(0), "main")


def test_the_pod_proxy_returns_any_http_answer_and_counts_it(kube):
    """vLLM's answer, or the API server's own for a pod that does not listen (yet): a status to judge, not an error;
    each is one request in what vllm_ready reports."""
    from ansible_collections.odp.model_engine.plugins.module_utils.readiness import pod_proxy

    k, twin = kube
    pod_body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p2"}, "spec": {"containers": [{"name": "main", "image": "i"}]}}
    k.create("Pod", pod_body, "default")
    before = k.requests
    status, text = pod_proxy(k, "default", "p2", 5005)("GET", "/v1/models", timeout=5)
    assert status == 503 and "connection refused" in text
    status, text = pod_proxy(k, "default", "gone", 5005)("GET", "health", timeout=5)
    assert status == 404 and json.loads(text)["message"] == 'pods "gone" not found'
    assert k.requests == before + 2
    from urllib.parse import unquote

    sent = [(method, unquote(path), status) for _t, method, path, status in twin.emulator.api.request_log[-2:]]
    assert sent == [("GET", "/api/v1/namespaces/default/pods/p2:5005/proxy/v1/models", 503),
                    ("GET", "/api/v1/namespaces/default/pods/gone:5005/proxy/health", 404)]


def test_an_exec_the_api_server_refuses_is_its_status_and_message_not_the_websocket_text(kube):
    """kubernetes.stream reports a refused handshake as status 0 and the websocket client's text (headers included);
    the error names the exec and says what the API server said, as for any other request."""
    k, _twin = kube
    before = k.requests
    with pytest.raises(KubeError) as refused:
        k.exec("default", "nope", "main", ["true"], timeout=5)
    assert str(refused.value) == 'exec in default/nope container main: HTTP 404 pods "nope" not found'
    assert refused.value.status == 404 and k.requests == before + 1


def test_an_exec_the_credentials_may_not_make_says_so(kube):
    from kubernetes import config

    _k, twin = kube
    readonly = Kube(client=config.new_client_from_config(str(twin.kubeconfig_path), context="twin-readonly"))
    pod_body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p3"}, "spec": {"containers": [{"name": "main", "image": "i"}]}}
    _k.create("Pod", pod_body, "default")
    with pytest.raises(KubeError) as refused:
        readonly.exec("default", "p3", "main", ["true"], timeout=5)
    assert refused.value.status == 403 and str(refused.value).startswith("exec in default/p3 container main: HTTP 403 ")
    assert 'User "twin-readonly" cannot ' in str(refused.value) and ' resource "pods/exec" in API group "" in the namespace "default"' in str(refused.value)
    assert "ask for the RBAC rule" in str(refused.value)
