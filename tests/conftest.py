"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL server.

PostgreSQL: one fresh database per test session (dropped at the end), one fresh schema per test.
The server comes from FINSYNC_TEST_PG (default: the local server). If it cannot be reached the
PostgreSQL tests fail; they are never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from finsync.db import make_engine
from tests.tryton_support import tryton_server, tryton_template  # noqa: F401  (fixtures)

PG_ADMIN_URL = os.environ.get(
    "FINSYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SPECS = Path(__file__).resolve().parents[1].parent / "shared" / "specs"


def _pg_admin_engine() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a PostgreSQL database created for this test session and dropped after it."""
    admin = _pg_admin_engine()
    name = f"finsync_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc.orig}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`",
            pytrace=False,
        )
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def fresh_pg_schema(pg_database: str) -> str:
    """Create a new schema in the session database; return a URL whose search_path is it."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in pg_database else "?"
    return f"{pg_database}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: a SQLite file, or a new schema on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return fresh_pg_schema(request.getfixturevalue("pg_database"))


@pytest.fixture
def db_engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on ``db_url``, disposed after the test."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def specs_dir() -> Path:
    """../shared/specs; under CI its absence is a failure, elsewhere the test is skipped."""
    if not SPECS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"vendor specs not found at {SPECS}", pytrace=False)
        pytest.skip(f"vendor specs not found at {SPECS}")
    return SPECS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the PostgreSQL server directly count as PostgreSQL tests too."""
    for item in items:
        if "pg_database" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many PostgreSQL tests ran, so a summary shows they were not skipped."""
    counts: dict[str, int] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") in ("call", "setup") and "postgres" in getattr(
                report, "keywords", {}
            ):
                if outcome == "passed" and report.when != "call":
                    continue
                counts[outcome] = counts.get(outcome, 0) + 1
    if counts:
        parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        server = sa.engine.make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
        terminalreporter.write_line(f"PostgreSQL tests ({server}): {parts}")
