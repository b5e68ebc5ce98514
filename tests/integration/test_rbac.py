"""k8s_access_check against the twin's API server: the admin context may do everything, the read-only context
(twin-readonly, a real 403 identity) fails first, naming each missing permission."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ALL_PROFILES = ["deploy", "endpoints", "reservation", "verify", "cleanup", "report"]
RO = "twin-readonly"


@pytest.fixture
def kubeconfig(twin_vars):
    return yaml.safe_load(twin_vars.read_text())["k8s_kubeconfig"]


def test_admin_may_do_everything(localhost, kubeconfig):
    res = localhost.__getattr__("odp.model_engine.k8s_access_check")(kubeconfig=kubeconfig, profiles=ALL_PROFILES)["localhost"]
    assert res.get("failed") is not True, res.get("msg")
    assert (res["allowed"], res["missing"], res["changed"]) == (True, [], False)
    assert res["checked"] == len(res["permissions"]) == 30  # the profiles share nodes
    assert all(p["allowed"] for p in res["permissions"])


def test_readonly_context_fails_listing_each_missing_permission(localhost, kubeconfig):
    res = localhost.__getattr__("odp.model_engine.k8s_access_check")(
        kubeconfig=kubeconfig, context=RO, profiles=["deploy", "verify"],
        permissions=[{"verb": "get", "resource": "secrets", "name": "model-engine-s3-credentials"},
                     {"verb": "list", "resource": "nodes", "namespace": ""}])["localhost"]
    assert res["failed"] is True and res["allowed"] is False and res["checked"] == 12
    assert res["missing"] == [
        "cannot patch deployments.apps in namespace llm-core",
        "cannot create configmaps in namespace llm-core",
        "cannot patch configmaps in namespace llm-core",
        "cannot create pods/exec in namespace llm-core",
        "cannot get pods/exec in namespace llm-core",
        'cannot get secrets "model-engine-s3-credentials" in namespace llm-core',
    ]
    assert res["msg"] == ("The Kubernetes credentials (context twin-readonly) lack 6 of the 12 permissions this run needs: "
                          + "; ".join(res["missing"]))
    assert "kubectl auth can-i create pods --subresource=exec -n llm-core" in res["commands"]
    granted = {(p["verb"], p["resource"], p["subresource"]) for p in res["permissions"] if p["allowed"]}
    assert ("get", "pods", "log") in granted and ("list", "nodes", "") in granted


def test_check_mode_asks_the_same_questions(localhost_check, kubeconfig):
    res = localhost_check.__getattr__("odp.model_engine.k8s_access_check")(
        kubeconfig=kubeconfig, context=RO, profiles=["cleanup"], fail_on_missing=False)["localhost"]
    assert res.get("failed") is not True and res["changed"] is False
    assert res["allowed"] is False and len(res["missing"]) == 6 and res["checked"] == 12
    assert all(line.startswith("cannot delete ") for line in res["missing"])


PLAYBOOK = """\
- name: Deploy with a preflight
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the credentials before changing anything
      odp.model_engine.k8s_access_check:
        kubeconfig: "{kubeconfig}"
        context: twin-readonly
        profiles: [deploy]
    - name: Mark the gateway Deployment (must never run)
      kubernetes.core.k8s:
        kubeconfig: "{kubeconfig}"
        state: patched
        kind: Deployment
        api_version: apps/v1
        namespace: llm-core
        name: model-engine
        definition:
          metadata:
            annotations:
              odp.test/preflight-was-skipped: "yes"
"""


def test_a_deploy_with_the_readonly_identity_fails_in_its_first_task(kubeconfig, tmp_path, odp_twin):
    book = tmp_path / "deploy.yml"
    book.write_text(PLAYBOOK.format(kubeconfig=kubeconfig))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_HOME=str(tmp_path / "home"),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), PATH="%s:%s" % (Path(sys.executable).parent, os.environ.get("PATH", "")))
    run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                          "-e", "ansible_python_interpreter=%s" % sys.executable, str(book)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "ok=0" in run.stdout and "changed=0" in run.stdout and "failed=1" in run.stdout, run.stdout
    assert "Mark the gateway Deployment" not in run.stdout
    assert "cannot patch deployments.apps in namespace llm-core" in run.stdout
    dep = odp_twin.call(odp_twin.kube.get("Deployment", "model-engine", "llm-core"))
    assert "odp.test/preflight-was-skipped" not in (dep["metadata"].get("annotations") or {})
    out = json.dumps(run.stdout)
    assert "twin-readonly-token" not in out   # the kubeconfig is no_log; a token never shows


def test_deploy_playbook_with_a_readonly_kubeconfig_fails_first_naming_each_permission(playbook, odp_twin):
    """Issue 15: deploy_model_engine.yml with a read-only identity fails in its first task, before any change."""
    before = {n: odp_twin.call(odp_twin.kube.get("Deployment", n, "llm-core"))["metadata"]["resourceVersion"]
              for n in ("model-engine", "model-engine-endpoint-builder")}
    run = playbook("deploy_model_engine.yml", extra={"k8s_context": RO, "model_engine_tag": "onprem19"})
    assert run.rc != 0, run
    text = " ".join(run.stdout.split())
    assert "lack" in text and "cannot patch deployments.apps in namespace llm-core" in text, run
    # the first task after the role's argument validation is the one that failed
    assert run.recap["changed"] == 0 and run.recap["ok"] <= 1 and run.recap["failed"] == 1, run.recap
    tasks = [line for line in run.stdout.splitlines() if line.startswith("TASK [")]
    assert "may do what the deploy needs" in tasks[-1], tasks
    after = {n: odp_twin.call(odp_twin.kube.get("Deployment", n, "llm-core"))["metadata"]["resourceVersion"] for n in before}
    assert after == before
