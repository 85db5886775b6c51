"""One bad record, one failing target, one unusual deployment: a clear line, the rest syncs.

Each test runs the real command line (``finsync sync``, ``status``, ``resync``) against the
NetSuite and AvaTax sandboxes over HTTP, on SQLite and on PostgreSQL, and asserts the exit code,
the line printed, and what the targets hold afterwards.
"""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from billing import schema as b
from billing.generator import seed_billing
from finsync.cli import cli
from finsync.db import make_engine
from finsync.demo import MAPPING_EXAMPLE, running_sandboxes, sandbox_config, sandbox_secrets
from sync.migrate import upgrade
from sync.state import ledger
from tests.builders import BillingBuilder
from tests.conftest import fresh_pg_schema
from tests.engine_support import Clock, write_config
from tests.engine_support import make_engine as make_sync_engine

FAST_RETRIES = """
retry_attempts = 2
backoff_seconds = 0.01
"""


@contextmanager
def deployment(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch):
    """A deployment on ``db_url`` with a little seeded billing, pointing at fresh sandboxes."""
    for name, value in sandbox_secrets().items():
        monkeypatch.setenv(name, value)
    shutil.copy(MAPPING_EXAMPLE, tmp_path / "mapping.toml")
    billing = make_engine(db_url)
    seed_billing(billing, customers=3, months=1, seed=5, start=date(2026, 1, 1))
    billing.dispose()
    with running_sandboxes() as (netsuite, avatax):
        config = sandbox_config(
            billing_url=db_url, state_url=db_url, netsuite=netsuite, avatax=avatax
        )
        config = config.replace("concurrency = 5\n", "concurrency = 5\n" + FAST_RETRIES, 1)
        (tmp_path / "finsync.toml").write_text(config)
        state = make_engine(db_url)
        upgrade(state)
        state.dispose()
        yield tmp_path, netsuite, avatax, db_url


@pytest.fixture
def site(tmp_path, db_url, monkeypatch):
    """``deployment`` on SQLite and on PostgreSQL."""
    with deployment(tmp_path, db_url, monkeypatch) as built:
        yield built


def run(folder: Path, *args: str):
    """``finsync --config <folder>/finsync.toml ARGS`` in-process."""
    return CliRunner().invoke(cli, ["--config", str(folder / "finsync.toml"), *args])


def ledger_statuses(db_url: str, target: str) -> dict[str, int]:
    engine = make_engine(db_url)
    query = (
        sa.select(ledger.c.status, sa.func.count())
        .where(ledger.c.target == target)
        .group_by(ledger.c.status)
    )
    with engine.connect() as conn:
        counts = {status: int(n) for status, n in conn.execute(query)}
    engine.dispose()
    return counts


def avatax_documents(db_url: str) -> int:
    """Invoices and credit notes billing holds: what AvaTax must receive."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        invoices = conn.execute(sa.select(sa.func.count()).select_from(b.invoices)).scalar_one()
        notes = conn.execute(sa.select(sa.func.count()).select_from(b.credit_notes)).scalar_one()
    engine.dispose()
    return int(invoices) + int(notes)


def no_traceback(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output + result.stderr


def test_a_netsuite_outage_is_recorded_on_netsuite_and_avatax_still_syncs(site):
    folder, netsuite, avatax, db_url = site
    netsuite.concurrency_fault_next(times=10_000)  # every NetSuite request refused
    result = run(folder, "sync")
    no_traceback(result)
    assert result.exit_code in (1, 3), result.stderr
    assert "netsuite" in result.stderr
    expected = avatax_documents(db_url)
    assert len(avatax.transactions()) == expected > 0
    assert ledger_statuses(db_url, "avatax") == {"synced": expected}
    assert netsuite.count("invoice") == 0
    assert "synced" not in ledger_statuses(db_url, "netsuite")
    assert "sending" not in ledger_statuses(db_url, "netsuite")


def test_retries_inside_requests_are_counted_and_the_run_ends_synced(site):
    folder, netsuite, _avatax, db_url = site
    netsuite.fail_next(status=503, times=1)
    result = run(folder, "sync")
    no_traceback(result)
    assert result.exit_code == 0, result.stderr
    retried = next(line for line in result.output.splitlines() if "requests retried" in line)
    assert re.findall(r"\d+", retried) == ["1", "0"]  # netsuite's one 503, avatax none
    assert set(ledger_statuses(db_url, "netsuite")) == {"synced"}


def test_every_record_dead_exits_1_and_says_where_to_look(site):
    folder, netsuite, _avatax, db_url = site
    text = (folder / "finsync.toml").read_text()
    kinds = 'kinds = ["customer", "invoice", "credit_note", "payment"]'
    (folder / "finsync.toml").write_text(
        text.replace("[sync]\n", f"[sync]\nmax_attempts = 1\n{kinds}\n")
    )
    netsuite.fail_next(status=503, times=10_000)
    result = run(folder, "sync")
    no_traceback(result)
    assert result.exit_code == 1, result.stderr
    assert "records need attention: `finsync status` lists them" in result.stderr
    statuses = ledger_statuses(db_url, "netsuite")
    assert statuses.get("dead", 0) > 0 and "synced" not in statuses


def test_state_url_written_postgresql_scheme_works_for_sync(tmp_path, pg_database, monkeypatch):
    """``postgresql://`` as finsync.example.toml writes it (no driver named): psycopg 3 is used
    everywhere, the NetSuite connector's shared concurrency slots included."""
    db_url = fresh_pg_schema(pg_database)
    with deployment(tmp_path, db_url, monkeypatch) as (folder, netsuite, _avatax, _url):
        plain = db_url.replace("postgresql+psycopg://", "postgresql://")
        assert plain != db_url
        text = (folder / "finsync.toml").read_text().replace(db_url, plain)
        (folder / "finsync.toml").write_text(text)
        result = run(folder, "sync")
        no_traceback(result)
        assert result.exit_code == 0, result.stderr
        assert netsuite.count("invoice") > 0
        assert set(ledger_statuses(db_url, "netsuite")) == {"synced"}


