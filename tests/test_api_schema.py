"""Schemathesis against the console's own OpenAPI schema, in-process, as an admin, on SQLite.

Every operation gets generated requests (valid and invalid); no answer may be a server error,
use an undeclared status code or content type, or break the declared response schema.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from tests.console_support import (
    IdentityProvider,
    console_setup,
    keys_for_roles,
    make_console_engine,
    seed_ledger,
)
from tests.engine_support import Clock

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def admin_jwt(idp_jwks) -> str:
    idp, _url = idp_jwks
    # An identity-provider admin: nothing the generated requests do (revoking keys by any id)
    # can lock it out mid-run.
    return idp.token(role="admin", email="fuzz@example.com", expires_in=3600)


@pytest.fixture
def idp_jwks() -> Iterator[tuple[IdentityProvider, str]]:
    idp = IdentityProvider()
    with idp.serve() as url:
        yield idp, url


@pytest.fixture
def console_schema(tmp_path, idp_jwks, admin_jwt):
    _idp, jwks_url = idp_jwks
    setup = console_setup(tmp_path, f"sqlite:///{tmp_path / 'fuzz.db'}", jwks_url=jwks_url)
    clock = Clock()
    engine = make_console_engine(setup, clock)
    seed_ledger(engine)
    keys_for_roles(engine, clock)
    out_dir = setup.config().report.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "finance-2026-01.xlsx").write_bytes(b"PK\x03\x04january")
    app = create_app(setup.config(), engine=engine, clock=clock)
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, headers={"Authorization": f"Bearer {admin_jwt}"}
    )
    yield schema
    engine.close()


FUZZ = settings(
    max_examples=30,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _exercise(strategy, headers: dict[str, str], seen: set[int]):
    """A bounded Hypothesis run of one operation's generated requests."""

    @FUZZ
    @given(case=strategy)
    def exercise(case):
        seen.add(case.call_and_validate(headers=headers, checks=CHECKS).status_code)

    return exercise


def test_api_honours_its_schema(console_schema, admin_jwt):
    headers = {"Authorization": f"Bearer {admin_jwt}"}
    failed = []
    statuses: dict[str, set[int]] = {}
    for result in console_schema.get_all_operations():
        operation = result.ok()
        seen = statuses.setdefault(operation.label, set())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            try:
                _exercise(strategy, headers, seen)()
            except Unsatisfiable:
                pass  # no parameters, so no invalid request to make
            except Exception as exc:  # every operation is tried; failures are listed together
                failed.append(f"{operation.label} ({mode.value}): {exc}")
    assert len(statuses) == 15
    assert not failed, "\n\n".join(failed)
    # the runs reached the handlers, not only the validation layer
    assert 200 in statuses["GET /api/records"] and 422 in statuses["GET /api/records"]
    assert 200 in statuses["POST /api/resync"]
