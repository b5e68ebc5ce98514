# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base class every odp.model_engine module builds on.

* Python dependency checks with a clear message (``requires=("kubernetes", "boto3")``).
* ``fail_from_exception``: any exception becomes ``fail_json`` with the cause (and, for model-engine
  API errors, the HTTP status and response body).
* Secrets derived from options (the Basic auth header) are added to ``no_log_values`` so they never
  appear in output, even at -vvv.
"""

from __future__ import annotations

import importlib
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.odp.model_engine.plugins.module_utils.api_client import (
    ModelEngineClient,
    ModelEngineError,
    basic_auth_header,
)

# import name -> (pip name, why the module needs it)
_DEPENDENCIES = {
    "kubernetes": ("kubernetes", "to talk to the Kubernetes API"),
    "boto3": ("boto3", "to read the S3 checkpoint bucket"),
    "botocore": ("botocore", "to read the S3 checkpoint bucket"),
}


class ModelEngineModule(AnsibleModule):
    """AnsibleModule with dependency checks, exception handling and secret redaction."""

    def __init__(self, argument_spec, requires=(), **kwargs):
        kwargs.setdefault("supports_check_mode", True)
        super(ModelEngineModule, self).__init__(argument_spec=argument_spec, **kwargs)
        for name in requires:
            self.require(name)
        user_id = self.params.get("user_id")
        if user_id and "url" in self.params:
            # The header value is what a proxy log or a -vvv dump would show; never let it out.
            self.no_log_values.add(basic_auth_header(user_id).split(" ", 1)[1])

    def require(self, import_name):
        """Import ``import_name`` or fail with the pip package to install."""
        try:
            return importlib.import_module(import_name)
        except ImportError:
            pip_name, reason = _DEPENDENCIES.get(import_name, (import_name, ""))
            self.fail_json(msg=missing_required_lib(pip_name, reason=reason or None), exception=traceback.format_exc())

    def model_engine_client(self, **overrides):
        """A ModelEngineClient built from the shared connection options."""
        p = self.params
        kwargs = dict(
            url=p["url"], user_id=p["user_id"], validate_certs=p["validate_certs"], ca_path=p.get("ca_path"),
            timeout=p["request_timeout"], retries=p["retries"],
            on_retry=lambda method, path, attempt, reason, delay: self.log(
                "model-engine %s %s attempt %d failed (%s); retrying in %.1fs" % (method, path, attempt, reason, delay)),
        )
        kwargs.update(overrides)
        try:
            return ModelEngineClient(**kwargs)
        except ValueError as e:
            self.fail_json(msg=str(e))

    def fail_from_exception(self, exc, msg=None, **result):
        """fail_json with the cause; API errors carry status and body."""
        if isinstance(exc, ModelEngineError):
            result.setdefault("api_error", exc.to_result())
        text = "%s: %s" % (msg, exc) if msg else str(exc)
        self.fail_json(msg=text, exception=traceback.format_exc(), **result)