def test_a_line_with_xml_illegal_characters_fails_alone(tmp_path, db_url, monkeypatch):
    """One invoice line holds control characters: that invoice fails with the field and fix,
    every other record syncs to NetSuite over SOAP and to AvaTax, nothing stays 'sending'."""
    for name, value in sandbox_secrets().items():
        monkeypatch.setenv(name, value)
    shutil.copy(MAPPING_EXAMPLE, tmp_path / "mapping.toml")
    billing = make_engine(db_url)
    seed_billing(billing, customers=3, months=1, seed=5, start=date(2026, 1, 1))
    with billing.begin() as conn:
        victim = conn.execute(
            sa.select(b.invoice_lines.c.invoice_id, b.invoice_lines.c.line_no)
            .order_by(b.invoice_lines.c.invoice_id)
            .limit(1)
        ).one()
        conn.execute(
            b.invoice_lines.update()
            .where(
                b.invoice_lines.c.invoice_id == victim.invoice_id,
                b.invoice_lines.c.line_no == victim.line_no,
            )
            .values(description="Support\x01 plan\x0b")
        )
        number = conn.execute(
            sa.select(b.invoices.c.number).where(b.invoices.c.id == victim.invoice_id)
        ).scalar_one()
        invoices = conn.execute(sa.select(sa.func.count()).select_from(b.invoices)).scalar_one()
    billing.dispose()
    with running_sandboxes() as (netsuite, avatax):
        config = sandbox_config(
            billing_url=db_url, state_url=db_url, netsuite=netsuite, avatax=avatax
        )
        (tmp_path / "finsync.toml").write_text(config)
        state = make_engine(db_url)
        upgrade(state)
        state.dispose()
        result = run(tmp_path, "sync")
        no_traceback(result)
        assert result.exit_code == 1, result.stderr
        assert netsuite.count("invoice") == invoices - 1
        assert netsuite.get("invoice", f"finsync:inv:{number}") is None
        engine = make_engine(db_url)
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(ledger.c.status, ledger.c.last_error).where(
                    ledger.c.target == "netsuite", ledger.c.label == f"invoice {number}"
                )
            ).one()
            sending = conn.execute(
                sa.select(sa.func.count()).where(ledger.c.status == "sending")
            ).scalar_one()
        engine.dispose()
        assert sending == 0
        assert row.status == "failed"
        assert row.last_error.startswith(f"invoice {number}: line {victim.line_no}.description")
        assert "U+0001 at position 8" in row.last_error and "remove it in billing" in row.last_error
        assert avatax.transactions() and all(
            t["code"] != number for t in avatax.transactions()
        )  # the same record is refused for every target
        # Every credit note and payment that does not depend on that invoice is synced.
        assert ledger_statuses(db_url, "netsuite").get("synced", 0) > invoices - 1


