#!/usr/bin/env python3
"""Benchmark of the endpoint fleet: site.yml with one inventory host per endpoint, forks against one fork, on the twin.

    .venv/bin/python bench/fleet_bench.py [--endpoints 6] [--interval 20] [--skip-floors]

N endpoints (default 6) are declared in a temporary copy of inventories/local (the inventory plugin
odp.model_engine.endpoints makes them hosts) on a twin whose GPU node is sized to fit them. Measured in one run,
each against a named baseline:

1. reconcile N absent endpoints: ``site.yml -f N`` against the baseline ``site.yml -f 1`` (one endpoint at a
   time, as the old loop on one host did): the time from the start to every endpoint serving (the twin records when
   each endpoint's vLLM /health turned 200) and to the playbook's end, and the ratio (the speed-up);
2. the no-op rerun ``site.yml -f N`` (nothing to change), its time, and the gateway and Kubernetes API requests it
   sent per endpoint, counted at the twin (the twin's own control-plane requests left out); the same for the
   endpoint plays alone (``--limit declared``) and for the control-plane play alone (``--limit model_engine``);
3. the floors of this machine: the import of the kubernetes client's typed APIs, which every module that reads the
   cluster pays once per call, and a play of N local hosts running two trivial modules each (what the no-op runs
   per endpoint: the plan and the judge's check) — the per-host fixed cost of ansible-playbook task execution.

Each endpoint's model download takes about ``--download-seconds`` (default 30: the twin's download rate is set from
the checkpoint's size), standing in for the runbook's 30-60 minute downloads, so that a reconcile is mostly waiting,
as on the platform; the endpoints are followed at the role's default progress interval (20 s, ``--interval``).
Prints one JSON line per measurement and a final ``RESULT {...}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
LEASE = "odp-model-engine-gpu-reservation"
CHECKPOINT_PREFIX = "intermediate-model-aws/"   # inventories/local's checkpoint_path, s3://scale-gp-models/intermediate-model-aws/


def sized_nodes(n):
    """The twin's default nodes, the GPU node with n GPUs and room for n 50Gi endpoints."""
    from tests.twin.platform.twin import default_nodes

    nodes = default_nodes()
    nodes[0]["allocatable"].update({"nvidia.com/gpu": str(n), "ephemeral-storage": "%dGi" % (55 * n + 10)})
    return nodes


def write_inventory(root, twin, names):
    (root / "group_vars" / "all").mkdir(parents=True)
    for rel in ("hosts.yml", "endpoints.model_engine.yml"):
        shutil.copy(REPO / "inventories" / "local" / rel, root / rel)
    main = yaml.safe_load((REPO / "inventories" / "local" / "group_vars" / "all" / "main.yml").read_text())
    base = main["model_engine_endpoints"][0]
    main["model_engine_endpoints"] = [dict(copy.deepcopy(base), name=n) for n in names]
    main["model_engine_chart_ref"] = str(REPO / "tests" / "twin" / "charts" / "model-engine")
    (root / "group_vars" / "all" / "main.yml").write_text("---\n" + yaml.safe_dump(main, sort_keys=False))
    shutil.copy(twin.state_dir / "inventories" / "local" / "group_vars" / "all" / "twin.yml", root / "group_vars" / "all" / "twin.yml")


def env_for(work):
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"), ANSIBLE_HOME=str(work / "ansible-home"),
                PATH="%s:%s" % (BIN, os.environ.get("PATH", "")))


def run_playbook(work, inventory, playbook, *args, extra=None):
    """(wall seconds, CPU seconds of the run's processes, stdout); fails the benchmark on rc != 0."""
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / playbook), *args]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env_for(work), check=False)
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit("%s %s failed rc=%d:\n%s\n%s" % (playbook, " ".join(args), proc.returncode, proc.stdout[-6000:], proc.stderr[-2000:]))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout, t0


def reset(twin, names):
    """Delete the benchmark's endpoints and the reservation Lease; wait until no endpoint pod is left."""
    from kubernetes.client import CoordinationV1Api
    from kubernetes.client.rest import ApiException

    from tests.twin.tests.conftest_platform import ModelEngineClient

    me = ModelEngineClient(twin.api_url)
    for name in names:
        me.delete("/v1/llm/model-endpoints/%s" % name)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and twin.call(twin.kube.list_pods(twin.config.endpoint_namespace, "managed-by=model-engine")):
        time.sleep(0.2)
    try:
        CoordinationV1Api(twin.kube.api_client).delete_namespaced_lease(LEASE, twin.config.endpoint_namespace)
    except ApiException as e:
        if e.status != 404:
            raise
    twin.pod_runtime.ready_times.clear()


def serving_after(twin, names, t0):
    times = [twin.health_turned_200_at(n) for n in names]
    if any(t is None for t in times):
        raise SystemExit("not every endpoint serves: %s" % dict(zip(names, times)))
    return max(times) - t0


def reconcile(args, twin, work, inventory, names, forks):
    reset(twin, names)
    extra = {"llm_endpoint_progress_interval": args.interval} if args.interval else None
    wall, cpu, _out, t0 = run_playbook(work, inventory, "site.yml", "-f", str(forks), extra=extra)
    res = {"forks": forks, "endpoints": len(names), "all_serving_s": round(serving_after(twin, names, t0), 2),
           "playbook_s": round(wall, 2), "cpu_s": round(cpu, 2)}
    print(json.dumps({"reconcile": res}), flush=True)
    return res


def counted(twin, before):
    """Requests since ``before`` (a twin.request_counts() snapshot), the twin's own Kubernetes requests left out."""
    now = twin.request_counts()
    gateway = now["gateway"] - before["gateway"]
    kube = Counter({k: v for k, v in (now["kubernetes"] - before["kubernetes"]).items() if k[0] != "twin"})
    return gateway, kube


