"""module_utils.registry against a tiny local registry: token flow, basic auth, error documents, pull secrets, TLS."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.odp.model_engine.plugins.module_utils import registry as reg
from ansible_collections.odp.model_engine.plugins.module_utils.registry import (
    ACCEPT,
    RegistryClient,
    RegistryError,
    dockerconfig_credentials,
    image_info,
    parse_challenge,
    parse_image,
    registry_errors,
)

OCI = "application/vnd.oci.image.manifest.v1+json"
REPO = "odp-development/oman-national-llm/model-engine"


class FakeRegistry:
    """Distribution's answers, enough of them: manifests, 401 challenges, a token realm, error documents."""

    def __init__(self, auth="bearer", users=None, tls=None, digest_on_head=True):
        self.auth = auth
        self.users = users if users is not None else {"puller": "s3cret"}
        self.manifests = {}
        self.requests = []
        self.digest_on_head = digest_on_head
        self.fail_with = None   # (status, body) for every manifest request
        self.generation = 1     # tokens of an older generation have expired
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                outer.handle(self, head=True)

            def do_GET(self):
                outer.handle(self, head=False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = "%s://127.0.0.1:%d" % (scheme, self.httpd.server_address[1])
        self.realm = self.url + "/token"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def push(self, repo, tag, body=None, media_type=OCI):
        body = body or json.dumps({"schemaVersion": 2, "mediaType": media_type, "tag": tag}).encode()
        self.manifests[(repo, tag)] = (media_type, body)
        return "sha256:" + hashlib.sha256(body).hexdigest()

    # ---- HTTP
    @staticmethod
    def send(h, status, body=b"", headers=None, head=False):
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    @staticmethod
    def error(code, message, detail=None):
        return json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()

    def user_of(self, header):
        if not header or not header.startswith("Basic "):
            return None
        user, _sep, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if self.users.get(user) == password else False

    def handle(self, h, head):
        url = urllib.parse.urlsplit(h.path)
        self.requests.append({"method": h.command, "path": url.path, "query": urllib.parse.parse_qs(url.query),
                              "headers": dict(h.headers)})
        if url.path == "/token":
            return self.token(h, urllib.parse.parse_qs(url.query))
        if not url.path.startswith("/v2/") or "/manifests/" not in url.path:
            return self.send(h, 404, self.error("NOT_FOUND", "not found"), head=head)
        repo, _sep, ref = url.path[4:].partition("/manifests/")
        if not self.authorized(h, repo, head):
            return None
        if self.fail_with:
            return self.send(h, self.fail_with[0], self.fail_with[1], {"Content-Type": "application/json"}, head=head)
        found = self.manifests.get((repo, ref))
        if found is None:
            return self.send(h, 404, self.error("MANIFEST_UNKNOWN", "manifest unknown", {"Tag": ref}),
                             {"Content-Type": "application/json"}, head=head)
        media_type, body = found
        headers = {"Content-Type": media_type}
        if self.digest_on_head or not head:
            headers["Docker-Content-Digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
        return self.send(h, 200, body, headers, head=head)

    def authorized(self, h, repo, head):
        header = h.headers.get("Authorization")
        scope = "repository:%s:pull" % repo
        if self.auth == "none":
            return True
        if self.auth == "basic":
            if self.user_of(header):
                return True
            self.send(h, 401, self.error("UNAUTHORIZED", "authentication required"),
                      {"WWW-Authenticate": 'Basic realm="fake-registry"'}, head=head)
            return False
        if header == "Bearer tok-granted-%s-%d" % (repo, self.generation):
            return True
        challenge = 'Bearer realm="%s",service="fake-registry",scope="%s"' % (self.realm, scope)
        if header and header.startswith("Bearer "):
            challenge += ',error="insufficient_scope"'
        self.send(h, 401, self.error("UNAUTHORIZED", "authentication required"), {"WWW-Authenticate": challenge}, head=head)
        return False

    def token(self, h, query):
        user = self.user_of(h.headers.get("Authorization"))
        if user is False:
            return self.send(h, 401, self.error("UNAUTHORIZED", "invalid username or password"))
        scope = query.get("scope", [""])[0]
        repo = scope.split(":")[1] if scope.count(":") >= 2 else ""
        token = "tok-granted-%s-%d" % (repo, self.generation) if user else "tok-anonymous"
        return self.send(h, 200, json.dumps({"token": token, "expires_in": 300}).encode(), {"Content-Type": "application/json"})

    def manifest_requests(self):
        return [r for r in self.requests if "/manifests/" in r["path"]]


@pytest.fixture
def fake():
    with FakeRegistry() as r:
        yield r


def client(fake, user="puller", password="s3cret", **kw):
    return RegistryClient(fake.url, user, password if user else None, timeout=5, **kw)


# ---------------------------------------------------------------------------------------------- token flow
def test_bearer_token_flow_with_basic_credentials_and_a_cached_token(fake):
    digest = fake.push(REPO, "onprem20")
    fake.push(REPO, "onprem19")
    c = client(fake)
    got = c.manifest(REPO, "onprem20")
    assert got == {"exists": True, "status": 200, "digest": digest, "media_type": OCI, "message": "found"}
    first, token_req, retried = fake.requests[:3]
    assert first["method"] == "HEAD" and "Authorization" not in first["headers"]
    assert first["headers"]["Accept"] == ACCEPT and all(t in ACCEPT for t in reg.MANIFEST_TYPES)
    assert token_req["path"] == "/token"
    assert token_req["query"] == {"service": ["fake-registry"], "scope": ["repository:%s:pull" % REPO]}
    assert base64.b64decode(token_req["headers"]["Authorization"].split()[1]) == b"puller:s3cret"
    assert retried["headers"]["Authorization"] == "Bearer tok-granted-%s-1" % REPO
    assert c.manifest(REPO, "onprem19")["exists"] is True
    assert c.token_requests == 1                       # same realm/service/scope: the token is reused
    assert len(fake.manifest_requests()) == 3          # and sent at once: no second challenge
    fake.generation = 2                                # the token expired: one new challenge, one new token
    assert c.manifest(REPO, "onprem20")["exists"] is True
    assert c.token_requests == 2 and fake.manifest_requests()[-1]["headers"]["Authorization"] == "Bearer tok-granted-%s-2" % REPO


def test_token_service_refusing_the_password_is_an_error_with_its_answer(fake):
    fake.push(REPO, "onprem20")
    with pytest.raises(RegistryError) as err:
        client(fake, password="wrong").manifest(REPO, "onprem20")
    assert "token service %s refused the credentials (HTTP 401)" % fake.realm in str(err.value)
    assert "UNAUTHORIZED: invalid username or password" in str(err.value)


def test_anonymous_token_without_access_reports_insufficient_scope(fake):
    fake.push(REPO, "onprem20")
    with pytest.raises(RegistryError) as err:
        client(fake, user=None).manifest(REPO, "onprem20")
    assert err.value.status == 401
    assert str(err.value) == ("registry %s answered HTTP 401 for %s:onprem20: UNAUTHORIZED: authentication required "
                              "(insufficient_scope)" % (fake.url, REPO))


# ---------------------------------------------------------------------------------------------- basic auth
def test_basic_auth_challenge_is_answered_with_the_credentials():
    with FakeRegistry(auth="basic") as fake:
        digest = fake.push(REPO, "onprem20")
        assert client(fake).manifest(REPO, "onprem20")["digest"] == digest
        heads = [r for r in fake.manifest_requests() if r["method"] == "HEAD"]
        assert "Authorization" not in heads[0]["headers"]
        assert base64.b64decode(heads[1]["headers"]["Authorization"].split()[1]) == b"puller:s3cret"
        assert not [r for r in fake.requests if r["path"] == "/token"]


def test_basic_challenge_without_credentials_says_what_to_give():
    with FakeRegistry(auth="basic") as fake, pytest.raises(RegistryError) as err:
        client(fake, user=None).manifest(REPO, "onprem20")
    assert "requires authentication and no credentials were given (username/password or pull_secret)" in str(err.value)


# ---------------------------------------------------------------------------------------------- answers
def test_missing_manifest_carries_the_registry_error_document(fake):
    got = client(fake).manifest(REPO, "onprem99")
    assert got["exists"] is False and got["status"] == 404 and got["digest"] is None
    assert got["message"] == "HTTP 404 MANIFEST_UNKNOWN: manifest unknown (Tag=onprem99)"
    # HEAD first; the GET only to read the body the HEAD answer cannot have
    assert [r["method"] for r in fake.manifest_requests()] == ["HEAD", "HEAD", "GET"]


def test_digest_is_computed_when_head_leaves_it_out():
    with FakeRegistry(auth="none", digest_on_head=False) as fake:
        body = b'{"schemaVersion":2}'
        fake.push(REPO, "t", body=body)
        assert client(fake, user=None).manifest(REPO, "t")["digest"] == "sha256:" + hashlib.sha256(body).hexdigest()


def test_server_error_is_an_error_not_a_missing_image():
    with FakeRegistry(auth="none") as fake:
        fake.fail_with = (503, FakeRegistry.error("UNAVAILABLE", "service unavailable"))
        with pytest.raises(RegistryError) as err:
            client(fake, user=None).manifest(REPO, "onprem20")
        assert err.value.status == 503 and "HTTP 503" in str(err.value) and "UNAVAILABLE: service unavailable" in str(err.value)


def test_connection_refused_is_an_error():
    with FakeRegistry(auth="none") as fake:
        url = fake.url
    with pytest.raises(RegistryError) as err:
        RegistryClient(url, timeout=2).manifest(REPO, "onprem20")
    assert "HEAD %s/v2/%s/manifests/onprem20 failed" % (url, REPO) in str(err.value)


def test_registry_errors_shapes():
    assert registry_errors(b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry",'
                           b'"detail":{"name":"x/y"}}]}') == "NAME_UNKNOWN: repository name not known to registry (name=x/y)"
    assert registry_errors(b"<html>gateway timeout</html>") == "<html>gateway timeout</html>"
    assert registry_errors(b"") == ""


# ---------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("image, expected", [
    ("registry.odp.om/odp-development/oman-national-llm/model-engine:onprem20",
     ("registry.odp.om", REPO, "onprem20", "onprem20")),
    ("127.0.0.1:5000/a/b", ("127.0.0.1:5000", "a/b", "latest", "latest")),
    ("localhost/x:1", ("localhost", "x", "1", "1")),
    ("ubuntu", ("docker.io", "library/ubuntu", "latest", "latest")),
    ("bitnami/redis:7.2", ("docker.io", "bitnami/redis", "7.2", "7.2")),
    ("registry.odp.om/a/b@sha256:" + "a" * 64, ("registry.odp.om", "a/b", None, "sha256:" + "a" * 64)),
])
def test_parse_image(image, expected):
    got = parse_image(image)
    assert (got["host"], got["repository"], got["tag"], got["reference"]) == expected


