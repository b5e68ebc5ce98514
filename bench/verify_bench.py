#!/usr/bin/env python3
"""Benchmark of s3_sync_verify's engine against named baselines, in one run on the twin's S3.

    .venv/bin/python bench/verify_bench.py [--s3 seaweedfs|moto] [--objects 10000] [--deep-mib 2048] [--trials 20]

Prints, for each measurement, the median of several whole-process runs and the ratio to its baseline:
1. quick verification of N small objects vs `aws s3 sync --dryrun --size-only` (the tool operators
   use) and vs bare boto3 list + os.stat (the floor: listing dominates, see benchmark-notes.md);
2. deep verification (multipart ETags recomputed) of ~2 GiB vs `md5sum` of the same files on all
   cores (`xargs -P <cores> md5sum`);
3. vLLM readiness detection latency: the time from the vLLM /health answer turning 200 to the
   vllm_ready module returning, over many trials on the full twin.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "collections"))
BIN = Path(sys.executable).parent
BUCKET = "bench"

# The verifier as a process does it: list the prefix, inspect the folder, compare.
VERIFY_PROCESS = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.odp.model_engine.plugins.module_utils import s3, verify_agent
from ansible_collections.odp.model_engine.plugins.module_utils.sync_verify import compare, deep_request
cfg = json.loads(sys.argv[2])
client = s3.make_client(endpoint_url=cfg["endpoint"], access_key=cfg["key"], secret_key=cfg["secret"])
bucket, prefix = s3.parse_s3_url(cfg["url"])
expected = s3.list_prefix(client, bucket, prefix)
files = {}
if cfg["deep"]:
    parts = {n: s3.part_size(client, bucket, prefix + n) for n, v in expected.items() if s3.multipart_count(v["etag"])}
    files = deep_request(expected, parts, check_headers=False)
answer = verify_agent.inspect({"root": cfg["path"], "files": files})
result = compare(expected, answer["files"], None, deep=answer["files"] if cfg["deep"] else None)
assert result["complete"], result["problems"][:3]
print(len(expected))
"""

LIST_STAT = r"""
import json, os, sys, boto3
cfg = json.loads(sys.argv[1])
c = boto3.client("s3", endpoint_url=cfg["endpoint"], aws_access_key_id=cfg["key"], aws_secret_access_key=cfg["secret"], region_name="us-east-1")
bucket, prefix = cfg["url"][5:].split("/", 1)
n = 0
for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for o in page.get("Contents", []):
        assert os.stat(os.path.join(cfg["path"], o["Key"][len(prefix):])).st_size == o["Size"]
        n += 1
print(n)
"""


def timed(cmd, env=None, runs=3):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
        if proc.returncode:
            raise SystemExit("%s failed: %s" % (cmd[:3], proc.stderr.decode()[-2000:]))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def seed_small(client, n, root):
    root.mkdir(parents=True, exist_ok=True)

    def put(i):
        name = "shard-%05d.safetensors" % i if i % 10 == 0 else "file-%05d.json" % i
        data = os.urandom(256)
        (root / name).write_bytes(data)
        client.put_object(Bucket=BUCKET, Key="small/" + name, Body=data)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(n - 1)))
    (root / "config.json").write_text("{}")
    client.put_object(Bucket=BUCKET, Key="small/config.json", Body=b"{}")


