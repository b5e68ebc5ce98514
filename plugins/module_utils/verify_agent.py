# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inspect a folder of model files: sizes, optional content digests, safetensors headers.

Standard library only, with no imports from the collection, because the same source runs in two
places: in-process on the controller (``path`` mode of s3_sync_verify) and inside an endpoint pod's
``main`` container through the Kubernetes exec API (``python3 -c <this source> <request>``), so
that deep verification hashes the files where they are instead of copying them out.

Request (JSON, or ``z:`` + base64 of the zlib-compressed JSON, which keeps the exec URL short)::

    {"root": "model_files",
     "files": {"<relative name>": {"md5_part_size": int|null, "md5": bool, "sha256": bool, "safetensors": bool}},
     "workers": int,               # hashing threads; default: the CPUs this process may use
                                   # (affinity mask and cgroup CPU quota, not the node's core count)
     "marker": bool}               # also answer "marker": the model cache's .complete and lock (read_marker)

Every regular file below ``root`` is listed; the named files are also hashed/parsed as asked.
``files`` empty (or absent) is a *listing*: names, sizes and modification times only, no file is
opened.

Answer (JSON, one object on stdout)::

    {"root": "/abs/path",          # root made absolute, as the agent saw it
     "exists": bool,               # root is a directory
     "problem": str,               # only when root cannot be listed: "does not exist", "is not a directory"
                                   # or "is not readable: permission denied"
     "now": 1767225600.25,         # the agent's own clock (time.time(), float seconds) right after the
                                   # listing: compare mtimes with this, not with the controller's clock
     "files": {"<relative posix name>": {
         "size": int,              # st_size when listed
         "mtime": float,           # st_mtime, float seconds (same clock as "now")
         "md5_parts": [hex, ...],  # when md5_part_size was asked: MD5 of each part, in order
         "md5": hex,               # when md5 was asked (no part size)
         "sha256": hex,            # when sha256 was asked
         "safetensors": {"ok": bool, "problem": str|null, "tensors"?: int, "data_bytes"?: int},
         "changed_while_read": str,  # instead of the digests: the file's size or mtime changed
                                     # between the listing and the end of its hashing (still written)
         "unreadable": str}},        # instead of the digests: an OSError reading it
     "errors": ["<name>: <reason>", ...],   # one line per changed or unreadable file
     "stats": {"workers", "cpus", "buffer_bytes", "jobs", "plan", "bytes_hashed", "seconds",  # deep only
               "peak_rss_bytes"}}    # VmHWM of the process the agent ran in (the controller's in path mode)

``now - mtime`` is how long a file has had no new bytes: a stalled download (every file older than
a window) is told from a slow one from a single answer. Keys may be added; none is removed or
changes meaning.

