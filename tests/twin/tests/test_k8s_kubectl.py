"""Real kubectl (venv kubectl 1.37) against the emulator."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from .conftest import wait_for

pytestmark = pytest.mark.twin

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web, tier: front}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - {{name: A, value: "{a}"}}
        - {{name: KEEP, value: "k"}}
        resources:
          limits: {{cpu: 100m, memory: {mem}}}
      - name: sidecar
        image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {ns}
spec:
  selector: {{app: web}}
  ports:
  - {{name: http, port: 80, targetPort: 80}}
"""


def _ns(kubectl, name):
    kubectl("create", "namespace", name)
    return name


def test_discovery_and_get_builtin_objects(shared_kubectl):
    k = shared_kubectl
    out = k("api-resources", "-o", "name").stdout.split()
    for res in ("pods", "deployments.apps", "replicasets.apps", "configmaps", "secrets", "events", "events.events.k8s.io",
                "horizontalpodautoscalers.autoscaling", "poddisruptionbudgets.policy", "persistentvolumeclaims",
                "serviceaccounts", "services", "namespaces", "nodes"):
        assert res in out
    ns = json.loads(k("get", "ns", "-o", "json").stdout)
    assert ns["kind"] == "List"
    assert {"default", "kube-system", "kube-public"} <= {i["metadata"]["name"] for i in ns["items"]}
    nodes = k("get", "nodes").stdout
    assert "twin-node-1" in nodes and "Ready" in nodes
    assert "the server doesn't have a resource type" in k("get", "widgets", check=False).stderr


def test_apply_create_unchanged_configured(shared_kubectl, tmp_path):
    k = shared_kubectl
    ns = _ns(k, "apply-test")
    f = tmp_path / "app.yaml"
    f.write_text(DEPLOY.format(ns=ns, a="1", mem="64Mi"))
    out = k("apply", "-f", str(f))
    assert "deployment.apps/web created" in out.stdout and "service/web created" in out.stdout
    assert out.stderr == ""
    out = k("apply", "-f", str(f))
    assert "deployment.apps/web unchanged" in out.stdout and "service/web unchanged" in out.stdout
    f.write_text(DEPLOY.format(ns=ns, a="2", mem="128Mi"))
    out = k("apply", "-f", str(f))
    assert "deployment.apps/web configured" in out.stdout and "service/web unchanged" in out.stdout
    assert "warning" not in out.stderr.lower()
    dep = json.loads(k("get", "deploy", "web", "-n", ns, "-o", "json").stdout)
    c = dep["spec"]["template"]["spec"]["containers"]
    # the strategic merge patch kept both containers and merged env by name
    assert [x["name"] for x in c] == ["nginx", "sidecar"]
    assert c[0]["env"] == [{"name": "A", "value": "2"}, {"name": "KEEP", "value": "k"}]
    assert c[0]["resources"]["limits"]["memory"] == "128Mi"
    assert dep["metadata"]["generation"] == 2
    k("rollout", "status", "deploy/web", "-n", ns, "--timeout=30s")
    rs = json.loads(k("get", "rs", "-n", ns, "-o", "json").stdout)["items"]
    assert len(rs) == 2
    assert sorted(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for r in rs) == ["1", "2"]


def test_get_selectors_all_namespaces_and_json(shared_kubectl):
    k = shared_kubectl
    ns = _ns(k, "sel-test")
    k("create", "configmap", "a", "-n", ns, "--from-literal=x=1")
    k("create", "configmap", "b", "-n", ns, "--from-literal=x=2")
    k("label", "configmap", "a", "-n", ns, "team=red", "tier=db")
    k("label", "configmap", "b", "-n", ns, "team=blue")
    names = lambda *a: k("get", "cm", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}", *a).stdout.split()  # noqa: E731
    assert names("-l", "team=red") == ["a"]
    assert names("-l", "team in (red,blue)") == ["a", "b"]
    assert names("-l", "team notin (red)") == ["b", "kube-root-ca.crt"] or names("-l", "team notin (red)") == ["b"]
    assert names("-l", "!tier") == [n for n in names() if n != "a"]
    assert names("-l", "tier") == ["a"]
    assert names("-l", "team!=red,team") == ["b"]
    assert names("--field-selector", "metadata.name=b") == ["b"]
    assert names("--field-selector", "metadata.name!=b", "-l", "team") == ["a"]
    everything = k("get", "cm", "-A", "-l", "team").stdout
    assert "sel-test" in everything and "NAMESPACE" in everything
    data = json.loads(k("get", "cm", "a", "-n", ns, "-o", "json").stdout)
    assert data["data"] == {"x": "1"} and data["kind"] == "ConfigMap"
    err = k("get", "cm", "-n", ns, "-l", "team in (", check=False)
    assert err.returncode != 0


