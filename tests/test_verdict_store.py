"""Stored billing verdicts (sync.verdicts) on SQLite and PostgreSQL, over the independent billing
database: a second look at unchanged billing reuses the stored pass; any change to a row, dated
or not, any other set of known entities, and a state store without the table all validate again,
so the verdicts are always those of billing as it is."""

from __future__ import annotations

import sqlalchemy as sa

from billing.validation import Verdicts
from finsync.demo import MAPPING_EXAMPLE
from mappings.tables import load_mapping_file
from reports.common import find_left_out
from sync.migrate import upgrade
from sync.state import billing_verdicts
from sync.verdicts import RunVerdicts, billing_verdicts_for
from tests.independent_billing import build_independent_billing

ENTITIES = frozenset(load_mapping_file(MAPPING_EXAMPLE).entities)


def _keys(verdicts: Verdicts) -> set[tuple[str, int]]:
    return {(r.kind, r.record_id) for r in verdicts.rejections}


def _stored(engine: sa.Engine) -> list[sa.Row[tuple[int, str]]]:
    with engine.connect() as conn:
        return list(
            conn.execute(sa.select(billing_verdicts.c.rejected, billing_verdicts.c.rejections))
        )


def _a_sound_invoice(engine: sa.Engine, verdicts: Verdicts) -> int:
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT id FROM invoices ORDER BY id")).scalars()
        return next(i for i in ids if verdicts.rejected("invoice", i) is None)


def test_unchanged_billing_reuses_the_stored_pass(db_engine):
    dataset = build_independent_billing(db_engine)
    upgrade(db_engine)

    first = billing_verdicts_for(db_engine, db_engine, ENTITIES)
    assert _keys(first) == set(dataset.rejected)
    [(rejected, _)] = _stored(db_engine)
    assert rejected == len(dataset.rejected)

    second = billing_verdicts_for(db_engine, db_engine, ENTITIES)
    assert [r.message for r in second.rejections] == [r.message for r in first.rejections]
    assert [r.amount for r in second.rejections] == [r.amount for r in first.rejections]
    assert len(_stored(db_engine)) == 1

    # What the second look returned came from the store: emptied there, it comes back empty.
    with db_engine.begin() as conn:
        conn.execute(sa.update(billing_verdicts).values(rejections="[]"))
    assert len(billing_verdicts_for(db_engine, db_engine, ENTITIES)) == 0


def test_a_change_billing_did_not_date_is_seen_and_so_is_its_fix(db_engine):
    dataset = build_independent_billing(db_engine)
    upgrade(db_engine)
    first = billing_verdicts_for(db_engine, db_engine, ENTITIES)
    invoice = _a_sound_invoice(db_engine, first)

    # The total no longer equals subtotal + tax, and updated_at stays as it was.
    with db_engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE invoices SET total = total + 1 WHERE id = {invoice}"))
    broken = billing_verdicts_for(db_engine, db_engine, ENTITIES)
    rejection = broken.rejected("invoice", invoice)
    assert rejection is not None and "total" in [p.field for p in rejection.problems]
    assert _keys(broken) >= set(dataset.rejected) | {("invoice", invoice)}
    # The report's figures leave it out too (they read the verdicts the same way).
    assert find_left_out(db_engine, load_mapping_file(MAPPING_EXAMPLE), db_engine).has(
        "invoice", invoice
    )

    with db_engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE invoices SET total = total - 1 WHERE id = {invoice}"))
    assert _keys(billing_verdicts_for(db_engine, db_engine, ENTITIES)) == set(dataset.rejected)


def test_a_deleted_row_is_seen(db_engine):
    build_independent_billing(db_engine)
    upgrade(db_engine)
    first = billing_verdicts_for(db_engine, db_engine, ENTITIES)
    invoice = _a_sound_invoice(db_engine, first)
    with db_engine.begin() as conn:
        line = conn.execute(
            sa.text(f"SELECT min(id) FROM invoice_lines WHERE invoice_id = {invoice}")
        ).scalar_one()
        conn.execute(sa.text(f"DELETE FROM invoice_lines WHERE id = {line}"))
    assert billing_verdicts_for(db_engine, db_engine, ENTITIES).rejected("invoice", invoice)


def test_other_known_entities_are_judged_again(db_engine):
    dataset = build_independent_billing(db_engine)
    upgrade(db_engine)
    assert _keys(billing_verdicts_for(db_engine, db_engine, ENTITIES)) == set(dataset.rejected)

    # Without acme-jp (the dataset's yen customers), their records are rejected too.
    fewer = billing_verdicts_for(db_engine, db_engine, ENTITIES - {"acme-jp"})
    newly = _keys(fewer) - set(dataset.rejected)
    customers = [fewer.rejected(kind, i) for kind, i in newly if kind == "customer"]
    assert customers and all(
        r is not None and r.currency == "JPY" and r.problems[0].field == "billing_entity"
        for r in customers
    )
    assert len(_stored(db_engine)) == 2


def test_without_the_store_table_billing_is_validated(db_engine):
    # A state store not yet upgraded (`finsync init` not run since the upgrade of finsync).
    dataset = build_independent_billing(db_engine)
    for _ in range(2):
        assert _keys(billing_verdicts_for(db_engine, db_engine, ENTITIES)) == set(dataset.rejected)


def test_a_view_with_a_column_the_database_cannot_hash_is_still_fingerprinted(db_engine):
    # A deployment's view may carry more than the contract's columns, of any type (json has no
    # hash function on PostgreSQL: the row's text is hashed instead).
    dataset = build_independent_billing(db_engine)
    upgrade(db_engine)
    with db_engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE invoices ADD COLUMN extra JSON"))
        conn.execute(sa.text("""UPDATE invoices SET extra = '{"a": 1}'"""))
    for _ in range(2):
        assert _keys(billing_verdicts_for(db_engine, db_engine, ENTITIES)) == set(dataset.rejected)
    assert len(_stored(db_engine)) == 1


def test_the_report_after_a_sync_reads_the_verdicts_the_sync_stored(db_engine):
    # The sync judges billing with the mapping file's entities (RunVerdicts); the monthly
    # report with the same file must find that pass, not validate history a second time.
    dataset = build_independent_billing(db_engine)
    upgrade(db_engine)
    tables = load_mapping_file(MAPPING_EXAMPLE)
    synced = RunVerdicts(db_engine, db_engine, tables.entities).get()
    assert _keys(synced) == set(dataset.rejected)
    with db_engine.begin() as conn:  # marks the stored pass: only the store answers this
        conn.execute(sa.update(billing_verdicts).values(rejected=-1, rejections="[]"))

    assert find_left_out(db_engine, tables, db_engine).rejections == ()
    assert [row.rejected for row in _stored(db_engine)] == [-1]


def test_the_store_keeps_the_newest_few_passes(db_engine):
    # Each pass holds its rejections: the store must not grow with every change of billing.
    build_independent_billing(db_engine)
    upgrade(db_engine)
    subsets = [ENTITIES - {entity} for entity in sorted(ENTITIES)] + [ENTITIES]
    for entities in subsets:
        billing_verdicts_for(db_engine, db_engine, entities)
    kept = _stored(db_engine)
    assert 1 < len(kept) < len(subsets)
    # The newest pass is among those kept: judging with those entities again reads it.
    with db_engine.begin() as conn:
        conn.execute(
            sa.update(billing_verdicts)
            .where(
                billing_verdicts.c.id
                == sa.select(sa.func.max(billing_verdicts.c.id)).scalar_subquery()
            )
            .values(rejections="[]")
        )
    assert len(billing_verdicts_for(db_engine, db_engine, ENTITIES)) == 0
