"""``finsync demo``: the whole job on the sandboxes (seed, sync, edit, sync again, workbook)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.text import Text

from finsync.cli.common import (
    console,
    fail,
    friendly_errors,
    how_i_was_called,
    progress_bar,
    sync_progress,
)
from finsync.cli.report import build_report
from finsync.cli.tables import print_attention, print_status, print_sync_summary
from finsync.config import Config
from finsync.db import make_engine, utcnow

if TYPE_CHECKING:
    from finsync.demo import DemoSettings


@click.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".finsync/demo"),
    show_default=True,
    help="Where the demo keeps its databases, config and workbook (recreated).",
)
@click.option("--customers", type=click.IntRange(1, 5000), default=40, show_default=True)
@click.option(
    "--serve",
    "serve_console",
    is_flag=True,
    help="Afterwards keep the sandboxes running and serve the accountants' console.",
)
@click.option(
    "--transport",
    type=click.Choice(["soap", "rest"]),
    default="soap",
    show_default=True,
    help="How to talk to the NetSuite sandbox.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="With --serve: the console's port.",
)
@click.option("--netsuite-port", type=click.IntRange(1, 65535), default=8088, show_default=True)
@click.option("--avatax-port", type=click.IntRange(1, 65535), default=8766, show_default=True)
@click.option(
    "--service-port",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    help="Where `finsync serve` on the demo's config serves /health and the console.",
)
@click.option(
    "--erp",
    type=click.Choice(["netsuite", "tryton"]),
    default="netsuite",
    show_default=True,
    help="The ERP to book into: the NetSuite sandbox, or a real Tryton started locally.",
)
def demo(
    folder: Path,
    customers: int,
    serve_console: bool,
    transport: str,
    port: int,
    netsuite_port: int,
    avatax_port: int,
    service_port: int,
    erp: str,
) -> None:
    """Run the whole job on embedded defaults: seed, sync, edit, sync again, workbook.

    The sandboxes listen on --netsuite-port and --avatax-port; the demo's config points at
    them and reads their credentials from files beside it, so after the demo every command of
    the README works on it once `finsync sandbox netsuite` and `finsync sandbox avatax` run
    again. With --serve, the sandboxes keep running afterwards and the accountants' console is
    served on http://127.0.0.1:PORT with a demo admin key, until Ctrl-C.
    """
    from billing.generator import seed_billing
    from finsync.demo import DemoSettings, edit_billing
    from sync.engine import SyncEngine
    from sync.migrate import upgrade
    from sync.status import attention, last_runs, ledger_counts

    settings = DemoSettings(
        folder=folder.resolve(),
        customers=customers,
        transport=transport,
        netsuite_port=netsuite_port,
        avatax_port=avatax_port,
        service_port=service_port,
        erp=erp,
    )
    with friendly_errors(), _demo_systems(settings) as config:
        console.rule(Text("1. Billing data", style="bold"))
        billing_engine = make_engine(config.billing_url)
        with progress_bar("Seeding billing data") as advance:
            seeded = seed_billing(
                billing_engine,
                customers=settings.customers,
                months=settings.months,
                seed=settings.seed,
                start=settings.start,
                progress=advance,
            )
        billing_engine.dispose()
        console.print("  ".join(f"{name} {count:,}" for name, count in seeded.rows()))
        erp_name = "Tryton" if erp == "tryton" else f"NetSuite sandbox ({transport.upper()})"
        console.rule(Text(f"2. First sync: {erp_name} and AvaTax sandbox", style="bold"))
        engine = SyncEngine(config, actor="demo")
        try:
            upgrade(engine.state)
            engine.check()
            with sync_progress("Syncing") as advance_sync:
                first = engine.sync(progress=advance_sync)
            print_sync_summary(first)
            console.rule(
                Text("3. Billing edits records; the next sync sends only those", style="bold")
            )
            edits = edit_billing(config, settings.seed)
            console.print(
                f"changed invoices {', '.join(edits.changed_invoices) or '-'}; "
                f"voided {', '.join(edits.voided_invoices) or '-'}; "
                f"renamed customers {', '.join(edits.renamed_customers) or '-'}"
            )
            with sync_progress("Syncing changes") as advance_sync:
                second = engine.sync(progress=advance_sync)
            print_sync_summary(second)
            print_status(ledger_counts(engine.state), last_runs(engine.state, limit=3))
            print_attention(attention(engine.state), "finsync")
        finally:
            engine.close()
        console.rule(Text(f"4. Monthly workbook for {settings.report_period}", style="bold"))
        path = build_report(config, settings.report_period)
        console.print(Text.assemble("\nWorkbook: ", (str(path), "bold")))
        console.print(f"Config:   {settings.folder / 'finsync.toml'}")
        key = _demo_console_key(config)
        if serve_console:
            _serve_demo_console(config, key, port)
    if not serve_console:
        config_path = settings.folder / "finsync.toml"
        me = how_i_was_called()
        console.print(
            f"Console:  `{me} --config {config_path} console`, then http://127.0.0.1:8000/ "
            f"(or `{me} demo --serve`, which keeps the sandboxes running as well)",
            soft_wrap=True,
        )
        console.print(f"Demo admin key for the console: {key}", soft_wrap=True)
        console.print(f"Status:   `{me} --config {config_path} status`", soft_wrap=True)
        console.print(
            f"The sandboxes have stopped; for the README's commands start them again with "
            f"`{me} sandbox netsuite --port {netsuite_port} &` and "
            f"`{me} sandbox avatax --port {avatax_port} &`",
            soft_wrap=True,
        )


@contextmanager
def _demo_systems(settings: DemoSettings) -> Iterator[Config]:
    """The demo's systems on their ports and its config; a port already taken is one line
    naming it."""
    from finsync.demo import demo_systems

    with ExitStack() as stack:
        try:
            config = stack.enter_context(demo_systems(settings))
        except OSError as exc:
            fail(
                f"cannot start the demo's sandboxes on 127.0.0.1:{settings.netsuite_port} and "
                f":{settings.avatax_port} ({exc.strerror}): stop what uses them or pass "
                "--netsuite-port and --avatax-port"
            )
        yield config


def _demo_console_key(config: Config) -> str:
    """A fresh admin API key of the demo's console (shown once, stored hashed)."""
    from api.auth import create_token

    state = make_engine(config.state_url)
    try:
        created = create_token(
            state, name="demo-admin", role="admin", created_by="demo", now=utcnow()
        )
    finally:
        state.dispose()
    return created.token


def _serve_demo_console(config: Config, key: str, port: int = 8000) -> None:
    """Serve the console on the demo's state store until Ctrl-C (the sandboxes keep running)."""
    import uvicorn

    from api.app import create_app

    console.rule(Text("5. The accountants' console", style="bold"))
    console.print(f"Console:  http://127.0.0.1:{port}/  (Ctrl-C stops it and the sandboxes)")
    console.print(
        Text.assemble("Sign in with this demo admin key: ", (key, "bold")), soft_wrap=True
    )
    uvicorn.run(create_app(config), host="127.0.0.1", port=port, log_level="warning")
