"""Shared fixtures: databases (SQLite always; PostgreSQL when reachable) and a live server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support import databases, schemas
from tests.support.live import LiveServer, make_settings, release_reserved_ports, serving
from tests.support.redisproc import RedisProcess

POSTGRES_HOST = databases.HOST
IN_CI = os.environ.get("CI") == "true"

# Property tests judge what code does, never how fast one example ran: on a busy machine an
# example can take several times its quiet-machine time, and Hypothesis's per-example
# deadline (200 ms) and slowness health checks then fail a correct test.
settings.register_profile("opendpia", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("opendpia")


def pytest_configure(config: pytest.Config) -> None:
    schemas.install()  # a fresh database gets the migrated schema copied (tests/support/schemas.py)


def pytest_unconfigure(config: pytest.Config) -> None:
    schemas.uninstall()
    databases.finish()  # every test database is gone before the run ends


@pytest.fixture(scope="session", autouse=True)
def _reserved_ports() -> Iterator[None]:
    """Ports reserved by tests (tests.support.live.reserved_port) are ours until the end."""
    yield
    release_reserved_ports()


def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test; skipped (never in CI) when none runs. It is
    dropped after the test, off the test's path (tests/support/databases.py)."""
    try:
        name = databases.create()
    except (TimeoutError, OSError) as error:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {POSTGRES_HOST} is required in CI: {error}")
        pytest.skip(f"no PostgreSQL server at {POSTGRES_HOST} ({error})")
    try:
        yield databases.url(name)
    finally:
        databases.drop_later(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs against SQLite and against PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'opendpia.db'}"
    else:
        yield from postgres_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'opendpia.db'}"


@pytest.fixture
def live_server(sqlite_url: str) -> Iterator[LiveServer]:
    with serving(make_settings(sqlite_url)) as server:
        yield server


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A private redis-server; skipped (never in CI) when it is not installed."""
    try:
        server = RedisProcess(tmp_path).start()
    except (FileNotFoundError, RuntimeError) as error:
        if IN_CI:
            pytest.fail(f"redis-server is required in CI: {error}")
        pytest.skip(f"no redis-server to run ({error})")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_database()
