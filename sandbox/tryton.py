"""A real Tryton ERP on 127.0.0.1: build an initialised database once, serve copies of it.

This is not a fake: it runs ``trytond`` 8.2 itself with the account, account_invoice,
account_payment and account_statement modules on a SQLite database file. ``build_template``
creates the database once (modules activated, one company per billing entity in its currency,
each with the Universal Chart of Accounts of the ``account`` module, fiscal years 2025 to 2027
with monthly periods and invoice sequences), using the modules' own test helpers; it takes about
20 seconds. ``TrytonServer`` copies that file into a folder of its own and starts ``trytond`` on a
free loopback port in about a second, so each test or trial gets a fresh ERP.

Like the other sandboxes, this module imports nothing from ``connectors/`` or ``mappings/``: the
ERP's own rules decide what it accepts. The builder runs in a subprocess (trytond keeps its
configuration and pools in globals).

The admin login and password below are for local trials only.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

#: The database name (the SQLite file is ``<name>.sqlite``) and its trial-only administrator.
DATABASE = "finsync"
ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "finsync-demo-admin"  # noqa: S105 - local trial password, not a secret
#: Modules activated in the template (their dependencies come with them).
MODULES = ("account_invoice", "account_payment", "account_statement")
#: Calendar years that get a fiscal year with monthly periods.
FISCAL_YEARS = (2025, 2026, 2027)
TEMPLATE_FILE = f"{DATABASE}.sqlite"


@dataclass(frozen=True)
class CompanySpec:
    """One Tryton company: the billing entity it books, its name and currency."""

    entity: str
    name: str
    currency: str
    digits: int


#: The demo's billing entities (billing/catalog.py), one Tryton company each, created in order
#: (so company ids are 1..5 in this order).
COMPANIES: tuple[CompanySpec, ...] = (
    CompanySpec("acme-us", "Acme US Inc.", "USD", 2),
    CompanySpec("acme-de", "Acme Deutschland GmbH", "EUR", 2),
    CompanySpec("acme-uk", "Acme UK Ltd", "GBP", 2),
    CompanySpec("acme-jp", "Acme Japan KK", "JPY", 0),
    CompanySpec("acme-kw", "Acme Kuwait WLL", "KWD", 3),
)


class TrytonStartError(RuntimeError):
    """Tryton could not be built or started; the message says what failed and how to look."""


def _trytond_config(folder: Path, port: int | None = None) -> Path:
    """Write the trytond.conf of a server whose database lives in ``folder``."""
    lines = [
        "[database]",
        "uri = sqlite://",
        f"path = {folder}",
        "language = en",
        "[session]",
        "timeout = 3600",
        "max_attempt = 50",
        "[request]",
        "max_size_authenticated = 1073741824",
    ]
    if port is not None:
        lines += ["[web]", f"listen = 127.0.0.1:{port}"]
    path = folder / "trytond.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _python() -> str:
    return sys.executable


def build_template(folder: Path, *, timeout: float = 300.0) -> Path:
    """Create the initialised database file in ``folder`` (a subprocess); return its path.

    Raises TrytonStartError with the builder's last output lines when it fails.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / TEMPLATE_FILE
    target.unlink(missing_ok=True)
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            [_python(), "-m", "sandbox.tryton", "build", str(folder)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=Path(__file__).resolve().parents[1],
        )
    except subprocess.TimeoutExpired:
        raise TrytonStartError(f"building the Tryton database took over {timeout:.0f} s") from None
    if done.returncode != 0 or not target.is_file():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise TrytonStartError(f"building the Tryton database in {folder} failed:\n{tail}")
    return target


def template_key() -> str:
    """A key of this builder's source and trytond's version: a template built by another
    version of either is not reused."""
    from importlib import metadata

    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(metadata.version("trytond").encode())
    return digest.hexdigest()[:12]


