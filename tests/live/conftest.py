from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

from tests.live import harness
from tests.live.harness import LiveStack, PrivateRedis

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="live stack: PostgreSQL")

private_redis = harness.private_redis  # the fixture, defined once in the harness


@pytest.fixture
def live(transactional_db: None, private_redis: PrivateRedis) -> Iterator[LiveStack]:
    stack = LiveStack(redis_url=private_redis.url)
    yield stack
    stack.stop()
