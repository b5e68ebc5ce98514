"""Issue 18: the endpoint preflight asks the registry for the vLLM image (an option, on when the inventory configures a
registry), in the module and in the llm_endpoint role (create_endpoint.yml)."""

from __future__ import annotations

import copy

from tests.twin.platform.config import REGISTRY, VLLM_REPO
from tests.twin.tests.conftest_platform import RUNBOOK_BODY

VLLM = "%s/%s" % (REGISTRY, VLLM_REPO)
CKPT = "s3://scale-gp-models/intermediate-model-aws/"


def test_the_preflight_module_asks_the_registry_only_when_given_an_image(module, odp_twin):
    tv = module.vars
    reg = {"registry_image": VLLM, "registry_url": tv["model_engine_registry_url"], "registry_pull_secret": tv["model_engine_registry_pull_secret"]}
    ok = module("endpoint_preflight", checkpoint_path=CKPT, inference_framework_image_tag="0.10.1", checks=["registry"], **reg)
    assert not ok.get("failed"), ok
    assert ok["registry"]["exists"] is True and ok["registry"]["image"] == VLLM + ":0.10.1" and ok["registry"]["digest"].startswith("sha256:")
    missing = module("endpoint_preflight", checkpoint_path=CKPT, inference_framework_image_tag="0.99.0", checks=["registry"], **reg)
    assert missing["failed"] is True
    assert ("inference_framework_image_tag '0.99.0': %s:0.99.0 is not in the registry (HTTP 404 MANIFEST_UNKNOWN: manifest unknown "
            "(Tag=0.99.0) at %s)" % (VLLM, tv["model_engine_registry_url"])) in missing["msg"]
    off = module("endpoint_preflight", checkpoint_path=CKPT, inference_framework_image_tag="0.99.0", checks=["registry"])
    assert not off.get("failed") and "registry" not in off        # no registry configured: not asked
    latest = module("endpoint_preflight", checkpoint_path=CKPT, inference_framework_image_tag="latest", checks=["registry"], **reg)
    assert not latest.get("failed") and "skipped" in latest["registry"]
    unknown = module("endpoint_preflight", checkpoint_path=CKPT, inference_framework_image_tag="0.10.1", checks=["registry"],
                     **dict(reg, registry_pull_secret="no-such-secret"))
    assert unknown["failed"] is True and unknown["msg"] == "pull secret llm-core/no-such-secret: not found"   # unknown is not missing


def test_create_endpoint_refuses_a_vllm_tag_the_registry_lost_before_creating(playbook, odp_twin, gateway):
    image = VLLM + ":vllm-onprem"
    odp_twin.registry.remove(image)
    try:
        body = dict(copy.deepcopy(RUNBOOK_BODY), name="reg-gone", inference_framework_image_tag="vllm-onprem")
        run = playbook("create_endpoint.yml", extra={"endpoint": body})
    finally:
        odp_twin.registry.add(image)
    text = " ".join(run.stdout.split())
    assert run.rc != 0 and "%s is not in the registry (HTTP 404 MANIFEST_UNKNOWN" % image in text
    assert "reg-gone" not in [r["name"] for r in odp_twin.engine.records.values()]
