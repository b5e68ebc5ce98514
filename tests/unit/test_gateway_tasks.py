"""Issue 13: every task that talks to the gateway gets the inventory's CA bundle (model_engine_ca_path), and every
credential-like option of every module is no_log."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GATEWAY_MODULES = set(yaml.safe_load((REPO / "meta/runtime.yml").read_text())["action_groups"]["model_engine"])
CA = "{{ model_engine_ca_path | default(omit) }}"
TASK_FILES = sorted(REPO.glob("playbooks/*.yml")) + sorted(REPO.glob("roles/*/tasks/*.yml"))


def _tasks(node):
    """Every task (and block) of a playbook or task file, nested blocks included."""
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        if "hosts" in node or "block" in node:
            yield node
        for key in ("pre_tasks", "tasks", "post_tasks", "handlers", "block", "rescue", "always"):
            yield from _tasks(node.get(key) or [])
        if "hosts" not in node and "block" not in node:
            yield node


def gateway_uses():
    """(file, task name, what) for each place that sets gateway connection options."""
    for path in TASK_FILES:
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            defaults = (task.get("module_defaults") or {}).get("group/odp.model_engine.model_engine")
            if defaults is not None:
                yield path.name, task.get("name"), defaults
            for key, args in task.items():
                if not isinstance(args, dict):
                    continue
                short = key.rsplit(".", 1)[-1]
                if key.startswith("odp.model_engine.") and short in GATEWAY_MODULES and "url" in args:
                    yield path.name, task.get("name"), args
                if key in ("ansible.builtin.uri", "uri") and "model_engine_url" in str(args.get("url")):
                    yield path.name, task.get("name"), args


USES = list(gateway_uses())


def test_the_search_finds_the_gateway_tasks():
    names = {(f, n) for f, n, _a in USES}
    assert ("main.yml", "Smoke-check the gateway (/readyz)") in names  # the deploy role's uri
    assert ("site.yml", "Read the endpoints that exist") in names
    assert len(USES) >= 9


@pytest.mark.parametrize("where, name, args", USES, ids=["%s: %s" % (f, n) for f, n, _a in USES])
def test_every_gateway_task_gets_the_ca_bundle(where, name, args):
    assert args.get("ca_path") == CA, "%s: %s does not pass model_engine_ca_path" % (where, name)


def _module_specs():
    """(module, option, spec) of every option of every module, read from the argument specs in the source."""
    from ansible_collections.odp.model_engine.plugins.module_utils import args_common, kube, llm_endpoint

    shared = dict(args_common.MODEL_ENGINE_CONNECTION_SPEC, **args_common.S3_CONNECTION_SPEC)
    shared.update(kube.K8S_AUTH_SPEC, **llm_endpoint.LLM_ENDPOINT_SPEC)
    for option, spec in shared.items():
        yield "module_utils", option, spec
    for path in sorted((REPO / "plugins/modules").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "dict":
                spec = {k.arg: getattr(k.value, "value", None) for k in node.value.keywords}
                if "type" in spec:
                    yield path.stem, node.arg, spec


NOT_CREDENTIALS = {"pull_secret": "the name of a Kubernetes Secret, not its content",
                   "registry_pull_secret": "the name of a Kubernetes Secret, not its content"}


def credential_like(option):
    parts = option.split("_")
    return option not in NOT_CREDENTIALS and (bool({"password", "secret", "token"} & set(parts))
                                              or option.endswith(("access_key", "api_key")) or option == "kubeconfig")


def test_every_credential_like_option_is_no_log():
    found = [(m, o) for m, o, _spec in _module_specs() if credential_like(o)]
    assert ("module_utils", "s3_access_key") in found and ("registry_image_info", "password") in found
    assert ("module_utils", "s3_session_token") in found and ("module_utils", "api_key") in found
    assert [(m, o) for m, o, spec in _module_specs() if credential_like(o) and spec.get("no_log") is not True] == []
