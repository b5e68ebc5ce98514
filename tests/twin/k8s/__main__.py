"""CLI: ``python -m tests.twin.k8s --state DIR [--port N] [--nodes FILE.json]``.

Writes DIR/kubeconfig and DIR/k8s.pid, serves until SIGTERM/SIGINT, then stops cleanly (pods' sandboxes removed,
pid file removed)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import pathlib
import signal
import sys

from .emulator import Emulator


async def _main(args) -> int:
    state = pathlib.Path(args.state)
    state.mkdir(parents=True, exist_ok=True)
    nodes = json.loads(pathlib.Path(args.nodes).read_text()) if args.nodes else None
    emu = Emulator(state, host=args.host, port=args.port, nodes=nodes)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await emu.start()
    pid_file = state / "k8s.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    print(f"k8s twin serving on {emu.url} (kubeconfig {emu.kubeconfig_path})", flush=True)
    try:
        await stop.wait()
    finally:
        await emu.stop()
        pid_file.unlink(missing_ok=True)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.twin.k8s", description="Kubernetes API emulator")
    p.add_argument("--state", required=True, help="state directory (kubeconfig, pid file, pod sandboxes)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="port (0 = a free port)")
    p.add_argument("--nodes", help="JSON file: list of {name, labels, allocatable, taints}")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
