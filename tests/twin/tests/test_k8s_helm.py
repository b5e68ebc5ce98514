"""helm 3 (scripts/install_helm.sh) against the emulator: install/upgrade, history, rollback."""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from .conftest import Kubectl, helm_binary, tool_env

pytestmark = [pytest.mark.twin, pytest.mark.slow]

CHART = pathlib.Path(__file__).parent / "charts" / "twinapp"
HELM = helm_binary()


@pytest.mark.skipif(HELM is None, reason="helm is not installed: run scripts/install_helm.sh .build/bin (make does this)")
def test_helm_upgrade_install_history_rollback(twin, tmp_path):
    env = tool_env(tmp_path, twin.kubeconfig_path)
    k = Kubectl(twin, tmp_path)

    def helm(*args, check=True):
        p = subprocess.run([str(HELM), "--kubeconfig", str(twin.kubeconfig_path), *args], env=env, check=False, capture_output=True,
                           text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} rc={p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    k("create", "namespace", "apps")
    out = helm("upgrade", "--install", "demo", str(CHART), "-n", "apps", "--wait", "--timeout", "60s")
    assert "STATUS: deployed" in out.stdout and "REVISION: 1" in out.stdout
    secrets = json.loads(k("get", "secrets", "-n", "apps", "-l", "owner=helm", "-o", "json").stdout)["items"]
    assert [s["type"] for s in secrets] == ["helm.sh/release.v1"]
    assert k("get", "deploy", "demo", "-n", "apps", "-o", "jsonpath={.status.availableReplicas}").stdout == "2"
    assert k("get", "pdb", "demo", "-n", "apps", "-o", "name").stdout.strip() == "poddisruptionbudget.policy/demo"

    assert k("get", "vpa", "demo", "-n", "apps", "-o", "jsonpath={.spec.updatePolicy.updateMode}").stdout == "Off"
    out = helm("upgrade", "--install", "demo", str(CHART), "-n", "apps", "--set", "image.tag=1.26", "--set", "message=bye",
               "--set", "vpaMode=Initial", "--wait", "--timeout", "60s")
    assert "REVISION: 2" in out.stdout
    # helm patches the custom resource with a JSON merge patch (a strategic one would be refused)
    assert k("get", "vpa", "demo", "-n", "apps", "-o", "jsonpath={.spec.updatePolicy.updateMode}").stdout == "Initial"
    assert k("get", "deploy", "demo", "-n", "apps", "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout == "nginx:1.26"
    assert k("get", "cm", "demo-config", "-n", "apps", "-o", "jsonpath={.data.message}").stdout == "bye"
    # the three-way merge kept fields helm does not own (a label added out of band)
    k("label", "deploy", "demo", "-n", "apps", "extra=kept")

    hist = json.loads(helm("history", "demo", "-n", "apps", "-o", "json").stdout)
    assert [(h["revision"], h["status"]) for h in hist] == [(1, "superseded"), (2, "deployed")]

    out = helm("rollback", "demo", "1", "-n", "apps", "--wait", "--timeout", "60s")
    assert "Rollback was a success" in out.stdout
    assert k("get", "deploy", "demo", "-n", "apps", "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout == "nginx:1.25"
    assert k("get", "deploy", "demo", "-n", "apps", "-o", "jsonpath={.metadata.labels.extra}").stdout == "kept"
    assert k("get", "vpa", "demo", "-n", "apps", "-o", "jsonpath={.spec.updatePolicy.updateMode}").stdout == "Off"
    k("rollout", "status", "deploy/demo", "-n", "apps", "--timeout=30s")
    hist = json.loads(helm("history", "demo", "-n", "apps", "-o", "json").stdout)
    assert [(h["revision"], h["status"]) for h in hist][-1] == (3, "deployed")
    listed = json.loads(helm("list", "-n", "apps", "-o", "json").stdout)
    assert listed[0]["name"] == "demo" and listed[0]["revision"] == "3"

    helm("uninstall", "demo", "-n", "apps", "--wait")
    assert k("get", "deploy,cm,svc,sa,vpa", "-n", "apps", "-l", "app.kubernetes.io/instance=demo", "-o", "name").stdout.strip() == ""
    assert k("get", "secrets", "-n", "apps", "-l", "owner=helm", "-o", "name").stdout.strip() == ""