def seed_big(client, mib, root, files=8):
    from boto3.s3.transfer import TransferConfig

    root.mkdir(parents=True, exist_ok=True)
    cfg = TransferConfig(multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024, max_concurrency=4)
    each = mib * 1024 * 1024 // files
    block = os.urandom(1024 * 1024)
    for i in range(files):
        path = root / ("model-%05d-of-%05d.safetensors" % (i + 1, files))
        with open(path, "wb") as f:
            for j in range(each // len(block)):
                f.write(bytes([j % 251]) + block[1:])
        client.upload_file(str(path), BUCKET, "big/" + path.name, Config=cfg)
    (root / "config.json").write_text("{}")
    client.put_object(Bucket=BUCKET, Key="big/config.json", Body=b"{}")


def quick_and_deep(args, s3srv, work):
    client = s3srv.client()
    client.create_bucket(Bucket=BUCKET)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=s3srv.access_key, AWS_SECRET_ACCESS_KEY=s3srv.secret_key,
               AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    base = {"endpoint": s3srv.endpoint_url, "key": s3srv.access_key, "secret": s3srv.secret_key}
    results = {}

    t0 = time.perf_counter()
    seed_small(client, args.objects, work / "small")
    print("seeded %d objects in %.1fs" % (args.objects, time.perf_counter() - t0), flush=True)
    cfg = dict(base, url="s3://%s/small/" % BUCKET, path=str(work / "small"), deep=False)
    ours = timed([sys.executable, "-c", VERIFY_PROCESS, str(REPO / "collections"), json.dumps(cfg)])
    awscli = timed([str(BIN / "aws"), "--endpoint-url", s3srv.endpoint_url, "s3", "sync", "--dryrun", "--size-only",
                    "s3://%s/small/" % BUCKET, str(work / "small")], env=env)
    floor = timed([sys.executable, "-c", LIST_STAT, json.dumps(cfg)])
    results["quick"] = {"objects": args.objects, "s3_sync_verify_quick_s": round(ours, 3), "aws_s3_sync_dryrun_s": round(awscli, 3),
                        "list_stat_floor_s": round(floor, 3), "speedup_vs_awscli": round(awscli / ours, 2),
                        "ratio_to_floor": round(ours / floor, 2)}
    print(json.dumps(results["quick"]), flush=True)

    t0 = time.perf_counter()
    seed_big(client, args.deep_mib, work / "big")
    print("seeded %d MiB in %.1fs" % (args.deep_mib, time.perf_counter() - t0), flush=True)
    cfg = dict(base, url="s3://%s/big/" % BUCKET, path=str(work / "big"), deep=True)
    subprocess.run(["cat"] + [str(p) for p in (work / "big").iterdir()], stdout=subprocess.DEVNULL, check=True)  # warm cache
    ours = timed([sys.executable, "-c", VERIFY_PROCESS, str(REPO / "collections"), json.dumps(cfg)])
    cores = os.cpu_count() or 1
    md5 = timed(["bash", "-c", "ls %s/* | xargs -P %d -n 1 md5sum > /dev/null" % (work / "big", cores)])
    size = sum(p.stat().st_size for p in (work / "big").iterdir())
    results["deep"] = {"bytes": size, "s3_sync_verify_deep_s": round(ours, 3), "md5sum_parallel_s": round(md5, 3),
                       "s3_sync_verify_MBps": round(size / ours / 1e6, 1), "md5sum_MBps": round(size / md5 / 1e6, 1),
                       "throughput_vs_md5sum": round(md5 / ours, 2), "cores": cores}
    print(json.dumps(results["deep"]), flush=True)
    return results


def readiness(args, work):
    """Detection latency of vllm_ready (wait=true) on the full twin, from /health turning 200."""
    from tests.twin.platform.twin import Twin
    from tests.twin.tests.conftest_platform import RUNBOOK_BODY, ModelEngineClient

    twin = Twin(work / "twin").start()
    try:
        me = ModelEngineClient(twin.api_url)
        latencies = []
        for i in range(args.trials):
            name = "bench-ready-%d" % i
            twin.faults.add("download_rate", name, bytes_per_second=2 * 1024 * 1024)
            body = dict(RUNBOOK_BODY, name=name)
            assert me.post("/v1/llm/model-endpoints", body).status == 200
            env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
            cmd = [str(BIN / "ansible"), "localhost", "-m", "odp.model_engine.vllm_ready", "-e",
                   "ansible_python_interpreter=%s" % sys.executable, "-a", json.dumps({
                       "endpoint_name": name, "kubeconfig": str(twin.emulator.kubeconfig_path), "wait": True,
                       "wait_timeout": 300, "model": "test-model"})]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            returned = time.time()
            assert "SUCCESS" in proc.stdout, proc.stdout + proc.stderr
            healthy_at = twin.health_turned_200_at(name)
            latencies.append(returned - healthy_at)
            me.delete("/v1/llm/model-endpoints/%s" % name)
            twin.faults.clear()
        res = {"trials": len(latencies), "median_s": round(statistics.median(latencies), 3), "max_s": round(max(latencies), 3),
               "min_s": round(min(latencies), 3)}
        print(json.dumps(res), flush=True)
        return res
    finally:
        twin.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--s3", choices=["seaweedfs", "moto"], default="seaweedfs")
    ap.add_argument("--objects", type=int, default=10000)
    ap.add_argument("--deep-mib", type=int, default=2048)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--skip", action="append", default=[], choices=["storage", "readiness"])
    args = ap.parse_args()
    from tests.twin.platform.s3 import S3Server

    work = Path(tempfile.mkdtemp(prefix="verify-bench-"))
    out = {"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]}, "s3": args.s3}
    try:
        if "storage" not in args.skip:
            s3srv = S3Server(work / "s3", kind=args.s3)
            s3srv.start()
            try:
                out.update(quick_and_deep(args, s3srv, work))
            finally:
                s3srv.stop()
        if "readiness" not in args.skip:
            out["readiness"] = readiness(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
