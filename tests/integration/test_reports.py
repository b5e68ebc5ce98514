"""Issue 8: the environment report shows the control plane and every endpoint, with diagnoses."""

from __future__ import annotations

from tests.integration.conftest import create_endpoint
from tests.integration.test_diagnose import crashed, settle


def test_environment_report(playbook, gateway, odp_twin, tmp_path):
    create_endpoint(gateway, "rep-ok")
    create_endpoint(gateway, "rep-bad", wait=False, inference_framework_image_tag="0.6.3-rc1")
    settle(gateway, odp_twin, "rep-bad", crashed)
    run = playbook("environment_report.yml", extra={"report_dir": str(tmp_path)})
    assert run.rc == 0, run
    report = (tmp_path / "environment-local.md").read_text()
    assert "| model-engine | registry.odp.om/odp-development/oman-national-llm/model-engine:onprem20 | 1/1 | yes |" in report
    assert "| rep-ok | READY | yes | 2/2 Running | vllm-onprem | 100.0% complete | healthy |" in report
    assert "| rep-bad | READY | no |" in report and "### rep-bad: unsupported_architecture" in report
    assert "**Fix:** The vLLM image does not support" in report
    assert "### rep-ok" not in report
