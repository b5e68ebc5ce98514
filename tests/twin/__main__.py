"""One command for the whole local platform twin.

    python -m tests.twin up [--state DIR] [--s3 moto|seaweedfs] [--download-form awscli|s5cmd] [--detach]
    python -m tests.twin status [--state DIR]
    python -m tests.twin down [--state DIR]

``up`` starts the Kubernetes emulator, S3 (a child process), the model-engine API, the endpoint builder and
the pod simulator in one process on free loopback ports, and writes DIR (default ``<repo>/.twin``):
``kubeconfig``, ``twin.json`` (URLs, ports, pids, credentials), ``twin.pid`` and
``inventories/local/group_vars/all/twin.yml``.  ``--detach`` returns once everything answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_STATE = REPO / ".twin"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _answers(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def cmd_up(args) -> int:
    state = Path(args.state).resolve()
    state.mkdir(parents=True, exist_ok=True)
    pidfile = state / "twin.pid"
    old = _read_json(state / "twin.json") or {}
    if pidfile.exists() and _alive(int(pidfile.read_text().strip() or 0)):
        print(f"twin already running (pid {pidfile.read_text().strip()}); `python -m tests.twin down --state {state}`",
              file=sys.stderr)
        return 1
    for child in ("s3", "registry"):   # children of a twin that died without stopping them
        if (old.get(child) or {}).get("pid") and _alive(old[child]["pid"]):
            os.kill(old[child]["pid"], signal.SIGTERM)
    (state / "twin.json").unlink(missing_ok=True)
    if args.detach:
        log = open(state / "twin.log", "ab")
        child = subprocess.Popen([sys.executable, "-m", "tests.twin", "up", "--state", str(state), "--s3", args.s3]
                                 + (["--download-rate", str(args.download_rate)] if args.download_rate else [])
                                 + (["--install-seconds", str(args.install_seconds)] if args.install_seconds else [])
                                 + ["--download-form", args.download_form],
                                 cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            if child.poll() is not None:
                print(f"twin exited with {child.returncode}; see {state / 'twin.log'}", file=sys.stderr)
                return 1
            info = _read_json(state / "twin.json")
            if info and info.get("pid") == child.pid and _answers(info["model_engine_url"] + "/readyz") == 200 \
                    and _answers(info["kubernetes_url"] + "/version") == 200:
                print(json.dumps(info, indent=2))
                return 0
            time.sleep(0.2)
        print("twin did not become ready in time", file=sys.stderr)
        os.killpg(child.pid, signal.SIGTERM)
        return 1
    return asyncio.run(_serve(state, args.s3, args.download_rate, args.download_form, args.install_seconds))


async def _serve(state: Path, s3: str, download_rate: float | None = None, download_form: str = "awscli",
                 install_seconds: float | None = None) -> int:
    from tests.twin.platform.twin import Twin, TwinOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    inventory = REPO / "inventories" / "local" if Path(state).resolve() == DEFAULT_STATE.resolve() else None
    options = TwinOptions(s3=s3, inventory_dir=inventory)
    if download_rate:
        options.service.download_rate = float(download_rate)
    if install_seconds:
        options.service.awscli_install_seconds = float(install_seconds)
    options.service.set_download_form(download_form)
    twin = Twin(state, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await twin.astart()
        (state / "twin.pid").write_text(f"{os.getpid()}\n")
        print(json.dumps(twin.info(), indent=2), flush=True)
        await stop.wait()
    finally:
        await twin.astop()
        (state / "twin.pid").unlink(missing_ok=True)
        info = _read_json(state / "twin.json")
        if info:
            info["stopped"] = True
            (state / "twin.json").write_text(json.dumps(info, indent=2) + "\n")
    return 0


def cmd_down(args) -> int:
    state = Path(args.state).resolve()
    info = _read_json(state / "twin.json") or {}
    pidfile = state / "twin.pid"
    pid = int(pidfile.read_text().strip()) if pidfile.exists() else info.get("pid")
    s3_pid = (info.get("s3") or {}).get("pid")
    registry_pid = (info.get("registry") or {}).get("pid")
    if not _alive(pid) and not _alive(s3_pid) and not _alive(registry_pid):
        print("twin is not running")
        pidfile.unlink(missing_ok=True)
        return 0
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + args.timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    for child in (s3_pid, registry_pid):   # normally stopped by the twin itself
        if _alive(child):
            os.kill(child, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _alive(child) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(child):
                os.kill(child, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    if state == DEFAULT_STATE.resolve():  # `up` wrote the repo's local inventory too; it is stale now
        (REPO / "inventories" / "local" / "group_vars" / "all" / "twin.yml").unlink(missing_ok=True)
    print(f"twin stopped (pid {pid})")
    return 0


def cmd_status(args) -> int:
    state = Path(args.state).resolve()
    info = _read_json(state / "twin.json")
    pidfile = state / "twin.pid"
    pid = int(pidfile.read_text().strip()) if pidfile.exists() else (info or {}).get("pid")
    if not info or not _alive(pid):
        print(f"twin: not running (state {state})")
        return 3
    s3 = info["s3"]
    rows = [
        ("twin process", f"pid {pid}", "running"),
        ("model-engine API", info["model_engine_url"], f"readyz {_answers(info['model_engine_url'] + '/readyz')}"),
        ("kubernetes API", info["kubernetes_url"], f"version {_answers(info['kubernetes_url'] + '/version')}"),
        (f"S3 ({s3['kind']})", s3["endpoint_url"], f"pid {s3['pid']} {'running' if _alive(s3['pid']) else 'DEAD'}"),
    ]
    reg = info.get("registry") or {}
    if reg:
        rows.append((f"registry ({reg['auth']})", reg["url"], f"pid {reg['pid']} {'running' if _alive(reg['pid']) else 'DEAD'}"))
    for name, where, st in rows:
        print(f"{name:18} {where:32} {st}")
    print(f"kubeconfig         {info['kubeconfig']}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.twin", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start the twin")
    up.add_argument("--state", default=str(DEFAULT_STATE))
    up.add_argument("--s3", choices=["moto", "seaweedfs"], default="moto")
    up.add_argument("--detach", action="store_true", help="run in the background; return once it answers")
    up.add_argument("--timeout", type=float, default=90)
    up.add_argument("--download-rate", type=float, default=None,
                    help="bytes per second the simulated pods download at (default 8 MiB/s); the demo uses a slow one")
    up.add_argument("--install-seconds", type=float, default=None,
                    help="seconds the simulated `pip install awscli` takes (default 0.5; the runbook's takes 5-10 min)")
    up.add_argument("--download-form", choices=["awscli", "s5cmd"], default="awscli",
                    help="the endpoint pods' download step: the on-prem image's awscli + wait guard (default), or "
                         "upstream's s5cmd; written into twin.json")
    down = sub.add_parser("down", help="stop a running twin by PID")
    down.add_argument("--state", default=str(DEFAULT_STATE))
    down.add_argument("--timeout", type=float, default=30)
    st = sub.add_parser("status", help="show what runs")
    st.add_argument("--state", default=str(DEFAULT_STATE))
    args = p.parse_args(argv)
    return {"up": cmd_up, "down": cmd_down, "status": cmd_status}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
