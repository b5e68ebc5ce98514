"""`python -m tests.twin up --detach / status / down`: one command starts and stops everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.twin
REPO = Path(__file__).resolve().parents[3]
VARS = {"odp_twin_state_dir", "model_engine_url", "model_engine_user", "model_engine_validate_certs", "k8s_kubeconfig",
        "model_engine_namespace", "model_engine_endpoint_namespace", "s3_endpoint_url", "s3_bucket", "s3_access_key",
        "s3_secret_key", "s3_region", "model_engine_registry_url", "model_engine_registry_pull_secret"}


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tests.twin", *args], cwd=str(REPO), capture_output=True, text=True,
                          timeout=timeout, check=False)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_up_detach_status_down(tmp_path):
    import yaml

    state = tmp_path / "state"
    p = run("up", "--detach", "--state", str(state))
    try:
        assert p.returncode == 0, p.stderr + (state / "twin.log").read_text()
        info = json.loads((state / "twin.json").read_text())
        assert alive(info["pid"]) and alive(info["s3"]["pid"]) and alive(info["registry"]["pid"])
        assert info["download_form"] == "awscli"           # the on-prem image's form is the default
        try:
            urllib.request.urlopen(info["registry"]["url"] + "/v2/", timeout=5)
            raise AssertionError("the registry answered an anonymous /v2/ with 200")
        except urllib.error.HTTPError as e:   # a real distribution registry with token auth
            assert e.code == 401 and e.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
        with urllib.request.urlopen(info["model_engine_url"] + "/readyz", timeout=5) as r:
            assert r.status == 200
        assert (state / "kubeconfig").read_text().count("server: http://127.0.0.1:") == 1
        tv_text = (state / "inventories/local/group_vars/all/twin.yml").read_text()
        tv = yaml.safe_load(tv_text)
        # The generated file sits in the repo's inventory that ansible-lint (production) checks after
        # `make demo`; it must pass the repo's yamllint rules (document start included).
        from yamllint import linter
        from yamllint.config import YamlLintConfig

        lint = list(linter.run(tv_text, YamlLintConfig(file=str(REPO / ".yamllint"))))
        assert lint == [], [str(x) for x in lint]
        assert set(tv) == VARS
        assert tv["model_engine_user"] == "test-user-id" and tv["model_engine_validate_certs"] is False
        assert tv["model_engine_namespace"] == "llm-core" and tv["s3_bucket"] == "scale-gp-models"
        assert tv["s3_endpoint_url"] == info["s3"]["endpoint_url"] and tv["model_engine_url"] == info["model_engine_url"]
        assert tv["model_engine_registry_url"] == info["registry"]["url"]
        assert tv["model_engine_registry_pull_secret"] == info["registry"]["pull_secret"]
        kc = subprocess.run([str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", tv["k8s_kubeconfig"], "get",
                             "deployments", "-n", "llm-core", "--no-headers"], capture_output=True, text=True,
                            timeout=30, check=False, env=dict(os.environ, HOME=str(tmp_path)))
        assert "model-engine-endpoint-builder" in kc.stdout and "1/1" in kc.stdout
        st = run("status", "--state", str(state))
        assert st.returncode == 0 and "readyz 200" in st.stdout and "running" in st.stdout
        assert "registry (token)" in st.stdout and "DEAD" not in st.stdout
        again = run("up", "--detach", "--state", str(state))
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        down = run("down", "--state", str(state))
    assert down.returncode == 0, down.stderr
    assert not alive(info["pid"]) and not alive(info["s3"]["pid"]) and not alive(info["registry"]["pid"])
    assert not (state / "twin.pid").exists()
    # nothing started for this state dir is left (the registry binary runs under a watchdog, with its config here)
    left = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(state) in cmd and proc.name.isdigit() and alive(int(proc.name)):
            left.append(cmd)
    assert left == []
    assert run("status", "--state", str(state)).returncode == 3
    leftovers = list((state / "k8s" / "pods").rglob("*")) if (state / "k8s" / "pods").exists() else []
    assert leftovers == []


def test_up_with_the_upstream_download_form(tmp_path):
    from tests.twin.tests.conftest_platform import RUNBOOK_BODY, ModelEngineClient

    state = tmp_path / "state"
    p = run("up", "--detach", "--state", str(state), "--download-form", "s5cmd")
    try:
        assert p.returncode == 0, p.stderr + (state / "twin.log").read_text()
        info = json.loads((state / "twin.json").read_text())
        assert info["download_form"] == "s5cmd"
        me = ModelEngineClient(info["model_engine_url"])
        assert me.create(dict(RUNBOOK_BODY)).status == 200
        ep = me.wait(RUNBOOK_BODY["name"], lambda e: e["status"] == "READY")
        name = "launch-endpoint-id-" + ep["id"].replace("_", "-")
        kc = subprocess.run([str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", info["kubeconfig"], "get",
                             "deployment", name, "-n", "llm-core", "-o", "jsonpath={.spec.template.spec.containers[1].command[2]}"],
                            capture_output=True, text=True, timeout=30, check=False, env=dict(os.environ, HOME=str(tmp_path)))
        assert kc.stdout.startswith("set -euo pipefail;./s5cmd ") and "awscli" not in kc.stdout, kc
    finally:
        down = run("down", "--state", str(state))
    assert down.returncode == 0, down.stderr
    bad = run("up", "--state", str(tmp_path / "other"), "--download-form", "rclone")
    assert bad.returncode == 2 and "invalid choice: 'rclone'" in bad.stderr
