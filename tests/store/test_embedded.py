import pytest

from energyhub.store.db import connect
from energyhub.store.embedded import EmbeddedPostgres, embedded_postgres


@pytest.mark.slow
async def test_private_cluster_starts_restarts_and_is_removed() -> None:
    async with embedded_postgres() as server:
        root = server.root
        async with connect(server.url) as conn:
            await conn.execute("CREATE TABLE kept (x int)")
            await conn.execute("INSERT INTO kept VALUES (42)")
        await server.stop()
        await server.start()
        async with connect(server.url) as conn:
            cur = await conn.execute("SELECT x FROM kept")
            assert await cur.fetchall() == [(42,)]
    assert not root.exists()


def test_url_points_at_its_own_port() -> None:
    server = EmbeddedPostgres(port=54999)
    try:
        assert server.url == "postgresql://postgres@127.0.0.1:54999/postgres"
        assert (server.bindir / "initdb").exists()
    finally:
        server.remove()