def noop(twin, work, inventory, names, forks, limit=None):
    before = twin.request_counts()
    args = ["-f", str(forks)] + (["--limit", limit] if limit else [])
    wall, cpu, out, _t0 = run_playbook(work, inventory, "site.yml", *args)
    gateway, kube = counted(twin, before)
    changed = sum(int(x) for x in re.findall(r"changed=(\d+)", out))
    n = len(names)
    res = {"limit": limit or "all", "forks": forks, "seconds": round(wall, 2), "cpu_s": round(cpu, 2), "changed": changed,
           "gateway_requests": sum(gateway.values()), "kubernetes_requests": sum(kube.values()),
           "gateway_per_endpoint": round(sum(gateway.values()) / n, 2), "kubernetes_per_endpoint": round(sum(kube.values()) / n, 2),
           "gateway_routes": {"%s %s" % (m, r): c for (_a, m, r), c in sorted(gateway.items())},
           "kubernetes_clients": {"%s %s" % (a, m): c for (a, m), c in sorted(kube.items())}}
    print(json.dumps({"noop": res}), flush=True)
    return res


TRIVIAL = """
- name: Two trivial modules per endpoint host (the no-op runs two modules per endpoint)
  hosts: declared
  gather_facts: false
  strategy: ansible.builtin.host_pinned
  tasks:
    - name: First module run
      ansible.builtin.ping:
    - name: Second module run
      ansible.builtin.ping:
"""


def floors(work, inventory, n):
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    subprocess.run([sys.executable, "-c", "from kubernetes.client import CoreV1Api, AppsV1Api"], check=True)
    wall = time.time() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    k8s = {"wall_s": round(wall, 2), "cpu_s": round(cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime, 2),
           "command": "%s -c 'from kubernetes.client import CoreV1Api, AppsV1Api'" % sys.executable}
    play = work / "trivial.yml"
    play.write_text(TRIVIAL)
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(play), "-f", str(n)]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    subprocess.run(cmd, capture_output=True, env=env_for(work), check=True)
    wall = time.time() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    trivial = {"wall_s": round(wall, 2), "cpu_s": round(cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime, 2),
               "command": "ansible-playbook -i <the benchmark's inventory> <2 x ansible.builtin.ping on hosts: declared> -f %d" % n}
    res = {"kubernetes_typed_api_import": k8s, "two_trivial_modules_per_host": trivial}
    print(json.dumps({"floors": res}), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoints", type=int, default=6)
    ap.add_argument("--interval", type=float, default=None, help="llm_endpoint_progress_interval (default: the role's, 20 s)")
    ap.add_argument("--download-seconds", type=float, default=30, help="seconds each endpoint's model download takes on the twin")
    ap.add_argument("--skip-floors", action="store_true")
    args = ap.parse_args()
    from tests.twin.platform.twin import Twin, TwinOptions

    n = args.endpoints
    names = ["bench-ep-%d" % i for i in range(1, n + 1)]
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    out = {"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0], "load_at_start": os.getloadavg()},
           "endpoints": n, "interval": args.interval or 20}
    twin = Twin(work / "twin", TwinOptions(nodes=sized_nodes(n))).start()
    try:
        size = sum(v["size"] for v in twin.manifest[CHECKPOINT_PREFIX].values())
        twin.config.download_rate = size / args.download_seconds
        out["download"] = {"checkpoint_bytes": size, "seconds": args.download_seconds, "rate": round(twin.config.download_rate, 1)}
        inventory = work / "inventory"
        write_inventory(inventory, twin, names)
        run_playbook(work, inventory, "site.yml", "--limit", "model_engine")   # warm: the control plane, the caches
        baseline = reconcile(args, twin, work, inventory, names, 1)
        fleet = reconcile(args, twin, work, inventory, names, n)
        out["reconcile"] = {"baseline_f1": baseline, "fleet": fleet,
                            "speedup_all_serving": round(baseline["all_serving_s"] / fleet["all_serving_s"], 2),
                            "speedup_playbook": round(baseline["playbook_s"] / fleet["playbook_s"], 2)}
        out["noop"] = {"site": noop(twin, work, inventory, names, n),
                       "endpoints_only": noop(twin, work, inventory, names, n, limit="declared"),
                       "control_plane_only": noop(twin, work, inventory, names, n, limit="model_engine")}
        if not args.skip_floors:
            out["floors"] = floors(work, inventory, n)
        out["machine"]["load_at_end"] = os.getloadavg()
    finally:
        twin.stop()
        shutil.rmtree(work, ignore_errors=True)
    r = out["reconcile"]
    print("speed-up -f %d vs -f 1: %.2fx to every endpoint serving (%.1f s vs %.1f s), %.2fx to the playbook's end (%.1f s vs %.1f s)"
          % (n, r["speedup_all_serving"], r["fleet"]["all_serving_s"], r["baseline_f1"]["all_serving_s"], r["speedup_playbook"],
             r["fleet"]["playbook_s"], r["baseline_f1"]["playbook_s"]))
    s = out["noop"]["site"]
    print("no-op rerun of %d endpoints: %.1f s (endpoint plays alone %.1f s, control plane alone %.1f s); per endpoint %.2f gateway and "
          "%.2f Kubernetes API requests (endpoint plays alone: %.2f and %.2f)"
          % (n, s["seconds"], out["noop"]["endpoints_only"]["seconds"], out["noop"]["control_plane_only"]["seconds"],
             s["gateway_per_endpoint"], s["kubernetes_per_endpoint"], out["noop"]["endpoints_only"]["gateway_per_endpoint"],
             out["noop"]["endpoints_only"]["kubernetes_per_endpoint"]))
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