@pytest.mark.parametrize("image", ["", "registry.odp.om/A/B:1", "registry.odp.om/a:bad tag", "x@sha256:zz", " x"])
def test_parse_image_refuses(image):
    with pytest.raises(RegistryError):
        parse_image(image)


def test_parse_challenge_keeps_commas_inside_quotes():
    scheme, params = parse_challenge('Bearer realm="https://h/service/token",service="harbor-registry",'
                                     'scope="repository:a/b:pull,push",error="insufficient_scope"')
    assert scheme == "bearer"
    assert params == {"realm": "https://h/service/token", "service": "harbor-registry",
                      "scope": "repository:a/b:pull,push", "error": "insufficient_scope"}
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})


# ---------------------------------------------------------------------------------------------- dockerconfigjson
def _auth(user, password):
    return base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


@pytest.mark.parametrize("key", ["registry.odp.om", "https://registry.odp.om", "https://registry.odp.om/v1/", "REGISTRY.odp.om"])
def test_dockerconfigjson_keys_as_docker_login_writes_them(key):
    config = {"auths": {"other.example": {"auth": _auth("no", "no")}, key: {"auth": _auth("robot$ci", "pa:ss")}}}
    assert dockerconfig_credentials(json.dumps(config), ["registry.odp.om"]) == ("robot$ci", "pa:ss")


