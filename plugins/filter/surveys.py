# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""argument_spec_survey filter; documented in argument_spec_survey.yml."""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

_TYPES = {"str": "text", "path": "text", "raw": "text", "int": "integer", "float": "float",
          "bool": "multiplechoice", "list": "textarea", "dict": "textarea"}


def _first_line(desc):
    if isinstance(desc, list):
        desc = " ".join(str(d) for d in desc)
    return " ".join(str(desc or "").split())


def _default(opt, typ):
    """The survey default of an option ({} when it has none)."""
    default = opt.get("default")
    if default is None:
        return {"default": ""} if typ in ("list", "dict") else {}
    if typ in ("list", "dict"):
        return {"default": json.dumps(default)}
    if typ == "bool":
        return {"default": "true" if default else "false"}
    return {"default": default}


def _question(var, opt):
    typ = opt.get("type", "str")
    if typ not in _TYPES:
        raise AnsibleFilterError("argument_spec_survey: option %s has type %s, which a survey cannot ask for" % (var, typ))
    question = {
        "variable": var,
        "question_name": var.replace("_", " ").capitalize(),
        "question_description": _first_line(opt.get("description"))[:1000],
        "required": bool(opt.get("required", False)),
        "type": "password" if opt.get("no_log") else _TYPES[typ],
    }
    if "choices" in opt:
        question.update(type="multiplechoice", choices=[str(c) for c in opt["choices"]])
    elif typ == "bool":
        question["choices"] = ["true", "false"]
    question.update(_default(opt, typ))
    if typ in ("int", "float"):
        question.update(min=opt.get("min", 0), max=opt.get("max", 2147483647))
    return question


def argument_spec_survey(options, name="", description="", only=None):
    """An AWX survey_spec from the ``options`` of a role's meta/argument_specs.yml entry point."""
    if not isinstance(options, dict):
        raise AnsibleFilterError("argument_spec_survey expects the options dictionary of an argument spec")
    spec = [_question(var, raw or {}) for var, raw in options.items() if not only or var in only]
    return {"name": name, "description": description, "spec": spec}


class FilterModule(object):
    def filters(self):
        return {"argument_spec_survey": argument_spec_survey}
