# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ask an OCI distribution registry whether images exist, before anything on the cluster changes.

* ``HEAD /v2/<repository>/manifests/<tag or digest>`` with the ``Accept`` types of OCI and Docker v2
  manifests and indexes (a registry answers 404 for an OCI manifest the client does not accept).
* Authentication as a container runtime does it: the first request goes without credentials; a
  ``401`` with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` means GET a token from the
  realm (with basic credentials when there are any) and retry with it; ``WWW-Authenticate: Basic``
  means retry with basic credentials.
* Credentials from options or from a ``kubernetes.io/dockerconfigjson`` pull Secret on the cluster,
  looked up by the image's registry host (the key a kubelet would use), also when the request goes to
  ``registry_url`` (a mirror, or a local registry standing in for the image's host).
* A missing image is answered with the registry's own words: a ``HEAD`` has no body, so the manifest is
  fetched with ``GET`` to read the error document (``MANIFEST_UNKNOWN``, ``NAME_UNKNOWN``, ...).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode, urlsplit
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

from ansible_collections.odp.model_engine.plugins.module_utils.errors import KubeError, OdpError

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
ACCEPT = ", ".join(MANIFEST_TYPES)
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "https://registry-1.docker.io"
DOCKER_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io")
DOCKERCONFIG_TYPES = ("kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg")
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


class RegistryError(OdpError):
    """The registry (or its token service, or the pull Secret) could not answer; the message says why."""

    def __init__(self, message, status=None, url=None):
        super(RegistryError, self).__init__(message)
        self.status = status
        self.url = url


class MissingImages(OdpError):
    """Images the registry does not have (``fail_on_missing``); the result lists each with the registry's answer."""


# ---------------------------------------------------------------------------------------------- parsing
def parse_image(image):
    """``[host[:port]/]repository[:tag][@digest]`` -> dict(host, repository, reference, tag, digest).

    Like a container runtime: a first component without ``.``/``:`` (and not ``localhost``) is a Docker Hub
    namespace, a one-component name is ``library/<name>``, no tag means ``latest``."""
    if not image or not isinstance(image, str) or image != image.strip():
        raise RegistryError("image %r is not an image reference" % (image,))
    name, digest = image, None
    if "@" in image:
        name, digest = image.split("@", 1)
        if not _DIGEST.match(digest):
            raise RegistryError("image %s: %r is not a digest" % (image, digest))
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
        if not _TAG.match(tag):
            raise RegistryError("image %s: %r is not a valid tag" % (image, tag))
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, repository = first, rest
    else:
        host, repository = DOCKER_HUB, name if sep else "library/" + name
    if not repository or repository != repository.lower():
        raise RegistryError("image %s: repository %r must be lowercase and not empty" % (image, repository))
    if not tag and not digest:
        tag = "latest"
    return {"host": host, "repository": repository, "tag": tag, "digest": digest, "reference": digest or tag}


def image_tag(image):
    """The tag of ``host/repo:tag`` (``latest`` without one, the digest for ``@sha256:``)."""
    if not image:
        return None
    if "@" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def parse_challenge(header):
    """``Bearer realm="…",service="…",scope="repository:a/b:pull,push"`` -> ("bearer", {realm, service, scope})."""
    if not header:
        return None, {}
    parts = header.strip().split(" ", 1)
    scheme, rest = parts[0], parts[1] if len(parts) > 1 else ""
    params = {}
    for m in _CHALLENGE_PARAM.finditer(rest):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = value.replace('\\"', '"')
    return scheme.lower(), params


def registry_errors(body):
    """The ``errors`` of a distribution error document as one line: ``CODE: message (detail)``."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        doc = json.loads(body) if isinstance(body, str) else body
    except ValueError:
        return (body or "").strip()[:300]
    if not isinstance(doc, dict) or not isinstance(doc.get("errors"), list):
        return json.dumps(doc)[:300] if doc not in (None, "") else ""
    parts = []
    for err in doc["errors"]:
        if not isinstance(err, dict):
            continue
        text = "%s: %s" % (err.get("code"), err.get("message")) if err.get("code") else str(err.get("message"))
        detail = err.get("detail")
        if isinstance(detail, dict) and detail:
            text += " (%s)" % ", ".join("%s=%s" % kv for kv in sorted(detail.items()))
        parts.append(text)
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------- credentials
def _host_of(key):
    """A dockerconfig ``auths`` key (``host``, ``https://host``, ``https://host/v1/``) -> ``host``."""
    key = key.strip()
    if "://" in key:
        key = urlsplit(key).netloc
    return key.split("/", 1)[0].lower()


def _same_registry(key_host, host):
    host = host.lower()
    if key_host == host:
        return True
    return host in DOCKER_HUB_KEYS and key_host in DOCKER_HUB_KEYS


def _entry_credentials(entry, key):
    if entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(entry["auth"], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            sep = None
        if not sep:
            raise RegistryError("pull secret entry %s: 'auth' is not base64 of user:password" % key)
        return user, password
    if entry.get("username") is not None and entry.get("password") is not None:
        return entry["username"], entry["password"]
    if entry.get("identitytoken"):
        raise RegistryError("pull secret entry %s holds an identity token, which this check does not support; "
                            "give username/password" % key)
    raise RegistryError("pull secret entry %s has neither 'auth' nor 'username'/'password'" % key)


def dockerconfig_credentials(config, hosts):
    """(username, password) of the first of ``hosts`` found in a docker config (``{"auths": {...}}`` or the
    legacy ``.dockercfg`` map), or None. ``config`` is the decoded JSON or its text."""
    if isinstance(config, (bytes, str)):
        try:
            config = json.loads(config)
        except ValueError as e:
            raise RegistryError("pull secret is not valid JSON: %s" % e)
    if not isinstance(config, dict):
        raise RegistryError("pull secret is not a docker config object")
    auths = config.get("auths") if isinstance(config.get("auths"), dict) else config
    for host in hosts:
        for key, entry in auths.items():
            if isinstance(entry, dict) and _same_registry(_host_of(key), host):
                return _entry_credentials(entry, key)
    return None


def pull_secret_credentials(params, name, namespace, hosts):
    """Read the pull Secret ``namespace/name`` through the Kubernetes API -> (username, password)."""
    from ansible_collections.odp.model_engine.plugins.module_utils import kube

    try:
        secret = kube.Kube(params).get("Secret", name, namespace)
    except KubeError as e:
        raise RegistryError("pull secret %s/%s: %s" % (namespace, name, e), status=e.status)
    if secret is None:
        raise RegistryError("pull secret %s/%s: not found" % (namespace, name), status=404)
    data, kind = secret.get("data") or {}, secret.get("type")
    key = ".dockerconfigjson" if ".dockerconfigjson" in data else ".dockercfg"
    if kind not in DOCKERCONFIG_TYPES or key not in data:
        raise RegistryError("pull secret %s/%s is of type %s, not kubernetes.io/dockerconfigjson" % (namespace, name, kind))
    creds = dockerconfig_credentials(base64.b64decode(data[key]), hosts)
    if creds is None:
        raise RegistryError("pull secret %s/%s has no credentials for %s" % (namespace, name, " or ".join(hosts)))
    return creds


# ---------------------------------------------------------------------------------------------- HTTP
class RegistryClient(object):
    """One registry; tokens are kept per (realm, service, scope) for the client's life."""

    def __init__(self, base_url, username=None, password=None, **tls):
        """``tls``: ``validate_certs`` (true), ``ca_path``, ``timeout`` (30 s)."""
        if not base_url or not (base_url.startswith("http://") or base_url.startswith("https://")):
            raise RegistryError("registry URL %r must start with http:// or https://" % (base_url,))
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.validate_certs = tls.get("validate_certs", True)
        self.ca_path = tls.get("ca_path")
        self.timeout = tls.get("timeout", 30)
        self._tokens = {}
        self._authorization_of = {}   # repository -> the Authorization header that worked last
        self.token_requests = 0

    def _basic(self):
        raw = ("%s:%s" % (self.username, self.password)).encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _open(self, method, url, headers):
        """(status, headers, body); HTTP errors are answers, connection and TLS failures raise RegistryError."""
        try:
            resp = open_url(url, method=method, headers=headers, validate_certs=self.validate_certs, ca_path=self.ca_path,
                            timeout=self.timeout, follow_redirects="safe", use_proxy=True)
            return resp.getcode(), resp.headers, resp.read() if method != "HEAD" else b""
        except HTTPError as e:
            try:
                body = e.read() if method != "HEAD" else b""
            except Exception:  # pylint: disable=broad-except
                body = b""
            return e.code, e.headers, body or b""
        except (URLError, OSError, ValueError, UrlsConnectionError) as e:
            raise RegistryError("%s %s failed: %s" % (method, url, getattr(e, "reason", e)), url=url)

    def token(self, challenge, repository):
        """A bearer token from the challenge's realm for the challenge's scope (or pull on ``repository``)."""
        realm = challenge.get("realm")
        if not realm:
            raise RegistryError("registry %s asked for a bearer token without a realm" % self.base_url)
        scope = challenge.get("scope") or "repository:%s:pull" % repository
        key = (realm, challenge.get("service"), scope)
        if key in self._tokens:
            return self._tokens[key]
        query = [("scope", s) for s in scope.split(" ") if s]
        if challenge.get("service"):
            query.insert(0, ("service", challenge["service"]))
        url = "%s%s%s" % (realm, "&" if "?" in realm else "?", urlencode(query))
        headers = {"Accept": "application/json"}
        if self.username is not None:
            headers["Authorization"] = self._basic()
        self.token_requests += 1
        status, body = self._open("GET", url, headers)[::2]
        if status != 200:
            raise RegistryError("token service %s refused %s (HTTP %s): %s" % (
                realm, "the credentials" if self.username is not None else "an anonymous request", status,
                registry_errors(body) or "no detail"), status=status, url=realm)
        try:
            doc = json.loads(body.decode("utf-8"))
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise RegistryError("token service %s answered without a token" % realm, url=realm)
        self._tokens[key] = token
        return token

    def _authorization(self, challenge_header, repository):
        scheme, challenge = parse_challenge(challenge_header)
        if scheme == "bearer":
            return "Bearer " + self.token(challenge, repository)
        if scheme == "basic":
            if self.username is None:
                raise RegistryError("registry %s requires authentication and no credentials were given "
                                    "(username/password or pull_secret)" % self.base_url, status=401)
            return self._basic()
        raise RegistryError("registry %s answered 401 with an unsupported challenge %r" % (self.base_url, challenge_header),
                            status=401)

    def request(self, method, repository, reference):
        """(status, headers, body) of ``<method> /v2/<repository>/manifests/<reference>``, authenticated as needed.

        The Authorization that worked for a repository is sent again on the next request; a 401 to it (an
        expired token) starts the challenge over once."""
        url = "%s/v2/%s/manifests/%s" % (self.base_url, quote(repository, safe="/"), quote(reference, safe=":"))
        headers = {"Accept": ACCEPT}
        cached = self._authorization_of.pop(repository, None)
        if cached:
            headers["Authorization"] = cached
        status, hdrs, body = self._open(method, url, headers)
        if status == 401:
            if cached and cached.startswith("Bearer "):
                self._tokens = {k: v for k, v in self._tokens.items() if "Bearer " + v != cached}
            headers["Authorization"] = self._authorization(hdrs.get("WWW-Authenticate"), repository)
            status, hdrs, body = self._open(method, url, headers)
        if status != 401 and headers.get("Authorization"):
            self._authorization_of[repository] = headers["Authorization"]
        return status, hdrs, body

    def manifest(self, repository, reference):
        """dict(exists, status, digest, media_type, message) for one manifest."""
        status, hdrs = self.request("HEAD", repository, reference)[:2]
        if status == 200:
            digest = hdrs.get("Docker-Content-Digest")
            if not digest:  # some registries leave it out of HEAD: the digest of the manifest bytes is the same
                hdrs, body = self.request("GET", repository, reference)[1:]
                digest = hdrs.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()
            return {"exists": True, "status": 200, "digest": digest, "media_type": hdrs.get("Content-Type"),
                    "message": "found"}
        # HEAD has no body: ask again with GET for the registry's own error document
        get_status, get_hdrs, body = self.request("GET", repository, reference)
        answer = registry_errors(body) or "no detail"
        if status == 404 and get_status == 404:
            return {"exists": False, "status": 404, "digest": None, "media_type": None,
                    "message": "HTTP 404 %s" % answer}
        challenge = (get_hdrs.get("WWW-Authenticate") or hdrs.get("WWW-Authenticate") or "") if get_status in (401, 403) else ""
        why = parse_challenge(challenge)[1].get("error")
        raise RegistryError("registry %s answered HTTP %s for %s:%s: %s%s" % (
            self.base_url, get_status, repository, reference, answer, " (%s)" % why if why else ""), status=get_status)


# ---------------------------------------------------------------------------------------------- the check
def registry_base_url(host, override=None):
    if override:
        return override
    return DOCKER_HUB_API if host == DOCKER_HUB else "https://%s" % host


def _credentials(params, host, base_url, cache):
    if params.get("username") is not None:
        return params["username"], params.get("password") or ""
    if not params.get("pull_secret"):
        return None, None
    hosts = [host]
    override_host = urlsplit(base_url).netloc
    if override_host and override_host not in hosts:
        hosts.append(override_host)
    key = tuple(hosts)
    if key not in cache:
        cache[key] = pull_secret_credentials(params, params["pull_secret"], params["namespace"], hosts)
    return cache[key]


def image_info(params, secrets=None):
    """Check every image of ``params['images']``; returns the module result (no ``failed``/``changed`` keys).

    ``secrets`` (a module's ``no_log_values``) receives the password read from a pull Secret and its basic
    auth form. Raises RegistryError (or KubeError) when a registry, its token service or the pull Secret cannot
    answer: an image nobody could ask about is neither present nor missing."""
    clients, secret_cache, results = {}, {}, []
    for image in params["images"]:
        ref = parse_image(image)
        base_url = registry_base_url(ref["host"], params.get("registry_url"))
        username, password = _credentials(params, ref["host"], base_url, secret_cache)
        if secrets is not None and password:
            secrets.add(password)
            secrets.add(base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii"))
        key = (base_url, username)
        if key not in clients:
            clients[key] = RegistryClient(base_url, username, password, validate_certs=params.get("validate_certs", True),
                                          ca_path=params.get("ca_path"), timeout=params.get("timeout", 30))
        answer = clients[key].manifest(ref["repository"], ref["reference"])
        results.append(dict(answer, image=image, registry=base_url, repository=ref["repository"],
                            reference=ref["reference"]))
    missing = [r for r in results if not r["exists"]]
    return {"images": results, "missing": [r["image"] for r in missing], "all_exist": not missing,
            "message": missing_message(missing)}


def missing_message(missing):
    if not missing:
        return "every image exists in its registry"
    return "%d image(s) not in the registry: %s" % (len(missing), "; ".join(
        "%s (%s at %s)" % (r["image"], r["message"], r["registry"]) for r in missing))


def run(module):
    """registry_image_info: every image's answer; fails naming the missing ones when ``fail_on_missing``."""
    if module.params["pull_secret"]:
        module.require("kubernetes")
    result = image_info(module.params, module.no_log_values)
    if module.params["fail_on_missing"] and result["missing"]:
        error = MissingImages(result.pop("message"))
        error.result.update(result)
        raise error
    return dict(result, changed=False)
