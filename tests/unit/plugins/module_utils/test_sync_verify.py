"""Comparison rules of s3_sync_verify, and the module in path mode against a real S3 server."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils import s3
from ansible_collections.odp.model_engine.plugins.module_utils.podstate import container_problem
from ansible_collections.odp.model_engine.plugins.module_utils.sync_verify import classify_local, compare, fetch_part_sizes
from tests.unit.plugins.module_utils.test_s3_and_agent import safetensors_bytes

EXPECTED = {
    "config.json": {"size": 10, "etag": "e1"},
    "model.safetensors.index.json": {"size": 20, "etag": "e2"},
    "model-00001-of-00002.safetensors": {"size": 1000, "etag": "e3"},
    "model-00002-of-00002.safetensors": {"size": 2000, "etag": "e4"},
}
INDEX = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}


def local(**over):
    files = {k: {"size": v["size"]} for k, v in EXPECTED.items()}
    for k, v in over.items():
        if v is None:
            files.pop(k, None)
        else:
            files[k] = {"size": v}
    return files


@pytest.mark.parametrize("name, kind, base, tool", [
    ("config.json", "expected", "config.json", None),
    ("model-00002-of-00002.safetensors.a1B2c3D4", "temp", "model-00002-of-00002.safetensors", "awscli"),
    ("model-00002-of-00002.safetensors3829104712", "temp", "model-00002-of-00002.safetensors", "s5cmd"),
    ("config.json.tmp", "temp", "config.json", ".tmp"),
    ("README.12345678", "extra", "README.12345678", None),
    ("model-00003", "extra", "model-00003", None),
    (".complete", "extra", ".complete", None),
])
def test_classify(name, kind, base, tool):
    assert classify_local(name, EXPECTED) == (kind, base, tool)


def test_complete():
    r = compare(EXPECTED, local(), INDEX)
    assert r["complete"] and not r["in_progress"] and r["problems"] == []
    assert r["percent"] == 100.0 and r["bytes_present"] == r["bytes_expected"] == 3030
    assert r["config_json_present"] and r["all_index_shards_present"]


def test_in_progress_with_awscli_temp_file():
    files = local(**{"model-00002-of-00002.safetensors": None})
    files["model-00002-of-00002.safetensors.Ab12Cd34"] = {"size": 500}
    r = compare(EXPECTED, files, INDEX)
    assert not r["complete"] and r["in_progress"]
    assert r["files"]["model-00002-of-00002.safetensors"]["state"] == "downloading"
    assert r["bytes_present"] == 1530 and r["percent"] == 50.5
    assert r["temp_files"] == ["model-00002-of-00002.safetensors.Ab12Cd34"]
    assert {"temp_name"} == {p["problem"] for p in r["problems"]}
    assert not r["all_index_shards_present"]


def test_s5cmd_temp_file_left_after_completion_is_a_problem():
    files = local()
    files["config.json987654321"] = {"size": 10}
    r = compare(EXPECTED, files, INDEX)
    assert not r["complete"] and r["problems"][0]["problem"] == "temp_name" and "s5cmd" in r["problems"][0]["detail"]


def test_missing_shard_without_temp_is_not_in_progress():
    r = compare(EXPECTED, local(**{"model-00001-of-00002.safetensors": None}), INDEX)
    assert not r["complete"] and not r["in_progress"]
    assert r["problems"] == [{"file": "model-00001-of-00002.safetensors", "problem": "missing",
                              "detail": "not downloaded (1000 bytes in S3)"}]


def test_size_mismatch():
    r = compare(EXPECTED, local(**{"model-00002-of-00002.safetensors": 1999}), INDEX)
    assert r["problems"][0]["problem"] == "size_mismatch" and "1999 bytes here, 2000 bytes in S3" in r["problems"][0]["detail"]


def test_index_naming_a_shard_not_in_the_bucket():
    index = {"weight_map": dict(INDEX["weight_map"], c="model-00003-of-00003.safetensors")}
    r = compare(EXPECTED, local(), index)
    assert any(p["problem"] == "index_shard_not_in_s3" for p in r["problems"])


def test_deep_detects_same_size_corruption_and_bad_headers():
    deep = {k: {"md5": EXPECTED[k]["etag"]} for k in EXPECTED}
    deep["model-00001-of-00002.safetensors"] = {"md5": "ffff", "safetensors": {"ok": True, "problem": None}}
    deep["model-00002-of-00002.safetensors"] = {"md5": "e4", "safetensors": {"ok": False, "problem": "header describes 10 bytes"}}
    r = compare(EXPECTED, local(), INDEX, deep=deep)
    kinds = {p["file"]: p["problem"] for p in r["problems"]}
    assert kinds == {"model-00001-of-00002.safetensors": "content_mismatch", "model-00002-of-00002.safetensors": "bad_safetensors"}
    assert r["files"]["config.json"]["etag_match"] is True and not r["complete"]


def test_download_rate_eta_and_stall_come_from_the_judge():
    from ansible_collections.odp.model_engine.plugins.module_utils.judge import DEFAULT_LIMITS, judge_download

    base = {"bytes_expected": 1000, "percent": 20.0, "complete": False, "files": 2, "temp_files": ["x.safetensors.abcdefgh"]}
    samples = [[0, 0, "p"], [10, 200, "p"]]
    cause, _summary, _ev, facts = judge_download(dict(base, bytes_present=200, pod_now=10, newest_mtime=10), samples, DEFAULT_LIMITS)
    assert cause == "downloading" and facts["rate"] == 20 and facts["eta_seconds"] == 40
    cause, summary, _ev, facts = judge_download(dict(base, bytes_present=200, pod_now=45, newest_mtime=10), samples,
                                                dict(DEFAULT_LIMITS, stall_timeout=30))
    assert cause == "download_stalled" and facts["idle_seconds"] == 35 and "no new bytes for 35s" in summary


def test_deep_reports_files_the_agent_could_not_hash_instead_of_crashing():
    deep = {k: {"md5": EXPECTED[k]["etag"]} for k in EXPECTED}
    deep["model-00001-of-00002.safetensors"] = {"changed_while_read": "changed while read (after hashing): 1000 bytes, mtime 1.000 when listed; "
                                                                      "1200 bytes, mtime 2.000 now"}
    deep["model-00002-of-00002.safetensors"] = {"unreadable": "[Errno 5] Input/output error"}
    r = compare(EXPECTED, local(), INDEX, deep=deep)
    assert not r["complete"]
    assert {p["file"]: p["problem"] for p in r["problems"]} == {"model-00001-of-00002.safetensors": "changed_while_read",
                                                                "model-00002-of-00002.safetensors": "unreadable"}
    assert r["files"]["model-00001-of-00002.safetensors"]["state"] == "changed_while_read"
    assert "1200 bytes" in r["problems"][0]["detail"] and "etag_match" not in r["files"]["model-00001-of-00002.safetensors"]
    assert r["files"]["config.json"]["etag_match"] is True


def test_part_sizes_fetched_in_parallel_equal_one_head_per_object(s3_bucket, tmp_path):
    from boto3.s3.transfer import TransferConfig

    client, bucket = s3_bucket
    expected = {}
    for i, part_mib in enumerate((5, 6, 5, 7, 8, 5, 6, 9, 5, 10)):
        path = tmp_path / ("shard-%d" % i)
        path.write_bytes(os.urandom((part_mib + 1) * 1024 * 1024))
        client.upload_file(str(path), bucket, "ckpt/shard-%d" % i, Config=TransferConfig(
            multipart_threshold=part_mib * 1024 * 1024, multipart_chunksize=part_mib * 1024 * 1024))
    client.put_object(Bucket=bucket, Key="ckpt/config.json", Body=b"{}")
    expected = s3.list_prefix(client, bucket, "ckpt/")
    one_by_one = {n: s3.part_size(client, bucket, "ckpt/" + n) for n, v in expected.items() if s3.multipart_count(v["etag"])}
    assert fetch_part_sizes(client, bucket, "ckpt/", expected, threads=4) == one_by_one
    assert sorted(one_by_one.values()) == sorted(m * 1024 * 1024 for m in (5, 6, 5, 7, 8, 5, 6, 9, 5, 10))
    with pytest.raises(s3.S3Error, match="partNumber=1"):
        fetch_part_sizes(client, bucket, "ckpt/", dict(expected, gone={"size": 1, "etag": "0" * 32 + "-2"}))


@pytest.mark.parametrize("status, text", [
    ({"containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]},
     "container main terminated (exit code 137, OOMKilled)"),
    ({"containerStatuses": [{"name": "main", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                             "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]},
     "container main is CrashLoopBackOff (restarts 3, last exit code 1 Error)"),
    ({"phase": "Failed", "reason": "Evicted", "containerStatuses": []}, "pod is Failed: Evicted"),
])
def test_container_problem(status, text):
    assert container_problem({"status": status}, "main") == text


def test_running_container_is_fine():
    assert container_problem({"status": {"phase": "Running", "containerStatuses": [
        {"name": "main", "state": {"running": {}}}]}}, "main") is None


# ------------------------------------------------------------------ the module, path mode, real S3
@pytest.fixture
def checkpoint(s3_bucket, tmp_path):
    from boto3.s3.transfer import TransferConfig

    client, bucket = s3_bucket
    src = tmp_path / "src"
    src.mkdir()
    shard1 = safetensors_bytes(n_floats=3 * 1024 * 1024)  # 12 MiB + header: multipart with 5 MiB parts
    shard2 = safetensors_bytes(n_floats=4096)
    (src / "model-00001-of-00002.safetensors").write_bytes(shard1)
    (src / "model-00002-of-00002.safetensors").write_bytes(shard2)
    (src / "config.json").write_text(json.dumps({"architectures": ["Qwen3ForCausalLM"]}))
    (src / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    (src / "optimizer.pt").write_bytes(b"x" * 100)
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    for f in src.iterdir():
        client.upload_file(str(f), bucket, "ckpt/" + f.name, Config=cfg)
    dst = tmp_path / "model_files"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("optimizer.pt"))
    return bucket, dst


def verify(localhost, s3_server, bucket, path, **kw):
    args = dict(checkpoint_path="s3://%s/ckpt/" % bucket, path=str(path), s3_endpoint_url=s3_server,
                s3_access_key="AKIAUNITTESTKEY", s3_secret_key="s3-secret-never-shown")
    args.update(kw)
    return getattr(localhost, "odp.model_engine.s3_sync_verify")(**args)["localhost"]


def test_module_quick_and_deep_complete(localhost, s3_server, checkpoint):
    bucket, dst = checkpoint
    for mode in ("quick", "deep"):
        res = verify(localhost, s3_server, bucket, dst, mode=mode)
        assert res.get("failed") is not True, res.get("msg")
        assert res["complete"] is True and res["percent"] == 100.0 and res["changed"] is False
    assert res["files"]["model-00001-of-00002.safetensors"]["etag_match"] is True
    assert res["files"]["model-00001-of-00002.safetensors"]["safetensors_ok"] is True
    assert "s3-secret-never-shown" not in json.dumps(dict(res))


def test_module_same_size_corruption_passes_quick_fails_deep(localhost, s3_server, checkpoint):
    bucket, dst = checkpoint
    shard = dst / "model-00001-of-00002.safetensors"
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF  # a flipped byte in the tensor data: same size, valid header
    shard.write_bytes(bytes(data))
    assert verify(localhost, s3_server, bucket, dst)["complete"] is True
    res = verify(localhost, s3_server, bucket, dst, mode="deep")
    assert res["failed"] is True
    assert [p["problem"] for p in res["problems"]] == ["content_mismatch"]
    assert "model-00001-of-00002.safetensors: content_mismatch" in res["msg"]


def test_module_in_progress_without_failing(localhost, s3_server, checkpoint):
    bucket, dst = checkpoint
    temp = dst / "model-00002-of-00002.safetensors.c0FfEe12"
    os.rename(dst / "model-00002-of-00002.safetensors", temp)
    temp.write_bytes(temp.read_bytes()[:1000])  # half-written, as awscli leaves it mid-download
    res = verify(localhost, s3_server, bucket, dst, fail_on_problems=False)
    assert res.get("failed") is not True
    assert res["complete"] is False and res["in_progress"] is True and 0 < res["percent"] < 100


def test_module_wait_fails_fast_on_stall(localhost, s3_server, checkpoint):
    bucket, dst = checkpoint
    (dst / "model-00002-of-00002.safetensors").unlink()
    res = verify(localhost, s3_server, bucket, dst, wait=True, wait_sleep=0.2, stall_timeout=1, wait_timeout=60)
    assert res["failed"] is True and res["failure"] == "stalled"
    assert "Download stalled in path" in res["msg"] and "no new bytes for" in res["msg"]
    assert res["progress"]


def test_module_names_a_path_that_does_not_exist(localhost, s3_server, checkpoint):
    bucket, dst = checkpoint
    res = verify(localhost, s3_server, bucket, dst.parent / "no-such-folder", fail_on_problems=False)
    assert res["failed"] is True
    assert res["msg"] == "path %s does not exist" % (dst.parent / "no-such-folder")
    assert "missing" not in json.dumps(dict(res))


def test_an_unreadable_folder_is_named_not_listed_as_missing(tmp_path, monkeypatch):
    from ansible_collections.odp.model_engine.plugins.module_utils import sync_verify, verify_agent

    real = verify_agent.os.listdir

    def denied(path):
        if str(path) == str(tmp_path):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(verify_agent.os, "listdir", denied)

    class Target(object):
        p = {"path": str(tmp_path)}

        def describe(self):
            return "path %s" % tmp_path

    with pytest.raises(sync_verify.VerifyError) as err:
        sync_verify._check_root(Target(), verify_agent.inspect({"root": str(tmp_path)}))
    assert str(err.value) == "path %s is not readable: permission denied" % tmp_path
