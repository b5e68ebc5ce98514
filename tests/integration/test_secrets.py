"""Issue 13: at -vvv, as AWX shows a job with verbosity 3, no playbook prints a credential of the twin.

The playbook fixture checks every run's job events, stdout and artifacts for every credential value
(conftest.twin_secrets: the S3 access and secret keys, the Kubernetes tokens, the registry password, the
model-engine Basic token); these runs are the ones where the modules' arguments are printed.
"""

from __future__ import annotations

import re

from tests.integration.conftest import twin_secrets

FAST = {"llm_endpoint_progress_interval": 1}
MASKED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_no_credential_in_any_playbook_at_vvv(playbook, gateway, fresh_control_plane, twin_vars, tmp_path):
    # no record: site.yml's deploy at -vvv builds and checks its canary too
    secrets = twin_secrets(twin_vars)
    runs = {
        "create": playbook("create_endpoint.yml", verbosity=3, extra=FAST),
        "verify": playbook("verify_endpoint.yml", verbosity=3, extra={"endpoint_name": "test-endpoint-v1", "verify_mode": "quick"}),
        "diagnose": playbook("diagnose_endpoint.yml", verbosity=3, extra={"endpoint_name": "test-endpoint-v1"}),
        "report": playbook("environment_report.yml", verbosity=3, extra={"report_dir": str(tmp_path)}),
        "site": playbook("site.yml", verbosity=3, extra=FAST),
    }
    for name, run in runs.items():
        assert run.rc == 0, (name, run)
        # -vvv really printed the modules' arguments, with the credentials masked
        assert "module_args" in run.stdout and MASKED in run.stdout, name
        for secret in secrets:
            assert secret not in run.stdout, (name, secret)
    assert re.search(r"s3_access_key\W+%s" % MASKED, runs["create"].stdout)  # passed, and masked
    report = (tmp_path / "environment-local.md").read_text()
    assert "| test-endpoint-v1 | test-user-id | READY |" in report
    assert not [s for s in secrets if s in report]
