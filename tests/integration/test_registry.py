"""registry_image_info against the twin's real distribution registry (token auth, the cluster's pull Secret)."""

from __future__ import annotations

import pytest
import yaml

from tests.twin.platform.config import ME_REPO, REGISTRY, VLLM_REPO
from tests.twin.platform.registry import PULL_PASSWORD, PULL_USER

ME = "%s/%s" % (REGISTRY, ME_REPO)
VLLM = "%s/%s" % (REGISTRY, VLLM_REPO)
MODULE = "odp.model_engine.registry_image_info"


@pytest.fixture
def check(localhost, twin_vars):
    """Run the module with the twin's group vars: its registry URL and pull Secret, the kubeconfig."""
    tv = yaml.safe_load(twin_vars.read_text())

    def run(host=localhost, **args):
        merged = {"registry_url": tv["model_engine_registry_url"], "kubeconfig": tv["k8s_kubeconfig"]}
        merged.update(args)
        return getattr(host, MODULE)(**merged)["localhost"]

    run.vars = tv
    return run


def test_existing_tags_through_the_cluster_pull_secret(check, odp_twin):
    out = check(images=[ME + ":onprem20", VLLM + ":vllm-onprem"], pull_secret=check.vars["model_engine_registry_pull_secret"])
    assert not out.get("failed"), out
    assert out["changed"] is False and out["all_exist"] is True and out["missing"] == []
    me, vllm = out["images"]
    status, digest = odp_twin.registry_server.head_manifest(ME_REPO, "onprem20")
    assert status == 200
    assert (me["exists"], me["status"], me["digest"]) == (True, 200, digest)
    assert me["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert me["registry"] == check.vars["model_engine_registry_url"] and me["repository"] == ME_REPO
    assert vllm["exists"] is True and vllm["digest"].startswith("sha256:") and vllm["digest"] != digest
    assert PULL_PASSWORD not in str(out)


def test_missing_tag_fails_with_the_registry_answer(check):
    out = check(images=[ME + ":onprem20", ME + ":onprem99"], pull_secret=check.vars["model_engine_registry_pull_secret"])
    assert out["failed"] is True and out["changed"] is False
    assert out["msg"] == ("1 image(s) not in the registry: %s:onprem99 (HTTP 404 MANIFEST_UNKNOWN: manifest unknown "
                          "(Tag=onprem99) at %s)" % (ME, check.vars["model_engine_registry_url"]))
    assert out["missing"] == [ME + ":onprem99"] and [i["exists"] for i in out["images"]] == [True, False]
    # only a report when asked so
    report = check(images=[ME + ":onprem99"], pull_secret=check.vars["model_engine_registry_pull_secret"], fail_on_missing=False)
    assert not report.get("failed") and report["images"][0]["status"] == 404 and report["all_exist"] is False


def test_a_tag_deleted_from_the_registry_is_missing_at_once(check, odp_twin):
    image = VLLM + ":precheck-probe"
    odp_twin.registry.add(image)
    try:
        assert check(images=[image], username=PULL_USER, password=PULL_PASSWORD)["all_exist"] is True
        odp_twin.registry.remove(image)
        out = check(images=[image], username=PULL_USER, password=PULL_PASSWORD)
        assert out["failed"] is True and "MANIFEST_UNKNOWN" in out["msg"]
    finally:
        odp_twin.registry.remove(image)


def test_credentials_matter(check, odp_twin):
    # no credentials: the anonymous token grants nothing, the registry says insufficient_scope
    anon = check(images=[ME + ":onprem20"])
    assert anon["failed"] is True and "HTTP 401" in anon["msg"] and "(insufficient_scope)" in anon["msg"]
    assert "not in the registry" not in anon["msg"]
    wrong = check(images=[ME + ":onprem20"], username=PULL_USER, password="wrong-password")
    assert wrong["failed"] is True
    assert wrong["msg"] == ("token service %s refused the credentials (HTTP 401): UNAUTHORIZED: authentication required: "
                            "invalid username or password" % odp_twin.registry_server.realm)
    assert "wrong-password" not in str(wrong)
    nosecret = check(images=[ME + ":onprem20"], pull_secret="no-such-secret")
    assert nosecret["failed"] is True and nosecret["msg"] == "pull secret llm-core/no-such-secret: not found"


def test_check_mode_asks_the_same(localhost_check, check):
    out = check(host=localhost_check, images=[ME + ":onprem21"], pull_secret=check.vars["model_engine_registry_pull_secret"])
    assert not out.get("failed") and out["changed"] is False and out["images"][0]["exists"] is True


def test_basic_auth_registry(localhost, tmp_path):
    """The same module against distribution with htpasswd (basic) auth instead of tokens."""
    from tests.twin.platform.registry import Registry, RegistryServer

    server = RegistryServer(tmp_path / "registry", auth="htpasswd")
    server.start()
    try:
        Registry(images={ME + ":onprem20"}, broken=set()).attach(server)
        run = getattr(localhost, MODULE)
        ok = run(images=[ME + ":onprem20"], registry_url=server.url, username=PULL_USER, password=PULL_PASSWORD)["localhost"]
        assert not ok.get("failed") and ok["images"][0]["exists"] is True, ok
        missing = run(images=[ME + ":onprem19"], registry_url=server.url, username=PULL_USER, password=PULL_PASSWORD)["localhost"]
        assert missing["failed"] is True and "MANIFEST_UNKNOWN" in missing["msg"]
        anon = run(images=[ME + ":onprem20"], registry_url=server.url)["localhost"]
        assert anon["failed"] is True and "requires authentication and no credentials were given" in anon["msg"]
    finally:
        server.stop()
