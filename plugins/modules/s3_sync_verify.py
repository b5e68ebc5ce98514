#!/usr/bin/python
# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: s3_sync_verify
short_description: Verify that an endpoint pod (or a directory) holds exactly the checkpoint in S3
version_added: 0.1.0
description:
  - Compares the model files of a checkpoint prefix in S3 with what an endpoint pod downloaded into
    its C(model_files) folder (listed through the Kubernetes exec API in the C(main) container), or
    with a local directory (O(path)).
  - Reports per file and in total what is missing, what differs in size, what is still under a
    download tool's temporary name (awscli C(<name>.<8 chars>), s5cmd C(<name><digits>), C(.tmp)),
    whether C(config.json) and every shard named in C(model.safetensors.index.json) are there, and
    the bytes present against the bytes expected.
  - O(mode=deep) also checks content once every file is there. The S3 ETag is recomputed, a plain
    MD5 for single-part objects, or the multipart ETag with the part size learnt from one
    C(HEAD ?partNumber=1) per object, never assumed. SHA-256 digests are compared against O(sha256_manifest)
    when given, and every safetensors header is parsed and its data length checked against the file.
    Hashing runs in parallel threads, inside the pod when the files are there.
  - With O(wait=true) it polls until the download is complete, records progress (percent, rate, ETA)
    and fails fast when no byte arrived for O(stall_timeout) seconds or the judge names a pod problem (a crash
    loop, an eviction...). O(wait_timeout) defaults to 3600 seconds.
author:
  - ODP platform team (@odp-platform)
