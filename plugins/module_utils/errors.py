# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one error type, and the kinds of failure that derive from it.

Every failure a module can meet is raised as an ``OdpError`` (the gateway, Kubernetes, S3, a spec rule, a
wait that ended without success) and caught once, in ``ModelEngineModule.run`` (as kubernetes.core's
modules catch ``CoreException``), which turns it into ``fail_json`` with the message, the partial result the
module had built so far (``changed``, ``endpoint``, ``k8s_resource_name`` ...) and the error's own fields
(``result``: evidence, the verdict, the API answer). Nothing here imports a heavy client.
"""

from __future__ import annotations


class OdpError(Exception):
    """Base of every error odp.model_engine raises. ``result`` holds fields for the failure result."""

    def __init__(self, message, **result):
        super(OdpError, self).__init__(message)
        self.result = result

    def to_result(self):
        """Fields the base module adds to ``fail_json`` (besides ``msg``)."""
        return dict(self.result)


class KubeError(OdpError):
    """A Kubernetes API call failed or the client could not be configured; the message says which."""

    def __init__(self, message, status=None, **result):
        super(KubeError, self).__init__(message, **result)
        self.status = status


class S3Error(OdpError):
    """An S3 request failed; the message names the bucket/key and the cause."""


class SpecError(OdpError, ValueError):
    """The input breaks a rule; the message names the field and the rule."""


class WaitError(OdpError):
    """A wait ended without success (a terminal verdict, or the deadline); ``result`` carries the last verdict."""
