from __future__ import annotations

import pytest

from tests.unit.fake_gateway import FakeGateway


@pytest.fixture
def gateway():
    with FakeGateway() as gw:
        yield gw
