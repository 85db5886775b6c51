"""``finsync serve`` and ``finsync worker``: the long-running service, started and stopped.

The command loads the config, sets up logging, runs the service until SIGTERM or SIGINT and
exits with its code; the service itself is ``scheduler.Service``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import click
import sqlalchemy as sa

from core.errors import ConfigError, FinsyncError
from finsync.config import load_config


@contextlib.contextmanager
def _signals(handler: Callable[[int, FrameType | None], Any]) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run(ctx: click.Context, mode: str, json_logs: bool | None) -> None:
    from finsync.logs import config_secrets, configure_logging
    from scheduler import Service  # the service's dependencies load only for serve and worker

    try:
        config = load_config(ctx.obj["config_path"])
        configure_logging(
            json_logs=config.service.json_logs if json_logs is None else json_logs,
            secrets=config_secrets(config),
        )
        service = Service(config, mode=mode)
        with _signals(service.stop):
            code = service.run()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    except FinsyncError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    except sa.exc.OperationalError as exc:
        click.echo(f"error: database error: {exc.orig}", err=True)
        ctx.exit(1)
    if service.unfinished:
        # Threads still in a call: do not wait for them at interpreter exit.
        logging.shutdown()
        os._exit(code)
    ctx.exit(code)


_JSON_LOGS = click.option(
    "--json-logs/--plain-logs",
    default=None,
    help="Log JSON lines (default: [service] json_logs).",
)


@click.command()
@_JSON_LOGS
@click.pass_context
def serve(ctx: click.Context, json_logs: bool | None) -> None:
    """Run the service: scheduled syncs (when leader), a push worker, /health and the console."""
    _run(ctx, "serve", json_logs)


@click.command()
@_JSON_LOGS
@click.pass_context
def worker(ctx: click.Context, json_logs: bool | None) -> None:
    """Only push: claim due documents of every target, send them, sleep when nothing is due."""
    _run(ctx, "worker", json_logs)