options:
  checkpoint_path:
    description: S3 prefix of the checkpoint, C(s3://bucket/prefix/).
    type: str
    required: true
  path:
    description:
      - Local directory holding the downloaded files (on the host the module runs on).
      - A path that does not exist fails at once, before any S3 request, with C(path PATH does not exist); one that
        cannot be read fails with C(path PATH is not readable) and the reason (C(permission denied)), whatever
        O(fail_on_problems) says, rather than every file being reported missing.
    type: path
  pod:
    description: Name of the pod whose container holds the files.
    type: str
  endpoint_id:
    description: Endpoint id (C(end_...)); its newest pod is checked.
    type: str
  endpoint_name:
    description: Endpoint name; its newest pod (label C(endpoint_name)) is checked.
    type: str
  namespace:
    description: Namespace of the endpoint pods.
    type: str
    default: llm-core
  container:
    description: Container that downloads the files.
    type: str
    default: main
  model_dir:
    description:
      - Folder of the files inside the container, relative to its working directory or absolute.
      - By default the folder the pod's vLLM loads (its C(--model)) - C(model_files), or C(<mountPath>/model_files)
        for an endpoint that uses the model cache (the chart's C(modelCache); the pod's command then runs the cache's
        lock/marker protocol and the marker is checked too, see RV(cache)).
    type: str
  lock_fresh_seconds:
    description:
      - With the model cache, the age up to which the download lock's heartbeat counts as fresh (the downloading
        replica rewrites it every 30 seconds); an older lock is a problem (C(cache_lock_stale)).
    type: int
    default: 90
  python:
    description: Python interpreter inside the container, used to run the verification helper.
    type: str
    default: python3
  mode:
    description:
      - V(quick) compares names, sizes, temporary names and the index. V(deep) adds content checks.
    type: str
    default: quick
    choices: [quick, deep]
  check_etag:
    description: In deep mode, recompute and compare the S3 ETag of every file.
    type: bool
    default: true
  check_headers:
    description: In deep mode, parse every safetensors header and check the file length it implies.
    type: bool
    default: true
  sha256_manifest:
    description: In deep mode, expected SHA-256 per file name (relative to the checkpoint prefix).
    type: dict
  include:
    description:
      - Which objects count as model files (shell patterns on the base name). The default is what
        model-engine's s5cmd download fetches; use V(['*']) for an C(aws s3 sync) of everything.
    type: list
    elements: str
    default: ["*.model", "*.model.v*", "*.json", "*.safetensors", "*.txt", "*.jinja"]
  exclude:
    description: Objects never downloaded (shell patterns on the base name).
    type: list
    elements: str
    default: ["optimizer*"]
  workers:
    description: Hashing threads; defaults to the CPUs the hashing process may use where it runs (its affinity mask,
      capped by the container's cgroup CPU quota). Each thread reads through one 1 MiB buffer.
    type: int
  stall_timeout:
    description:
      - Seconds without one new byte in the folder after which a wait fails as stalled, read off the newest file
        time (so one slow sample is never a stall). The same rule as the endpoint judge's.
    type: int
    default: 600
  record:
    description:
      - Record the verification's verdict on the pod it checked, as the annotation C(odp.model-engine/verification),
        when that pod serves (all its containers ready), so that the endpoint judge (reports, health, diagnosis) can
        tell a serving pod with corrupt or incomplete files from a healthy one. Only written when it changes; the
        task then reports C(changed).
    type: bool
    default: true
  exec_timeout:
    description: Seconds one exec into the pod may take (deep mode hashes there).
    type: int
    default: 1800
  fail_on_problems:
    description: Fail when the files are not complete and correct. With V(false) the result is only returned.
    type: bool
    default: true
extends_documentation_fragment:
  - odp.model_engine.s3
  - odp.model_engine.k8s_auth
  - odp.model_engine.wait
  - odp.model_engine.attributes
  - odp.model_engine.attributes.ACTIONGROUP_K8S_S3
attributes:
  check_mode:
    support: full
    details:
      - Verifies as usual and reports whether it would record the verdict on the pod, without writing it.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - The pod annotation is only written when the verdict changed.
notes:
  - The container needs a Python 3 interpreter (vLLM images have one) for pod checks.
  - In a pod, a model folder that does not exist yet is a download that has not started (every file missing); one
    the container cannot read fails with the folder named and C(is not readable).
"""

EXAMPLES = r"""
- name: Is the download of the endpoint's pod done? (does not fail while in progress)
  odp.model_engine.s3_sync_verify:
    checkpoint_path: s3://scale-gp-models/intermediate-model-aws/
    endpoint_name: test-endpoint-v1
    namespace: llm-core
    s3_endpoint_url: https://oss.odp.om
    fail_on_problems: false
  register: sync

- name: Wait for the download, then check every byte
  odp.model_engine.s3_sync_verify:
    checkpoint_path: s3://scale-gp-models/intermediate-model-aws/
    endpoint_name: test-endpoint-v1
    mode: deep
    wait: true
    stall_timeout: 120

- name: Verify a node-local cache
  odp.model_engine.s3_sync_verify:
    checkpoint_path: s3://scale-gp-models/intermediate-model-aws/
    path: /var/cache/models/intermediate-model-aws
    include: ["*"]
"""

RETURN = r"""
complete:
  description: Every model file is present with the right size (and, in deep mode, content), nothing under a temporary name.
  returned: success
  type: bool
  sample: true
in_progress:
  description: Not complete, and files under a download tool's temporary name show a download is running.
  returned: success
  type: bool
  sample: false
problems:
  description: What is wrong, per file. C(problem) is one of C(missing), C(size_mismatch), C(temp_name),
    C(content_mismatch), C(sha256_mismatch), C(bad_safetensors), C(index_shard_not_in_s3), C(missing_in_s3),
    and in deep mode C(changed_while_read) (the file's size or mtime changed while it was hashed) or C(unreadable).
  returned: success
  type: list
  elements: dict
  sample: [{file: model-00002-of-00003.safetensors, problem: size_mismatch, detail: "1024 bytes here, 2048 bytes in S3"}]
bytes_present:
  description: Bytes of the expected files present (partial downloads count what was written).
  returned: success
  type: int
  sample: 1073741824
bytes_expected:
  description: Bytes of the model files in S3.
  returned: success
  type: int
  sample: 2147483648
percent:
  description: C(bytes_present) as a percentage of C(bytes_expected).
  returned: success
  type: float
  sample: 50.0
config_json_present:
  description: C(config.json) is downloaded.
  returned: success
  type: bool
  sample: true
index_shards:
  description: Shards named in C(model.safetensors.index.json).
  returned: success
  type: list
  elements: str
  sample: [model-00001-of-00002.safetensors, model-00002-of-00002.safetensors]
all_index_shards_present:
  description: Every shard the index names is downloaded.
  returned: success
  type: bool
  sample: true
files:
  description: Per expected file, C(state) (ok, missing, downloading, size_mismatch, content_mismatch,
    bad_safetensors, changed_while_read, unreadable), C(size), C(expected_size) and, in deep mode, C(etag_match), C(sha256_match), C(safetensors_ok).
  returned: success
  type: dict
  sample: {config.json: {state: ok, size: 700, expected_size: 700}}
temp_files:
  description: Files under a temporary download name.
  returned: success
  type: list
  elements: str
  sample: [model-00002-of-00002.safetensors.3fA9c0D1]
extra_files:
  description: Files that are neither model files in S3 nor temporary files.
  returned: success
  type: list
  elements: str
  sample: [.complete]
progress:
  description: Progress lines (elapsed, percent, bytes, rate, ETA) recorded while waiting.
  returned: success
  type: list
  elements: str
  sample: ["0.0s 12.5% 128.0 MiB of 1.0 GiB, 40.0 MiB/s, ETA 22s"]
checked:
  description: What was inspected.
  returned: success
  type: str
  sample: pod llm-core/launch-endpoint-id-end-x-6d9f-abcde container main folder model_files
pod:
  description: Name of the pod inspected.
  returned: when a pod was inspected
  type: str
  sample: launch-endpoint-id-end-cismpd08agn003rr2kc0-5d8f7c9b6-x2x7q
elapsed:
  description: Seconds taken.
  returned: success
  type: float
  sample: 0.42
cache:
  description:
    - For a pod that uses the model cache, the marker check of its folder - C(complete) (C(.complete) present),
      C(matches) (it holds the pod's fingerprint), C(lock), C(lock_age), C(fresh), C(stale), C(problems)
      (C(cache_marker_missing), C(cache_marker_mismatch), C(cache_lock_stale)), C(model_dir), C(claim), C(volume)
      (C(claim), or C(emptyDir) when the builder fell back to one). Marker problems fail the task like file problems.
  returned: when the pod uses the model cache
  type: dict
  sample: {complete: true, matches: true, lock: false, lock_age: null, fresh: null, stale: null, problems: [],
           model_dir: /mnt/model-cache/model_files, claim: launch-endpoint-id-end-x-model-cache, volume: claim}
mode:
  description: The mode used.
  returned: success
  type: str
  sample: quick
"""

from ansible_collections.odp.model_engine.plugins.module_utils.args_common import S3_CONNECTION_SPEC, WAIT_SPEC, merge_specs
from ansible_collections.odp.model_engine.plugins.module_utils.core import ModelEngineModule
from ansible_collections.odp.model_engine.plugins.module_utils.kube import K8S_AUTH_SPEC
from ansible_collections.odp.model_engine.plugins.module_utils.s3 import MODEL_ENGINE_EXCLUDE, MODEL_ENGINE_INCLUDE
from ansible_collections.odp.model_engine.plugins.module_utils.sync_verify import run


def main():
    spec = merge_specs(
        S3_CONNECTION_SPEC, K8S_AUTH_SPEC, WAIT_SPEC,
        checkpoint_path=dict(type="str", required=True),
        path=dict(type="path"),
        pod=dict(type="str"),
        endpoint_id=dict(type="str"),
        endpoint_name=dict(type="str"),
        namespace=dict(type="str", default="llm-core"),
        container=dict(type="str", default="main"),
        model_dir=dict(type="str"),
        lock_fresh_seconds=dict(type="int", default=90),
        python=dict(type="str", default="python3"),
        mode=dict(type="str", default="quick", choices=["quick", "deep"]),
        check_etag=dict(type="bool", default=True),
        check_headers=dict(type="bool", default=True),
        sha256_manifest=dict(type="dict"),
        include=dict(type="list", elements="str", default=list(MODEL_ENGINE_INCLUDE)),
        exclude=dict(type="list", elements="str", default=list(MODEL_ENGINE_EXCLUDE)),
        workers=dict(type="int"),
        stall_timeout=dict(type="int", default=600),
        record=dict(type="bool", default=True),
        exec_timeout=dict(type="int", default=1800),
        fail_on_problems=dict(type="bool", default=True),
    )
    module = ModelEngineModule(
        argument_spec=spec, supports_check_mode=True,
        required_one_of=[("path", "pod", "endpoint_id", "endpoint_name")],
        mutually_exclusive=[("path", "pod", "endpoint_id", "endpoint_name")],
    )
    module.run(run)


if __name__ == "__main__":
    main()
