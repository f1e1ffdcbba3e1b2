"""Fixtures shared by the functional tests: the scratch PostgreSQL cluster (one per test file, as
``scope="module"`` gives under ``--dist loadfile``) and a session writing rows into it."""

from __future__ import annotations

import pytest
from pg_scratch import scratch_cluster, start_writer


@pytest.fixture(scope="module")
def cluster():
    """A PostgreSQL 15 cluster: UTF8, scram passwords over TCP on 127.0.0.1, peer over its socket."""
    with scratch_cluster(
        "jts-pg-",
        ["-E", "UTF8", "--auth-host=scram-sha-256"],
        "-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
    ) as pg:
        yield pg


@pytest.fixture
def writer(cluster):
    """A session inserting and committing rows into a new ``ticks`` table until the test ends."""
    cluster.sql("DROP TABLE IF EXISTS ticks")
    proc = start_writer(cluster)
    yield proc
    proc.kill()
    proc.wait()
