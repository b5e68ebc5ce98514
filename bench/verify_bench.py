#!/usr/bin/env python3
"""Benchmark of s3_sync_verify's engine against named baselines, in one run on the twin's S3.

    .venv/bin/python bench/verify_bench.py [--s3 seaweedfs|moto] [--objects 10000] [--deep-mib 2048] [--trials 20]

Prints, for each measurement, the median of several whole-process runs and the ratio to its baseline:
1. quick verification of N small objects vs `aws s3 sync --dryrun --size-only` (the tool operators
   use) and vs bare boto3 list + os.stat (the floor: listing dominates, see benchmark-notes.md);
2. deep verification (multipart ETags recomputed) of ~2 GiB vs `md5sum` of the same files on all
   cores (`xargs -P <cores> md5sum`), the runs interleaved (md5sum, agent, whole verifier, S3
   metadata, in turn) so that load from other users of the machine falls on all of them alike:
   - the agent alone, started the way the exec API starts it in a pod (`python3 -c <agent_argv>`):
     the hashing floor, target >= 0.95x md5sum; its peak RSS (the agent's own VmHWM) against the
     same agent hashing a 2-byte file (the interpreter's floor), and the bound workers x buffer;
   - the same two on files evicted from the page cache before each run (--cold-runs; only the
     bench's own files are evicted, with posix_fadvise DONTNEED);
   - the whole verifier process (import boto3, list, HEAD the part sizes, hash, compare), against
     md5sum and against its floor: md5sum plus the S3 metadata process (the same process without
     the hashing), which no overlap can hide on a machine whose cores the hashing already fills;
3. vLLM readiness on the full twin: the detection latency (from the vLLM /health answer turning 200 to
   the vllm_ready process returning) of the adaptive wait against the plain backoff, trials interleaved;
   and the requests each makes while one download lasts --download-seconds (600: the runbook's download
   is 30-60 min), both waiting side by side on the same endpoint.
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
from ansible_collections.odp.model_engine.plugins.module_utils.sync_verify import compare, deep_request, fetch_part_sizes
cfg = json.loads(sys.argv[2])
client = s3.make_client(endpoint_url=cfg["endpoint"], access_key=cfg["key"], secret_key=cfg["secret"])
bucket, prefix = s3.parse_s3_url(cfg["url"])
expected = s3.list_prefix(client, bucket, prefix)
files = {}
if cfg["deep"]:
    files = deep_request(expected, fetch_part_sizes(client, bucket, prefix, expected), check_headers=False)
if cfg.get("metadata_only"):
    print(json.dumps(files))
    sys.exit(0)
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

# The same floor with botocore's timestamp parsing turned off as the collection's client does (the
# listing's own floor once nothing parses the LastModified strings nobody reads).
LIST_STAT_RAW = LIST_STAT.replace(
    'c = boto3.client("s3",',
    'import botocore.session\n'
    'core = botocore.session.get_session()\n'
    'core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=lambda v: v)\n'
    'c = boto3.session.Session(botocore_session=core).client("s3",')


def run_once(cmd, env=None):
    """(seconds, stdout) of one whole-process run."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
    if proc.returncode:
        raise SystemExit("%s failed: %s" % (cmd[:3], proc.stderr.decode()[-2000:]))
    return time.perf_counter() - t0, proc.stdout


def evict(root):
    """Drop these files (only these: other users' caches stay) from the page cache: a cold read."""
    for p in root.iterdir():
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def paired(times, base, ours):
    """Median over the rounds of base/ours, each round's two runs a few seconds apart: load from
    other users that comes and goes between rounds cancels out."""
    return round(statistics.median(b / o for b, o in zip(times[base], times[ours])), 3)


