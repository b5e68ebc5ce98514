"""kubernetes.core (ansible 12 / kubernetes.core 6.2) modules against the emulator, via ansible-playbook."""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from .conftest import VENV_BIN, tool_env

pytestmark = [pytest.mark.twin, pytest.mark.slow]

PLAYBOOKS = pathlib.Path(__file__).parent / "playbooks"


def run_playbook(twin, tmp_path, name: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = tool_env(tmp_path, twin.kubeconfig_path)
    env.update({"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_LOCALHOST_WARNING": "False",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False", "ANSIBLE_PYTHON_INTERPRETER": str(VENV_BIN / "python"),
                "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"), "ANSIBLE_HOME": str(tmp_path / "ansible-home")})
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(PLAYBOOKS / name)], env=env, check=False,
                          capture_output=True, text=True, timeout=300)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"playbook output is not JSON (rc={proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc, out


def _failed_tasks(out: dict) -> list:
    failed = []
    for play in out["plays"]:
        for task in play["tasks"]:
            res = task["hosts"].get("localhost", {})
            if res.get("failed") and not task["task"]["name"].startswith("Exec that fails"):
                failed.append((task["task"]["name"], res.get("msg"), res.get("assertion"), res.get("stderr")))
    return failed


def test_kubernetes_core_modules(twin, tmp_path):
    proc, out = run_playbook(twin, tmp_path, "k8s_core.yml")
    failed = _failed_tasks(out)
    assert proc.returncode == 0 and not failed, failed
    stats = out["stats"]["localhost"]
    assert stats["failures"] == 0 and stats["changed"] >= 8


def test_kubernetes_core_on_custom_resources(twin, tmp_path):
    proc, out = run_playbook(twin, tmp_path, "k8s_crs.yml")
    failed = _failed_tasks(out)
    assert proc.returncode == 0 and not failed, failed
    patches = [r for r in twin.emulator.api.request_log if r[1] == "PATCH" and "verticalpodautoscalers" in r[2]]
    # each update of the existing VPA: strategic merge refused (415), then the merge patch
    assert [s for _t, _m, _p, s in patches] == [415, 200, 415, 200]
