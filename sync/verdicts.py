"""Billing validation in a worker process, beside the extraction that needs its verdicts.

Validation reads and checks every billing record; extraction reads and maps the changed ones.
Neither needs the other until a page is enqueued, so on a machine with a second core the two run
at once: the worker reads billing over its own connection and hands back only the verdicts (the
rejected records), which are small. PostgreSQL only: a SQLite file is validated in-process.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Collection
from multiprocessing.connection import Connection

from sqlalchemy.engine import Engine

from billing.validation import Verdicts, validate_billing
from finsync.db import make_engine
from sync.extract import BillingReader


def validate_url(url: str, entities: Collection[str]) -> Verdicts | None:
    """Validate the billing database at ``url`` over a connection of its own.

    None when anything goes wrong: the caller then validates in-process, where the error is
    raised and worded as usual.
    """
    try:
        billing = make_engine(url, key="billing.url", read_only=True)
        try:
            with billing.connect() as conn:
                return validate_billing(BillingReader(conn), entities=entities)
        finally:
            billing.dispose()
    except Exception:  # reported by the in-process validation that follows
        return None


def _work(answer: Connection, url: str, entities: tuple[str, ...]) -> None:
    answer.send(validate_url(url, entities))
    answer.close()


class BackgroundValidation:
    """One validation of billing running in a worker process (spawned, so it shares nothing
    with this process's threads or connections)."""

    def __init__(self, billing: Engine, entities: Collection[str]) -> None:
        url = billing.url.render_as_string(hide_password=False)
        context = multiprocessing.get_context("spawn")
        self._answer, answer = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_work, args=(answer, url, tuple(entities)), name="finsync-validation"
        )
        self._process.daemon = True  # never outlives the run that started it
        self._process.start()
        answer.close()

    def done(self) -> bool:
        """True once the worker has answered (or died)."""
        return self._answer.poll() or not self._process.is_alive()

    def result(self) -> Verdicts | None:
        """Wait for the worker: its verdicts, or None when it failed or died."""
        try:
            verdicts: Verdicts | None = self._answer.recv()
        except (EOFError, OSError):
            verdicts = None
        self._answer.close()
        self._process.join()
        return verdicts

    def cancel(self) -> None:
        """Stop the worker: the run ended without needing its verdicts."""
        self._answer.close()
        self._process.terminate()
        self._process.join()


def worth_a_worker(billing: Engine) -> bool:
    """True when validation can run in a worker process: a PostgreSQL billing database."""
    return billing.dialect.name == "postgresql"
