"""Crash safety: a sync killed with SIGKILL at random points, then restarted, ends with every
record in the target exactly once. The target is in 'create' mode, so any blind re-send of a
write that had landed shows up as a duplicate. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.scripted import ScriptedConnector, ScriptedSettings
from sync.state import ledger
from tests.builders import BillingBuilder
from tests.engine_support import REPO, write_config

TRIALS = 20
SEED = 20261122


def _command(config: Path) -> list[str]:
    return [sys.executable, "-m", "finsync", "--config", str(config), "sync"]


def _seed(builder: BillingBuilder) -> set[str]:
    expected = set()
    for c in range(12):
        account = f"CR-{c:03d}"
        cid = builder.customer(account)
        expected.add(f"finsync:cust:{account}")
        for n in range(4):
            number = f"INV-{c:03d}-{n}"
            inv = builder.invoice(cid, number=number)
            expected.add(f"finsync:inv:{number}")
            if n == 0:
                reference = f"PAY-{c:03d}"
                builder.payment(cid, "50.00", applications=[(inv, "50.00")], reference=reference)
                expected.add(f"finsync:pay:{reference}")
    return expected


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path, db_url):
    setup = write_config(
        tmp_path,
        db_url,
        mode="create",
        extra="batch_size = 2\nlatency_seconds = 0.2",
        sync={"lease_seconds": 1, "backoff_base_seconds": 1, "max_attempts": 50},
    )
    from tests.engine_support import Clock, make_engine

    engine = make_engine(setup, Clock())  # migrates the state store
    expected = _seed(BillingBuilder(engine.billing))
    engine.close()

    state = sa.create_engine(db_url)
    rng = random.Random(SEED)
    killed_mid_run = 0
    for _ in range(TRIALS):
        process = subprocess.Popen(
            _command(setup.config_path),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.4, 1.4))  # interpreter start-up takes ~0.3-0.5 s
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed_mid_run += 1
        process.wait(timeout=60)
    # Restart until everything is through (a killed worker's lease runs out after 1 s).
    for _ in range(10):
        time.sleep(1.2)
        finished = subprocess.run(
            _command(setup.config_path), cwd=REPO, capture_output=True, timeout=120, check=False
        )
        assert finished.returncode == 0, finished.stderr.decode()
        with state.connect() as conn:
            open_rows = conn.execute(
                sa.select(sa.func.count()).select_from(ledger).where(ledger.c.status != "synced")
            ).scalar()
        if open_rows == 0:
            break

    target = ScriptedConnector(ScriptedSettings(store=setup.store_path, mode="create"))
    stored = [r["external_id"] for r in target.records()]
    duplicates = sorted({e for e in stored if stored.count(e) > 1})
    assert duplicates == []
    assert set(stored) == expected
    with state.connect() as conn:
        rows = conn.execute(sa.select(ledger.c.external_id, ledger.c.status)).all()
    state.dispose()
    assert len(rows) == len(expected)
    assert {status for _, status in rows} == {"synced"}
    assert killed_mid_run >= TRIALS // 2, "most kills must land while the sync is running"