def deep(args, cfg, root):
    """Deep verification of the files under root: agent alone, whole verifier, S3 metadata, md5sum, interleaved."""
    from ansible_collections.odp.model_engine.plugins.module_utils import verify_agent
    from ansible_collections.odp.model_engine.plugins.module_utils.sync_verify import agent_argv

    cores = os.cpu_count() or 1
    collections = str(REPO / "collections")
    _, out = run_once([sys.executable, "-c", VERIFY_PROCESS, collections, json.dumps(dict(cfg, metadata_only=True))])
    files = json.loads(out)
    cmds = {
        "md5sum": ["bash", "-c", "ls %s/* | xargs -P %d -n 1 md5sum > /dev/null" % (root, cores)],
        "agent": agent_argv(sys.executable, {"root": str(root), "files": files}),
        "verifier": [sys.executable, "-c", VERIFY_PROCESS, collections, json.dumps(cfg)],
        "metadata": [sys.executable, "-c", VERIFY_PROCESS, collections, json.dumps(dict(cfg, metadata_only=True))],
    }
    times = {k: [] for k in cmds}
    stats = []
    for i in range(args.deep_runs):
        for name, cmd in (list(cmds.items()) if i % 2 == 0 else reversed(list(cmds.items()))):  # ABBA: drift cancels
            dt, out = run_once(cmd)
            times[name].append(dt)
            if name == "agent":
                stats.append(json.loads(out)["stats"])
    for i in range(args.cold_runs):  # the same files evicted from the page cache before each run
        for name in (("md5sum", "agent") if i % 2 == 0 else ("agent", "md5sum")):
            evict(root)
            times.setdefault("cold_" + name, []).append(run_once(cmds[name])[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    floor_argv = agent_argv(sys.executable, {"root": str(root), "files": {"config.json": {"md5": True}}, "workers": 1})
    rss_floor = statistics.median(json.loads(run_once(floor_argv)[1])["stats"]["peak_rss_bytes"] for _ in range(5))
    rss = statistics.median(st["peak_rss_bytes"] for st in stats)
    rss_max = max(st["peak_rss_bytes"] for st in stats)
    size = sum(p.stat().st_size for p in root.iterdir())
    mb = 1e6
    res = {
        "bytes": size, "files": len(files), "cores": cores, "runs": args.deep_runs, "agent_workers": stats[0]["workers"],
        "agent_plan": stats[0]["plan"], "md5sum_parallel_s": round(med["md5sum"], 3), "md5sum_MBps": round(size / med["md5sum"] / mb, 1),
        "agent_s": round(med["agent"], 3), "agent_MBps": round(size / med["agent"] / mb, 1),
        "agent_throughput_vs_md5sum": round(med["md5sum"] / med["agent"], 3),
        "agent_vs_md5sum_paired": paired(times, "md5sum", "agent"), "verifier_vs_md5sum_paired": paired(times, "md5sum", "verifier"),
        "agent_peak_rss_MiB": round(rss / 2**20, 1), "agent_peak_rss_max_MiB": round(rss_max / 2**20, 1), "agent_floor_rss_MiB": round(rss_floor / 2**20, 1),
        "agent_rss_vs_floor": round(rss / rss_floor, 2), "agent_rss_over_floor_MiB": round((rss - rss_floor) / 2**20, 1),
        "agent_buffer_bound_MiB": round(stats[0]["buffer_bytes"] / 2**20, 1),
        "s3_sync_verify_deep_s": round(med["verifier"], 3), "s3_sync_verify_MBps": round(size / med["verifier"] / mb, 1),
        "throughput_vs_md5sum": round(med["md5sum"] / med["verifier"], 3),
        "s3_metadata_s": round(med["metadata"], 3), "floor_md5sum_plus_metadata_s": round(med["md5sum"] + med["metadata"], 3),
        "throughput_vs_floor": round((med["md5sum"] + med["metadata"]) / med["verifier"], 3),
        "times_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "load_avg_1m_after": round(os.getloadavg()[0], 2), "agent_chunk_bytes": verify_agent.CHUNK,
    }
    if args.cold_runs:
        res.update({"cold_md5sum_s": round(med["cold_md5sum"], 3), "cold_agent_s": round(med["cold_agent"], 3),
                    "cold_md5sum_MBps": round(size / med["cold_md5sum"] / mb, 1), "cold_agent_MBps": round(size / med["cold_agent"] / mb, 1),
                    "cold_agent_vs_md5sum": round(med["cold_md5sum"] / med["cold_agent"], 3),
                    "cold_agent_vs_md5sum_paired": paired(times, "cold_md5sum", "cold_agent")})
    return res


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


def quick(args, client, base, env, root):
    """Quick verification of N small objects vs awscli and the list+stat floor, the runs interleaved."""
    t0 = time.perf_counter()
    seed_small(client, args.objects, root)
    print("seeded %d objects in %.1fs" % (args.objects, time.perf_counter() - t0), flush=True)
    cfg = dict(base, url="s3://%s/small/" % BUCKET, path=str(root), deep=False)
    cmds = {
        "ours": [sys.executable, "-c", VERIFY_PROCESS, str(REPO / "collections"), json.dumps(cfg)],
        "awscli": [str(BIN / "aws"), "--endpoint-url", base["endpoint"], "s3", "sync", "--dryrun", "--size-only",
                   "s3://%s/small/" % BUCKET, str(root)],
        "floor": [sys.executable, "-c", LIST_STAT, json.dumps(cfg)],
        "floor_raw": [sys.executable, "-c", LIST_STAT_RAW, json.dumps(cfg)],
    }
    times = {k: [] for k in cmds}
    for i in range(args.quick_runs):
        for name, cmd in (list(cmds.items()) if i % 2 == 0 else reversed(list(cmds.items()))):  # ABBA: drift cancels
            times[name].append(run_once(cmd, env=env if name == "awscli" else None)[0])
    ours, awscli, floor, raw = (statistics.median(times[k]) for k in ("ours", "awscli", "floor", "floor_raw"))
    return {"objects": args.objects, "runs": args.quick_runs, "s3_sync_verify_quick_s": round(ours, 3), "aws_s3_sync_dryrun_s": round(awscli, 3),
            "list_stat_floor_s": round(floor, 3), "speedup_vs_awscli": round(awscli / ours, 2), "ratio_to_floor": round(ours / floor, 3),
            "ratio_to_floor_paired": paired(times, "ours", "floor"),
            "list_stat_raw_timestamps_floor_s": round(raw, 3), "ratio_to_raw_floor": round(ours / raw, 3),
            "ratio_to_raw_floor_paired": paired(times, "ours", "floor_raw"), "speedup_vs_awscli_paired": paired(times, "awscli", "ours"),
            "spread_s": {k: [round(min(v), 3), round(max(v), 3)] for k, v in times.items()}}


def quick_and_deep(args, s3srv, work):
    client = s3srv.client()
    client.create_bucket(Bucket=BUCKET)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=s3srv.access_key, AWS_SECRET_ACCESS_KEY=s3srv.secret_key,
               AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    base = {"endpoint": s3srv.endpoint_url, "key": s3srv.access_key, "secret": s3srv.secret_key}
    results = {}

    if "quick" not in args.skip:
        results["quick"] = quick(args, client, base, env, work / "small")
        print(json.dumps(results["quick"]), flush=True)
    if "deep" not in args.skip:
        t0 = time.perf_counter()
        seed_big(client, args.deep_mib, work / "big")
        print("seeded %d MiB in %.1fs" % (args.deep_mib, time.perf_counter() - t0), flush=True)
        cfg = dict(base, url="s3://%s/big/" % BUCKET, path=str(work / "big"), deep=True)
        subprocess.run(["cat"] + [str(p) for p in (work / "big").iterdir()], stdout=subprocess.DEVNULL, check=True)  # warm cache
        results["deep"] = deep(args, cfg, work / "big")
        print(json.dumps(results["deep"]), flush=True)
    return results


def _vllm_ready(twin, name, extra):
    """Start ``ansible -m odp.model_engine.vllm_ready`` (wait=true) for ``name``; returns the Popen."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    s3 = twin.s3
    module_args = dict({"endpoint_name": name, "kubeconfig": str(twin.emulator.kubeconfig_path), "wait": True, "wait_timeout": 1800,
                        "model": "test-model", "checkpoint_path": "s3://scale-gp-models/intermediate-model-aws/",
                        "s3_endpoint_url": s3.endpoint_url, "s3_access_key": s3.access_key, "s3_secret_key": s3.secret_key}, **extra)
    cmd = [str(BIN / "ansible"), "localhost", "-m", "odp.model_engine.vllm_ready", "-e", "ansible_python_interpreter=%s" % sys.executable,
           "-a", json.dumps(module_args), "-o"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _module_result(proc):
    out, err = proc.communicate()
    assert "SUCCESS" in out, out + err
    return json.loads(out.split("=>", 1)[1])


def _latency_trial(twin, me, name, extra):
    twin.faults.add("download_rate", name, bytes_per_second=2 * 1024 * 1024)
    assert me.post("/v1/llm/model-endpoints", dict(runbook_body(), name=name)).status == 200
    proc = _vllm_ready(twin, name, extra)
    result = _module_result(proc)
    returned = time.time()
    latency = returned - twin.health_turned_200_at(name)
    me.delete("/v1/llm/model-endpoints/%s" % name)
    twin.faults.clear()
    return latency, result


def _requests_during_download(twin, me, seconds):
    """Both modes waiting side by side on one endpoint whose ~1 MB download lasts ``seconds``: requests per 10 s each."""
    name = "bench-slow"
    manifest = json.loads((Path(twin.state_dir) / "s3-manifest.json").read_text())
    size = sum(v["size"] for v in manifest["intermediate-model-aws/"].values())
    twin.faults.add("download_rate", name, bytes_per_second=max(1, size // seconds))
    assert me.post("/v1/llm/model-endpoints", dict(runbook_body(), name=name)).status == 200
    start = time.time()
    procs = {"adaptive": _vllm_ready(twin, name, {}), "plain": _vllm_ready(twin, name, {"adaptive": False, "wait_sleep": 1})}
    results = {mode: _module_result(p) for mode, p in procs.items()}
    elapsed = time.time() - start
    me.delete("/v1/llm/model-endpoints/%s" % name)
    twin.faults.clear()
    out = {"download_seconds": round(elapsed, 1)}
    for mode, res in results.items():
        total = sum(res["requests"].values())
        out[mode] = dict(res["requests"], total=total, per_10s=round(10.0 * total / elapsed, 2))
    return out


def runbook_body():
    """A fresh copy of the twin's runbook endpoint body."""
    import copy

    from tests.twin.tests.conftest_platform import RUNBOOK_BODY

    return copy.deepcopy(RUNBOOK_BODY)


def readiness(args, work):
    """vllm_ready (wait=true) on the full twin: detection latency from /health turning 200 to the process returning,
    adaptive (the default) against the plain backoff (adaptive=false, wait_sleep 1) in the same run, trials
    interleaved; then the requests both make while one download lasts --download-seconds."""
    from tests.twin.platform.twin import Twin
    from tests.twin.tests.conftest_platform import ModelEngineClient

    twin = Twin(work / "twin").start()
    try:
        me = ModelEngineClient(twin.api_url)
        lat = {"adaptive": [], "plain": []}
        for i in range(args.trials):
            for mode, extra in (("adaptive", {}), ("plain", {"adaptive": False, "wait_sleep": 1})):
                latency, _res = _latency_trial(twin, me, "bench-ready-%s-%d" % (mode[0], i), extra)
                lat[mode].append(latency)
        res = {"trials": args.trials}
        for mode, values in lat.items():
            res[mode] = {"median_s": round(statistics.median(values), 3), "max_s": round(max(values), 3), "min_s": round(min(values), 3)}
        res["median_ratio_to_plain"] = round(res["adaptive"]["median_s"] / res["plain"]["median_s"], 3)
        if args.download_seconds:
            res["requests"] = _requests_during_download(twin, me, args.download_seconds)
        print(json.dumps(res), flush=True)
        return res
    finally:
        twin.stop()


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}


def met(ok):
    return "met" if ok else "not met"


def summary(out):
    """The figures as a Markdown table: ours, its baseline, the ratio, the target (met when both the
    ratio of the medians and the median of the paired ratios meet it)."""
    rows = ["| measurement | ours | baseline | ratio | target |", "| --- | --- | --- | --- | --- |"]
    q, d, r = out.get("quick"), out.get("deep"), out.get("readiness")
    if q:
        rows.append("| quick verify, %d objects | %.2f s | list+stat floor %.2f s | %.3fx the floor (paired %.3fx) | <= 1.05x: %s |" % (
            q["objects"], q["s3_sync_verify_quick_s"], q["list_stat_floor_s"], q["ratio_to_floor"], q["ratio_to_floor_paired"],
            met(max(q["ratio_to_floor"], q["ratio_to_floor_paired"]) <= 1.05)))
        rows.append("| quick verify, %d objects | %.2f s | list+stat, timestamps unparsed as ours, %.2f s | %.3fx (paired %.3fx) | |" % (
            q["objects"], q["s3_sync_verify_quick_s"], q["list_stat_raw_timestamps_floor_s"], q["ratio_to_raw_floor"],
            q["ratio_to_raw_floor_paired"]))
        rows.append("| quick verify, %d objects | %.2f s | `aws s3 sync --dryrun --size-only` %.2f s | %.2fx faster | |" % (
            q["objects"], q["s3_sync_verify_quick_s"], q["aws_s3_sync_dryrun_s"], q["speedup_vs_awscli"]))
    if d:
        what = "%.1f GiB, %d files" % (d["bytes"] / 2**30, d["files"])
        base = "`xargs -P %d md5sum` %.0f MB/s" % (d["cores"], d["md5sum_MBps"])
        rows.append("| deep, agent as in a pod (%d threads), %s | %.0f MB/s | %s | %.3fx (paired %.3fx) | >= 0.95x: %s |" % (
            d["agent_workers"], what, d["agent_MBps"], base, d["agent_throughput_vs_md5sum"], d["agent_vs_md5sum_paired"],
            met(min(d["agent_throughput_vs_md5sum"], d["agent_vs_md5sum_paired"]) >= 0.95)))
        if "cold_agent_s" in d:
            rows.append("| deep, agent, files evicted from the page cache first | %.0f MB/s | `xargs -P %d md5sum` %.0f MB/s, evicted too "
                        "| %.3fx (paired %.3fx) | |" % (
                d["cold_agent_MBps"], d["cores"], d["cold_md5sum_MBps"], d["cold_agent_vs_md5sum"], d["cold_agent_vs_md5sum_paired"]))
        rows.append("| deep, agent peak RSS (median; max) | %.1f MiB; %.1f MiB | same agent hashing 2 bytes %.1f MiB "
                    "| %.2fx (%+.1f MiB; buffers %.0f MiB) | bounded |" % (
            d["agent_peak_rss_MiB"], d["agent_peak_rss_max_MiB"], d["agent_floor_rss_MiB"], d["agent_rss_vs_floor"], d["agent_rss_over_floor_MiB"],
            d["agent_buffer_bound_MiB"]))
        rows.append("| deep, whole verifier process, %s | %.0f MB/s | %s | %.3fx (paired %.3fx) | >= 0.95x: %s |" % (
            what, d["s3_sync_verify_MBps"], base, d["throughput_vs_md5sum"], d["verifier_vs_md5sum_paired"],
            met(min(d["throughput_vs_md5sum"], d["verifier_vs_md5sum_paired"]) >= 0.95)))
        rows.append("| deep, whole verifier process | %.2f s | floor: md5sum %.2f s + S3 metadata process %.2f s | %.3fx the floor's throughput | |" % (
            d["s3_sync_verify_deep_s"], d["md5sum_parallel_s"], d["s3_metadata_s"], d["throughput_vs_floor"]))
    if r:
        a, b = r["adaptive"], r["plain"]
        rows.append("| readiness detection, %d trials (from /health turning 200 to `ansible -m vllm_ready` returning) | median %.2f s (max %.2f) "
                    "| plain backoff 0.1 s doubling to 1 s: median %.2f s (max %.2f) | %.2fx | median <= 0.5 s: %s |" % (
                        r["trials"], a["median_s"], a["max_s"], b["median_s"], b["max_s"], r["median_ratio_to_plain"], met(a["median_s"] <= 0.5)))
        q = r.get("requests")
        if q:
            rows.append("| requests while a download lasts %.0f s | %.2f per 10 s (%d: %d API, %d exec, %d proxy) | plain backoff: %.2f per 10 s (%d) "
                        "| %.3fx | <= 1 per 10 s: %s |" % (
                            q["download_seconds"], q["adaptive"]["per_10s"], q["adaptive"]["total"], q["adaptive"]["kubernetes"], q["adaptive"]["exec"],
                            q["adaptive"]["proxy"], q["plain"]["per_10s"], q["plain"]["total"], q["adaptive"]["total"] / max(1, q["plain"]["total"]),
                            met(q["adaptive"]["per_10s"] <= 1.0)))
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--s3", choices=["seaweedfs", "moto"], default="seaweedfs")
    ap.add_argument("--objects", type=int, default=10000)
    ap.add_argument("--deep-mib", type=int, default=2048)
    ap.add_argument("--quick-runs", type=int, default=5, help="interleaved runs of each quick measurement (median)")
    ap.add_argument("--deep-runs", type=int, default=7, help="interleaved runs of each deep measurement (median)")
    ap.add_argument("--cold-runs", type=int, default=2, help="runs of agent and md5sum on files evicted from the page cache (0: none)")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--download-seconds", type=int, default=600, help="length of the download the request count is taken over (0: skip)")
    ap.add_argument("--skip", action="append", default=[], choices=["storage", "readiness", "quick", "deep"])
    args = ap.parse_args()
    from tests.twin.platform.s3 import S3Server

    work = Path(tempfile.mkdtemp(prefix="verify-bench-"))
    out = {"machine": machine(), "s3": args.s3}
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
    print(summary(out))


if __name__ == "__main__":
    main()
