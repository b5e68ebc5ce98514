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

import re


class OdpError(Exception):
    """Base of every error odp.model_engine raises. ``result`` holds fields for the failure result."""

    def __init__(self, message, **result):
        super(OdpError, self).__init__(message)
        self.result = result

    def to_result(self):
        """Fields the base module adds to ``fail_json`` (besides ``msg``)."""
        return dict(self.result)


# The gateway answers a request worth repeating with one of these (rate limit, a proxy in between, a restart).
RETRY_STATUSES = frozenset((429, 502, 503, 504))


class ModelEngineError(OdpError):
    """A request to model-engine failed. ``status`` is None for connection errors."""

    def __init__(self, message, status=None, body=None, **request):
        super(ModelEngineError, self).__init__(message)
        self.status = status
        self.body = body
        self.method = request.get("method")
        self.url = request.get("url")
        self.attempts = request.get("attempts", 1)

    @property
    def detail(self):
        return error_detail(self.body)

    def counted(self, attempts):
        """The same error, its message counting ``attempts`` (a caller that repeated the request itself, as a
        create does after checking by name, made more attempts than the one request that failed last)."""
        text = str(self)
        counted = re.sub(r"after \d+ attempt\(s\)", "after %d attempt(s)" % attempts, text, count=1)
        if counted == text and attempts > 1:
            counted = "%s (after %d attempt(s))" % (text, attempts)
        return ModelEngineError(counted, status=self.status, body=self.body, method=self.method, url=self.url, attempts=attempts)

    def to_result(self):
        """Fields a module adds to fail_json: the API's answer."""
        out = dict(self.result)
        out["api_error"] = {"status": self.status, "body": self.body, "method": self.method, "url": self.url, "attempts": self.attempts}
        return out


def error_detail(body):
    """A one-line reason from any of the gateway's error shapes (facts §1)."""
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(p) for p in item.get("loc", []))
                    parts.append("%s: %s" % (loc, item.get("msg")) if loc else str(item.get("msg")))
                else:
                    parts.append(str(item))
            return "; ".join(parts)
        if "error" in body:
            rid = body.get("request_id")
            return "%s%s" % (body["error"], " (request_id %s)" % rid if rid else "")
    if body in (None, ""):
        return ""
    return str(body)


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
