"""Bad configuration, mapping files, URLs, paths and arguments: one clear line, never a traceback.

Each case starts from a working deployment (a SQLite billing database with a little data, an
initialised state store, the example mapping file, a scripted ERP target), breaks one thing and
runs one command. It asserts the exit code, that stderr is exactly one line naming the setting
(or argument) and saying what to do, and that no traceback appears. docs/errors.md lists every
case with its message; a test checks that the page and the cases agree.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from billing.generator import seed_billing
from finsync.cli import cli
from finsync.db import make_engine
from sync.migrate import upgrade
from sync.state import ledger

REPO = Path(__file__).resolve().parents[1]
ERRORS_DOC = REPO / "docs" / "errors.md"

CONFIG = """\
[billing]
url = "sqlite:///billing.db"

[state]
url = "sqlite:///state.db"

[mapping]
file = "mapping.toml"

[targets.erp]
system = "scripted"
store = "target.db"
"""


@dataclass(frozen=True)
class Case:
    """One broken deployment: how to break it, the command, the exit code, the line's words."""

    name: str
    breaks: Callable[[Path], None]
    args: list[str]
    exit_code: int
    says: tuple[str, ...]


def _config_edit(old: str, new: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / "finsync.toml"
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new))

    return edit


def _config_add(extra: str) -> Callable[[Path], None]:
    def add(folder: Path) -> None:
        with (folder / "finsync.toml").open("a") as handle:
            handle.write(extra)

    return add


def _mapping_edit(old: str, new: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / "mapping.toml"
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))

    return edit


def _write(name: str, text: str) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        (folder / name).write_text(text)

    return write


def _remove(name: str) -> Callable[[Path], None]:
    def remove(folder: Path) -> None:
        (folder / name).unlink()

    return remove


def _nothing(_folder: Path) -> None:
    return None


def _empty_billing(folder: Path) -> None:
    (folder / "billing.db").unlink()
    (folder / "billing.db").touch()


def _uninitialised_state(folder: Path) -> None:
    (folder / "state.db").unlink()


