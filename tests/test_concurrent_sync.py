"""Two sync processes at once against one PostgreSQL ledger never push the same record twice; two
claimers of one SQLite ledger never claim the same document."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from connectors.scripted import ScriptedConnector, ScriptedSettings
from sync.state import ledger, ledger_events, runs
from tests.builders import BillingBuilder
from tests.conftest import fresh_pg_schema
from tests.engine_support import REPO, Clock, make_engine, write_config


@pytest.mark.postgres
def test_two_syncs_at_once_send_each_record_once(tmp_path, pg_database):
    url = fresh_pg_schema(pg_database)
    setup = write_config(
        tmp_path, url, mode="create", extra="batch_size = 4\nlatency_seconds = 0.05"
    )
    engine = make_engine(setup, Clock())
    builder = BillingBuilder(engine.billing)
    expected = set()
    for c in range(10):
        cid = builder.customer(f"CC-{c:02d}")
        expected.add(f"finsync:cust:CC-{c:02d}")
        for n in range(5):
            builder.invoice(cid, number=f"INV-CC-{c:02d}-{n}")
            expected.add(f"finsync:inv:INV-CC-{c:02d}-{n}")
    engine.close()

    command = [sys.executable, "-m", "finsync", "--config", str(setup.config_path), "sync"]
    processes = [
        subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=180)[1].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], errors

    target = ScriptedConnector(ScriptedSettings(store=setup.store_path, mode="create"))
    stored = [r["external_id"] for r in target.records()]
    assert sorted(stored) == sorted(expected)  # each exactly once
    state = sa.create_engine(url)
    with state.connect() as conn:
        statuses = conn.execute(sa.select(ledger.c.status)).scalars().all()
        sends = conn.execute(
            sa.select(ledger_events.c.ledger_id, sa.func.count())
            .where(ledger_events.c.event == "created")
            .group_by(ledger_events.c.ledger_id)
        ).all()
        run_count = conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar()
    state.dispose()
    assert len(statuses) == len(expected)
    assert set(statuses) == {"synced"}
    assert run_count == 2
    # The ledger recorded exactly one send per record, whichever process made it.
    assert len(sends) == len(expected)
    assert {count for _, count in sends} == {1}


@pytest.mark.postgres
def test_a_send_slower_than_the_lease_is_not_taken_over_while_alive(tmp_path, pg_database):
    """The first process's batch takes ten leases to answer (the target commits halfway). A
    second process that starts pushing while it is in flight must not take the claims over as
    abandoned and send them again: a live worker keeps its lease."""
    url = fresh_pg_schema(pg_database)
    setup = write_config(
        tmp_path,
        url,
        mode="create",  # a second send would be a second record
        extra="batch_size = 3\nlatency_seconds = 10.0",
        sync={"lease_seconds": 1, "backoff_base_seconds": 1},
    )
    engine = make_engine(setup, Clock())
    builder = BillingBuilder(engine.billing)
    expected = {f"finsync:cust:SL-{c:02d}" for c in range(3)}
    for c in range(3):
        builder.customer(f"SL-{c:02d}")
    engine.close()

    command = [sys.executable, "-m", "finsync", "--config", str(setup.config_path), "sync"]
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = sa.create_engine(url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the first process has claimed the batch
        with state.connect() as conn:
            sending = conn.execute(
                sa.select(sa.func.count()).where(ledger.c.status == "sending")
            ).scalar_one()
        if sending:
            break
        time.sleep(0.05)
    state.dispose()
    assert sending == 3
    time.sleep(1.5)  # its lease (1 s) would have run out by now, were it not kept
    second = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    errors = [p.communicate(timeout=180)[1].decode() for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], errors

    target = ScriptedConnector(ScriptedSettings(store=setup.store_path, mode="create"))
    assert sorted(r["external_id"] for r in target.records()) == sorted(expected)


def test_two_claimers_of_one_sqlite_ledger_never_take_the_same_document(tmp_path):
    """pysqlite begins a transaction only at the first write: a second claimer could read the
    due rows while the first had claimed them but not yet committed, then claim them too once
    it could write (seen as a duplicate first batch). Here the first claim is held open while
    the second runs; the second must see the first's claims."""
    from sync import ledger as outbox

    url = f"sqlite:///{tmp_path / 'one.db'}"
    clock = Clock()
    engine = make_engine(write_config(tmp_path, url), clock)
    builder = BillingBuilder(engine.billing)
    for c in range(6):
        builder.customer(f"TW-{c:02d}")
    engine.extract("erp", ["customer"])
    now = clock.now

    def claim(conn: sa.Connection) -> set[int]:
        batch = outbox.claim(
            conn,
            target="erp",
            kind="customer",
            worker=f"w{id(conn)}",
            now=now,
            limit=6,
            lease=timedelta(minutes=5),
            wait=timedelta(minutes=1),
        )
        return {c.ledger_id for c in batch.items}

    second: list[set[int]] = []
    with engine.state.connect() as first_conn:
        with first_conn.begin():
            first = claim(first_conn)
            worker = threading.Thread(target=lambda: second.append(_claim_in(engine, claim)))
            worker.start()
            time.sleep(1.0)  # the second claimer has read (or waits for the lock) by now
        worker.join(60)
    engine.close()

    assert len(first) == 6
    assert second == [set()]  # everything was claimed by the first, nothing twice


def _claim_in(engine, claim) -> set[int]:
    with engine.state.begin() as conn:
        return claim(conn)
