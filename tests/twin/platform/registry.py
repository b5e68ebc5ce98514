"""The twin's container registry: a real CNCF distribution registry (Debian's ``docker-registry``).

``RegistryServer`` runs ``docker-registry serve`` as a child process (free port, filesystem storage under the
state dir, ``storage.delete.enabled``) under the same watchdog as the S3 server, so a killed test run leaves no
orphaned registry.  Authentication is, by default, the Docker token flow a Harbor-like registry uses:
``401 WWW-Authenticate: Bearer realm=…,service=…,scope=…`` from the registry, a token endpoint (``TokenIssuer``,
a thread in the twin process) that checks basic credentials and answers an RS256 JWT the registry verifies
against its ``rootcertbundle``.  ``auth="htpasswd"`` (basic auth) and ``auth="none"`` exist for tests.

``Registry`` is what the rest of the twin uses: ``exists`` asks the real registry (``HEAD
/v2/<repo>/manifests/<tag>``, cached for ``cache_seconds``), ``add`` pushes a manifest (config blob upload +
OCI manifest ``PUT``), ``remove`` deletes the manifest by digest; ``is_broken`` (an image that exists but
crashes, a twin behaviour rather than a registry fact) stays in memory.  Image names use the on-prem host
``registry.odp.om``; the twin maps that host (and the server's own ``127.0.0.1:<port>``) to the local server.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .config import DEFAULT_BROKEN_IMAGES, DEFAULT_IMAGES, REGISTRY
from .s3 import _WATCHDOG, free_port

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))

PULL_USER, PULL_PASSWORD = "twin-puller", "twin-pull-password"      # in the cluster's pull Secret
ADMIN_USER, ADMIN_PASSWORD = "twin-admin", "twin-admin-password"    # pushes and deletes (twin.registry.add/remove)
# bcrypt (cost 4) of the two passwords above, as `htpasswd -B` writes them (distribution accepts only bcrypt).
HTPASSWD = {PULL_USER: "$2b$04$1MyNCGWAjV9YFNSvviz9.u.dIcOOBVxgEU822XS332BFU7I11Fa62",
            ADMIN_USER: "$2b$04$YlUc9QeimdyaKtfjkNl/cOxGmVVQUhvthyG3TPUVQByu2z5i8TeWu"}
RIGHTS = {PULL_USER: {"pull"}, ADMIN_USER: {"pull", "push", "delete", "*"}}
PULL_SECRET_NAME = "registry-odp-om-pull"
TOKEN_SERVICE = REGISTRY
TOKEN_ISSUER = "twin-registry-token-issuer"
TOKEN_SECONDS = 300


def registry_binary() -> str | None:
    return shutil.which("docker-registry") or next(
        (p for p in ("/usr/bin/docker-registry", "/usr/sbin/docker-registry") if os.access(p, os.X_OK)), None)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parse_image(image: str) -> tuple[str, str, str]:
    """``host/repo/path:tag`` or ``host/repo@sha256:…`` -> (host, repository, tag-or-digest)."""
    name, ref = image, "latest"
    if "@" in image:
        name, ref = image.split("@", 1)
    elif ":" in image.rsplit("/", 1)[-1]:
        name, ref = image.rsplit(":", 1)
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        return "docker.io", name if rest else f"library/{name}", ref
    return first, rest, ref


def pull_secret(namespace: str, server_url: str | None = None, name: str = PULL_SECRET_NAME) -> dict:
    """A ``kubernetes.io/dockerconfigjson`` Secret with the pull credentials for ``registry.odp.om``."""
    auth = base64.b64encode(f"{PULL_USER}:{PULL_PASSWORD}".encode()).decode()
    auths = {REGISTRY: {"username": PULL_USER, "password": PULL_PASSWORD, "auth": auth}}
    if server_url:
        auths[server_url.split("://", 1)[-1]] = dict(auths[REGISTRY])
    data = json.dumps({"auths": auths}).encode()
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": name, "namespace": namespace},
            "data": {".dockerconfigjson": base64.b64encode(data).decode()}}


# ---- token endpoint ----------------------------------------------------------------------------------------------
class TokenIssuer:
    """The registry's token service: RS256 JWTs with the certificate in ``x5c``, as distribution verifies them."""

    def __init__(self, state_dir: Path):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                .sign(self.key, hashes.SHA256()))
        self.cert_path = Path(state_dir) / "token-cert.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.httpd: ThreadingHTTPServer | None = None
        self.realm: str | None = None
        self.requests = 0   # token requests served (tests: the client really went through the realm)

    def mint(self, subject: str, access: list[dict], seconds: int = TOKEN_SECONDS) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": self._x5c}
        claims = {"iss": TOKEN_ISSUER, "sub": subject, "aud": TOKEN_SERVICE, "exp": now + seconds, "nbf": now - 5,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{_b64url(signature)}"

    @staticmethod
    def grant(user: str | None, scopes: list[str]) -> list[dict]:
        """``repository:<name>:<actions>`` scopes cut down to what the user may do (anonymous: nothing)."""
        rights = RIGHTS.get(user or "", set())
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = [a for a in actions.split(",") if a and (a in rights or "*" in rights)]
            if kind == "repository" and name:
                access.append({"type": kind, "name": name, "actions": allowed})
        return access

    def authenticate(self, header: str | None) -> tuple[bool, str | None]:
        """(credentials acceptable, user): no header is anonymous, wrong credentials are refused."""
        if not header:
            return True, None
        if not header.lower().startswith("basic "):
            return False, None
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except ValueError:
            return False, None
        ok = {PULL_USER: PULL_PASSWORD, ADMIN_USER: ADMIN_PASSWORD}.get(user) == password
        return ok, user if ok else None

    def start(self) -> str:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _json(self, status: int, body: dict, headers: dict | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/service/token":
                    return self._json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})
                query = urllib.parse.parse_qs(url.query)
                if query.get("service", [None])[0] != TOKEN_SERVICE:
                    return self._json(400, {"errors": [{"code": "INVALID_REQUEST",
                                                        "message": f"unknown service {query.get('service')}"}]})
                ok, user = issuer.authenticate(self.headers.get("Authorization"))
                if not ok:
                    return self._json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required: "
                                                        "invalid username or password"}]},
                                      {"WWW-Authenticate": f'Basic realm="{TOKEN_SERVICE}"'})
                issuer.requests += 1
                token = issuer.mint(user or "", issuer.grant(user, query.get("scope", [])))
                issued = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                return self._json(200, {"token": token, "access_token": token, "expires_in": TOKEN_SECONDS,
                                        "issued_at": issued})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, name="twin-registry-token", daemon=True).start()
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/service/token"
        return self.realm

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


