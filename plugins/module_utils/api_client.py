# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP client for the model-engine gateway REST API.

* Authentication is HTTP Basic with the user id as username and an empty password; the gateway
  never reads the password (model-engine-facts §1).
* TLS certificates are verified unless ``validate_certs=False``; ``ca_path`` adds a CA bundle.
* Retries with full-jitter exponential backoff on 429/502/503/504 and on connection errors and
  timeouts only. A 4xx (and a plain 500, which the gateway uses for unmapped exceptions) is never
  retried: the same request would fail the same way.
"""

from __future__ import annotations

import base64
import json
import random
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode
from ansible.module_utils.urls import open_url

from ansible_collections.odp.model_engine.plugins.module_utils.errors import (
    RETRY_STATUSES,
    ModelEngineError,
    SpecError,
    error_detail,
)


def basic_auth_header(user_id):
    token = base64.b64encode(("%s:" % user_id).encode("utf-8")).decode("ascii")
    return "Basic %s" % token


class ModelEngineClient(object):
    """Small JSON client. ``options``: ``timeout`` (30 s), ``retries`` (4), ``backoff_base`` (0.5 s),
    ``backoff_max`` (8 s), ``on_retry(method, path, attempt, reason, delay)``, ``transport`` (an object with
    ``open(method, url, data, headers, timeout)`` that replaces ``open_url``, e.g. gateway_tunnel.GatewayTunnel; then
    ``url`` may be its ``base_url``); ``sleep`` and ``rand`` are injectable for tests."""

    def __init__(self, url, user_id, validate_certs=True, ca_path=None, **options):
        self.transport = options.get("transport")
        if self.transport is not None:
            url = url or self.transport.base_url
        if not url:
            raise SpecError("url: the model-engine gateway URL is required (or connection: kubernetes, to reach the gateway "
                            "Service through the Kubernetes API)")
        if not (url.startswith("http://") or url.startswith("https://")):
            raise SpecError("url: %r must start with http:// or https://" % url)
        self.base_url = url.rstrip("/")
        self.user_id = user_id
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = options.get("timeout", 30.0)
        self.retries = max(0, int(options.get("retries", 4)))
        self.backoff_base = options.get("backoff_base", 0.5)
        self.backoff_max = options.get("backoff_max", 8.0)
        self.sleep = options.get("sleep", time.sleep)
        self._rand = options.get("rand", random.random)
        self.on_retry = options.get("on_retry")
        self.auth_header = basic_auth_header(user_id) if user_id else None

    # ------------------------------------------------------------------ helpers
    def url_for(self, path, params=None):
        url = self.base_url + path
        if params:
            clean = [(k, v) for k, v in params.items() if v is not None]
            if clean:
                url += "?" + urlencode(clean)
        return url

    @staticmethod
    def quote(segment):
        return quote(str(segment), safe="")

    def backoff(self, attempt, retry_after=None):
        """Full jitter: uniform(0, min(max, base * 2**attempt)); Retry-After wins when given."""
        if retry_after is not None:
            return min(self.backoff_max, retry_after)
        cap = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        return cap * self._rand()

    @staticmethod
    def _decode(raw):
        if raw is None:
            return None
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    @staticmethod
    def _retry_after(headers):
        try:
            value = headers.get("Retry-After") if headers is not None else None
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    # ------------------------------------------------------------------ request
    def _send(self, method, url, data, headers, timeout):
        """One attempt: ("ok", body) or ("retry", (status, payload, retry_after, reason)); raises for a final error."""
        try:
            if self.transport is not None:
                resp = self.transport.open(method, url, data, headers, timeout)
            else:
                resp = open_url(url, method=method, data=data, headers=headers, validate_certs=self.validate_certs,
                                ca_path=self.ca_path, timeout=timeout, follow_redirects="safe", use_proxy=True)
            return "ok", self._decode(resp.read())
        except HTTPError as e:
            try:
                payload = self._decode(e.read())
            except Exception:  # pylint: disable=broad-except
                payload = None
            if e.code not in RETRY_STATUSES:
                return "final", (e.code, payload, e.reason)
            return "retry", (e.code, payload, self._retry_after(e.headers), "HTTP %s" % e.code)
        except (TimeoutError, URLError, ConnectionError, OSError) as e:
            return "retry", (None, None, None, "%s: %s" % (type(e).__name__, getattr(e, "reason", e)))

    def _exhausted(self, method, path, url, attempts, failure):
        status, payload, _retry_after, reason = failure
        if status is not None:
            msg = "%s %s returned HTTP %s after %d attempt(s): %s" % (method, path, status, attempts, error_detail(payload) or reason)
        else:
            where = self.transport.describe() if self.transport is not None else self.base_url
            msg = "%s %s failed after %d attempt(s): %s (is %s reachable?)" % (method, path, attempts, reason, where)
        return ModelEngineError(msg, status=status, body=payload, method=method, url=url, attempts=attempts)

    def request(self, method, path, body=None, params=None, **options):
        """Send one JSON request; return the decoded body of a 2xx answer or raise ModelEngineError.

        ``options``: ``retry=False`` disables retries (callers that must not repeat a write on an ambiguous
        failure handle it themselves, e.g. re-check by name before re-posting a create); ``timeout``.
        """
        url = self.url_for(path, params)
        headers = {"Accept": "application/json"}
        if self.auth_header:
            headers["Authorization"] = self.auth_header
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        max_attempts = 1 + (self.retries if options.get("retry", True) else 0)
        for attempt in range(1, max_attempts + 1):
            kind, value = self._send(method, url, data, headers, options.get("timeout") or self.timeout)
            if kind == "ok":
                return value
            if kind == "final":
                status, payload, reason = value
                raise ModelEngineError("%s %s returned HTTP %s: %s" % (method, path, status, error_detail(payload) or reason),
                                       status=status, body=payload, method=method, url=url, attempts=attempt)
            if attempt == max_attempts:
                raise self._exhausted(method, path, url, attempt, value)
            delay = self.backoff(attempt - 1, value[2])
            if self.on_retry:
                self.on_retry(method, path, attempt, value[3], delay)
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path, params=None, **kw):
        return self.request("GET", path, params=params, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)
