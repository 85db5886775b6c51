"""Who may call what: the role matrix over every route, API keys, JWTs, sessions and CSRF."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import hash_token
from core.errors import ConfigError
from finsync.cli.console import token as token_cli
from finsync.config import parse_config
from sync.state import api_tokens, audit_log, console_sessions
from tests.console_support import (
    IdentityProvider,
    console_setup,
    keys_for_roles,
    make_console_engine,
    seed_ledger,
)
from tests.engine_support import Clock

# The least role each route needs; None = open to anyone. A route missing here fails
# test_every_route_has_a_rule, so a new route cannot slip in without a decision.
RULES: dict[tuple[str, str], str | None] = {
    ("GET", "/api/health"): None,
    ("GET", "/api/me"): "viewer",
    ("GET", "/api/status"): "viewer",
    ("GET", "/api/runs"): "viewer",
    ("GET", "/api/runs/{run_id}"): "viewer",
    ("GET", "/api/records"): "viewer",
    ("GET", "/api/records/{record_id}"): "viewer",
    ("POST", "/api/resync"): "accountant",
    ("GET", "/api/audit"): "viewer",
    ("GET", "/api/workbooks"): "viewer",
    ("GET", "/api/workbooks/{workbook_id}/download"): "accountant",
    ("GET", "/api/tokens"): "admin",
    ("POST", "/api/tokens"): "admin",
    ("POST", "/api/tokens/{token_id}/revoke"): "admin",
    ("GET", "/api/config"): "admin",
    ("GET", "/openapi.json"): "viewer",
    ("GET", "/signin"): None,
    ("POST", "/signin"): None,
    ("POST", "/signout"): "viewer",
    ("GET", "/"): "viewer",
    ("GET", "/failures"): "viewer",
    ("GET", "/failures.csv"): "viewer",
    ("GET", "/records/{record_id}"): "viewer",
    ("POST", "/records/{record_id}/resync"): "accountant",
    ("POST", "/failures/resync"): "accountant",
    ("GET", "/runs"): "viewer",
    ("GET", "/runs/{run_id}"): "viewer",
    ("GET", "/audit"): "viewer",
    ("GET", "/workbooks"): "viewer",
    ("GET", "/admin"): "admin",
    ("POST", "/admin/tokens"): "admin",
    ("POST", "/admin/tokens/{token_id}/revoke"): "admin",
    ("MOUNT", "/static"): None,
}
RANK = {"viewer": 0, "accountant": 1, "admin": 2}


@dataclass
class World:
    """An app over a seeded ledger, with keys for every role and an identity provider."""

    client: TestClient
    keys: dict[str, str]
    idp: IdentityProvider
    ids: dict[str, int]
    engine: Any
    victim_token_id: int
    workbook: str
    run_id: int


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    idp = IdentityProvider()
    with idp.serve() as jwks_url:
        setup = console_setup(tmp_path, f"sqlite:///{tmp_path / 'console.db'}", jwks_url=jwks_url)
        clock = Clock()
        engine = make_console_engine(setup, clock)
        seeded = seed_ledger(engine)
        keys = keys_for_roles(engine, clock)
        from api.auth import create_token

        victim = create_token(
            engine.state, name="victim", role="viewer", created_by="tests", now=clock()
        )
        out_dir = setup.config().report.out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "finance-2026-01.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
        app = create_app(setup.config(), engine=engine, clock=clock)
        with TestClient(app) as client:
            yield World(
                client,
                keys,
                idp,
                seeded.ids,
                engine,
                victim.id,
                "finance-2026-01.xlsx",
                run_id=seeded.run_id,
            )
        engine.close()


def app_routes(app) -> set[tuple[str, str]]:
    """Every (method, path) the app answers; mounts as ('MOUNT', path)."""
    found = set()
    for route in iter_route_contexts(app.routes):
        if route.methods is None:
            found.add(("MOUNT", route.path))
            continue
        for method in route.methods - {"HEAD"}:
            found.add((method, route.path))
    return found


def test_every_route_has_a_rule(world):
    assert app_routes(world.client.app) == set(RULES)


def _request(world: World, method: str, path: str, headers: dict[str, str]):
    """Call one route with valid arguments, so only authentication decides the outcome."""
    world.client.cookies.clear()  # only the headers speak: no session from an earlier call
    concrete = (
        path.replace("{record_id}", str(world.ids["invoice INV-2"]))
        .replace("{workbook_id}", world.workbook)
        .replace("{token_id}", str(world.victim_token_id))
        .replace("{run_id}", str(world.run_id))
    )
    if path == "/api/resync":
        body = {"ledger_ids": [world.ids["invoice INV-2"]], "reason": "matrix", "push": False}
        return world.client.post(concrete, headers=headers, json=body)
    if path == "/api/tokens" and method == "POST":
        return world.client.post(
            concrete, headers=headers, json={"name": "from matrix", "role": "viewer"}
        )
    if path == "/signin" and method == "POST":
        page = world.client.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        return world.client.post(
            concrete,
            data={"token": world.keys["viewer"], "csrf": csrf},
            headers=headers,
            follow_redirects=False,
        )
    if path == "/static":
        return world.client.get("/static/console.css", headers=headers)
    data = {"reason": "matrix", "name": "matrix", "role": "viewer"}
    if method == "POST":
        return world.client.post(concrete, headers=headers, data=data, follow_redirects=False)
    return world.client.get(concrete, headers=headers, follow_redirects=False)


CREDENTIALS: dict[str, Callable[[World], dict[str, str]]] = {
    "none": lambda w: {},
    "not bearer": lambda w: {"Authorization": f"Basic {w.keys['admin']}"},
    "unknown key": lambda w: {"Authorization": "Bearer fsk_" + "x" * 43},
    "garbage": lambda w: {"Authorization": "Bearer not-a-token"},
    "revoked key": lambda w: {"Authorization": f"Bearer {w.keys['revoked']}"},
    "expired key": lambda w: {"Authorization": f"Bearer {w.keys['expired']}"},
    "expired jwt": lambda w: {
        "Authorization": f"Bearer {w.idp.token(role='admin', expires_in=-3600)}"
    },
    "jwt wrong audience": lambda w: {
        "Authorization": f"Bearer {w.idp.token(role='admin', audience='someone-else')}"
    },
    "jwt wrong issuer": lambda w: {
        "Authorization": f"Bearer {w.idp.token(role='admin', issuer='https://evil.test/')}"
    },
    "jwt foreign key": lambda w: {
        "Authorization": "Bearer "
        + w.idp.token(
            role="admin", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
    },
    "jwt no role": lambda w: {"Authorization": f"Bearer {w.idp.token(role='cfo')}"},
    "viewer key": lambda w: {"Authorization": f"Bearer {w.keys['viewer']}"},
    "accountant key": lambda w: {"Authorization": f"Bearer {w.keys['accountant']}"},
    "admin key": lambda w: {"Authorization": f"Bearer {w.keys['admin']}"},
    "viewer jwt": lambda w: {"Authorization": f"Bearer {w.idp.token(role='viewer')}"},
    "accountant jwt": lambda w: {
        "Authorization": f"Bearer {w.idp.token(role=['viewer', 'accountant'])}"
    },
    "admin jwt": lambda w: {"Authorization": f"Bearer {w.idp.token(role='admin')}"},
}


def _role_of(credential: str) -> str | None:
    first = credential.split()[0]
    return first if first in RANK and credential.split()[1] in ("key", "jwt") else None


@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_role_matrix(world, credential):
    headers = CREDENTIALS[credential](world)
    role = _role_of(credential)
    wrong = []
    for (method, path), needed in RULES.items():
        response = _request(world, method, path, headers)
        if needed is None:
            expected = "open"
            ok = response.status_code not in (401, 403)
        elif role is None:
            expected = "401"
            ok = response.status_code == 401
        elif RANK[role] < RANK[needed]:
            expected = "403"
            ok = response.status_code == 403
        else:
            expected = "allowed"
            ok = response.status_code not in (401, 403) and response.status_code < 500
        if not ok:
            wrong.append(f"{method} {path}: expected {expected}, got {response.status_code}")
    assert wrong == []


def test_refusals_say_why_without_echoing_the_token(world):
    key = world.keys["revoked"]
    response = world.client.get("/api/records", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "revoked" in response.json()["detail"]
    assert key not in response.text
    expired = world.idp.token(role="admin", expires_in=-3600)
    response = world.client.get("/api/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.json()["detail"] == "the JWT has expired"
    response = world.client.get("/failures", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401
    assert 'action="/signin"' in response.text and key not in response.text


def test_jwt_caller_is_named_by_its_claim_and_jwks_is_fetched_once(world):
    token = world.idp.token(role="accountant", email="ana@example.com")
    me = world.client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["name"], me["role"], me["via"]) == ("ana@example.com", "accountant", "jwt")
    world.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert world.idp.requests == 1


def test_keys_are_stored_hashed_and_their_use_is_recorded(world):
    with world.engine.state.connect() as conn:
        rows = conn.execute(sa.select(api_tokens)).mappings().all()
    stored = " ".join(str(v) for row in rows for v in row.values())
    for key in world.keys.values():
        assert key not in stored
    by_name = {row["name"]: row for row in rows}
    assert by_name["viewer-key"]["token_hash"] == hash_token(world.keys["viewer"])
    assert by_name["viewer-key"]["last_used_at"] is None
    world.client.get("/api/me", headers={"Authorization": f"Bearer {world.keys['viewer']}"})
    with world.engine.state.connect() as conn:
        used = conn.execute(
            sa.select(api_tokens.c.last_used_at).where(api_tokens.c.name == "viewer-key")
        ).scalar_one()
    assert used is not None


def _signin(client: TestClient, token: str) -> Any:
    page = client.get("/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/signin", data={"token": token, "csrf": csrf, "next": "/failures"}, follow_redirects=False
    )


def _csrf(page_text: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page_text).group(1)


def test_session_cookie_flags_and_content(world):
    response = _signin(world.client, world.keys["accountant"])
    assert response.status_code == 303 and response.headers["location"] == "/failures"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("finsync_session=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # this test setup turned cookie_secure off for http
    assert world.keys["accountant"] not in cookie
    page = world.client.get("/failures")
    assert page.status_code == 200 and "accountant-key" in page.text


def test_secure_cookie_by_default(tmp_path):
    setup = console_setup(tmp_path, f"sqlite:///{tmp_path / 'c.db'}", cookie_secure=True)
    clock = Clock()
    engine = make_console_engine(setup, clock)
    keys = keys_for_roles(engine, clock)
    app = create_app(setup.config(), engine=engine, clock=clock)
    # A Secure cookie only comes back over https (the sign-in form's CSRF session included).
    with TestClient(app, base_url="https://testserver") as client:
        response = _signin(client, keys["viewer"])
        assert response.status_code == 303
        assert "secure" in response.headers["set-cookie"].lower().split("; ")
    engine.close()


def test_bad_token_at_sign_in_is_refused_without_echo(world):
    response = _signin(world.client, "fsk_wrong-secret-value")
    assert response.status_code == 401
    assert "not accepted: unknown API key" in response.text
    assert "wrong-secret-value" not in response.text
    assert "set-cookie" not in response.headers or "principal" not in response.text


def test_sign_in_needs_the_form_csrf_token(world):
    world.client.get("/signin")
    response = world.client.post(
        "/signin", data={"token": world.keys["admin"], "csrf": "forged"}, follow_redirects=False
    )
    assert response.status_code == 403
    assert world.client.get("/api/me").status_code == 401


def test_session_forms_need_csrf_and_bearer_calls_do_not(world):
    _signin(world.client, world.keys["accountant"])
    record = world.ids["invoice INV-3"]
    forged = world.client.post(
        f"/records/{record}/resync", data={"reason": "forged"}, follow_redirects=False
    )
    assert forged.status_code == 403
    api_forged = world.client.post(
        "/api/resync", json={"ledger_ids": [record], "reason": "forged", "push": False}
    )
    assert api_forged.status_code == 403
    with world.engine.state.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one() == 0
    csrf = _csrf(world.client.get(f"/records/{record}").text)
    done = world.client.post(
        f"/records/{record}/resync",
        data={"reason": "period reopened", "csrf": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303
    api_done = world.client.post(
        "/api/resync",
        json={"ledger_ids": [record], "reason": "again", "push": False},
        headers={"X-CSRF-Token": csrf},
    )
    assert api_done.status_code == 200
    with world.engine.state.connect() as conn:
        actors = conn.execute(sa.select(audit_log.c.actor, audit_log.c.reason)).all()
    assert sorted(actors) == [("accountant-key", "again"), ("accountant-key", "period reopened")]


def test_revoking_a_key_ends_its_sessions(world):
    _signin(world.client, world.keys["admin"])
    assert world.client.get("/api/me").json()["name"] == "admin-key"
    with world.engine.state.connect() as conn:
        admin_id = conn.execute(
            sa.select(api_tokens.c.id).where(api_tokens.c.name == "admin-key")
        ).scalar_one()
    csrf = _csrf(world.client.get("/admin").text)
    response = world.client.post(
        f"/admin/tokens/{admin_id}/revoke", data={"csrf": csrf}, follow_redirects=False
    )
    assert response.status_code == 303
    after = world.client.get("/api/me")
    assert after.status_code == 401 and "revoked" in after.json()["detail"]


def test_jwt_session_lasts_until_the_jwt_expires(world):
    token = world.idp.token(role="viewer", email="vic@example.com", expires_in=600)
    assert _signin(world.client, token).status_code == 303
    assert world.client.get("/api/me").json()["name"] == "vic@example.com"
    console = world.client.app.state.console
    # The session outlives nothing: a year on, the JWT it was opened with has long expired.
    console.clock = lambda: world.engine.clock() + timedelta(days=400)
    assert world.client.get("/api/me").status_code == 401


def test_admin_creates_a_key_that_is_shown_once_and_works(world):
    admin = {"Authorization": f"Bearer {world.keys['admin']}"}
    created = world.client.post(
        "/api/tokens", headers=admin, json={"name": "month-end bot", "role": "accountant"}
    )
    assert created.status_code == 201
    key = created.json()["token"]
    assert key.startswith("fsk_") and created.json()["prefix"] == key[:10]
    listed = world.client.get("/api/tokens", headers=admin).json()
    assert "token" not in next(t for t in listed if t["name"] == "month-end bot")
    me = world.client.get("/api/me", headers={"Authorization": f"Bearer {key}"}).json()
    assert (me["name"], me["role"]) == ("month-end bot", "accountant")
    audit = world.client.get("/api/audit", headers=admin).json()["items"]
    assert audit[0]["action"] == "token_create" and audit[0]["actor"] == "admin-key"
    assert key not in str(audit)


def test_config_view_hides_secrets(world):
    view = world.client.get(
        "/api/config", headers={"Authorization": f"Bearer {world.keys['admin']}"}
    ).json()["settings"]
    assert view["api"]["jwt"]["audience"] == "finsync-console"
    assert view["api"]["session_secret"] == "(random per process)"
    assert view["targets"] == {"erp": {"system": "scripted", "enabled": True}}


def test_token_commands(tmp_path):
    setup = console_setup(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}")
    engine = make_console_engine(setup, Clock())
    runner = CliRunner(env={"COLUMNS": "160"})
    obj = {"config_path": setup.config_path}
    created = runner.invoke(
        token_cli, ["create", "--name", "ops", "--role", "admin", "--expires-days", "30"], obj=obj
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert re.fullmatch(r"fsk_[A-Za-z0-9_-]{43}", key)
    listed = runner.invoke(token_cli, ["list"], obj=obj)
    assert "ops" in listed.output and "active" in listed.output and key not in listed.output
    assert key[:10] in listed.output
    revoked = runner.invoke(token_cli, ["revoke", "1"], obj=obj)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    again = runner.invoke(token_cli, ["revoke", "1"], obj=obj)
    assert again.exit_code == 1 and "no active API key 1" in again.output
    assert "revoked" in runner.invoke(token_cli, ["list"], obj=obj).output
    bad = runner.invoke(token_cli, ["create", "--name", "x", "--role", "owner"], obj=obj)
    assert bad.exit_code == 2
    engine.close()


BASE = {"billing": {"url": "sqlite://"}, "state": {"url": "sqlite://"}, "mapping": {"file": "m"}}


@pytest.mark.parametrize(
    ("api", "key"),
    [
        ({"cookie_secure": "yes"}, "api.cookie_secure"),
        ({"session_hours": 0}, "api.session_hours"),
        ({"jwt": {"issuer": "https://id/", "audience": "a"}}, "api.jwt.jwks_url"),
        (
            {"jwt": {"jwks_url": "ftp://id/keys", "issuer": "i", "audience": "a"}},
            "api.jwt.jwks_url",
        ),
        (
            {
                "jwt": {
                    "jwks_url": "https://id/k",
                    "issuer": "i",
                    "audience": "a",
                    "algorithms": ["HS256"],
                }
            },
            "api.jwt.algorithms",
        ),
        ({"jwt": {"jwks_url": "https://id/k", "audience": "a"}}, "api.jwt.issuer"),
        ({"session_secret": {"env": "SHORT"}}, "api.session_secret"),
        ({"colour": "blue"}, "api.colour"),
    ],
)
def test_api_config_errors_name_the_key(api, key):
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE | {"api": api}, environ={"SHORT": "too-short"})
    assert caught.value.key == key


def test_api_config_defaults_and_jwt():
    config = parse_config(BASE)
    assert (config.api.cookie_secure, config.api.jwt, config.api.session_hours) == (True, None, 8)
    config = parse_config(
        BASE
        | {
            "api": {
                "session_secret": {"env": "SECRET"},
                "jwt": {"jwks_url": "https://id/k", "issuer": "https://id/", "audience": "fin"},
            }
        },
        environ={"SECRET": "s" * 40},
    )
    assert config.api.jwt.role_claim == "finsync_role" and config.api.jwt.algorithms == ("RS256",)
    assert "s" * 40 not in repr(config.api)


def test_token_commands_on_an_uninitialised_store_say_so(tmp_path):
    setup = console_setup(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    result = CliRunner().invoke(token_cli, ["list"], obj={"config_path": setup.config_path})
    assert result.exit_code == 1
    assert "state store is not initialised" in result.output and "finsync init" in result.output


def test_a_signed_out_cookie_is_refused(world):
    assert _signin(world.client, world.keys["viewer"]).status_code == 303
    kept = world.client.cookies.get("finsync_session")
    assert world.client.get("/api/me").json()["name"] == "viewer-key"
    csrf = _csrf(world.client.get("/").text)
    assert world.client.post("/signout", data={"csrf": csrf}).status_code == 200
    # Someone kept a copy of the cookie: after the sign-out it opens nothing.
    world.client.cookies.clear()
    world.client.cookies.set("finsync_session", kept)
    refused = world.client.get("/api/me")
    assert refused.status_code == 401
    assert "this session ended (signed out); sign in again" in refused.json()["detail"]
    assert world.client.get("/failures").status_code == 401
    with world.engine.state.connect() as conn:
        [(ended, reason)] = conn.execute(
            sa.select(console_sessions.c.ended_at, console_sessions.c.end_reason)
        ).all()
    assert ended is not None and reason == "signed out"
