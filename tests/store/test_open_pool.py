"""A pool that cannot open says why, not only that it timed out."""

from __future__ import annotations

import pytest

from energyhub.errors import DatabaseUnavailableError
from energyhub.store.db import open_pool
from energyhub.store.embedded import free_port


async def test_an_unreachable_database_is_named_with_the_cause() -> None:
    url = f"postgresql://energyhub:s3cret@127.0.0.1:{free_port()}/energyhub"
    with pytest.raises(DatabaseUnavailableError) as caught:
        async with open_pool(url, timeout_s=1):
            pass
    message = str(caught.value)
    assert "Connection refused" in message, message
    assert "initialization incomplete" not in message
    assert "s3cret" not in message and ":***@" in message