CASES = [
    Case("config file missing", _remove("finsync.toml"), ["status"], 2, ("finsync.toml",)),
    Case(
        "config is not TOML",
        _write("finsync.toml", "[billing\nurl = 1\n"),
        ["status"],
        2,
        ("finsync.toml", "TOML"),
    ),
    Case(
        "billing.url missing",
        _config_edit('[billing]\nurl = "sqlite:///billing.db"\n', "[billing]\n"),
        ["sync"],
        2,
        ("billing.url",),
    ),
    Case(
        "billing.url not a URL",
        _config_edit("sqlite:///billing.db", "billing.db"),
        ["sync"],
        2,
        ("billing.url", "not a database URL"),
    ),
    Case(
        "billing.url unsupported scheme",
        _config_edit("sqlite:///billing.db", "mysql://root@127.0.0.1/billing"),
        ["sync"],
        2,
        ("billing.url", "'mysql'", "sqlite:///path or postgresql://"),
    ),
    Case(
        "billing file does not exist",
        _config_edit("sqlite:///billing.db", "sqlite:///no-such-billing.db"),
        ["sync"],
        2,
        ("billing.url", "no SQLite database at", "never creates it"),
    ),
    Case(
        "billing database has no contract tables",
        _empty_billing,
        ["sync"],
        2,
        ("billing.url", "has no credit_note_lines", "docs/billing-contract.md"),
    ),
    Case(
        "billing on a PostgreSQL server that is down",
        _config_edit("sqlite:///billing.db", "postgresql://postgres@127.0.0.1:1/billing"),
        ["sync"],
        3,
        ("billing.url", "cannot connect to postgresql+psycopg://postgres@127.0.0.1:1/billing"),
    ),
    Case(
        "billing PostgreSQL database does not exist",
        _config_edit(
            "sqlite:///billing.db", "postgresql://postgres@127.0.0.1:5432/finsync_no_such_db"
        ),
        ["sync"],
        3,
        ("billing.url", "finsync_no_such_db", "does not exist"),
    ),
    Case(
        "state folder does not exist",
        _config_edit("sqlite:///state.db", "sqlite:///no/such/folder/state.db"),
        ["status"],
        2,
        ("state.url", "does not exist", "create it"),
    ),
    Case(
        "state path is a folder",
        _config_edit("sqlite:///state.db", "sqlite:///."),
        ["status"],
        2,
        ("state.url", "is a folder"),
    ),
    Case(
        "state on a read-only file system",
        _config_edit("sqlite:///state.db", "sqlite:////proc/finsync-state.db"),
        ["init"],
        2,
        ("state.url", "cannot write /proc/finsync-state.db", "make it writable"),
    ),
    Case(
        "state store not initialised",
        _uninitialised_state,
        ["status"],
        2,
        ("state.url", "not initialised", "finsync init"),
    ),
    Case(
        "state store not initialised (sync)",
        _uninitialised_state,
        ["sync"],
        2,
        ("state.url", "not initialised", "finsync init"),
    ),
    Case(
        "mapping file missing",
        _remove("mapping.toml"),
        ["sync"],
        2,
        ("mapping", "mapping.toml"),
    ),
    Case(
        "mapping file is not TOML",
        _write("mapping.toml", "[items\n"),
        ["sync"],
        2,
        ("mapping.toml",),
    ),
    Case(
        "mapping file lacks a required table",
        _mapping_edit("[items]", "[items_renamed]"),
        ["sync"],
        2,
        ("items",),
    ),
    Case(
        "mapping id of the wrong type",
        _mapping_edit('USD = "1"', "USD = true"),
        ["sync"],
        2,
        ("currencies.USD", "must be a string or integer id"),
    ),
    Case(
        "unknown config section",
        _config_add("\n[sincc]\npage_size = 10\n"),
        ["sync"],
        2,
        ("sincc",),
    ),
    Case(
        "unknown kind in sync.kinds",
        _config_add('\n[sync]\nkinds = ["invoice", "bill"]\n'),
        ["sync"],
        2,
        ("sync.kinds", "'bill'"),
    ),
    Case(
        "sync.page_size zero",
        _config_add("\n[sync]\npage_size = 0\n"),
        ["sync"],
        2,
        ("sync.page_size",),
    ),
    Case(
        "unknown time zone",
        _config_add('\n[company]\ntimezone = "Mars/Olympus"\n'),
        ["sync"],
        2,
        ("company.timezone", "Mars/Olympus"),
    ),
    Case(
        "unknown target system",
        _config_edit('system = "scripted"', 'system = "sap"'),
        ["sync"],
        2,
        ("targets.erp.system", "'sap'"),
    ),
    Case(
        "secret from an unset environment variable",
        _config_add(
            '\n[targets.tax]\nsystem = "avatax"\n'
            'account_id = { env = "FINSYNC_TEST_UNSET_ACCOUNT" }\n'
            'license_key = { env = "FINSYNC_TEST_UNSET_LICENSE" }\n'
        ),
        ["sync"],
        2,
        ("targets.tax.account_id", "FINSYNC_TEST_UNSET_ACCOUNT"),
    ),
    Case(
        "report for an impossible month",
        _nothing,
        ["report", "monthly", "--period", "2026-13"],
        2,
        ("2026-13",),
    ),
    Case(
        "report for an unknown entity",
        _nothing,
        ["report", "monthly", "--period", "2026-01", "--entity", "acme-mars"],
        2,
        ("--entity", "'acme-mars'", "use one of"),
    ),
    Case(
        "report by e-mail without SMTP settings",
        _nothing,
        ["report", "monthly", "--period", "2026-01", "--email"],
        2,
        ("[report.smtp]", "report.recipients"),
    ),
    Case(
        "resync without a selection",
        _nothing,
        ["resync", "--reason", "x"],
        1,
        ("say what to re-sync",),
    ),
    Case(
        "resync without a reason",
        _nothing,
        ["resync", "--status", "failed"],
        1,
        ("--reason is required",),
    ),
    Case(
        "resync of a document number that does not exist",
        _nothing,
        ["resync", "INV-DOES-NOT-EXIST", "--reason", "x", "--no-push"],
        1,
        ("no ledger record matches",),
    ),
    Case(
        "sync of an unknown target",
        _nothing,
        ["sync", "--target", "nosuch"],
        2,
        ("nosuch",),
    ),
    Case(
        "resync with an impossible date",
        _nothing,
        ["resync", "--from", "2026-02-30", "--reason", "x"],
        2,
        ("2026-02-30", "not a date like"),
    ),
    Case(
        "config path is a folder",
        _nothing,
        ["--config", ".", "status"],
        2,
        ("'.'", "is a directory"),
    ),
    Case(
        "seed into an unsupported URL",
        _nothing,
        ["billing", "seed", "--db", "oracle://scott@db/billing"],
        2,
        ("--db", "'oracle'"),
    ),
]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working deployment, built once and copied per case."""
    folder = tmp_path_factory.mktemp("deployment")
    (folder / "finsync.toml").write_text(CONFIG)
    shutil.copy(REPO / "mapping.example.toml", folder / "mapping.toml")
    billing = make_engine(f"sqlite:///{folder / 'billing.db'}")
    seed_billing(billing, customers=2, months=1, seed=7, start=date(2026, 1, 1))
    billing.dispose()
    state = make_engine(f"sqlite:///{folder / 'state.db'}")
    upgrade(state)
    state.dispose()
    return folder


def run_case(case: Case, deployment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Copy the deployment, break it as the case says, run the command in its folder."""
    folder = tmp_path / "site"
    shutil.copytree(deployment, folder)
    case.breaks(folder)
    monkeypatch.chdir(folder)
    monkeypatch.delenv("FINSYNC_TEST_UNSET_ACCOUNT", raising=False)
    args = case.args if case.args[0] == "--config" else ["--config", "finsync.toml", *case.args]
    result = CliRunner().invoke(cli, args)
    return folder, result