def test_dockerconfigjson_username_password_fields_legacy_dockercfg_and_docker_hub_aliases():
    assert dockerconfig_credentials({"auths": {"r.example": {"username": "u", "password": "p"}}}, ["r.example"]) == ("u", "p")
    assert dockerconfig_credentials({"r.example": {"auth": _auth("u", "p")}}, ["r.example"]) == ("u", "p")  # .dockercfg
    assert dockerconfig_credentials({"auths": {"https://index.docker.io/v1/": {"auth": _auth("d", "h")}}}, ["docker.io"]) == ("d", "h")
    # the image's host first, then the fallback (e.g. the host of registry_url)
    both = {"auths": {"127.0.0.1:5000": {"auth": _auth("local", "x")}, "registry.odp.om": {"auth": _auth("odp", "y")}}}
    assert dockerconfig_credentials(both, ["registry.odp.om", "127.0.0.1:5000"]) == ("odp", "y")
    assert dockerconfig_credentials(both, ["nothere.example"]) is None


@pytest.mark.parametrize("config, msg", [
    ("{not json", "not valid JSON"),
    ({"auths": {"r.example": {"auth": "!!!"}}}, "'auth' is not base64 of user:password"),
    ({"auths": {"r.example": {"identitytoken": "abc"}}}, "identity token"),
    ({"auths": {"r.example": {"email": "x@y"}}}, "neither 'auth' nor 'username'/'password'"),
])
def test_dockerconfigjson_refuses(config, msg):
    with pytest.raises(RegistryError) as err:
        dockerconfig_credentials(config, ["r.example"])
    assert msg in str(err.value)


