"""Write keys keep working through a database outage (the API can still take events: in
the production mode they go to NATS), and unknown keys are still refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import postgres_servers
from sqlalchemy import create_engine

from polku.access.actions import create_write_key
from polku.access.queries import KeyCache
from polku.errors import Unavailable
from polku.storage.migrate import upgrade

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_a_known_write_key_works_while_the_database_is_down(tmp_path: Path) -> None:
    with postgres_servers(tmp_path) as start:
        server = start()
        engine = create_engine(server.url, connect_args={"connect_timeout": 2})
        try:
            upgrade(engine)
            with engine.begin() as conn:
                key = create_write_key(conn, "default", "web")
            cache = KeyCache(engine, ttl=0.0)  # every lookup goes to the database
            found = cache.source(key)
            assert found is not None and found.workspace_id == "default"

            server.stop(mode="immediate")
            engine.dispose()
            assert cache.source(key) == found  # stale, but the database cannot say otherwise
            with pytest.raises(Unavailable):
                cache.source("wk_never-seen")  # nothing known about it: 503, never a guess

            server.start()
            assert cache.source(key) == found
            assert cache.source("wk_never-seen") is None
        finally:
            engine.dispose()
