# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare a checkpoint in S3 with the model files a pod (or a node) downloaded.

The runbook's "timing coordination" made exact: config.json present, every shard present, no file
under a download tool's temporary name, sizes equal to the bucket's; in deep mode also the content
(S3 ETag recomputed, or SHA-256 against a manifest) and each safetensors header against its file.
"""

from __future__ import annotations

import base64
import inspect
import json
import re
import time
import zlib

from ansible_collections.odp.model_engine.plugins.module_utils import model_cache, s3, verify_agent, waiter
from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError, OdpError, SpecError
from ansible_collections.odp.model_engine.plugins.module_utils.judge import DEFAULT_LIMITS, judge_download, judge_pods
from ansible_collections.odp.model_engine.plugins.module_utils.observe import record_verification
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import is_ready

# awscli (s3transfer) writes "<name>.<8 random hex digits>" and renames on completion; the runbook
# greps for 8 alphanumerics. s5cmd writes "<name><random digits>" (Go's os.CreateTemp(dir, name+"*")).
AWSCLI_TEMP_RE = re.compile(r"^(?P<base>.+)\.(?P<rand>[A-Za-z0-9]{8})$")
S5CMD_TEMP_RE = re.compile(r"^(?P<base>.+?)(?P<rand>\d{1,20})$")
TMP_SUFFIXES = (".tmp", ".part", ".download")
INDEX_NAME = "model.safetensors.index.json"


def classify_local(name, expected):
    """(kind, base, tool): kind is 'expected', 'temp' or 'extra'."""
    if name in expected:
        return "expected", name, None
    for suffix in TMP_SUFFIXES:
        if name.endswith(suffix):
            return "temp", name[: -len(suffix)], suffix
    m = AWSCLI_TEMP_RE.match(name)
    if m and m.group("base") in expected:
        return "temp", m.group("base"), "awscli"
    m = S5CMD_TEMP_RE.match(name)
    if m:
        # the longest expected name that the digits were appended to
        for cut in range(len(m.group("base")), len(name)):
            base, rest = name[:cut], name[cut:]
            if base in expected and rest.isdigit():
                return "temp", base, "s5cmd"
    return "extra", name, None


def index_shards(index):
    if not isinstance(index, dict):
        return []
    return sorted(set((index.get("weight_map") or {}).values()))


def _temp_names(local, expected, problems):
    """({expected name: [its temp files]}, [extra files]) of the local listing."""
    temp_for, extras = {}, []
    for name, info in sorted(local.items()):
        kind, base, tool = classify_local(name, expected)
        if kind == "temp":
            temp_for.setdefault(base, []).append({"name": name, "size": info["size"], "tool": tool})
            problems.append({"file": name, "problem": "temp_name",
                             "detail": "still under a temporary name (%s) of %s: the download has not finished" % (tool, base)})
        elif kind == "extra":
            extras.append(name)
    return temp_for, extras


def _size_entry(name, want, have, partial, problems):
    """(entry, bytes present) of one expected file from its size here (or its temp files')."""
    entry = {"expected_size": want["size"], "size": have["size"] if have else None, "state": "ok"}
    if have is None and partial:
        got = max(t["size"] for t in partial)
        entry.update(state="downloading", size=got)
        return entry, min(got, want["size"])
    if have is None:
        entry["state"] = "missing"
        problems.append({"file": name, "problem": "missing", "detail": "not downloaded (%d bytes in S3)" % want["size"]})
        return entry, 0
    if have["size"] != want["size"]:
        entry["state"] = "size_mismatch"
        problems.append({"file": name, "problem": "size_mismatch", "detail": "%d bytes here, %d bytes in S3" % (have["size"], want["size"])})
        return entry, min(have["size"], want["size"])
    return entry, want["size"]


def _mismatch(entry, problems, name, problem, detail):
    entry["state"] = "bad_safetensors" if problem == "bad_safetensors" else "content_mismatch"
    problems.append({"file": name, "problem": problem, "detail": detail})


def _content(name, entry, got, want, problems):
    """Deep checks of one file whose size matched: recomputed ETag, SHA-256 against the manifest, safetensors header.
    ``want``: the ``etag`` to match and the ``manifest``."""
    etag, manifest = want["etag"], want["manifest"]
    unhashed = [k for k in ("changed_while_read", "unreadable") if k in got]
    if unhashed:  # the agent could not hash it: say why instead of comparing a partial digest
        entry["state"] = unhashed[0]
        problems.append({"file": name, "problem": unhashed[0], "detail": got[unhashed[0]]})
        return
    if "md5_parts" in got or "md5" in got:
        mine = s3.etag_from_part_md5s(got["md5_parts"]) if "md5_parts" in got else got["md5"]
        entry["etag_match"] = mine == etag
        if mine != etag:
            _mismatch(entry, problems, name, "content_mismatch", "content differs from S3: ETag %s here, %s in S3" % (mine, etag))
    if manifest and name in manifest and "sha256" in got:
        entry["sha256_match"] = got["sha256"] == manifest[name]
        if not entry["sha256_match"]:
            _mismatch(entry, problems, name, "sha256_mismatch", "SHA-256 %s differs from the manifest's %s" % (got["sha256"], manifest[name]))
    header = got.get("safetensors")
    if header is not None:
        entry["safetensors_ok"] = header["ok"]
        if not header["ok"]:
            _mismatch(entry, problems, name, "bad_safetensors", header["problem"])


def _index_problems(index, expected, per_file, problems):
    shards = index_shards(index)
    for shard in shards:
        if shard not in expected:
            problems.append({"file": shard, "problem": "index_shard_not_in_s3", "detail": "named in %s but not in the bucket" % INDEX_NAME})
    if "config.json" not in expected:
        problems.append({"file": "config.json", "problem": "missing_in_s3", "detail": "the checkpoint has no config.json"})
    return shards, [s for s in shards if per_file.get(s, {}).get("state") == "ok"]


def compare(expected, local, index=None, deep=None, **checks):
    """Build the verification result.

    expected: {name: {"size", "etag"}} (S3, model files only); local: the agent's ``files`` answer;
    index: parsed model.safetensors.index.json; deep: {name: agent entry with md5/md5_parts/sha256/
    safetensors} when content was checked; ``checks``: ``manifest`` {name: sha256}, ``etags`` {name: "etag"} to
    compare with (defaults to the listing's).

    A file's ``state`` is ok, missing, downloading, size_mismatch, or in deep mode content_mismatch,
    bad_safetensors, changed_while_read (its size or mtime changed while it was hashed: something
    still writes it) or unreadable (the agent got an OSError reading it).
    """
    problems = []
    temp_for, extras = _temp_names(local, expected, problems)
    per_file, bytes_present = {}, 0
    for name, want in sorted(expected.items()):
        per_file[name], present = _size_entry(name, want, local.get(name), temp_for.get(name), problems)
        bytes_present += present
    bytes_expected = sum(want["size"] for want in expected.values())
    if deep is not None:
        etags = checks.get("etags") or {}
        for name, entry in per_file.items():
            if entry["state"] == "ok":
                want = {"etag": etags.get(name, expected[name].get("etag")), "manifest": checks.get("manifest")}
                _content(name, entry, deep.get(name) or {}, want, problems)
    shards, shards_present = _index_problems(index, expected, per_file, problems)
    config_present = per_file.get("config.json", {}).get("state") in ("ok", "content_mismatch", "bad_safetensors", "changed_while_read", "unreadable")
    complete = not problems and all(e["state"] == "ok" for e in per_file.values())
    percent = round(100.0 * bytes_present / bytes_expected, 1) if bytes_expected else (100.0 if complete else 0.0)
    return {
        "complete": complete,
        "in_progress": bool(temp_for) and not complete,
        "config_json_present": bool(config_present),
        "index_shards": shards,
        "index_shards_present": len(shards_present),
        "all_index_shards_present": len(shards_present) == len(shards),
        "problems": problems,
        "files": per_file,
        "extra_files": extras,
        "temp_files": sorted(t["name"] for ts in temp_for.values() for t in ts),
        "bytes_present": bytes_present,
        "bytes_expected": bytes_expected,
        "percent": percent,
    }


def deep_request(expected, part_sizes, manifest=None, check_etag=True, check_headers=True):
    """What the agent must compute per file for a deep check."""
    files = {}
    for name in expected:
        req = {}
        if check_etag:
            if part_sizes.get(name):
                req["md5_part_size"] = part_sizes[name]
            else:
                req["md5"] = True
        if manifest and name in manifest:
            req["sha256"] = True
        if check_headers and name.endswith(".safetensors"):
            req["safetensors"] = True
        files[name] = req
    return files


# ----------------------------------------------------------------------------- the module
_AGENT_SOURCE = []


def agent_source():
    """The agent's source without its docstrings (the exec URL carries it; its meaning is unchanged)."""
    if not _AGENT_SOURCE:
        import ast

        if not hasattr(ast, "unparse"):  # Python < 3.9 runs the module: send the source as it is
            return inspect.getsource(verify_agent)
        tree = ast.parse(inspect.getsource(verify_agent))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and body and isinstance(body[0], ast.Expr) \
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
        _AGENT_SOURCE.append(ast.unparse(tree))
    return _AGENT_SOURCE[0]


def agent_argv(python, request):
    """argv that runs the verification agent with ``python -c``; the source and the request travel
    compressed, since exec arguments are sent in the request URL."""
    packed = base64.b64encode(zlib.compress(agent_source().encode("utf-8"), 9)).decode("ascii")
    return [python, "-c", "import binascii,zlib;exec(zlib.decompress(binascii.a2b_base64('%s')))" % packed, verify_agent.pack(request)]


def fetch_part_sizes(client, bucket, prefix, expected, threads=8):
    """{name: part size} of every multipart object (one HEAD ?partNumber=1 each, several at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    names = sorted(n for n, info in expected.items() if s3.multipart_count(info["etag"]))
    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(names)))) as pool:
        sizes = list(pool.map(lambda n: s3.part_size(client, bucket, prefix + n), names))
    return dict(zip(names, sizes))


def run_agent_in_pod(kube, target, request, timeout):
    """The agent's answer from inside the container (``kube``: a kube.Kube; ``target``: ``namespace``, ``pod``,
    ``container``, ``python``); KubeError when it could not run."""
    namespace, pod, container = target["namespace"], target["pod"], target["container"]
    rc, out, err = kube.exec(namespace, pod, container, agent_argv(target.get("python") or "python3", request), timeout=timeout)
    where = "pod %s/%s container %s" % (namespace, pod, container)
    if rc != 0:
        raise KubeError("the verification helper failed in %s (exit %s): %s" % (where, rc, (err or out)[-500:]))
    try:
        return json.loads(out)
    except ValueError:
        raise KubeError("unexpected output from the verification helper in %s: %s" % (where, out[-300:]))


class Target(object):
    """Where the files are: a local directory, or a pod's container (through exec)."""

    def __init__(self, module):
        self.p = module.params
        self.kube = None
        self.pod = None
        self.pod_name = None
        self.cache = None         # the pod's model cache (model_cache.pod_cache) when its command runs the protocol
        self.model_dir = self.p.get("model_dir") or "model_files"
        if not self.p.get("path"):
            module.require("kubernetes")
            from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube  # the client costs ~1 s to import

            self.kube = Kube(self.p)

    def describe(self):
        if self.p.get("path"):
            return "path %s" % self.p["path"]
        return "pod %s/%s container %s folder %s" % (self.p["namespace"], self.pod_name, self.p["container"], self.model_dir)

    def resolve_pod(self):
        """The pod to inspect (for endpoint_id / endpoint_name: the newest pod of the endpoint) and its state."""
        pods = self.kube.find_pods(self.p["namespace"], self.p.get("pod"), self.p.get("endpoint_id"), self.p.get("endpoint_name"))
        if not pods:
            raise KubeError("no pod found for %s in namespace %s" % (
                self.p.get("pod") or self.p.get("endpoint_id") or self.p.get("endpoint_name"), self.p["namespace"]))
        self.pod = pods[0]
        self.pod_name = self.pod["metadata"]["name"]
        cache = model_cache.pod_cache(self.pod, self.p["container"])
        self.cache = cache if cache.get("fingerprint") else None
        # by default the folder the pod's vLLM loads (--model): model_files, or <mountPath>/model_files with the model cache
        self.model_dir = self.p.get("model_dir") or cache.get("model_dir") or "model_files"
        return self.pod

    def inspect(self, files):
        request = {"root": self.p.get("path") or self.model_dir, "files": files, "workers": self.p.get("workers"),
                   "marker": self.cache is not None}
        if self.p.get("path"):
            return verify_agent.inspect(request)
        target = {"namespace": self.p["namespace"], "pod": self.pod_name, "container": self.p["container"], "python": self.p["python"]}
        answer = run_agent_in_pod(self.kube, target, request, self.p["exec_timeout"])
        if self.cache is not None:
            answer["files"] = model_cache.strip_protocol_files(answer.get("files"))
        return answer

    def marker_check(self, answer):
        """The cache marker's check (``.complete`` present and matching, the lock absent or fresh), or None."""
        if self.cache is None:
            return None
        ev = model_cache.evaluate_marker(answer.get("marker"), self.cache["fingerprint"], self.p["lock_fresh_seconds"],
                                         self.cache.get("lock_stale_seconds"))
        if not ev["complete"]:
            ev["problems"].append({"file": model_cache.MARKER, "problem": "cache_marker_missing",
                                   "detail": "no %s in %s: the next pod downloads again" % (model_cache.MARKER, self.model_dir)})
        return dict(ev, model_dir=self.model_dir, claim=self.cache.get("claim"), volume=self.cache.get("volume"))


