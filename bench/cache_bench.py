#!/usr/bin/env python3
"""Benchmark of the PVC model cache on the twin: time-to-serving after a pod restart, with the cache against the
named baseline (today's ephemeral storage), in one run.

    .venv/bin/python bench/cache_bench.py [--trials 3] [--rate 262144] [--form awscli|s5cmd]

For each setting (``ephemeral``: the twin's default, cache off; ``cache``: the chart's modelCache on a CephFS claim)
one endpoint is created and served, then its pod is deleted ``--trials`` times; each time the script measures the
seconds from the delete to the new pod's vLLM answering /health with 200 (the twin records that instant) and counts
the GETs of the checkpoint's shards at the twin's S3 server (moto's request log). The download runs at ``--rate``
bytes/s (default 256 KiB/s, so the twin's ~1 MB checkpoint takes ~4 s, like the runbook's 30-60 min at 4 MB/s for a
real one, scaled). Prints the medians and the ratio ephemeral/cache (the restart speed-up), plus the first serve of
each (what the lock/marker protocol costs on a cold claim), and a RESULT line with everything as JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BUCKET, PREFIX = "scale-gp-models", "intermediate-model-aws/"


def wait_health_after(twin, name, since, timeout=300.0):
    """time.time() at which the endpoint's vLLM turned healthy after ``since`` (None on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = twin.health_turned_200_at(name)
        if t is not None and t > since:
            return t
        time.sleep(0.02)
    raise SystemExit("%s did not serve within %ss" % (name, timeout))


def endpoint_pods(twin, name):
    return twin.call(twin.kube.list_pods(twin.config.endpoint_namespace, "endpoint_name=%s" % name))


def measure(twin, me, name, trials, rate):
    from tests.twin.tests.conftest_platform import RUNBOOK_BODY

    twin.faults.add("download_rate", name, bytes_per_second=rate)
    gets0 = twin.s3.object_gets(BUCKET, PREFIX, ".safetensors")
    t0 = time.time()
    body = dict(copy.deepcopy(RUNBOOK_BODY), name=name)
    r = me.post("/v1/llm/model-endpoints", body)
    assert r.status == 200, r
    first = wait_health_after(twin, name, t0) - t0
    first_gets = twin.s3.object_gets(BUCKET, PREFIX, ".safetensors") - gets0
    restarts, gets = [], []
    for _ in range(trials):
        time.sleep(0.5)   # the forwarder turns ready; the Deployment settles
        pods = endpoint_pods(twin, name)
        g = twin.s3.object_gets(BUCKET, PREFIX, ".safetensors")
        t = time.time()
        twin.call(twin.kube.delete("Pod", pods[0]["metadata"]["name"], twin.config.endpoint_namespace))
        restarts.append(wait_health_after(twin, name, t) - t)
        gets.append(twin.s3.object_gets(BUCKET, PREFIX, ".safetensors") - g)
    me.delete("/v1/llm/model-endpoints/%s" % name)
    deadline = time.monotonic() + 30
    while endpoint_pods(twin, name) and time.monotonic() < deadline:
        time.sleep(0.1)
    twin.faults.clear()
    return {"first_serve_s": round(first, 3), "first_shard_gets": first_gets, "restart_s": [round(x, 3) for x in restarts],
            "restart_median_s": round(statistics.median(restarts), 3), "restart_shard_gets": gets}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--rate", type=int, default=256 * 1024, help="download bytes/s (default 256 KiB/s)")
    ap.add_argument("--form", choices=["awscli", "s5cmd"], default="awscli")
    args = ap.parse_args()
    from tests.twin.platform.twin import Twin
    from tests.twin.tests.conftest_platform import ModelEngineClient

    work = Path(tempfile.mkdtemp(prefix="cache-bench-"))
    out = {"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]}, "trials": args.trials, "rate": args.rate,
           "form": args.form}
    twin = Twin(work / "twin").start()
    try:
        twin.config.set_download_form(args.form)
        me = ModelEngineClient(twin.api_url)
        out["ephemeral"] = measure(twin, me, "bench-ephemeral", args.trials, args.rate)
        print("ephemeral (baseline)", json.dumps(out["ephemeral"]), flush=True)
        twin.call(twin.apply_model_cache({"enabled": True, "storageClassName": "cephfs"}))
        time.sleep(2)   # the control plane rolls out with the cache env
        out["cache"] = measure(twin, me, "bench-cache", args.trials, args.rate)
        print("cache", json.dumps(out["cache"]), flush=True)
    finally:
        twin.stop()
        shutil.rmtree(work, ignore_errors=True)
    e, c = out["ephemeral"], out["cache"]
    out["restart_speedup_vs_ephemeral"] = round(e["restart_median_s"] / c["restart_median_s"], 2)
    out["first_serve_ratio_cache_to_ephemeral"] = round(c["first_serve_s"] / e["first_serve_s"], 2)
    print("time-to-serving after a pod restart: ephemeral %.2f s (%s shard GETs each), cache %.2f s (%s shard GETs each): "
          "%.2fx faster with the cache" % (e["restart_median_s"], e["restart_shard_gets"], c["restart_median_s"], c["restart_shard_gets"],
                                           out["restart_speedup_vs_ephemeral"]))
    print("first serve (cold): ephemeral %.2f s, cache %.2f s (ratio %.2f)" % (e["first_serve_s"], c["first_serve_s"],
                                                                              out["first_serve_ratio_cache_to_ephemeral"]))
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
