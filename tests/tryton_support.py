"""A real Tryton server per test: the template database is built once, then copied.

The template (modules activated, five companies with the Universal Chart of Accounts, fiscal
years 2025-2027 with monthly periods and invoice sequences) takes about 20 seconds to build. It
is cached in the system's temporary folder under a key of the builder's source and trytond's
version, built under a file lock so parallel test workers share one build. Each test then gets
its own copy and its own ``trytond`` on a free loopback port (about a second).

Never skipped: when Tryton cannot be built or started the test fails with one clear line.
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from sandbox import tryton as sandbox_tryton
from sandbox.tryton import TrytonServer, TrytonStartError


def _template_key() -> str:
    digest = hashlib.sha256(Path(sandbox_tryton.__file__).read_bytes())
    digest.update(metadata.version("trytond").encode())
    return digest.hexdigest()[:12]


def template_database() -> Path:
    """The initialised Tryton database file, built on first use (shared by test workers)."""
    folder = Path(tempfile.gettempdir()) / f"finsync-tryton-template-{_template_key()}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / sandbox_tryton.TEMPLATE_FILE
    ready = folder / "ready"
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            sandbox_tryton.build_template(folder)
            ready.touch()
    return target


@pytest.fixture(scope="session")
def tryton_template() -> Path:
    """The template database file (built once per session, or reused from the cache)."""
    try:
        return template_database()
    except TrytonStartError as exc:
        pytest.fail(f"Tryton template database could not be built: {exc}", pytrace=False)


@pytest.fixture
def tryton_server(tryton_template: Path, tmp_path: Path) -> Iterator[TrytonServer]:
    """A fresh Tryton (copy of the template) served on 127.0.0.1 for this test."""
    server = TrytonServer(tryton_template, tmp_path / "tryton")
    try:
        server.start()
    except TrytonStartError as exc:
        pytest.fail(f"Tryton did not start: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
