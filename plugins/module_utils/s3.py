# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3-compatible storage (Scality, MinIO, Ceph RGW, AWS) for checkpoints: client, listing, ETags.

* boto3 >= 1.36 adds CRC checksums to requests and validates them on responses by default, which
  many third-party S3 servers reject or do not return; the client is therefore built with
  ``request_checksum_calculation`` / ``response_checksum_validation`` = ``when_required``.
* Path-style addressing whenever a custom endpoint is given (what model-engine itself does).
* A multipart ETag ``"<md5 of part md5s>-N"`` can only be recomputed with the uploader's part size;
  it is learnt from one ``HEAD ?partNumber=1`` per object, never assumed.
* Timestamps in answers (``LastModified``) stay the ISO strings the server sent: nothing here reads them,
  and botocore's dateutil parse of each one is half the CPU of listing a large prefix (measured, 10,000
  objects; awscli sets the same identity parser, customizations/scalarparse.py).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re

from ansible_collections.odp.model_engine.plugins.module_utils.errors import S3Error

try:
    import boto3
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # the module's ModelEngineModule(requires=("boto3",)) reports it
    boto3 = None
    BotoCoreError = ClientError = Exception

# What model-engine's s5cmd download includes (facts §6); awscli `s3 sync` takes everything.
MODEL_ENGINE_INCLUDE = ("*.model", "*.model.v*", "*.json", "*.safetensors", "*.txt", "*.jinja")
MODEL_ENGINE_EXCLUDE = ("optimizer*",)
S3_URL_RE = re.compile(r"^s3://(?P<bucket>[^/]+)/?(?P<prefix>.*)$")


def parse_s3_url(url):
    """``s3://bucket/prefix/`` -> (bucket, "prefix/") with exactly one trailing slash (or "")."""
    m = S3_URL_RE.match(url or "")
    if not m or not m.group("bucket"):
        raise S3Error("checkpoint_path: %r is not an s3://bucket/prefix URL" % url)
    prefix = m.group("prefix").strip("/")
    return m.group("bucket"), (prefix + "/") if prefix else ""


def make_client(endpoint_url=None, **options):
    """A boto3 S3 client. ``options``: ``access_key``, ``secret_key``, ``session_token``, ``region`` (us-east-1),
    ``ca_bundle``, ``validate_certs`` (true), ``max_pool`` (32 connections)."""
    ca_bundle, validate_certs = options.get("ca_bundle"), options.get("validate_certs", True)
    verify = ca_bundle if (ca_bundle and validate_certs) else validate_certs
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"max_attempts": 5, "mode": "standard"},
        max_pool_connections=options.get("max_pool", 32),
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp_as_sent)
    session = boto3.session.Session(botocore_session=core, aws_access_key_id=options.get("access_key"), aws_secret_access_key=options.get("secret_key"),
                                    aws_session_token=options.get("session_token"), region_name=options.get("region") or "us-east-1")
    return session.client("s3", endpoint_url=endpoint_url or None, verify=verify, config=config)


def _timestamp_as_sent(value):
    return value


def client_from_params(p):
    return make_client(endpoint_url=p.get("s3_endpoint_url"), access_key=p.get("s3_access_key"),
                       secret_key=p.get("s3_secret_key"), session_token=p.get("s3_session_token"),
                       region=p.get("s3_region") or "us-east-1", ca_bundle=p.get("s3_ca_bundle"),
                       validate_certs=p.get("s3_validate_certs", True))


def describe_error(exc, what):
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        hint = {
            "AccessDenied": "check the access key and that it may read the bucket",
            "InvalidAccessKeyId": "the access key is not known to this S3 endpoint",
            "SignatureDoesNotMatch": "the secret key does not match the access key",
            "NoSuchBucket": "the bucket does not exist on this endpoint",
            "403": "access denied: check the credentials and the bucket policy",
            "404": "not found",
        }.get(str(code), "")
        return "%s failed: %s %s%s" % (what, code, err.get("Message") or "", (" (%s)" % hint) if hint else "")
    return "%s failed: %s" % (what, exc)


def list_prefix(client, bucket, prefix):
    """{key relative to prefix: {"size", "etag"}} of every object under the prefix."""
    out = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix):]
                if rel and not rel.endswith("/"):
                    out[rel] = {"size": obj["Size"], "etag": (obj.get("ETag") or "").strip('"')}
    except (BotoCoreError, ClientError) as e:
        raise S3Error(describe_error(e, "Listing s3://%s/%s" % (bucket, prefix)))
    return out


def get_json(client, bucket, key, max_bytes=64 * 1024 * 1024):
    import json

    try:
        obj = client.get_object(Bucket=bucket, Key=key)
        if obj.get("ContentLength", 0) > max_bytes:
            raise S3Error("s3://%s/%s is larger than %d bytes" % (bucket, key, max_bytes))
        return json.loads(obj["Body"].read().decode("utf-8"))
    except (BotoCoreError, ClientError) as e:
        raise S3Error(describe_error(e, "Reading s3://%s/%s" % (bucket, key)))
    except ValueError as e:
        raise S3Error("s3://%s/%s is not valid JSON: %s" % (bucket, key, e))


def multipart_count(etag):
    """N of a multipart ETag ``<hex>-N``, or 0 for a single-part (plain MD5) ETag."""
    m = re.match(r"^[0-9a-fA-F]{32}-(\d+)$", etag or "")
    return int(m.group(1)) if m else 0


def part_size(client, bucket, key):
    """Size of part 1 of a multipart object (every part but the last has that size)."""
    try:
        head = client.head_object(Bucket=bucket, Key=key, PartNumber=1)
    except (BotoCoreError, ClientError) as e:
        raise S3Error(describe_error(e, "HEAD s3://%s/%s?partNumber=1" % (bucket, key)))
    return int(head["ContentLength"])


def etag_from_part_md5s(part_md5s):
    """S3's multipart ETag from the hex MD5 of each part."""
    joined = b"".join(bytes.fromhex(h) for h in part_md5s)
    return "%s-%d" % (hashlib.md5(joined).hexdigest(), len(part_md5s))


def is_model_file(name, include=MODEL_ENGINE_INCLUDE, exclude=MODEL_ENGINE_EXCLUDE):
    """Whether the downloader fetches ``name`` (matched on the base name, like s5cmd's filters)."""
    base = name.rsplit("/", 1)[-1]
    if any(fnmatch.fnmatchcase(base, pat) for pat in exclude or ()):
        return False
    return any(fnmatch.fnmatchcase(base, pat) for pat in include or ("*",))