# ---- the registry process --------------------------------------------------------------------------------------------
class RegistryServer:
    """``docker-registry serve`` on 127.0.0.1:<free port>; ``url`` is valid after ``start()``."""

    def __init__(self, state_dir: Path, auth: str = "token"):
        if auth not in ("token", "htpasswd", "none"):
            raise ValueError(f"unknown registry auth {auth!r}")
        self.state_dir = Path(state_dir)
        self.auth = auth
        self.port: int | None = None
        self.url: str | None = None
        self.proc: subprocess.Popen | None = None
        self.tokens: TokenIssuer | None = None
        self._token_cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def realm(self) -> str | None:
        return self.tokens.realm if self.tokens else None

    def _config(self) -> str:
        data = self.state_dir / "data"
        lines = ["version: 0.1", "log:", "  level: warn", "  accesslog:", "    disabled: true", "storage:",
                 "  filesystem:", f"    rootdirectory: {json.dumps(str(data))}", "  delete:", "    enabled: true",
                 "  maintenance:", "    uploadpurging:", "      enabled: false", "http:",
                 f"  addr: 127.0.0.1:{self.port}", "  secret: twin-registry-http-secret"]
        if self.auth == "htpasswd":
            htpasswd = self.state_dir / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{h}\n" for u, h in HTPASSWD.items()))
            lines += ["auth:", "  htpasswd:", f"    realm: {TOKEN_SERVICE}", f"    path: {json.dumps(str(htpasswd))}"]
        elif self.auth == "token":
            lines += ["auth:", "  token:", f"    realm: {self.tokens.realm}", f"    service: {TOKEN_SERVICE}",
                      f"    issuer: {TOKEN_ISSUER}", f"    rootcertbundle: {json.dumps(str(self.tokens.cert_path))}"]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 20.0) -> None:
        binary = registry_binary()
        if not binary:
            raise RuntimeError("docker-registry not found: `apt-get install -y docker-registry` "
                               "(scripts/install_registry.sh, run by `make tools`)")
        shutil.rmtree(self.state_dir / "data", ignore_errors=True)   # a fresh registry per twin start
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.auth == "token":
            self.tokens = TokenIssuer(self.state_dir)
            self.tokens.start()
        self.port = free_port()
        config = self.state_dir / "config.yml"
        config.write_text(self._config())
        log = open(self.state_dir / "registry.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-c", _WATCHDOG, binary, "serve", str(config)], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited with {self.proc.returncode}; see "
                                   f"{self.state_dir / 'registry.log'}")
            try:
                if self.request("GET", "/v2/", auth=False)[0] in (200, 401):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer within {timeout}s")

    def stop(self) -> None:
        if self.proc:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=5)
            self.proc = None
        if self.tokens:
            self.tokens.stop()

    # ---- HTTP (the twin itself acts as the admin user) -------------------------------------------------------------
    def _authorization(self, repo: str | None) -> str | None:
        if self.auth == "htpasswd":
            return "Basic " + base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
        if self.auth != "token":
            return None
        scope = f"repository:{repo}:pull,push,delete" if repo else "registry:catalog:*"
        with self._lock:
            token, expires = self._token_cache.get(scope, (None, 0.0))
            if token is None or expires < time.monotonic() + 10:
                access = (TokenIssuer.grant(ADMIN_USER, [scope]) if repo
                          else [{"type": "registry", "name": "catalog", "actions": ["*"]}])
                token = self.tokens.mint(ADMIN_USER, access)
                self._token_cache[scope] = (token, time.monotonic() + TOKEN_SECONDS)
        return "Bearer " + token

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                repo: str | None = None, auth: bool = True, timeout: float = 5.0) -> tuple[int, dict, bytes]:
        url = urllib.parse.urlsplit(path if path.startswith("http") else self.url + path)
        hdrs = dict(headers or {})
        if auth and (authorization := self._authorization(repo)):
            hdrs["Authorization"] = authorization
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
        try:
            conn.request(method, url.path + (f"?{url.query}" if url.query else ""), body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def head_manifest(self, repo: str, ref: str) -> tuple[int, str | None]:
        status, headers, _ = self.request("HEAD", f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT},
                                          repo=repo, timeout=2.0)
        return status, headers.get("docker-content-digest")

    def push(self, repo: str, tag: str) -> str:
        """Upload a config blob and an OCI image manifest without layers; returns the manifest digest.

        The config names the tag, so every tag has its own manifest digest (deleting one tag by digest does not
        delete another tag of the same repository)."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                             "config": {"Labels": {"org.opencontainers.image.version": tag,
                                                   "org.opencontainers.image.ref.name": f"{REGISTRY}/{repo}:{tag}"}}},
                            sort_keys=True).encode()
        digest = "sha256:" + hashlib.sha256(config).hexdigest()
        status, headers, body = self.request("POST", f"/v2/{repo}/blobs/uploads/", b"", repo=repo)
        if status != 202:
            raise RuntimeError(f"blob upload start for {repo}: {status} {body[:300]!r}")
        location = headers["location"]
        sep = "&" if "?" in location else "?"
        status, _, body = self.request("PUT", f"{location}{sep}digest={digest}", config,
                                       {"Content-Type": "application/octet-stream"}, repo=repo)
        if status != 201:
            raise RuntimeError(f"blob upload of {repo} config: {status} {body[:300]!r}")
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest,
                                          "size": len(config)}}).encode()
        status, headers, body = self.request("PUT", f"/v2/{repo}/manifests/{tag}", manifest,
                                             {"Content-Type": OCI_MANIFEST}, repo=repo)
        if status != 201:
            raise RuntimeError(f"manifest PUT {repo}:{tag}: {status} {body[:300]!r}")
        return headers.get("docker-content-digest") or ""

    def delete(self, repo: str, ref: str) -> bool:
        """Delete the manifest a tag points to (distribution deletes manifests by digest only)."""
        status, digest = self.head_manifest(repo, ref)
        if status != 200 or not digest:
            return False
        status, _, body = self.request("DELETE", f"/v2/{repo}/manifests/{digest}", repo=repo)
        if status not in (202, 404):
            raise RuntimeError(f"manifest DELETE {repo}@{digest}: {status} {body[:300]!r}")
        return status == 202

    def tags(self) -> dict[str, list[str]]:
        status, _, body = self.request("GET", "/v2/_catalog?n=1000")
        repos = json.loads(body).get("repositories") or [] if status == 200 else []
        out = {}
        for repo in repos:
            status, _, body = self.request("GET", f"/v2/{repo}/tags/list", repo=repo)
            if status == 200:
                out[repo] = sorted(json.loads(body).get("tags") or [])
        return out


# ---- what the twin asks ---------------------------------------------------------------------------------------------
class Registry:
    """Image existence from the real registry; ``is_broken`` from the twin's own table."""

    def __init__(self, images=None, broken=None, cache_seconds: float = 1.0):
        self._lock = threading.Lock()
        self.seed_images = set(DEFAULT_IMAGES if images is None else images)
        self.broken = set(DEFAULT_BROKEN_IMAGES if broken is None else broken)
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[bool, float]] = {}
        self.server: RegistryServer | None = None

    def attach(self, server: RegistryServer) -> None:
        """Use that running server and push the seed images into it."""
        self.server = server
        for image in sorted(self.seed_images):
            self.add(image, broken=image in self.broken)

    def _local(self, image: str) -> tuple[str, str] | None:
        host, repo, ref = parse_image(image)
        local = self.server.url.split("://", 1)[1] if self.server and self.server.url else None
        return (repo, ref) if host in (REGISTRY, local) else None

    def exists(self, image: str) -> bool:
        target = self._local(image)
        if target is None or self.server is None:
            return False   # no other registry is reachable from the twin
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(image)
            if hit and hit[1] > now:
                return hit[0]
        try:
            found = self.server.head_manifest(*target)[0] == 200
        except OSError:
            found = False   # registry unreachable: the pull fails
        with self._lock:
            self._cache[image] = (found, now + self.cache_seconds)
        return found

    def is_broken(self, image: str) -> bool:
        with self._lock:
            return image in self.broken

    def add(self, image: str, broken: bool = False) -> str:
        target = self._local(image)
        if target is None or self.server is None:
            raise ValueError(f"{image}: the twin only serves images of {REGISTRY}")
        digest = self.server.push(*target)
        with self._lock:
            self._cache.pop(image, None)
            if broken:
                self.broken.add(image)
            else:
                self.broken.discard(image)
        return digest

    def remove(self, image: str) -> None:
        target = self._local(image)
        if target is not None and self.server is not None:
            self.server.delete(*target)
        with self._lock:
            self._cache.pop(image, None)

    def snapshot(self) -> dict:
        tags = self.server.tags() if self.server else {}
        images = [f"{REGISTRY}/{repo}:{tag}" for repo, ts in tags.items() for tag in ts]
        with self._lock:
            return {"images": sorted(images), "broken": sorted(self.broken)}