Hashing: a multipart ETag is the MD5 of the concatenated part MD5s, so every part is an
independent job; a thread pool of ``workers`` threads (hashlib releases the GIL on large buffers)
runs the jobs longest first, each thread reading into one reused buffer of ``CHUNK`` bytes, so the
memory the hashing adds is bounded by ``workers * CHUNK``. A file that needs a whole-file digest
(SHA-256 for a manifest, or a single-part MD5) is one sequential job; when the part MD5s and the
SHA-256 of the same file are asked, the planner either hashes both in one read of the file or in
separate jobs, whichever its cost model finishes sooner on ``workers`` threads (one read saves a
copy per byte; separate jobs balance better, so one read wins only with many files per thread).
"""

from __future__ import annotations

import binascii
import hashlib
import heapq
import json
import os
import stat
import struct
import sys
import threading
import time
import zlib

CHUNK = 1024 * 1024  # read size: fits in L2 with the hash state, so the copy out of the page cache stays cheap
GROUP = 8 * 1024 * 1024  # small parts (S3's minimum is 5 MiB) are hashed a few to a job
# Relative CPU cost per byte (one core, x86-64 with SHA extensions): MD5 ~700 MiB/s, SHA-256 ~1.7 GiB/s;
# READ is the copy out of the page cache that every separate pass over a file pays again.
COST = {"md5": 1.0, "sha256": 0.45}
READ = 0.05
TAIL = 0.5


class Changed(Exception):
    """The file is not the one that was listed (size or mtime differ, or it ended early)."""


def md5():
    try:
        return hashlib.md5(usedforsecurity=False)  # FIPS-mode OpenSSL refuses md5() for security use
    except TypeError:  # Python < 3.9
        return hashlib.md5()


def new_hash(algo):
    return md5() if algo == "md5" else hashlib.new(algo)


def cgroup_cpu_limit(base="/sys/fs/cgroup"):
    """CPUs allowed by the cgroup CPU quota (v2 cpu.max, v1 cfs quota/period), or None when unlimited."""
    for quota_file, period_file in (("cpu.max", None), ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us")):
        try:
            with open(os.path.join(base, quota_file)) as f:
                fields = f.read().split()
            if period_file:
                with open(os.path.join(base, period_file)) as f:
                    fields = [fields[0], f.read().strip()]
            quota, period = fields[0], fields[1]
        except (OSError, IndexError):
            continue
        try:
            return int(quota) / int(period) if int(quota) > 0 and int(period) > 0 else None
        except ValueError:  # "max"
            return None
    return None


def usable_cpus():
    """The CPUs this process may run on: the affinity mask, capped by the cgroup quota (rounded up)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit:
        n = min(n, int(-(-limit // 1)))
    return max(1, n)


def list_files(root):
    """{relative posix name: (size, mtime)} of every regular file below root (symlinks to files
    followed, symlinks to directories not descended, like os.walk)."""
    out = {}
    stack = [(root, "")]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue  # removed while listing
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, rel + entry.name + "/"))
                        continue
                    st = entry.stat()
                except OSError:
                    continue  # renamed or removed while listing (a download in progress)
                if stat.S_ISREG(st.st_mode):
                    out[rel + entry.name] = (st.st_size, st.st_mtime)
    return out


# ----------------------------------------------------------------------------- hashing
class Job(object):
    """Bytes [start, end) of one file: the MD5 of each part inside (parts at multiples of ``part``),
    and/or whole-file digests (``algos``, only for start=0, end=size)."""

    __slots__ = ("algos", "cost", "end", "name", "part", "start")

    def __init__(self, name, start, end, part, algos):
        self.name, self.start, self.end, self.part, self.algos = name, start, end, part, tuple(algos)
        self.cost = (end - start) * ((COST["md5"] if part else 0.0) + sum(COST[a] for a in self.algos) + READ) + 1.0


def file_jobs(name, size, want, fused):
    """The jobs for one file's requested digests: in one pass over the file (fused) or split into
    whole-file digests and groups of parts."""
    part = want.get("md5_part_size") or None
    algos = (["md5"] if want.get("md5") and not part else []) + (["sha256"] if want.get("sha256") else [])
    if fused and algos:
        return [Job(name, 0, size, part, algos)]
    jobs = [Job(name, 0, size, None, [a]) for a in algos]
    if part:
        step = part * max(1, GROUP // part)
        jobs.extend(Job(name, off, min(size, off + step), part, ()) for off in range(0, max(size, 1), step))
    return jobs


def makespan(jobs, workers):
    """Estimated finishing time: longest-first list scheduling (the order the pool runs the jobs in),
    plus TAIL of the largest job, since a thread slowed down by other load (vLLM loading the weights,
    the neighbours of a shared node) leaves the others idle for up to one job at the end."""
    loads = [0.0] * max(1, workers)
    for job in sorted(jobs, key=lambda j: -j.cost):
        heapq.heapreplace(loads, loads[0] + job.cost)
    return max(loads) + TAIL * max([j.cost for j in jobs] or [0.0])


def plan(listing, files, workers):
    """(jobs longest first, "fused"|"split"): the plan with the shorter estimated makespan."""
    plans = {}
    for mode in ("split", "fused"):
        jobs = []
        for name, want in files.items():
            if name in listing:
                jobs.extend(file_jobs(name, listing[name][0], want, mode == "fused"))
        plans[mode] = jobs
    mode = "fused" if makespan(plans["fused"], workers) < makespan(plans["split"], workers) else "split"
    return sorted(plans[mode], key=lambda j: -j.cost), mode


_local = threading.local()


def buffer():
    """This thread's read buffer, allocated once."""
    view = getattr(_local, "view", None)
    if view is None or len(view) != CHUNK:
        view = _local.view = memoryview(bytearray(CHUNK))
    return view


def check_same(st, listed, when):
    size, mtime = listed
    if st.st_size != size or st.st_mtime != mtime:
        raise Changed("changed while read (%s): %d bytes, mtime %.3f when listed; %d bytes, mtime %.3f now" % (
            when, size, mtime, st.st_size, st.st_mtime))


def hash_job(job, path, listed):
    """{"parts": {index: hex}, algo: hex ...} for the job; Changed when the file is not the listed one."""
    view = buffer()
    with open(path, "rb", buffering=0) as f:
        check_same(os.fstat(f.fileno()), listed, "at open")
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(f.fileno(), job.start, job.end - job.start, os.POSIX_FADV_SEQUENTIAL)
        f.seek(job.start)
        whole = [new_hash(a) for a in job.algos]
        parts = {}
        pos = job.start
        while True:
            index = pos // job.part if job.part else 0
            stop = min(job.end, (index + 1) * job.part) if job.part else job.end
            ph = md5() if job.part else None
            while pos < stop:
                n = f.readinto(view[:min(CHUNK, stop - pos)])
                if not n:
                    raise Changed("changed while read: ended at byte %d of the %d listed" % (pos, listed[0]))
                chunk = view[:n]
                for h in whole:
                    h.update(chunk)
                if ph is not None:
                    ph.update(chunk)
                pos += n
            if ph is not None:
                parts[index] = ph.hexdigest()
            if pos >= job.end:
                break
        check_same(os.fstat(f.fileno()), listed, "after hashing")
    out = {a: h.hexdigest() for a, h in zip(job.algos, whole)}
    out["parts"] = parts
    return out


def _read_header(path, size):
    """(header length, header dict) of a safetensors file, or a problem string."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                return "shorter than the 8-byte header length"
            (hlen,) = struct.unpack("<Q", raw)
            if hlen > min(size - 8, 100 * 1024 * 1024):
                return "header length %d does not fit in a file of %d bytes" % (hlen, size)
            header = json.loads(f.read(hlen).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return "unreadable header: %s" % e
    if not isinstance(header, dict):
        return "header is not a JSON object"
    return hlen, header


def _data_end(header):
    """(end of the data section, tensor count), or a problem string."""
    end = tensors = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            return "tensor %s has no valid data_offsets" % name
        if not (0 <= start <= stop):
            return "tensor %s has data_offsets out of order" % name
        end = max(end, stop)
        tensors += 1
    return end, tensors


def safetensors_check(path, size):
    """Parse the header; the data section must end exactly at the end of the file."""
    parsed = _read_header(path, size)
    if isinstance(parsed, str):
        return {"ok": False, "problem": parsed}
    hlen, header = parsed
    data = _data_end(header)
    if isinstance(data, str):
        return {"ok": False, "problem": data}
    end, tensors = data
    expected = 8 + hlen + end
    if expected != size:
        return {"ok": False, "problem": "header describes %d bytes but the file has %d" % (expected, size),
                "tensors": tensors, "data_bytes": end}
    return {"ok": True, "problem": None, "tensors": tensors, "data_bytes": end}


def peak_rss():
    """High-water mark of this process's resident memory in bytes (Linux VmHWM), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def run_threads(fn, items, workers):
    """fn(item) for every item, on ``workers`` threads taking the items in order; the first exception
    a thread raises is raised here. (Plain threads: concurrent.futures imports logging, which costs
    the agent's start in a pod more than the pool is worth.)"""
    items = iter(items)
    lock = threading.Lock()
    raised = []

    def loop():
        while not raised:
            with lock:
                item = next(items, None)
            if item is None:
                return
            try:
                fn(item)
            except BaseException as e:  # handed to the caller
                raised.append(e)

    threads = [threading.Thread(target=loop, daemon=True) for _worker in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if raised:
        raise raised[0]


def run_jobs(root, listing, files, workers):
    """Hash and parse what ``files`` asks; {name: {digest fields}}, {name: problem}, stats."""
    jobs, mode = plan(listing, files, workers)
    headers = sorted(n for n, want in files.items() if want.get("safetensors") and n in listing)
    got, failed = {}, {}
    lock = threading.Lock()

    def work(item):
        if item[0] == "header":
            result = safetensors_check(os.path.join(root, item[1]), listing[item[1]][0])
            with lock:
                got.setdefault(item[1], {"parts": {}})["safetensors"] = result
            return
        job = item[1]
        if job.name in failed:  # the file already changed under another job: do not read it again
            return
        try:
            out = hash_job(job, os.path.join(root, job.name), listing[job.name])
        except Changed as e:
            failed.setdefault(job.name, ("changed_while_read", str(e)))
            return
        except OSError as e:
            failed.setdefault(job.name, ("unreadable", str(e)))
            return
        with lock:
            entry = got.setdefault(job.name, {"parts": {}})
            entry["parts"].update(out.pop("parts"))
            entry.update(out)

    t0 = time.time()
    items = [("header", n) for n in headers] + [("hash", j) for j in jobs]  # headers first: small reads
    run_threads(work, items, min(workers, len(items)))
    stats = {"workers": workers, "cpus": usable_cpus(), "buffer_bytes": workers * CHUNK, "jobs": len(jobs), "plan": mode,
             "bytes_hashed": sum(j.end - j.start for j in jobs), "seconds": round(time.time() - t0, 3), "peak_rss_bytes": peak_rss()}
    return got, failed, stats


def fill_entry(entry, got, want, failed):
    """Move one file's results into its answer entry; True when it could not be hashed."""
    if failed:
        entry[failed[0]] = failed[1]
        if "safetensors" in got:
            entry["safetensors"] = got["safetensors"]
        return True
    part = want.get("md5_part_size")
    for key in ("md5", "sha256", "safetensors"):
        if key in got:
            entry[key] = got[key]
    if part:
        entry["md5_parts"] = [got["parts"][i] for i in range(max(1, -(-entry["size"] // part)))]
    return False


def root_problem(root):
    """Why ``root`` cannot be listed ("does not exist", "is not a directory", "is not readable: permission denied"),
    or None; a walk would silently list nothing."""
    if not os.path.isdir(root):
        return "is not a directory" if os.path.exists(root) else "does not exist"
    try:
        os.listdir(root)
    except OSError as e:
        return "is not readable: %s" % (e.strerror or e).lower()
    return None


def read_marker(root):
    """The model cache's marker and lock in ``root``: the content and time of ``.complete``, whether
    ``.download.lock`` exists, its heartbeat (seconds since the epoch) and time, and this clock's ``now``."""
    out = {"now": time.time(), "complete": None, "complete_mtime": None, "lock": False, "heartbeat": None, "lock_mtime": None}
    try:
        with open(os.path.join(root, ".complete")) as f:
            out["complete"] = f.read(4096)
        out["complete_mtime"] = os.stat(os.path.join(root, ".complete")).st_mtime
    except OSError:
        pass
    lock = os.path.join(root, ".download.lock")
    try:
        out["lock_mtime"] = os.stat(lock).st_mtime
        out["lock"] = True
        with open(os.path.join(lock, "heartbeat")) as f:
            out["heartbeat"] = int(f.read(64).strip())
    except (OSError, ValueError):
        pass
    return out


def inspect(request):
    root = request.get("root") or "."
    answer = {"root": os.path.abspath(root), "exists": os.path.isdir(root), "now": time.time(), "files": {}, "errors": []}
    answer.update({"marker": read_marker(root)} if request.get("marker") else {})
    problem = root_problem(root)
    if problem:
        answer["problem"] = problem
        return answer
    listing = list_files(root)
    answer["now"] = time.time()  # after the stats: no listed mtime is later than "now"
    for name, (size, mtime) in listing.items():
        answer["files"][name] = {"size": size, "mtime": mtime}
    files = {n: w for n, w in (request.get("files") or {}).items() if n in listing}
    if not files:
        return answer
    workers = max(1, int(request.get("workers") or usable_cpus()))
    got, failed, answer["stats"] = run_jobs(root, listing, files, workers)
    for name, want in sorted(files.items()):
        if fill_entry(answer["files"][name], got.get(name, {"parts": {}}), want, failed.get(name)):
            answer["errors"].append("%s: %s" % (name, failed[name][1]))
    return answer


def unpack(arg):
    """The request from argv: JSON, or "z:" + base64(zlib(JSON))."""
    if arg.startswith("z:"):
        arg = zlib.decompress(binascii.a2b_base64(arg[2:])).decode("utf-8")
    return json.loads(arg)


def pack(request):
    return "z:" + binascii.b2a_base64(zlib.compress(json.dumps(request, separators=(",", ":")).encode("utf-8"), 9), newline=False).decode("ascii")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    request = unpack(argv[0]) if argv else json.load(sys.stdin)
    json.dump(inspect(request), sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
