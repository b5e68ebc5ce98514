"""Issue 8: the environment report shows the control plane and every endpoint, with diagnoses."""

from __future__ import annotations

from tests.integration.conftest import crashed, create_endpoint, settle


def test_environment_report(playbook, gateway, odp_twin, tmp_path):
    create_endpoint(gateway, "rep-ok")
    create_endpoint(gateway, "rep-bad", wait=False, inference_framework_image_tag="0.6.3-rc1")
    settle(gateway, odp_twin, "rep-bad", crashed)
    run = playbook("environment_report.yml", extra={"report_dir": str(tmp_path)})
    assert run.rc == 0, run
    report = (tmp_path / "environment-local.md").read_text()
    assert "| model-engine | registry.odp.om/odp-development/oman-national-llm/model-engine:onprem20 | 1/1 | yes |" in report
    assert "| rep-ok | test-user-id | READY | yes | 2/2 Running | vllm-onprem | 100.0% complete | serving |" in report
    assert "| rep-bad | test-user-id | READY | no |" in report and "| failed (unsupported_architecture) |" in report
    assert "### rep-bad: failed, unsupported_architecture" in report and "**Fix:** Use the vllm-onprem tag" in report
    assert "### rep-ok" not in report
