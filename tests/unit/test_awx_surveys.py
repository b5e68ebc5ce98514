"""The AWX job template surveys (playbooks/awx_configure.yml) match the roles' argument specs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.odp.model_engine.plugins.filter.surveys import argument_spec_survey

REPO = Path(__file__).resolve().parents[2]
AWX = yaml.safe_load((REPO / "playbooks" / "vars" / "awx.yml").read_text())
TYPES = {"str": "text", "path": "text", "raw": "text", "int": "integer", "float": "float", "bool": "multiplechoice",
         "list": "textarea", "dict": "textarea"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("surveys") / "surveys.json"
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), str(REPO / "playbooks" / "render_awx_surveys.yml"),
                           "-e", "surveys_out=%s" % out], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def test_every_playbook_has_a_job_template():
    templated = {t["playbook"] for t in AWX["awx_job_templates"]}
    playbooks = {"playbooks/%s" % p.name for p in (REPO / "playbooks").glob("*.yml")}
    assert playbooks - templated == {"playbooks/awx_configure.yml", "playbooks/render_awx_surveys.yml"}


@pytest.mark.parametrize("tmpl", [t for t in AWX["awx_job_templates"] if "role" in t], ids=lambda t: t["name"])
def test_role_surveys_match_the_argument_specs(rendered, tmpl):
    spec = yaml.safe_load((REPO / "roles" / tmpl["role"] / "meta" / "argument_specs.yml").read_text())["argument_specs"][tmpl["entry_point"]]
    questions = {q["variable"]: q for q in rendered[tmpl["name"]]["spec"]}
    wanted = tmpl.get("only") or list(spec["options"])
    for var in wanted:
        opt, q = spec["options"][var], questions[var]
        assert q["required"] == bool(opt.get("required", False)), var
        if "choices" in opt:
            assert q["type"] == "multiplechoice" and q["choices"] == [str(c) for c in opt["choices"]], var
        else:
            assert q["type"] == TYPES[opt.get("type", "str")], var
        if opt.get("default") not in (None, {}, []):
            default = opt["default"]
            expected = ("true" if default else "false") if opt.get("type") == "bool" else (
                json.dumps(default) if opt.get("type") in ("list", "dict") else default)
            assert q["default"] == expected, var
    extra = {q["variable"] for q in tmpl.get("survey", [])}
    assert set(questions) == set(wanted) | extra


def test_plain_surveys_ask_for_variables_the_playbook_uses(rendered):
    for tmpl in AWX["awx_job_templates"]:
        text = (REPO / tmpl["playbook"]).read_text()
        for q in tmpl.get("survey", []):
            assert q["variable"] in text, (tmpl["name"], q["variable"])


def test_filter_types_and_errors():
    survey = argument_spec_survey({"a": {"type": "bool", "default": True}, "b": {"type": "dict", "default": {"x": 1}},
                                   "c": {"type": "str", "no_log": True, "required": True}}, name="n")
    a, b, c = survey["spec"]
    assert (a["type"], a["choices"], a["default"]) == ("multiplechoice", ["true", "false"], "true")
    assert (b["type"], b["default"]) == ("textarea", '{"x": 1}')
    assert (c["type"], c["required"]) == ("password", True)
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError):
        argument_spec_survey({"x": {"type": "bits"}})
