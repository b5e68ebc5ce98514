"""The twin counts what clients send it (gateway, Kubernetes API, S3), leaving out its own traffic, so that a test
can assert that a run made no request at all (issue 13: a wrong input is refused before anything happens)."""

from __future__ import annotations

import time

import boto3
import kubernetes
from botocore.config import Config


def test_client_requests_are_logged_per_service_and_the_twin_own_traffic_is_not(odp_twin, me):
    before = {k: len(v) for k, v in odp_twin.client_requests().items()}
    t0 = time.time()
    time.sleep(2 * odp_twin.config.control_plane_poll + 0.5)  # the twin polls the cluster in the background
    idle = odp_twin.client_requests()
    # requests that started in the window (a watch an earlier test's kubectl opened is logged when it ends, later)
    new = {k: [r for r in v[before[k]:] if k == "s3" or r[0] >= t0] for k, v in idle.items()}
    assert new == {k: [] for k in idle}, ("the twin's own requests were counted", new)

    assert me.get("/v1/llm/model-endpoints/nope").status == 404
    core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(config_file=str(odp_twin.emulator.kubeconfig_path)))
    core.list_namespaced_pod("llm-core")
    s3 = boto3.client("s3", endpoint_url=odp_twin.s3.endpoint_url, region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="y", config=Config(s3={"addressing_style": "path"}))
    s3.list_objects_v2(Bucket="scale-gp-models", Prefix="intermediate-model-aws/")

    after = odp_twin.client_requests()
    gateway = after["gateway"][before["gateway"]:]
    assert [(m, p, s, u) for _t, m, p, s, u in gateway] == [("GET", "/v1/llm/model-endpoints/nope", 404, "test-user-id")]
    assert [(m, p) for t, m, p, _s in after["kubernetes"][before["kubernetes"]:] if t >= t0] == [("GET", "/api/v1/namespaces/llm-core/pods")]
    [(method, url)] = after["s3"][before["s3"]:]
    assert method == "GET" and "/scale-gp-models" in url and "list-type=2" in url
