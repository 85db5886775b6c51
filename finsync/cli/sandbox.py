"""``finsync sandbox netsuite|avatax|tryton``: one local vendor system, for manual trials."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from finsync.cli.common import console, fail


@click.group()
def sandbox() -> None:
    """Run a local vendor sandbox alone, for manual trials."""


@sandbox.command("netsuite")
@click.option("--port", type=int, default=8088, show_default=True)
@click.option("--concurrency", type=int, default=5, show_default=True)
@click.option(
    "--latency", type=float, default=0.0, show_default=True, help="Seconds added to every request."
)
def sandbox_netsuite(port: int, concurrency: int, latency: float) -> None:
    """A local NetSuite (SuiteTalk SOAP and REST) on 127.0.0.1, with the demo credentials."""
    from finsync.demo import sandbox_secrets
    from sandbox.netsuite import serve

    secrets = sandbox_secrets()

    def echo(line: str) -> None:
        if not line.strip().startswith("credentials:"):
            console.print(line, soft_wrap=True)
            return
        console.print("  credentials (public, this sandbox only; `finsync demo` writes them too):")
        for label, variable in (
            ("consumer key", "FINSYNC_DEMO_NS_CONSUMER_KEY"),
            ("consumer secret", "FINSYNC_DEMO_NS_CONSUMER_SECRET"),
            ("token id", "FINSYNC_DEMO_NS_TOKEN_ID"),
            ("token secret", "FINSYNC_DEMO_NS_TOKEN_SECRET"),
        ):
            console.print(f"    {label + ':':17}{secrets[variable]}", soft_wrap=True)
        console.print("  Ctrl-C stops it")

    _listening(
        port,
        lambda: serve(
            "127.0.0.1",
            port,
            concurrency_limit=concurrency,
            latency_seconds=latency,
            echo=echo,
        ),
    )


def _listening(port: int, run: Callable[[], None]) -> None:
    """Run a server; a port already taken is one line naming it."""
    try:
        run()
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): pick another --port")


@sandbox.command("avatax")
@click.option("--port", type=int, default=8766, show_default=True)
def sandbox_avatax(port: int) -> None:
    """A local AvaTax REST v2 on 127.0.0.1 (account 2000000001, licence demo-license-key)."""
    from finsync.demo import AVATAX_ACCOUNT, AVATAX_LICENSE
    from sandbox.avatax.server import AvaTaxSandbox

    console.print(f"AvaTax sandbox on http://127.0.0.1:{port} (Ctrl-C stops it)")
    console.print("  credentials (public, this sandbox only; `finsync demo` writes them too):")
    console.print(f"    account id:  {AVATAX_ACCOUNT}")
    console.print(f"    license key: {AVATAX_LICENSE}")
    sandbox = AvaTaxSandbox(account_id=AVATAX_ACCOUNT, license_key=AVATAX_LICENSE)
    _listening(port, lambda: sandbox.serve("127.0.0.1", port))


@sandbox.command("tryton")
@click.option("--port", type=int, default=8010, show_default=True)
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".finsync/tryton"),
    show_default=True,
    help="Where the template database is cached and the server's copy lives (fresh each start).",
)
def sandbox_tryton(port: int, folder: Path) -> None:
    """A real Tryton ERP (trytond 8.2) on 127.0.0.1: five companies, charts, fiscal years."""
    from sandbox.tryton import (
        ADMIN_LOGIN,
        ADMIN_PASSWORD,
        DATABASE,
        TrytonServer,
        TrytonStartError,
        ensure_template,
    )

    folder = folder.resolve()
    console.print("Preparing the Tryton database (about 20 s the first time, cached after)")
    try:
        template = ensure_template(folder / "cache")
        server = TrytonServer(template, folder / "server", port=port).start()
    except TrytonStartError as exc:
        fail(f"Tryton did not start: {exc}")
    console.print(
        f"Tryton on {server.url} (JSON-RPC {server.rpc_url}); database {DATABASE}, "
        f"user {ADMIN_LOGIN}, password {ADMIN_PASSWORD} (local trials only). Ctrl-C stops it.",
        soft_wrap=True,
    )
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