def _checkpoint(p):
    """(client, bucket, prefix, expected files, index) of the checkpoint."""
    bucket, prefix = s3.parse_s3_url(p["checkpoint_path"])
    client = s3.client_from_params(p)
    listing = s3.list_prefix(client, bucket, prefix)
    expected = {k: v for k, v in listing.items() if s3.is_model_file(k, p["include"], p["exclude"])}
    if not expected:
        raise SpecError("checkpoint_path %s holds no model files matching %s" % (p["checkpoint_path"], ", ".join(p["include"])))
    index = s3.get_json(client, bucket, prefix + INDEX_NAME) if INDEX_NAME in expected else None
    return client, bucket, prefix, expected, index


class Listing(object):
    """The wait's step: list the folder, compare with the checkpoint, and let the judge's download rule decide
    between complete, still downloading (rate, ETA) and stalled; a pod problem the judge names stops at once."""

    def __init__(self, module, target, expected, index):
        self.module = module
        self.p = module.params
        self.target = target
        self.expected = expected
        self.index = index
        self.pod = None
        self.samples = []
        self.result = None

    def step(self, _elapsed):
        if not self.p.get("path"):
            self.pod = self.target.resolve_pod()
        answer = self.target.inspect({})  # names, sizes and times only
        _check_root(self.target, answer)
        files = answer["files"] if answer["exists"] else {}
        result = compare(self.expected, files, self.index)
        result["model_dir_exists"] = answer["exists"]
        cache = self.target.marker_check(answer)
        if cache is not None:
            result["cache"] = cache
        self.result = result
        finishing = bool(cache) and not cache["complete"] and bool(cache["fresh"])   # the marker comes right after the files
        if (result["complete"] and not (finishing and self.p["wait"])) or not self.p["wait"]:
            return waiter.done(result, "%.1f%% complete" % result["percent"])
        problem = judge_pods(_pod_observation(self.pod)) if self.pod else None
        if problem is not None:
            return waiter.failed(result, "Download cannot finish: %s (fix: %s)" % (problem.summary, problem.fix), result=result,
                                 reason="container_terminated")
        now = answer.get("now") or time.time()
        self.samples.append([now, result["bytes_present"], self.target.pod_name])
        dl = dict(result, files=len(files), pod_now=now, newest_mtime=max([f.get("mtime") or 0 for f in files.values()] or [0]))
        cause, summary, _evidence, facts = judge_download(dl, self.samples, dict(DEFAULT_LIMITS, stall_timeout=self.p["stall_timeout"]))
        result["download"] = facts
        if cause == "download_stalled":
            return waiter.failed(result, "Download stalled in %s: %s" % (self.target.describe(), summary), result=result, reason="stalled")
        return waiter.keep_waiting(result, summary, result=result)


