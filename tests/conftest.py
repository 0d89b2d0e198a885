"""Fixtures shared by the whole suite (services started once per test session).

The test PKI, its OCSP/CRL/TSA responders and the SoftHSM2 token store exist once per test
session: SoftHSM2 reads ``SOFTHSM2_CONF`` and scans its tokens once per process, so a second
store made later would be invisible (see tests/fixtures_pki.py). Every test that loads the
PKCS#11 module depends on ``softhsm`` (directly or through a fixture), which makes all tokens
and sets ``SOFTHSM2_CONF`` before the module is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import fixtures_pki
import pytest
from fixtures_pg import (
    DB_BACKENDS,
    PgDatabases,
    PgServer,
    pg_databases_fixture,
    postgres_server_fixture,
)
from fixtures_s3 import S3Endpoint, s3_endpoint_fixture

from signing import devpki as pki_cli


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A real S3 endpoint: a throwaway Ceph RGW on 127.0.0.1, or LIENTHONG_TEST_S3_ENDPOINT."""
    yield from s3_endpoint_fixture(tmp_path_factory)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    """A real PostgreSQL server: a throwaway cluster on 127.0.0.1 started for this session (per
    xdist worker), or LIENTHONG_TEST_POSTGRES_URL."""
    yield from postgres_server_fixture()


@pytest.fixture(scope="session")
def pg_databases(postgres_server: PgServer) -> Iterator[PgDatabases]:
    """Makes a database per test on the session's server (from a migrated template)."""
    yield from pg_databases_fixture(postgres_server)


@pytest.fixture
async def pg_url(pg_databases: PgDatabases) -> str:
    """The URL of a new, migrated PostgreSQL database of this test's own."""
    return await pg_databases.new()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db-backend",
        default="sqlite,postgresql",
        help="the metadata backends the tests taking `db_backend` run on (comma-separated: "
        "sqlite, postgresql; default both)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`db_backend`: each test asking for it runs once per backend of --db-backend."""
    if "db_backend" in metafunc.fixturenames:
        chosen = [b.strip() for b in metafunc.config.getoption("--db-backend").split(",")]
        unknown = set(chosen) - set(DB_BACKENDS)
        if unknown:
            raise pytest.UsageError(f"--db-backend: unknown {sorted(unknown)}")
        if metafunc.definition.get_closest_marker("sqlite_only") is not None:
            chosen = ["sqlite"]  # it opens the SQLite file itself
        metafunc.parametrize("db_backend", chosen, indirect=True)


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    """The metadata backend of this run of the test ("sqlite" or "postgresql")."""
    return str(request.param)


@pytest.fixture
async def database_target(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where this test's metadata live: a SQLite file under tmp_path, or the URL of a migrated
    PostgreSQL database of its own."""
    if db_backend == "sqlite":
        return str(tmp_path / "meta.db")
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    return await databases.new()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> pki_cli.DevPki:
    """The test PKI of certs/pki.yml (keys generated for this session), services not started."""
    return fixtures_pki.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def pki_server(pki: pki_cli.DevPki) -> Iterator[pki_cli.PkiServer]:
    """OCSP, CRL and TSA of the session PKI on 127.0.0.1, for the whole session."""
    with pki_cli.PkiServer(pki) as server:
        yield server


@pytest.fixture(scope="session")
def softhsm(pki: pki_cli.DevPki, tmp_path_factory: pytest.TempPathFactory) -> fixtures_pki.SoftHsm:
    """The one SoftHSM2 store of the session with every token (fixtures_pki.make_tokens)."""
    from signing import tokens

    module = str(Path(fixtures_pki.SOFTHSM2_MODULE).resolve())
    if module in tokens._WORKERS:
        # Tokens made now would be invisible: fail loudly rather than skip or sign elsewhere.
        pytest.fail(
            f"the PKCS#11 module was loaded (SOFTHSM2_CONF={os.environ.get('SOFTHSM2_CONF')}) "
            "before the session's SoftHSM store was made: the test that loaded it must depend "
            "on the softhsm fixture"
        )
    return fixtures_pki.make_tokens(pki, tmp_path_factory.mktemp("softhsm"))