def normalised(line: str, folder: Path) -> str:
    """The line as docs/errors.md shows it: the case's folder written ``<site>``."""
    return line.replace(str(folder.resolve()), "<site>").replace(str(folder), "<site>")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_deployment_is_one_clear_line(case, deployment, tmp_path, monkeypatch):
    folder, result = run_case(case, deployment, tmp_path, monkeypatch)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"crashed: {result.exception!r}"
    )
    assert "Traceback" not in result.output + result.stderr
    assert "unexpected error" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert result.exit_code == case.exit_code, result.stderr
    for words in case.says:
        assert words in lines[0], f"{words!r} not in {lines[0]!r}"
    documented = ERRORS_DOC.read_text(encoding="utf-8")
    assert f"| {case.name} |" in documented, f"docs/errors.md lacks the case {case.name!r}"
    assert normalised(lines[0], folder) in documented, normalised(lines[0], folder)


def test_billing_is_never_created_or_written(deployment, tmp_path, monkeypatch):
    missing = next(c for c in CASES if c.name == "billing file does not exist")
    folder, result = run_case(missing, deployment, tmp_path, monkeypatch)
    assert result.exit_code == 2
    assert not (folder / "no-such-billing.db").exists()
    (folder / "finsync.toml").write_text(CONFIG)  # the working deployment again
    before = (folder / "billing.db").read_bytes()
    synced = CliRunner().invoke(cli, ["--config", "finsync.toml", "sync"])
    assert synced.exit_code == 0, synced.stderr
    state = make_engine(f"sqlite:///{folder / 'state.db'}")
    with state.connect() as conn:
        synced_rows = conn.execute(
            sa.select(sa.func.count()).where(ledger.c.status == "synced")
        ).scalar_one()
    state.dispose()
    assert synced_rows > 0  # it read billing and synced
    assert (folder / "billing.db").read_bytes() == before  # read, never written


def test_every_documented_case_exists():
    documented = re.findall(r"^\| ([^|]+?) \| \d \|", ERRORS_DOC.read_text(), flags=re.M)
    names = {c.name for c in CASES}
    assert [d for d in documented if d not in names and not d.startswith("record:")] == []
