"""The state store's migrations: `finsync init` creates the schema and is idempotent."""

from __future__ import annotations

import sqlalchemy as sa
from click.testing import CliRunner

from finsync.cli import cli
from sync.migrate import current_revision, head_revision, upgrade
from sync.state import metadata


def test_upgrade_creates_every_table_and_is_idempotent(db_engine):
    before, after = upgrade(db_engine)
    assert (before, after) == (None, head_revision())
    inspector = sa.inspect(db_engine)
    assert set(metadata.tables) <= set(inspector.get_table_names())
    for name, table in metadata.tables.items():
        columns = {c["name"] for c in inspector.get_columns(name)}
        assert columns == {c.name for c in table.columns}, name

    assert upgrade(db_engine) == (head_revision(), head_revision())
    assert current_revision(db_engine) == head_revision()


def test_finsync_init_twice_changes_nothing_the_second_time(tmp_path, db_url):
    (tmp_path / "mapping.toml").write_text("")
    config = tmp_path / "finsync.toml"
    config.write_text(f"""
[billing]
url = "{db_url}"
[state]
url = "{db_url}"
[mapping]
file = "mapping.toml"
""")
    runner = CliRunner()
    first = runner.invoke(cli, ["--config", str(config), "init"])
    assert first.exit_code == 0, first.output
    assert f"to revision {head_revision()}" in first.output
    second = runner.invoke(cli, ["--config", str(config), "init"])
    assert second.exit_code == 0
    assert f"already at revision {head_revision()}; nothing to do" in second.output
