"""ETag maths against a real S3 server's ETags, model-file filters, and the verification agent."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils import s3, verify_agent

MIB = 1024 * 1024


def safetensors_bytes(n_floats=256, corrupt_header=False, extra=0):
    data = bytes(range(256)) * (n_floats * 4 // 256)
    header = {"w": {"dtype": "F32", "shape": [n_floats], "data_offsets": [0, len(data)]}, "__metadata__": {"format": "pt"}}
    raw = json.dumps(header).encode()
    if corrupt_header:
        raw = raw.replace(b'"data_offsets"', b'"data_offzets"')
    return struct.pack("<Q", len(raw)) + raw + data + b"\0" * extra


@pytest.mark.parametrize("url, bucket, prefix", [
    ("s3://scale-gp-models/intermediate-model-aws/", "scale-gp-models", "intermediate-model-aws/"),
    ("s3://scale-gp-models/intermediate-model-aws", "scale-gp-models", "intermediate-model-aws/"),
    ("s3://b", "b", ""),
    ("s3://b/a/b//", "b", "a/b/"),
])
def test_parse_s3_url(url, bucket, prefix):
    assert s3.parse_s3_url(url) == (bucket, prefix)


@pytest.mark.parametrize("url", ["", "s3:///x", "https://b/x", "b/x"])
def test_parse_s3_url_rejects(url):
    with pytest.raises(s3.S3Error):
        s3.parse_s3_url(url)


@pytest.mark.parametrize("etag, n", [("d41d8cd98f00b204e9800998ecf8427e", 0), ("0123456789abcdef0123456789abcdef-3", 3), ("garbage-2", 0)])
def test_multipart_count(etag, n):
    assert s3.multipart_count(etag) == n


@pytest.mark.parametrize("name, fetched", [
    ("config.json", True), ("model-00001-of-00003.safetensors", True), ("tokenizer.model", True),
    ("sub/tokenizer.json", True), ("merges.txt", True), ("chat_template.jinja", True),
    ("optimizer.json", False), ("pytorch_model.bin", False), ("README.md", False),
])
def test_model_file_filter_follows_model_engine_s5cmd_includes(name, fetched):
    assert s3.is_model_file(name) is fetched


@pytest.mark.parametrize("part_mib, size_mib", [(5, 12), (8, 17), (5, 5), (6, 30)])
def test_multipart_etag_recomputed_from_part_size_matches_the_server(s3_bucket, tmp_path, part_mib, size_mib):
    from boto3.s3.transfer import TransferConfig

    client, bucket = s3_bucket
    data = os.urandom(size_mib * MIB + 123)
    path = tmp_path / "shard.safetensors"
    path.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=part_mib * MIB, multipart_chunksize=part_mib * MIB)
    client.upload_file(str(path), bucket, "k", Config=cfg)
    etag = client.head_object(Bucket=bucket, Key="k")["ETag"].strip('"')
    n = s3.multipart_count(etag)
    assert n == -(-len(data) // (part_mib * MIB))
    part = s3.part_size(client, bucket, "k")  # learnt from HEAD ?partNumber=1, not assumed
    assert part == part_mib * MIB
    answer = verify_agent.inspect({"root": str(tmp_path), "files": {"shard.safetensors": {"md5_part_size": part}}})
    assert s3.etag_from_part_md5s(answer["files"]["shard.safetensors"]["md5_parts"]) == etag


def test_single_part_etag_of_a_large_object_is_plain_md5(s3_bucket, tmp_path):
    # Scality (and put_object) give a plain MD5 ETag even for large objects: no part size to find.
    client, bucket = s3_bucket
    data = os.urandom(20 * MIB)
    client.put_object(Bucket=bucket, Key="big", Body=data)
    etag = client.head_object(Bucket=bucket, Key="big")["ETag"].strip('"')
    assert s3.multipart_count(etag) == 0 and etag == hashlib.md5(data).hexdigest()
    (tmp_path / "big").write_bytes(data)
    answer = verify_agent.inspect({"root": str(tmp_path), "files": {"big": {"md5": True}}})
    assert answer["files"]["big"]["md5"] == etag


def test_agent_lists_hashes_and_parses_headers(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "good.safetensors").write_bytes(safetensors_bytes())
    (tmp_path / "truncated.safetensors").write_bytes(safetensors_bytes()[:-10])
    (tmp_path / "padded.safetensors").write_bytes(safetensors_bytes(extra=4))
    (tmp_path / "bad.safetensors").write_bytes(safetensors_bytes(corrupt_header=True))
    (tmp_path / "sub" / "config.json").write_text("{}")
    names = ("good.safetensors", "truncated.safetensors", "padded.safetensors", "bad.safetensors")
    files = {n: {"safetensors": True, "sha256": True} for n in names}
    answer = verify_agent.inspect({"root": str(tmp_path), "files": files, "workers": 2})
    got = answer["files"]
    assert set(got) == {"good.safetensors", "truncated.safetensors", "padded.safetensors", "bad.safetensors", "sub/config.json"}
    assert got["good.safetensors"]["safetensors"] == {"ok": True, "problem": None, "tensors": 1, "data_bytes": 1024}
    full = len(safetensors_bytes())
    assert ("describes %d bytes but the file has %d" % (full, full - 10)) in got["truncated.safetensors"]["safetensors"]["problem"]
    assert ("describes %d bytes but the file has %d" % (full, full + 4)) in got["padded.safetensors"]["safetensors"]["problem"]
    assert "no valid data_offsets" in got["bad.safetensors"]["safetensors"]["problem"]
    assert got["good.safetensors"]["sha256"] == hashlib.sha256(safetensors_bytes()).hexdigest()


def test_agent_runs_as_python_dash_c_like_in_a_pod(tmp_path):
    (tmp_path / "config.json").write_text('{"a": 1}')
    src = open(verify_agent.__file__).read()
    request = json.dumps({"root": "model_files", "files": {"config.json": {"md5": True}}})
    (tmp_path / "model_files").mkdir()
    (tmp_path / "model_files" / "config.json").write_text('{"a": 1}')
    out = subprocess.run([sys.executable, "-c", src, request], cwd=tmp_path, capture_output=True, text=True, check=True)
    answer = json.loads(out.stdout)
    assert answer["exists"] is True
    assert answer["files"]["config.json"]["md5"] == hashlib.md5(b'{"a": 1}').hexdigest()


def test_agent_reports_missing_root(tmp_path):
    assert verify_agent.inspect({"root": str(tmp_path / "model_files")}) == {
        "root": str(tmp_path / "model_files"), "exists": False, "problem": "does not exist", "files": {}, "errors": []}


def test_agent_reports_an_unreadable_root_instead_of_an_empty_listing(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    real = verify_agent.os.listdir

    def denied(path):
        if str(path) == str(tmp_path):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(verify_agent.os, "listdir", denied)  # tests run as root, for whom chmod 000 changes nothing
    answer = verify_agent.inspect({"root": str(tmp_path)})
    assert answer["exists"] is True and answer["problem"] == "is not readable: permission denied" and answer["files"] == {}