def _secret(type_, config):
    return {"kind": "Secret", "type": type_, "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}}


def test_pull_secret_credentials_through_the_kubernetes_client(monkeypatch, fake):
    from ansible_collections.odp.model_engine.plugins.module_utils import kube

    digest = fake.push(REPO, "onprem20")
    host = fake.url.split("://")[1]
    secrets = {("llm-core", "pull"): _secret("kubernetes.io/dockerconfigjson",
                                             {"auths": {"registry.odp.om": {"auth": _auth("puller", "s3cret")}}}),
               ("llm-core", "opaque"): _secret("Opaque", {}),
               ("llm-core", "elsewhere"): _secret("kubernetes.io/dockerconfigjson", {"auths": {"x.example": {"auth": _auth("a", "b")}}})}
    read = []

    class FakeKube:
        """Kube.get as the API server answers: the Secret, or None for a 404."""

        def __init__(self, params):
            pass

        def get(self, kind, name, namespace):
            assert kind == "Secret"
            read.append((namespace, name))
            return secrets.get((namespace, name))

    monkeypatch.setattr(kube, "Kube", FakeKube)
    params = {"images": ["registry.odp.om/%s:onprem20" % REPO, "registry.odp.om/%s:onprem99" % REPO], "registry_url": fake.url,
              "pull_secret": "pull", "namespace": "llm-core", "timeout": 5}
    no_log = set()
    out = image_info(params, no_log)
    assert [i["exists"] for i in out["images"]] == [True, False] and out["images"][0]["digest"] == digest
    assert out["missing"] == ["registry.odp.om/%s:onprem99" % REPO] and out["all_exist"] is False
    assert out["message"] == ("1 image(s) not in the registry: registry.odp.om/%s:onprem99 (HTTP 404 MANIFEST_UNKNOWN: "
                              "manifest unknown (Tag=onprem99) at %s)" % (REPO, fake.url))
    assert read == [("llm-core", "pull")]                      # read once for both images
    assert "s3cret" in no_log and _auth("puller", "s3cret") in no_log
    for name, msg in (("missing", "pull secret llm-core/missing: not found"),
                      ("opaque", "is of type Opaque, not kubernetes.io/dockerconfigjson"),
                      ("elsewhere", "has no credentials for registry.odp.om or %s" % host)):
        with pytest.raises(RegistryError) as err:
            image_info(dict(params, pull_secret=name))
        assert msg in str(err.value)


# ---------------------------------------------------------------------------------------------- TLS
@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-registry-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return str(d / "cert.pem"), str(d / "key.pem")


def test_tls_is_verified_and_a_ca_bundle_makes_it_pass(tls_files):
    with FakeRegistry(auth="none", tls=tls_files) as fake:
        fake.push(REPO, "onprem20")
        with pytest.raises(RegistryError) as err:
            RegistryClient(fake.url, timeout=5).manifest(REPO, "onprem20")
        assert "CERTIFICATE_VERIFY_FAILED" in str(err.value) or "certificate" in str(err.value).lower()
        assert RegistryClient(fake.url, ca_path=tls_files[0], timeout=5).manifest(REPO, "onprem20")["exists"] is True
        assert RegistryClient(fake.url, validate_certs=False, timeout=5).manifest(REPO, "onprem20")["exists"] is True


def test_registry_url_must_be_http():
    with pytest.raises(RegistryError):
        RegistryClient("127.0.0.1:5000")
    assert reg.registry_base_url("docker.io") == "https://registry-1.docker.io"
    assert reg.registry_base_url("registry.odp.om") == "https://registry.odp.om"
    assert reg.registry_base_url("registry.odp.om", "http://127.0.0.1:5000") == "http://127.0.0.1:5000"
