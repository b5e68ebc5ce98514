"""The reference start wrapper (roles/llm_endpoint/files/start_vllm.sh) against the twin's S3, with the
real awscli and s5cmd: download, timing coordination, size check, then exec of the vLLM command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WRAPPER = REPO / "roles" / "llm_endpoint" / "files" / "start_vllm.sh"
VENV_BIN = Path(sys.executable).parent
# Stands in for `python -m vllm_server`: prints what it was started with and what it found.
FAKE_VLLM = [sys.executable, "-c", "import os,sys,json; print('VLLM-STARTED', json.dumps(sorted(os.listdir('model_files'))))"]


def run_wrapper(twin_s3, workdir, tool, checkpoint, timeout=120):
    env = dict(os.environ, PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]), CHECKPOINT=checkpoint, S3_TOOL=tool,
               S3_ENDPOINT_URL=twin_s3.endpoint_url, AWS_ACCESS_KEY_ID=twin_s3.access_key,
               AWS_SECRET_ACCESS_KEY=twin_s3.secret_key, AWS_REGION="us-east-1", HOME=str(workdir))
    return subprocess.run(["bash", str(WRAPPER), *FAKE_VLLM], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.parametrize("tool", ["aws", "s5cmd"])
def test_wrapper_downloads_verifies_and_starts_vllm(twin_s3, tmp_path, tool):
    proc = run_wrapper(twin_s3, tmp_path, tool, "s3://scale-gp-models/intermediate-model-aws/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "download verified" in proc.stdout
    started = [line for line in proc.stdout.splitlines() if line.startswith("VLLM-STARTED")]
    assert started, proc.stdout
    files = json.loads(started[0].split(" ", 1)[1])
    expected = {k for k in twin_s3.manifest["intermediate-model-aws/"] if not k.startswith("optimizer")}
    assert "config.json" in files and set(files) >= {k for k in expected if k.endswith(".safetensors")}
    for name in files:
        assert (tmp_path / "model_files" / name).stat().st_size == twin_s3.manifest["intermediate-model-aws/"][name]["size"]


def test_wrapper_refuses_to_start_vllm_when_a_shard_is_missing(twin_s3, tmp_path):
    client = twin_s3.client()
    src = twin_s3.manifest["intermediate-model-aws/"]
    shards = sorted(k for k in src if k.endswith(".safetensors"))
    for key in src:
        if key != shards[-1]:  # the index still names the last shard
            client.copy_object(Bucket="scale-gp-models", Key="broken-model/" + key,
                               CopySource={"Bucket": "scale-gp-models", "Key": "intermediate-model-aws/" + key})
    proc = run_wrapper(twin_s3, tmp_path, "aws", "s3://scale-gp-models/broken-model/")
    assert proc.returncode != 0
    assert "download finished but files are missing: %s" % shards[-1] in proc.stdout
    assert "VLLM-STARTED" not in proc.stdout


def test_wrapper_stops_on_a_prefix_without_model_files(twin_s3, tmp_path):
    proc = run_wrapper(twin_s3, tmp_path, "s5cmd", "s3://scale-gp-models/no-such-model/")
    assert proc.returncode != 0 and "VLLM-STARTED" not in proc.stdout
    assert "s3://scale-gp-models/no-such-model/" in proc.stdout