def test_create_configmap_and_secret_imperatively(shared_kubectl):
    k = shared_kubectl
    ns = _ns(k, "create-test")
    assert "configmap/cfg created" in k("create", "configmap", "cfg", "-n", ns, "--from-literal=k=v").stdout
    assert "secret/sec created" in k("create", "secret", "generic", "sec", "-n", ns, "--from-literal=p=s3cret").stdout
    assert k("get", "cm", "cfg", "-n", ns, "-o", "jsonpath={.data.k}").stdout == "v"
    assert k("get", "secret", "sec", "-n", ns, "-o", "jsonpath={.data.p}").stdout == "czNjcmV0"
    again = k("create", "configmap", "cfg", "-n", ns, "--from-literal=k=v", check=False)
    assert again.returncode != 0 and 'configmaps "cfg" already exists' in again.stderr
    assert "configmap \"cfg\" deleted" in k("delete", "configmap", "cfg", "-n", ns).stdout
    gone = k("get", "cm", "cfg", "-n", ns, check=False)
    assert gone.returncode != 0 and 'configmaps "cfg" not found' in gone.stderr


def test_rollout_set_image_restart_undo_history_scale(shared_kubectl, tmp_path):
    k = shared_kubectl
    ns = _ns(k, "rollout-test")
    f = tmp_path / "app.yaml"
    f.write_text(DEPLOY.format(ns=ns, a="1", mem="64Mi"))
    k("apply", "-f", str(f))
    k("rollout", "status", "deploy/web", "-n", ns, "--timeout=30s")
    k("set", "image", "deploy/web", "nginx=nginx:1.26", "-n", ns)
    out = k("rollout", "status", "deploy/web", "-n", ns, "--timeout=30s").stdout
    assert 'deployment "web" successfully rolled out' in out
    images = k("get", "pods", "-n", ns, "-l", "app=web", "-o", "jsonpath={.items[*].spec.containers[0].image}").stdout.split()
    assert images == ["nginx:1.26", "nginx:1.26"]
    hist = k("rollout", "history", "deploy/web", "-n", ns).stdout
    assert "REVISION" in hist and "1 " in hist and "2 " in hist
    k("rollout", "undo", "deploy/web", "-n", ns)
    k("rollout", "status", "deploy/web", "-n", ns, "--timeout=30s")
    assert k("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout == "nginx:1.25"
    # the rollback re-used revision 1's ReplicaSet and gave it revision 3
    rs = json.loads(k("get", "rs", "-n", ns, "-o", "json").stdout)["items"]
    assert len(rs) == 2
    by_image = {r["spec"]["template"]["spec"]["containers"][0]["image"]: r for r in rs}
    assert by_image["nginx:1.25"]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert by_image["nginx:1.26"]["spec"]["replicas"] == 0
    assert k("get", "deploy", "web", "-n", ns, "-o",
             "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}").stdout == "3"
    hist = k("rollout", "history", "deploy/web", "-n", ns).stdout.splitlines()
    assert [ln.split()[0] for ln in hist[2:] if ln.strip()] == ["2", "3"]
    # restart rolls out a new ReplicaSet with the restartedAt annotation
    k("rollout", "restart", "deploy/web", "-n", ns)
    k("rollout", "status", "deploy/web", "-n", ns, "--timeout=30s")
    ann = k("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.template.metadata.annotations}").stdout
    assert "kubectl.kubernetes.io/restartedAt" in ann
    assert len(json.loads(k("get", "rs", "-n", ns, "-o", "json").stdout)["items"]) == 3
    k("scale", "deploy/web", "--replicas=4", "-n", ns)
    k("rollout", "status", "deploy/web", "-n", ns, "--timeout=30s")
    k("wait", "--for=condition=Available", "deploy/web", "-n", ns, "--timeout=20s")
    pods = k("get", "pods", "-n", ns, "-l", "app=web", "--field-selector", "status.phase=Running", "-o", "name").stdout.split()
    assert len(pods) == 4
    table = k("get", "deploy", "web", "-n", ns).stdout
    assert "4/4" in table


def test_logs_exec_and_exit_codes(shared_kubectl, tmp_path):
    k = shared_kubectl
    ns = _ns(k, "exec-test")
    f = tmp_path / "app.yaml"
    f.write_text(DEPLOY.format(ns=ns, a="1", mem="64Mi"))
    k("apply", "-f", str(f))
    k("rollout", "status", "deploy/web", "-n", ns, "--timeout=30s")
    pod = k("get", "pods", "-n", ns, "-o", "jsonpath={.items[0].metadata.name}").stdout
    twin = k.twin
    twin.call(lambda: twin.emulator.kubelet.handle_for(ns, pod).log("nginx", "line two\nline three\n"))
    logs = k("logs", pod, "-n", ns, "-c", "nginx").stdout.splitlines()
    assert logs[0].startswith("twin: container nginx started") and logs[1:] == ["line two", "line three"]
    assert k("logs", pod, "-n", ns, "-c", "nginx", "--tail=1").stdout == "line three\n"
    multi = k("logs", pod, "-n", ns)  # kubectl defaults to the first container client-side
    assert 'Defaulted container "nginx" out of: nginx, sidecar' in multi.stderr
    raw = k("get", "--raw", f"/api/v1/namespaces/{ns}/pods/{pod}/log", check=False)
    assert raw.returncode != 0 and "a container name must be specified for pod" in raw.stderr
    ls = k("exec", pod, "-n", ns, "-c", "nginx", "--", "ls", "-la")
    assert ls.stdout.startswith("total")
    twin.call(lambda: (twin.emulator.kubelet.handle_for(ns, pod).container_root("nginx") / "hello.txt").write_text("hi"))
    assert k("exec", pod, "-n", ns, "-c", "nginx", "--", "cat", "hello.txt").stdout == "hi"
    env = k("exec", pod, "-n", ns, "-c", "nginx", "--", "sh", "-c", "echo $A-$KEEP").stdout
    assert env == "1-k\n"
    bad = k("exec", pod, "-n", ns, "-c", "nginx", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert bad.returncode == 3
    assert bad.stdout == "out\n" and "err" in bad.stderr and "command terminated with exit code 3" in bad.stderr
    piped = k("exec", "-i", pod, "-n", ns, "-c", "nginx", "--", "wc", "-c", input="12345")
    assert piped.stdout.strip() == "5"


def test_delete_and_cascade(shared_kubectl, tmp_path):
    k = shared_kubectl
    ns = _ns(k, "delete-test")
    f = tmp_path / "app.yaml"
    f.write_text(DEPLOY.format(ns=ns, a="1", mem="64Mi"))
    k("apply", "-f", str(f))
    k("rollout", "status", "deploy/web", "-n", ns, "--timeout=30s")
    assert 'deployment.apps "web" deleted' in k("delete", "deploy", "web", "-n", ns).stdout
    assert k("get", "rs,pods", "-n", ns, "-o", "name").stdout.strip() == ""
    k("delete", "-f", str(f), "--ignore-not-found")
    k("delete", "namespace", ns)
    assert k("get", "ns", ns, check=False).returncode != 0


def test_get_raw_pod_proxy(shared_kubectl, tmp_path):
    k = shared_kubectl
    ns = _ns(k, "proxy-test")
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            body = json.dumps({"path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        f = tmp_path / "app.yaml"
        f.write_text(DEPLOY.format(ns=ns, a="1", mem="64Mi"))
        k("apply", "-f", str(f))
        k("rollout", "status", "deploy/web", "-n", ns, "--timeout=30s")
        pod = k("get", "pods", "-n", ns, "-o", "jsonpath={.items[0].metadata.name}").stdout
        refused = k("get", "--raw", f"/api/v1/namespaces/{ns}/pods/{pod}:80/proxy/healthz", check=False)
        assert (refused.returncode != 0 and "503" in refused.stderr + refused.stdout) or "refused" in refused.stderr
        twin = k.twin
        for p in json.loads(k("get", "pods", "-n", ns, "-o", "json").stdout)["items"]:
            name = p["metadata"]["name"]
            twin.call(lambda n=name: twin.emulator.kubelet.handle_for(ns, n).expose(80, "127.0.0.1", srv.server_address[1]))
        out = k("get", "--raw", f"/api/v1/namespaces/{ns}/pods/{pod}:80/proxy/v1/models?x=1").stdout
        assert json.loads(out) == {"path": "/v1/models?x=1"}
        out = k("get", "--raw", f"/api/v1/namespaces/{ns}/services/web:http/proxy/health").stdout
        assert json.loads(out) == {"path": "/health"}
        assert seen == ["/v1/models?x=1", "/health"]
    finally:
        srv.shutdown()


def test_wait_for_condition_and_events(shared_kubectl, tmp_path):
    k = shared_kubectl
    ns = _ns(k, "wait-test")
    f = tmp_path / "app.yaml"
    f.write_text(DEPLOY.format(ns=ns, a="1", mem="64Mi"))
    k("apply", "-f", str(f))
    out = k("wait", "--for=condition=Available", "deploy/web", "-n", ns, "--timeout=20s").stdout
    assert "condition met" in out
    wait_for(lambda: "Scheduled" in k("get", "events", "-n", ns).stdout, message="Scheduled event")
    ev = json.loads(k("get", "events", "-n", ns, "--field-selector", "reason=ScalingReplicaSet", "-o", "json").stdout)
    assert ev["items"] and ev["items"][0]["involvedObject"]["kind"] == "Deployment"
    assert ev["items"][0]["source"]["component"] == "deployment-controller"
    new = k("events", "-n", ns, "--for", "deploy/web").stdout
    assert "ScalingReplicaSet" in new


NESTED = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: nested, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: nested}}}}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: {surge}, maxUnavailable: 0}}}}
  template:
    metadata: {{labels: {{app: nested}}}}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{{key: kubernetes.io/os, operator: In, values: [{os}]}}]
      volumes: [{{name: cfg, configMap: {{name: x, items: [{{key: a, path: {path}}}]}}}}]
      containers:
      - name: main
        image: nginx
        readinessProbe: {{httpGet: {{path: {probe}, port: 80}}}}
        volumeMounts: [{{name: cfg, mountPath: /cfg}}]