def _check_root(target, answer):
    """A local path that does not exist, or a folder that cannot be read, is said so, rather than every file being
    listed as missing. (A pod's model folder that does not exist yet is a download that has not started.)"""
    problem = answer.get("problem")
    if not problem or (problem == "does not exist" and not target.p.get("path")):
        return
    raise VerifyError("%s %s" % (target.describe(), problem), checked=target.describe(), model_dir_exists=answer["exists"])


def _pod_observation(pod):
    from ansible_collections.odp.model_engine.plugins.module_utils.observe import Observation

    obs = Observation(pod["metadata"]["name"])
    obs.pods = [pod]
    return obs


def _deep(module, target, expected, index, part_sizes):
    p = module.params
    manifest = p.get("sha256_manifest") or None
    files = deep_request(expected, part_sizes, manifest, p["check_etag"], p["check_headers"])
    answer = target.inspect(files)
    result = compare(expected, answer["files"], index, deep=answer["files"], manifest=manifest)
    result["model_dir_exists"] = answer["exists"]
    result["deep_errors"] = answer.get("errors", [])
    cache = target.marker_check(answer)
    if cache is not None:
        result["cache"] = cache
    return result


def _record(module, target, result):
    """Record the verdict on the pod it checked when that pod serves (see observe.record_verification)."""
    p = module.params
    pod = target.pod
    if p.get("path") or not p["record"] or pod is None or not is_ready(pod):
        return False
    if module.check_mode:
        return True
    from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

    return record_verification(Kube(p), p["namespace"], pod, dict(result, mode=p["mode"], checkpoint=p["checkpoint_path"]))


