"""Configuration: bad config fails at start with one line naming the key; secrets stay hidden."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors import build_connector
from connectors.netsuite_soap import NetSuiteSoapSettings
from core.errors import ConfigError
from finsync.cli import cli
from finsync.config import Secret, load_config
from mappings.tables import load_mapping_file

REPO = Path(__file__).resolve().parents[1]
GOOD = """
[billing]
url = "sqlite:///billing.db"
[state]
url = "sqlite:///state.db"
[mapping]
file = "mapping.toml"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "finsync.toml"
    path.write_text(text)
    return path


def test_the_annotated_example_is_valid(monkeypatch):
    for name in (
        "FINSYNC_SMTP_PASSWORD",
        "NETSUITE_CONSUMER_KEY",
        "NETSUITE_CONSUMER_SECRET",
        "NETSUITE_TOKEN_ID",
        "NETSUITE_TOKEN_SECRET",
        "AVATAX_ACCOUNT_ID",
    ):
        monkeypatch.setenv(name, f"value-of-{name}")
    config = load_config(REPO / "finsync.example.toml")
    assert config.timezone.key == "America/New_York"
    assert config.report.smtp is not None and config.report.smtp.port == 587
    section = config.targets["netsuite"].options
    assert section.str("transport") == "soap"
    netsuite = NetSuiteSoapSettings.from_section(section)
    assert (netsuite.account, netsuite.batch_size, netsuite.concurrency) == ("1234567_SB1", 100, 5)
    assert netsuite.token_secret.reveal() == "value-of-NETSUITE_TOKEN_SECRET"
    # The licence key is read from a file that does not exist on this machine.
    with pytest.raises(ConfigError) as error:
        build_connector(config.targets["avatax"])
    assert error.value.key == "targets.avatax.license_key"
    assert "/run/secrets/avatax_license_key" in str(error.value)


def test_the_example_mapping_file_is_valid():
    tables = load_mapping_file(REPO / "mapping.example.toml")
    assert tables.entities["acme-jp"].netsuite_subsidiary == "4"
    assert tables.items["plat-pro"] == "102"
    assert tables.product_families["platform"].deferred_revenue_account == "2500"


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (GOOD.replace('[state]\nurl = "sqlite:///state.db"\n', ""), "state", "missing"),
        (GOOD + "[sync]\nmax_attempts = 0\n", "sync.max_attempts", ">= 1"),
        (GOOD + "[sync]\nmax_atempts = 3\n", "sync.max_atempts", "unknown setting"),
        (GOOD + '[sync]\npage_size = "big"\n', "sync.page_size", "integer"),
        (GOOD + '[company]\ntimezone = "Mars/Olympus"\n', "company.timezone", "unknown"),
        (
            GOOD + '[report.smtp]\nhost = "h"\nsender = "s@x"\nsecurity = "ssl"\n',
            "report.smtp.security",
            "starttls, tls, none",
        ),
        (
            GOOD + '[report.smtp]\nhost = "h"\nsender = "s@x"\npassword = "hunter2"\n',
            "report.smtp.password",
            "{ env",
        ),
        (
            GOOD + '[report.smtp]\nhost = "h"\nsender = "s@x"\n'
            'password = { env = "FINSYNC_TEST_UNSET_VARIABLE" }\n',
            "report.smtp.password",
            "FINSYNC_TEST_UNSET_VARIABLE is not set",
        ),
        (GOOD + '[targets.erp]\nsystem = "sap"\n', "targets.erp.system", "one of"),
        ("[billing\nurl=", "(file)", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, key, fragment):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert error.value.key == key
    assert fragment in str(error.value)


def test_cli_reports_bad_config_in_one_line_without_traceback(tmp_path):
    path = write(tmp_path, GOOD + "[sync]\nlease_seconds = -1\n")
    result = CliRunner().invoke(cli, ["--config", str(path), "init"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["error: config error at 'sync.lease_seconds': must be >= 1, got -1"]
    assert "Traceback" not in result.stderr + result.stdout


def test_connector_settings_are_checked_at_start(tmp_path, monkeypatch):
    (tmp_path / "mapping.toml").write_text((REPO / "mapping.example.toml").read_text())
    path = write(
        tmp_path,
        GOOD
        + """
[targets.netsuite]
system = "netsuite"
account = "1234567_sb1"
consumer_key = { env = "K" }
consumer_secret = { env = "S" }
token_id = { env = "T" }
token_secret = { env = "TS" }
""",
    )
    for name in ("K", "S", "T", "TS"):
        monkeypatch.setenv(name, "x")
    (tmp_path / "billing.db").touch()  # an empty SQLite database: billing must exist
    result = CliRunner().invoke(cli, ["--config", str(path), "sync"])
    assert result.exit_code == 2
    assert "targets.netsuite.account" in result.stderr
    assert "upper case" in result.stderr


def test_secret_values_never_show(tmp_path, monkeypatch):
    monkeypatch.setenv("FINSYNC_TEST_SMTP_PASSWORD", "correct-horse-battery")
    config = load_config(
        write(
            tmp_path,
            GOOD
            + """
[report.smtp]
host = "smtp.example.com"
sender = "finsync@example.com"
password = { env = "FINSYNC_TEST_SMTP_PASSWORD" }
""",
        )
    )
    secret = config.report.smtp.password
    assert isinstance(secret, Secret)
    assert secret.reveal() == "correct-horse-battery"
    for shown in (repr(secret), str(secret), repr(config), f"{config.report.smtp}"):
        assert "correct-horse-battery" not in shown


def test_an_unloadable_wsdl_is_one_clear_line(tmp_path, monkeypatch):
    (tmp_path / "mapping.toml").write_text((REPO / "mapping.example.toml").read_text())
    path = write(
        tmp_path,
        GOOD
        + f"""
[targets.netsuite]
system = "netsuite"
account = "1234567_SB1"
wsdl = "{tmp_path / "missing.wsdl"}"
consumer_key = {{ env = "K" }}
consumer_secret = {{ env = "S" }}
token_id = {{ env = "T" }}
token_secret = {{ env = "TS" }}
""",
    )
    for name in ("K", "S", "T", "TS"):
        monkeypatch.setenv(name, "not-shown-anywhere")
    (tmp_path / "billing.db").touch()
    result = CliRunner().invoke(cli, ["--config", str(path), "sync"])
    assert result.exit_code == 3  # the run failed: a target could not be set up
    assert "netsuite load WSDL: cannot fetch" in result.stderr
    assert "missing.wsdl" in result.stderr
    assert "Traceback" not in result.stderr and "not-shown-anywhere" not in result.stderr