def test_sku_written_as_markup_is_printed_as_it_is(tmp_path, db_url):
    setup = write_config(tmp_path, db_url)
    engine = make_sync_engine(setup, Clock())
    builder = BillingBuilder(engine.billing)
    with engine.billing.begin() as conn:
        conn.execute(
            b.products.insert().values(
                id=900,
                sku="[/oops]",
                name="Oops",
                product_family="platform",
                revenue_pattern="ratable",
                tax_code="SW054000",
                updated_at=builder.now,
            )
        )
    builder.invoice(builder.customer(), number="INV-OOPS", lines=[{"product_id": 900}])
    engine.close()
    synced = run(tmp_path, "sync")
    no_traceback(synced)
    assert synced.exit_code == 1, synced.stderr
    status = run(tmp_path, "status")
    no_traceback(status)
    assert status.exit_code == 0
    assert "[/oops]" in status.output and "[items]" in status.output  # not read as markup
    preview = run(tmp_path, "resync", "INV-OOPS", "--dry-run")
    no_traceback(preview)
    assert preview.exit_code == 0, preview.stderr
    assert "[/oops]" in preview.output


def test_money_in_numeric_sqlite_columns_is_read_exactly(tmp_path):
    """A billing database written by another tool: money columns declared NUMERIC (SQLite then
    stores 1234.50 as a binary float). Exact amounts sync to the cent; a float that is no
    exact amount is refused on its record, naming the field and the value."""
    billing_path = tmp_path / "billing.db"
    raw = sa.create_engine(f"sqlite:///{billing_path}")
    with raw.begin() as conn:
        for table in b.metadata.sorted_tables:
            ddl = str(sa.schema.CreateTable(table).compile(dialect=raw.dialect))
            conn.exec_driver_sql(ddl.replace("VARCHAR(64)", "NUMERIC"))  # money columns
    raw.dispose()
    setup = write_config(tmp_path, f"sqlite:///{billing_path}")
    engine = make_sync_engine(setup, Clock())
    builder = BillingBuilder(engine.billing)
    customer = builder.customer()
    builder.invoice(customer, number="INV-EXACT", lines=[{"unit_price": "1234.50"}])
    builder.invoice(customer, number="INV-FLOAT", lines=[{"unit_price": "0.10"}])
    engine.close()
    raw = sa.create_engine(f"sqlite:///{billing_path}")
    with raw.begin() as conn:
        stored = conn.exec_driver_sql("SELECT typeof(total) FROM invoices").scalars().all()
        conn.exec_driver_sql(
            "UPDATE invoice_lines SET amount = 0.1 + 0.2 WHERE invoice_id = "
            "(SELECT id FROM invoices WHERE number = 'INV-FLOAT')"
        )
    raw.dispose()
    assert "real" in set(stored)  # SQLite really holds floats in these columns
    result = run(tmp_path, "sync")
    no_traceback(result)
    assert result.exit_code == 1, result.stderr
    store = sa.create_engine(f"sqlite:///{setup.store_path}")
    with store.connect() as conn:
        held = dict(conn.exec_driver_sql("SELECT external_id, payload FROM records").all())
    store.dispose()
    expected_tax = (Decimal("1234.50") * Decimal("0.0725")).quantize(Decimal("0.01"))
    assert '"amount":"1234.50"' in held["finsync:inv:INV-EXACT"]
    assert f'"tax1Amt":"{expected_tax}"' in held["finsync:inv:INV-EXACT"]
    assert "finsync:inv:INV-FLOAT" not in held
    state = make_engine(f"sqlite:///{billing_path}")
    with state.connect() as conn:
        refused = conn.execute(
            sa.select(ledger.c.status, ledger.c.last_error).where(
                ledger.c.label == "invoice INV-FLOAT"
            )
        ).one()
    state.dispose()
    assert refused.status == "failed"
    assert "line 1.amount" in refused.last_error and "0.30000000000000004" in refused.last_error


def test_resync_no_push_queues_while_netsuite_is_down(site):
    folder, netsuite, _avatax, db_url = site
    assert run(folder, "sync").exit_code == 0
    engine = make_engine(db_url)
    with engine.connect() as conn:
        number = conn.execute(
            sa.select(b.invoices.c.number).order_by(b.invoices.c.id).limit(1)
        ).scalar_one()
    netsuite.stop()  # NetSuite is down: nothing can be sent, but the request is kept
    result = run(folder, "resync", number, "--no-push", "--reason", "customer asked for a copy")
    no_traceback(result)
    assert result.exit_code == 0, result.stderr
    with engine.connect() as conn:
        status = conn.execute(
            sa.select(ledger.c.status).where(
                ledger.c.target == "netsuite", ledger.c.label == f"invoice {number}"
            )
        ).scalar_one()
    engine.dispose()
    assert status == "pending"  # queued: the next sync sends it
