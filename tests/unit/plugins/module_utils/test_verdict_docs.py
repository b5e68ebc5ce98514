"""docs/verdicts.md is generated from the judge's table and must not drift from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]


def test_the_verdict_table_in_the_docs_is_the_judges():
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "verdict_table.py"), "--check"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_docs_name_every_cause_with_its_fix():
    from ansible_collections.odp.model_engine.plugins.module_utils.judge import CAUSES

    text = (REPO / "docs" / "verdicts.md").read_text()
    for code, cause in CAUSES.items():
        assert "| `%s` | %s |" % (code, cause.state) in text
        assert cause.fix.replace("|", "\\|") in text
