"""Fixtures for the Kubernetes emulator tests (tests/twin/tests/test_k8s_*.py)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

from tests.twin.k8s import EmulatorThread

REPO = pathlib.Path(__file__).resolve().parents[3]
VENV_BIN = pathlib.Path(sys.executable).parent
KUBECTL = VENV_BIN / "kubectl"


def tool_env(tmp: pathlib.Path, kubeconfig: pathlib.Path) -> dict:
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({"HOME": str(home), "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(home / ".kube-cache"),
                "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config"),
                "XDG_DATA_HOME": str(home / ".local/share"), "K8S_AUTH_KUBECONFIG": str(kubeconfig),
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"})
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    env.pop("ANSIBLE_COLLECTIONS_PATHS", None)
    return env


class Kubectl:
    def __init__(self, twin: EmulatorThread, tmp: pathlib.Path):
        self.twin = twin
        self.env = tool_env(tmp, twin.kubeconfig_path)

    def __call__(self, *args: str, check: bool = True, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(KUBECTL), "--kubeconfig", str(self.twin.kubeconfig_path), *args], env=self.env, check=False,
                              capture_output=True, text=True, input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed rc={proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
        return proc


def assert_healthy(t: EmulatorThread) -> None:
    """Controller/kubelet loops swallow exceptions to keep serving; a test fails if any happened."""
    errors = t.emulator.controllers.errors + t.emulator.kubelet.errors
    assert not errors, f"emulator internal errors: {errors}"
    assert not t.emulator.api.errors, f"requests answered 500: {t.emulator.api.errors}"


@pytest.fixture
def twin(tmp_path):
    """A fresh emulator (one default node) on its own thread."""
    t = EmulatorThread(tmp_path / "k8s").start()
    try:
        yield t
        assert_healthy(t)
    finally:
        t.stop()


@pytest.fixture(scope="module")
def shared_twin(tmp_path_factory):
    """One emulator shared by a module's tests (tests use their own namespaces)."""
    t = EmulatorThread(tmp_path_factory.mktemp("k8s-shared")).start()
    try:
        yield t
        assert_healthy(t)
    finally:
        t.stop()


@pytest.fixture
def kubectl(twin, tmp_path) -> Kubectl:
    return Kubectl(twin, tmp_path)


@pytest.fixture(scope="module")
def shared_kubectl(shared_twin, tmp_path_factory) -> Kubectl:
    return Kubectl(shared_twin, tmp_path_factory.mktemp("kubectl-home"))


@pytest.fixture
def api(twin):
    """A kubernetes Python client ApiClient bound to the emulator."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(str(twin.kubeconfig_path))
    try:
        yield api_client
    finally:
        api_client.close()
    del client


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last={last!r})")


def helm_binary() -> pathlib.Path | None:
    candidates = [os.environ.get("HELM_BIN"), REPO / ".build" / "bin" / "helm", REPO / ".twin" / "bin" / "helm",
                  shutil.which("helm")]
    for c in candidates:
        if c and pathlib.Path(c).is_file() and os.access(c, os.X_OK):
            return pathlib.Path(c)
    return None
