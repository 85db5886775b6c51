"""``finsync token create|list|revoke`` (API keys of the console) and ``finsync console``
(serve it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import click
import sqlalchemy as sa
from rich.console import Console as RichConsole
from rich.table import Table

from core.errors import ConfigError, FinsyncError
from finsync.config import API_ROLES, Config, load_config
from finsync.db import make_engine, utcnow
from finsync.terminal import console_width


def _out() -> RichConsole:
    """Standard output, measured now; data and config text is never markup."""
    return RichConsole(markup=False, width=console_width())


@contextmanager
def _database_errors() -> Iterator[None]:
    # An uninitialised or unreachable state store is one line, not a traceback.
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise click.ClickException(
            f"state store error: {detail} (is it reachable, and was `finsync init` run?)"
        ) from None


def _config(ctx: click.Context) -> Config:
    try:
        return load_config(ctx.find_root().obj["config_path"])
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _state(ctx: click.Context) -> sa.Engine:
    """The state store, checked (it answers, ``finsync init`` created it), or one clear line."""
    from sync.engine import check_state

    try:
        engine = make_engine(_config(ctx).state_url, key="state.url")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        check_state(engine)
    except FinsyncError as exc:
        engine.dispose()
        raise click.ClickException(str(exc)) from None
    return engine


@click.group()
def token() -> None:
    """API keys of the console (stored hashed; shown once, at creation)."""


@token.command("create")
@click.option("--name", required=True, help="Who or what uses the key (shown in the audit log).")
@click.option("--role", required=True, type=click.Choice(API_ROLES))
@click.option("--expires-days", type=click.IntRange(1, 3650), help="Expire after this many days.")
@click.pass_context
def token_create(ctx: click.Context, name: str, role: str, expires_days: int | None) -> None:
    """Create an API key and print it once."""
    from api.auth import create_token
    from sync.engine import default_actor

    engine = _state(ctx)
    try:
        with _database_errors():
            created = create_token(
                engine,
                name=name,
                role=role,
                created_by=default_actor(),
                now=utcnow(),
                expires_days=expires_days,
            )
            _audit(engine, "token_create", token_id=created.id, name=name, role=role)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    finally:
        engine.dispose()
    expires = f"expires {created.expires_at:%Y-%m-%d}" if created.expires_at else "never expires"
    click.echo(f"API key {created.id} for {created.name} ({created.role}, {expires}):", err=True)
    # The key alone on stdout, so `finsync token create ... > file` keeps nothing else.
    click.echo(created.token)
    click.echo("Store it now: it is kept only as a hash and cannot be shown again.", err=True)


def _audit(engine: sa.Engine, action: str, **details: object) -> None:
    """Record a token command in the audit log: who ran it (the OS user), when, on what."""
    from sync.engine import default_actor
    from sync.state import audit_log

    with engine.begin() as conn:
        conn.execute(
            audit_log.insert().values(
                at=utcnow(),
                actor=default_actor(),
                action=action,
                reason="finsync token (command line)",
                details=json.dumps(details, sort_keys=True),
            )
        )


@token.command("list")
@click.pass_context
def token_list(ctx: click.Context) -> None:
    """List API keys (prefixes only)."""
    from api.auth import list_tokens

    engine = _state(ctx)
    try:
        with _database_errors():
            rows = list_tokens(engine)
            _audit(engine, "token_list", shown=len(rows))
    finally:
        engine.dispose()
    table = Table(title="API keys")
    for column in ("id", "name", "role", "key", "created", "by", "expires", "last used", "state"):
        table.add_column(column, overflow="fold")
    now = utcnow()
    for r in rows:
        state = "revoked" if r["revoked_at"] else "active"
        if not r["revoked_at"] and r["expires_at"] and r["expires_at"] <= now:
            state = "expired"
        table.add_row(
            str(r["id"]),
            r["name"],
            r["role"],
            f"{r['prefix']}...",
            f"{r['created_at']:%Y-%m-%d}",
            r["created_by"],
            f"{r['expires_at']:%Y-%m-%d}" if r["expires_at"] else "never",
            f"{r['last_used_at']:%Y-%m-%d %H:%M}" if r["last_used_at"] else "",
            state,
        )
    _out().print(table)


@token.command("revoke")
@click.argument("token_id", type=click.IntRange(1))
@click.pass_context
def token_revoke(ctx: click.Context, token_id: int) -> None:
    """Revoke API key TOKEN_ID now (its console sessions end with it)."""
    from api.auth import revoke_token

    engine = _state(ctx)
    try:
        with _database_errors():
            revoked = revoke_token(engine, token_id, now=utcnow())
            _audit(engine, "token_revoke", token_id=token_id, revoked=revoked)
    finally:
        engine.dispose()
    if not revoked:
        raise click.ClickException(f"no active API key {token_id}")
    click.echo(f"API key {token_id} revoked.")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.pass_context
def console(ctx: click.Context, host: str, port: int) -> None:
    """Serve the accountants' console (web pages and HTTP API) with uvicorn."""
    import uvicorn

    from api.app import create_app
    from core.errors import ConfigError
    from sync.engine import check_state

    try:
        app = create_app(_config(ctx))
        # Before `finsync init` every page would fail: say what to do instead of serving.
        check_state(app.state.console.engine.state)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
