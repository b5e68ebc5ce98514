# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inspect a folder of model files: sizes, optional content digests, safetensors headers.

Standard library only, with no imports from the collection, because the same source runs in two
places: in-process on the controller (``path`` mode of s3_sync_verify) and inside an endpoint pod's
``main`` container through the Kubernetes exec API (``python3 -c <this source> <request JSON>``),
so that deep verification hashes the files where they are instead of copying them out.

Request (JSON): ``{"root": "model_files", "files": {"<relative name>": {"md5_part_size": int|null,
"md5": bool, "sha256": bool, "safetensors": bool}}, "workers": int}``. Every regular file below
``root`` is listed; the named files are also hashed/parsed as asked.
Answer (JSON): ``{"root", "exists", "files": {"<name>": {"size", "mtime", "md5_parts"?, "md5"?,
"sha256"?, "safetensors"?: {"ok", "problem", "tensors", "data_bytes"}}}, "errors": [...]}``; with
``"marker": true`` in the request also ``"marker"`` (the model cache's ``.complete`` and lock, ``read_marker``).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor

CHUNK = 8 * 1024 * 1024


def list_files(root):
    """{relative posix name: (size, mtime)} of every regular file below root."""
    out = {}
    for dirpath, _dirnames, filenames in os.walk(root):
        for fn in filenames:
            full = os.path.join(dirpath, fn)
            try:
                st = os.stat(full)
            except OSError:
                continue  # renamed or removed while listing (a download in progress)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            out[rel] = (st.st_size, st.st_mtime)
    return out


def md5_range(path, offset, length):
    h = hashlib.md5()
    with open(path, "rb") as f:
        f.seek(offset)
        remaining = length
        while remaining > 0:
            block = f.read(min(CHUNK, remaining))
            if not block:
                break
            h.update(block)
            remaining -= len(block)
    return h.hexdigest()


def digest_file(path, algo):
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def safetensors_check(path, size):
    """Parse the header; the data section must end exactly at the end of the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                return {"ok": False, "problem": "shorter than the 8-byte header length"}
            (hlen,) = struct.unpack("<Q", raw)
            if hlen > min(size - 8, 100 * 1024 * 1024):
                return {"ok": False, "problem": "header length %d does not fit in a file of %d bytes" % (hlen, size)}
            header = json.loads(f.read(hlen).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return {"ok": False, "problem": "unreadable header: %s" % e}
    if not isinstance(header, dict):
        return {"ok": False, "problem": "header is not a JSON object"}
    end = 0
    tensors = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            return {"ok": False, "problem": "tensor %s has no valid data_offsets" % name}
        if not (0 <= start <= stop):
            return {"ok": False, "problem": "tensor %s has data_offsets out of order" % name}
        end = max(end, stop)
        tensors += 1
    expected = 8 + hlen + end
    if expected != size:
        return {"ok": False, "problem": "header describes %d bytes but the file has %d" % (expected, size),
                "tensors": tensors, "data_bytes": end}
    return {"ok": True, "problem": None, "tensors": tensors, "data_bytes": end}


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
    answer = {"root": os.path.abspath(root), "exists": os.path.isdir(root), "files": {}, "errors": []}
    answer.update({"marker": read_marker(root)} if request.get("marker") else {})
    if not answer["exists"]:
        return answer
    listing = list_files(root)
    for name, (size, mtime) in listing.items():
        answer["files"][name] = {"size": size, "mtime": mtime}
    jobs = []  # (name, key, callable)
    for name, want in (request.get("files") or {}).items():
        if name not in listing:
            continue
        path = os.path.join(root, name)
        size = listing[name][0]
        part = want.get("md5_part_size")
        if part:
            count = max(1, -(-size // part))
            for i in range(count):
                jobs.append((name, ("md5_parts", i, count), (md5_range, path, i * part, min(part, size - i * part))))
        elif want.get("md5"):
            jobs.append((name, ("md5",), (digest_file, path, "md5")))
        if want.get("sha256"):
            jobs.append((name, ("sha256",), (digest_file, path, "sha256")))
        if want.get("safetensors"):
            jobs.append((name, ("safetensors",), (safetensors_check, path, size)))
    workers = int(request.get("workers") or os.cpu_count() or 1)
    # hashlib releases the GIL on large buffers, so threads hash on every core.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [(name, key, pool.submit(fn, *args)) for name, key, (fn, *args) in jobs]
        for name, key, fut in futures:
            entry = answer["files"][name]
            try:
                value = fut.result()
            except OSError as e:
                answer["errors"].append("%s: %s" % (name, e))
                continue
            if key[0] == "md5_parts":
                entry.setdefault("md5_parts", [None] * key[2])[key[1]] = value
            else:
                entry[key[0]] = value
    return answer


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    request = json.loads(argv[0]) if argv else json.load(sys.stdin)
    json.dump(inspect(request), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