def ensure_template(cache_root: Path) -> Path:
    """The template database under ``cache_root`` (built on first use, under a file lock so
    parallel processes share one build). Raises TrytonStartError when the build fails."""
    folder = cache_root / f"finsync-tryton-template-{template_key()}"
    folder.mkdir(parents=True, exist_ok=True)
    ready = folder / "ready"
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            build_template(folder)
            ready.touch()
    return folder / TEMPLATE_FILE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TrytonServer:
    """A running ``trytond`` on a copy of a template database (see module doc)."""

    def __init__(self, template: Path, folder: Path, port: int | None = None) -> None:
        self.template = template
        self.folder = folder
        self.port = port or _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log = folder / "trytond.log"

    @property
    def url(self) -> str:
        """Base URL of the server (``http://127.0.0.1:PORT``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def rpc_url(self) -> str:
        """The JSON-RPC endpoint of the database."""
        return f"{self.url}/{DATABASE}/rpc/"

    def start(self, *, timeout: float = 60.0) -> TrytonServer:
        """Copy the template and start trytond; return once it answers a login."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in ("-wal", "-shm", "-journal"):  # a previous copy's, would corrupt this one
            (self.folder / f"{TEMPLATE_FILE}{stale}").unlink(missing_ok=True)
        shutil.copyfile(self.template, self.folder / TEMPLATE_FILE)
        config = _trytond_config(self.folder, self.port)
        trytond = Path(_python()).with_name("trytond")
        command = [str(trytond)] if trytond.is_file() else [_python(), "-m", "trytond.bin.trytond"]
        env = {**os.environ, "TRYTOND_LOGGING_LEVEL": "30"}
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - the venv's trytond
                [*command, "-c", str(config), "-d", DATABASE],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.folder,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise TrytonStartError(
                    f"trytond exited with code {self._process.returncode}: {self._log_tail()}"
                )
            try:
                self.login()
                return self
            except (httpx.TransportError, ValueError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise TrytonStartError(
                        f"trytond did not answer on {self.url} within {timeout:.0f} s: "
                        f"{self._log_tail()}"
                    ) from None
                time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            lines = self._log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-5:]) or "(empty log)"

    def login(self) -> list[Any]:
        """``common.db.login`` as the trial administrator: ``[user id, session token]``."""
        response = httpx.post(
            self.rpc_url,
            json={
                "id": 0,
                "method": "common.db.login",
                "params": [ADMIN_LOGIN, {"password": ADMIN_PASSWORD}, "en"],
            },
            timeout=10.0,
        )
        body = response.json()
        if not isinstance(body.get("result"), list):
            raise ValueError(f"login refused: {body.get('error')}")
        return list(body["result"])

    def wait(self) -> None:
        """Block until trytond exits (Ctrl-C interrupts)."""
        if self._process is not None:
            self._process.wait()

    def stop(self) -> None:
        """Stop trytond (SIGTERM, then SIGKILL after 5 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> TrytonServer:
        return self.start() if self._process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the builder (runs in its own process: trytond configuration is global) -------------------


def _build(folder: Path) -> None:  # pragma: no cover - runs in a subprocess
    import datetime as dt
    from decimal import Decimal

    from trytond import config

    folder.mkdir(parents=True, exist_ok=True)
    config.update_etc(str(_trytond_config(folder)))

    from trytond import backend
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    (folder / TEMPLATE_FILE).touch()
    database = backend.Database(DATABASE)
    database.connect()
    if not database.test():
        database.init()
    pool = Pool(DATABASE)
    pool.init(update=["res", "ir"], lang=["en"])
    with Transaction().start(DATABASE, 0) as transaction:
        # The charts of accounts are <data language="en">: loaded for translatable languages.
        Lang = pool.get("ir.lang")
        Lang.write(Lang.search([("code", "=", "en")]), {"translatable": True})
        Module = pool.get("ir.module")
        modules = Module.search([("name", "in", MODULES)])
        Module.activate(modules)
        transaction.commit()
        upgrade = pool.get("ir.module.activate_upgrade", type="wizard")
        session, _, _ = upgrade.create()
        transaction.commit()
        upgrade(session).transition_upgrade()
        upgrade.delete(session)
        transaction.commit()
    pool = Pool(DATABASE)
    pool.init()

    from trytond.modules.account.tests.test_module import create_chart, get_fiscalyear
    from trytond.transaction import TransactionError

    def in_transaction(step: Any) -> None:
        """Run ``step`` in one transaction, retried with the locks trytond asks for."""
        extras: dict[str, Any] = {}
        while True:
            try:
                with Transaction().start(DATABASE, 0, **extras) as transaction:
                    step()
                    transaction.commit()
                return
            except TransactionError as exc:
                exc.fix(extras)

    def create_admin() -> None:
        User = pool.get("res.user")
        Group = pool.get("res.group")
        User.create(
            [
                {
                    "login": ADMIN_LOGIN,
                    "name": "Administrator",
                    "password": ADMIN_PASSWORD,
                    "groups": [("add", [g.id for g in Group.search([])])],
                }
            ]
        )

    def create_company(spec: CompanySpec) -> None:
        User = pool.get("res.user")
        Currency = pool.get("currency.currency")
        Party = pool.get("party.party")
        Company = pool.get("company.company")
        FiscalYear = pool.get("account.fiscalyear")
        SequenceStrict = pool.get("ir.sequence.strict")
        SequenceType = pool.get("ir.sequence.type")
        InvoiceSequence = pool.get("account.fiscalyear.invoice_sequence")
        (admin,) = User.search([("login", "=", ADMIN_LOGIN)])
        (invoice_type,) = SequenceType.search([("name", "=", "Invoice")], limit=1)
        currency, *_ = Currency.search([("code", "=", spec.currency)]) or Currency.create(
            [
                {
                    "name": spec.currency,
                    "symbol": spec.currency,
                    "code": spec.currency,
                    "digits": spec.digits,
                    "rounding": Decimal(1).scaleb(-spec.digits),
                }
            ]
        )
        (party,) = Party.create([{"name": spec.name, "addresses": [("create", [{}])]}])
        company = Company(party=party, currency=currency)
        company.save()
        User.write([admin], {"companies": [("add", [company.id])], "company": company.id})
        with Transaction().set_context(company=company.id, companies=[company.id]):
            create_chart(company)
            for year in FISCAL_YEARS:
                fiscalyear = get_fiscalyear(company, today=dt.date(year, 1, 1))
                fiscalyear.name = f"{year} {spec.entity}"
                fiscalyear.invoice_sequences = []
                fiscalyear.save()
                FiscalYear.create_period([fiscalyear])
                # Tryton numbers a sequence's invoices in date order. One sequence per month,
                # and credit notes apart from invoices, so that order only matters within a
                # month and a kind (a sync sends records by change, not by date).
                sequences = []
                for period in sorted(fiscalyear.periods, key=lambda p: p.start_date):
                    invoices, credit_notes = SequenceStrict.create(
                        [
                            {
                                "name": f"{what} {period.name} {spec.entity}",
                                "sequence_type": invoice_type.id,
                                "company": company.id,
                            }
                            for what in ("Invoices", "Credit notes")
                        ]
                    )
                    sequences.append(
                        {
                            "fiscalyear": fiscalyear.id,
                            "company": company.id,
                            "period": period.id,
                            "out_invoice_sequence": invoices.id,
                            "in_invoice_sequence": invoices.id,
                            "out_credit_note_sequence": credit_notes.id,
                            "in_credit_note_sequence": credit_notes.id,
                        }
                    )
                InvoiceSequence.create(sequences)

    def select_first_company() -> None:
        User = pool.get("res.user")
        (admin,) = User.search([("login", "=", ADMIN_LOGIN)])
        # Record rules follow the user's company filter, not the call's context: "all" lets
        # one session book into every company (each call names its company in the context).
        User.write(
            [admin], {"company": min(c.id for c in admin.companies), "company_filter": "all"}
        )

    in_transaction(create_admin)
    for spec in COMPANIES:
        in_transaction(lambda spec=spec: create_company(spec))
    in_transaction(select_first_company)
    summary = {"companies": [s.entity for s in COMPANIES], "fiscal_years": list(FISCAL_YEARS)}
    print(json.dumps(summary))


def main(argv: list[str] | None = None) -> None:
    """``python -m sandbox.tryton build DIR`` (the builder) or ``serve DIR [--port N]``."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.tryton")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="create the initialised database in DIR")
    build.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build":
        _build(args.folder.resolve())


if __name__ == "__main__":
    main()