"""


def test_apply_changes_nested_fields_without_warnings(shared_kubectl, tmp_path):
    k = shared_kubectl
    ns = _ns(k, "nested-test")
    f = tmp_path / "n.yaml"
    f.write_text(NESTED.format(ns=ns, surge=1, os="linux", path="a", probe="/ready"))
    k("apply", "-f", str(f))
    f.write_text(NESTED.format(ns=ns, surge=2, os="other", path="b", probe="/healthz"))
    out = k("apply", "-f", str(f))
    assert "configured" in out.stdout and out.stderr == ""
    d = json.loads(k("get", "deploy", "nested", "-n", ns, "-o", "json").stdout)["spec"]
    t = d["template"]["spec"]
    assert d["strategy"]["rollingUpdate"] == {"maxSurge": 2, "maxUnavailable": 0}
    assert t["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchExpressions"][0]["values"] == ["other"]
    assert t["volumes"][0]["configMap"]["items"] == [{"key": "a", "path": "b"}]
    assert t["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/healthz"
    # the pod cannot schedule on the linux-only node any more: the new ReplicaSet's pod stays Pending
    wait_for(lambda: "didn't match Pod's node affinity/selector" in k("get", "events", "-n", ns,
                                                                     "--field-selector", "reason=FailedScheduling").stdout,
             message="FailedScheduling for the affinity change")


def test_openapi_documents(shared_kubectl):
    k = shared_kubectl
    root = json.loads(k("get", "--raw", "/openapi/v3").stdout)
    assert {"api/v1", "apis/apps/v1", "apis/autoscaling/v2", "apis/policy/v1"} <= set(root["paths"])
    doc = json.loads(k("get", "--raw", root["paths"]["apis/apps/v1"]["serverRelativeURL"]).stdout)
    dep = doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert dep["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    podspec = doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert podspec["containers"]["x-kubernetes-patch-merge-key"] == "name"
    assert podspec["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    container = doc["components"]["schemas"]["io.k8s.api.core.v1.Container"]["properties"]
    assert container["ports"]["x-kubernetes-patch-merge-key"] == "containerPort"
    assert container["env"]["x-kubernetes-patch-merge-key"] == "name"
    assert container["volumeMounts"]["x-kubernetes-patch-merge-key"] == "mountPath"
    v2 = json.loads(k("get", "--raw", "/openapi/v2").stdout)
    assert v2["definitions"]["io.k8s.api.core.v1.ConfigMap"]["x-kubernetes-group-version-kind"][0]["kind"] == "ConfigMap"
    explained = k("explain", "deployment.spec.template.spec.containers.ports").stdout
    assert "KIND:       Deployment" in explained and "containerPort" in explained
