from __future__ import annotations

import pytest

from tests.unit.fake_gateway import FakeGateway


@pytest.fixture
def gateway():
    with FakeGateway() as gw:
        yield gw


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-protocol server (moto in server mode) on a free loopback port."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield "http://127.0.0.1:%d" % port
    server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """An empty bucket on the moto server, and a boto3 client for it."""
    import uuid

    import boto3

    client = boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")
    name = "ckpt-%s" % uuid.uuid4().hex[:12]
    client.create_bucket(Bucket=name)
    return client, name
