# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base class every odp.model_engine module builds on, and the collection's one error path.

* ``run(fn)``: the module's logic returns its result; every ``OdpError`` it raises is caught here, once,
  and becomes ``fail_json`` with the message, the partial result built so far in ``module.result``
  (``changed`` after a write, ``endpoint``, ``k8s_resource_name`` ...) and the error's own fields. Errors of
  the Kubernetes and S3 clients that escaped a wrapper are converted on the way; anything else still ends
  in a clean failure that says it is a bug, never in a bare traceback.
* Python dependency checks with a clear message (``requires=("kubernetes", "boto3")``).
* Secrets derived from options (the Basic auth header) are added to ``no_log_values`` so they never
  appear in output, even at -vvv.
"""

from __future__ import annotations

import importlib
import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.odp.model_engine.plugins.module_utils.api_client import ModelEngineClient, basic_auth_header
from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError, OdpError, S3Error, SpecError

# import name -> (pip name, why the module needs it)
_DEPENDENCIES = {
    "kubernetes": ("kubernetes", "to talk to the Kubernetes API"),
    "boto3": ("boto3", "to read the S3 checkpoint bucket"),
    "botocore": ("botocore", "to read the S3 checkpoint bucket"),
}


def as_odp_error(exc):
    """``exc`` as an OdpError: client exceptions that escaped a wrapper are converted, others are None."""
    if isinstance(exc, OdpError):
        return exc
    kind = type(exc).__module__ + "." + type(exc).__name__
    if kind.startswith("kubernetes.client.exceptions."):
        from ansible_collections.odp.model_engine.plugins.module_utils.kube import api_error

        return api_error(exc, "Kubernetes API request")
    if kind.startswith("botocore.exceptions."):
        from ansible_collections.odp.model_engine.plugins.module_utils.s3 import describe_error

        return S3Error(describe_error(exc, "S3 request"))
    if kind.startswith(("urllib3.exceptions.", "websocket._exceptions.")):
        return KubeError("Kubernetes API connection failed: %s" % exc)
    return None


class ModelEngineModule(AnsibleModule):
    """AnsibleModule with the one error path, dependency checks and secret redaction."""

    def __init__(self, argument_spec, requires=(), **kwargs):
        kwargs.setdefault("supports_check_mode", True)
        super(ModelEngineModule, self).__init__(argument_spec=argument_spec, **kwargs)
        self.result = {"changed": False}
        for name in requires:
            self.require(name)
        user_id = self.params.get("user_id")
        if user_id and "user_id" in self.params:
            # The header value is what a proxy log or a -vvv dump would show; never let it out.
            self.no_log_values.add(basic_auth_header(user_id).split(" ", 1)[1])

    def require(self, import_name):
        """Import ``import_name`` or fail with the pip package to install."""
        try:
            return importlib.import_module(import_name)
        except ImportError:
            pip_name, reason = _DEPENDENCIES.get(import_name, (import_name, ""))
            self.fail_json(msg=missing_required_lib(pip_name, reason=reason or None), exception=traceback.format_exc())

    def run(self, fn):
        """Exit with ``fn(self)``'s result (merged over ``self.result``), or fail through the one error path."""
        try:
            try:
                out = fn(self)
            except Exception as e:  # pylint: disable=broad-except
                self.fail_from_exception(e)
            self.result.update(out or {})
            self.exit_json(**self.result)
        except SystemExit as e:
            fast_exit(e.code)
            raise

    def gateway_transport(self):
        """The tunnel to the gateway Service for ``connection: kubernetes`` (None for a direct URL)."""
        p = self.params
        if p.get("connection") != "kubernetes":
            if not p.get("url"):
                raise SpecError("url: required with connection: url (the gateway's address, e.g. an ingress); set connection: "
                                "kubernetes to reach the gateway Service through the Kubernetes API instead")
            return None
        self.require("kubernetes")
        from ansible_collections.odp.model_engine.plugins.module_utils.gateway_tunnel import GatewayTunnel
        from ansible_collections.odp.model_engine.plugins.module_utils.kube import Kube

        return GatewayTunnel(Kube(p), p["service_namespace"], p["service"], p["service_port"])

    def model_engine_client(self, require_user=True, **overrides):
        """A ModelEngineClient built from the shared connection options (``require_user=False`` for the health routes,
        which need no user)."""
        p = self.params
        if p.get("ca_path") and not os.path.isfile(p["ca_path"]):
            # checked here, before the first request, rather than failing each attempt of it
            raise SpecError("ca_path: %s is not a file (model_engine_ca_path names the PEM bundle of the CA that signed the "
                            "gateway certificate)" % p["ca_path"])
        if require_user and not p.get("user_id"):
            raise SpecError("user_id: required to talk to the model-engine gateway (the user id it knows you by; "
                            "inventory variable model_engine_user, or MODEL_ENGINE_USER_ID)")
        kwargs = dict(
            transport=self.gateway_transport(),
            url=p["url"], user_id=p["user_id"], validate_certs=p["validate_certs"], ca_path=p.get("ca_path"),
            timeout=p["request_timeout"], retries=p["retries"],
            on_retry=lambda method, path, attempt, reason, delay: self.log(
                "model-engine %s %s attempt %d failed (%s); retrying in %.1fs" % (method, path, attempt, reason, delay)),
        )
        kwargs.update(overrides)
        return ModelEngineClient(**kwargs)

    def fail_from_exception(self, exc, msg=None):
        """fail_json with the cause, the partial result and the error's fields; never a bare traceback."""
        err = as_odp_error(exc)
        result = dict(self.result)
        if err is None:
            text = "Unexpected error in odp.model_engine (please report it with the -vvv output): %s: %s" % (type(exc).__name__, exc)
        else:
            result.update(err.to_result())
            text = str(err)
        if msg:
            text = "%s: %s" % (msg, text)
        result.pop("msg", None)
        self.fail_json(msg=text, exception=traceback.format_exc(), **result)


def _ansiballz_payload_dir(main):
    """The AnsiballZ payload directory when ``main`` (``__main__``) is one of this collection's modules run by the
    wrapper, else None."""
    spec, modlib = getattr(main, "__spec__", None), getattr(main, "_modlib_path", None)
    if not (spec and spec.name.startswith("ansible_collections.odp.model_engine.plugins.modules.") and isinstance(modlib, str)):
        return None
    payload_dir = os.path.dirname(modlib)
    name = os.path.basename(payload_dir)
    return payload_dir if name.startswith("ansible_") and "_payload_" in name else None


def fast_exit(code):
    """End a module process run by AnsiballZ once its result is written, without the interpreter's teardown.

    With the kubernetes client and boto3 loaded, tearing the interpreter down takes 0.15-0.3 s after the result is out
    (measured here on 2 cores), time every task and every wait's answer pays. The atexit handlers (the module's
    temporary directory) still run, and the AnsiballZ payload directory the wrapper would remove in its ``finally`` is
    removed here. Does nothing (the caller re-raises SystemExit) unless this process is an AnsiballZ run of one of
    this collection's modules (``__main__`` is the module, with the wrapper's ``_modlib_path``): under pytest or a
    debug ``execute``, the exit stays a normal SystemExit."""
    import atexit
    import shutil
    import sys

    payload_dir = _ansiballz_payload_dir(sys.modules.get("__main__"))
    if payload_dir is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()  # pylint: disable=protected-access
    shutil.rmtree(payload_dir, ignore_errors=True)
    os._exit(code if isinstance(code, int) else 1)
