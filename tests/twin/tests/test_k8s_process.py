"""The CLI process: startup time, kubeconfig/pid files, clean stop on SIGTERM."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import REPO, Kubectl, tool_env

pytestmark = pytest.mark.twin


def _port_from_kubeconfig(path: pathlib.Path) -> int:
    for line in path.read_text().splitlines():
        if "server:" in line:
            return int(line.rsplit(":", 1)[1])
    raise AssertionError("no server in kubeconfig")


def test_cli_starts_fast_and_stops_cleanly_on_sigterm(tmp_path):
    state = tmp_path / "state"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tests.twin.k8s", "--state", str(state)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        kubeconfig = state / "kubeconfig"
        first_answer = None
        while time.monotonic() - t0 < 10:
            if (state / "k8s.pid").exists() and kubeconfig.exists():
                try:
                    port = _port_from_kubeconfig(kubeconfig)
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=1) as r:
                        assert b'"gitVersion"' in r.read()
                    first_answer = time.monotonic() - t0
                    break
                except (OSError, ValueError):
                    pass
            time.sleep(0.02)
        assert first_answer is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert first_answer < 2.0, f"start to first /version answer took {first_answer:.2f}s"
        assert int((state / "k8s.pid").read_text()) == proc.pid

        class _T:
            kubeconfig_path = kubeconfig

        k = Kubectl.__new__(Kubectl)
        k.twin = _T()
        k.env = tool_env(tmp_path, kubeconfig)
        k("create", "configmap", "c", "--from-literal=a=b")
        k("apply", "-f", "-", input="apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n")
        k("wait", "--for=condition=Ready", "pod/p", "--timeout=10s")
        assert (state / "pods" / "default" / "p").is_dir()
        os.kill(proc.pid, signal.SIGTERM)
        rc = proc.wait(timeout=10)
        assert rc == 0
        assert not (state / "k8s.pid").exists()
        assert not (state / "pods").exists()
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{_port_from_kubeconfig(kubeconfig)}/version", timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_port_argument_and_nodes_file(tmp_path):
    import json
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    nodes = tmp_path / "nodes.json"
    nodes.write_text(json.dumps([{"name": "n-a", "labels": {"pool": "a"}}, {"name": "n-b", "allocatable": {"nvidia.com/gpu": "2"}}]))
    state = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "tests.twin.k8s", "--state", str(state), "--port", str(port),
                             "--nodes", str(nodes)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (state / "k8s.pid").exists():
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nodes", timeout=2) as r:
            items = json.loads(r.read())["items"]
        assert [n["metadata"]["name"] for n in items] == ["n-a", "n-b"]
        assert items[1]["status"]["allocatable"]["nvidia.com/gpu"] == "2"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