def run(module):
    p = module.params
    module.require("boto3")
    target = Target(module)
    if p.get("path"):
        _check_root(target, target.inspect({}))  # a local fact: before the first S3 request
    client, bucket, prefix, expected, index = _checkpoint(p)
    deep = p["mode"] == "deep"
    part_sizes = fetch_part_sizes(client, bucket, prefix, expected) if deep and p["check_etag"] else {}
    listing = Listing(module, target, expected, index)
    w = waiter.Waiter(p.get("wait_timeout") or 3600, sleep=p["wait_sleep"], initial_sleep=min(1.0, p["wait_sleep"]),
                      progress=lambda elapsed, message: module.log("s3_sync_verify %s: %s" % (target.describe(), message)))
    result, elapsed = w.wait(listing.step)
    if deep and result["complete"]:
        result = _deep(module, target, expected, index, part_sizes)
    result.update(mode=p["mode"], progress=w.lines, elapsed=round(elapsed, 2), checked=target.describe(), pod=target.pod_name)
    module.result["changed"] = _record(module, target, result)
    cache_problems = (result.get("cache") or {}).get("problems") or []
    if p["fail_on_problems"] and (not result["complete"] or cache_problems):
        found = result["problems"] + cache_problems
        summary = "; ".join("%s: %s" % (x["file"], x["problem"]) for x in found[:10])
        what = "Model files do not match %s" % p["checkpoint_path"] if not result["complete"] else \
            "The model cache's marker check failed in %s" % target.model_dir
        raise VerifyError("%s (%d problem(s)): %s" % (what, len(found), summary), **dict(result, changed=module.result["changed"]))
    return result


class VerifyError(OdpError):
    """The files do not match the checkpoint; the result carries every problem."""
