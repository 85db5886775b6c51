"""Revenue journals from schedule entries (mappings.revrec, sync.revrec.plan_journals): pure."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.records import Product, RevenueEntry
from core.documents import canonical_json
from core.errors import MappingError
from core.money import quantum
from core.periods import AccountingPeriod
from mappings import revrec as rr
from sync.revrec import plan_journals
from tests.netsuite_records import tables

D = Decimal
TS = datetime(2026, 1, 1, tzinfo=UTC)
PRODUCTS = {
    "plat-pro": Product(2, "plat-pro", "Platform Pro", "platform", "ratable", "SW054000", TS),
    "support-prem": Product(4, "support-prem", "Support", "support", "ratable", "SW054000", TS),
    "onboarding": Product(6, "onboarding", "Onboarding", "services", "point_in_time", "S", TS),
}
ENTITY_CURRENCY = {"acme-us": "USD", "acme-jp": "JPY", "acme-kw": "KWD", "acme-de": "EUR"}


def entry(
    period: date,
    amount: str | Decimal,
    *,
    sku: str = "plat-pro",
    entity: str = "acme-us",
    status: str = "recognized",
    eid: int = 1,
) -> RevenueEntry:
    return RevenueEntry(
        id=eid,
        invoice_line_id=10,
        invoice_id=5,
        invoice_number="INV-5",
        billing_entity=entity,
        currency=ENTITY_CURRENCY[entity],
        product=PRODUCTS[sku],
        period=period,
        amount=D(amount),
        status=status,
        recognized_on=None,
        updated_at=TS,
    )


def journals(entries, **kw) -> dict[str, dict]:
    """source id -> document of every journal the entries give (a zero month gives none)."""
    totals = rr.totals_of(entries)
    out = {}
    for key in sorted({t.key for t in totals}):
        lines = rr.journal_lines(key, [t for t in totals if t.key == key], tables())
        doc = rr.map_journal(key, lines, tables(), **kw)
        if doc is None:
            assert not any(lines.values())
            continue
        out[doc.source_id] = doc
    return out


def revenue_net(payload) -> Decimal:
    """Credits minus debits on revenue accounts (4xxx): the revenue the journal recognizes."""
    net = D(0)
    for line in payload["lineList"]:
        if line["account"]["internalId"].startswith("4"):
            net += D(line.get("credit", "0")) - D(line.get("debit", "0"))
    return net


def month_periods(first: str, last: str, closed: set[str] = frozenset()) -> list[AccountingPeriod]:
    out = []
    month = date.fromisoformat(first + "-01")
    end = date.fromisoformat(last + "-01")
    n = 1
    while month <= end:
        out.append(
            AccountingPeriod(
                str(n),
                month.strftime("%b %Y"),
                month,
                rr.month_end(month),
                month.strftime("%Y-%m") in closed,
            )
        )
        month = rr.month_end(month) + timedelta(days=1)
        n += 1
    return out


# ---- the document ------------------------------------------------------------------------------


def test_one_journal_per_period_entity_and_currency_with_a_line_pair_per_account():
    docs = journals(
        [
            entry(date(2026, 10, 1), "100.00"),
            entry(date(2026, 10, 1), "20.50", eid=2),
            entry(date(2026, 10, 1), "30.00", sku="support-prem", eid=3),
            entry(date(2026, 10, 1), "999.00", sku="onboarding", eid=4),  # point in time: none
            entry(date(2026, 11, 1), "7.00", status="scheduled", eid=5),  # not recognized yet
        ]
    )
    assert list(docs) == ["2026-10:acme-us:USD"]
    doc = docs["2026-10:acme-us:USD"]
    assert doc.external_id == "finsync:je:2026-10:acme-us:USD"
    assert (doc.target, doc.kind, doc.record_type) == ("netsuite", "revenue", "journalEntry")
    assert doc.payload == {
        "subsidiary": {"internalId": "1"},
        "currency": {"internalId": "1"},
        "tranDate": "2026-10-31",
        "memo": "Revenue recognition 2026-10 acme-us USD",
        "lineList": [
            {
                "account": {"internalId": "2500"},
                "debit": "120.50",
                "memo": "2026-10 platform",
                "department": {"internalId": "20"},
            },
            {
                "account": {"internalId": "4000"},
                "credit": "120.50",
                "memo": "2026-10 platform",
                "department": {"internalId": "20"},
            },
            {
                "account": {"internalId": "2530"},
                "debit": "30.00",
                "memo": "2026-10 support",
                "department": {"internalId": "20"},
            },
            {
                "account": {"internalId": "4300"},
                "credit": "30.00",
                "memo": "2026-10 support",
                "department": {"internalId": "20"},
            },
        ],
    }


def test_reversals_net_out_and_a_negative_pair_swaps_debit_and_credit():
    docs = journals(
        [
            entry(date(2026, 10, 1), "50.00"),
            entry(date(2026, 10, 1), "-80.00", eid=2),  # a credit note reverses more
            entry(date(2026, 10, 1), "30.00", sku="support-prem", eid=3),
        ]
    )
    lines = docs["2026-10:acme-us:USD"].payload["lineList"]
    assert [(li["account"]["internalId"], li.get("debit"), li.get("credit")) for li in lines] == [
        ("2500", None, "30.00"),
        ("4000", "30.00", None),
        ("2530", "30.00", None),
        ("4300", None, "30.00"),
    ]


def test_amounts_carry_the_currency_minor_units():
    docs = journals(
        [
            entry(date(2026, 3, 1), "7400", entity="acme-jp"),
            entry(date(2026, 3, 1), "15.250", entity="acme-kw", eid=2),
        ]
    )
    jp = docs["2026-03:acme-jp:JPY"].payload
    kw = docs["2026-03:acme-kw:KWD"].payload
    assert (jp["currency"], jp["lineList"][0]["debit"]) == ({"internalId": "7"}, "7400")
    assert (kw["currency"], kw["lineList"][1]["credit"]) == ({"internalId": "12"}, "15.250")


def test_unmapped_family_entity_and_unrounded_amounts_are_all_reported():
    t = tables()
    key = rr.JournalKey(date(2026, 10, 1), "acme-us", "USD")
    totals = [
        rr.RevenueTotal(key, "hardware", D("10.00")),
        rr.RevenueTotal(key, "platform", D("10.005")),
    ]
    with pytest.raises(MappingError) as caught:
        rr.journal_lines(key, totals, t)
    message = str(caught.value)
    assert message.startswith("revenue journal 2026-10 acme-us USD: ")
    assert "[product_families.hardware]" in message
    assert "10.005 has more decimals than USD allows" in message
    with pytest.raises(MappingError, match=r"billing_entity: .*\[entities.acme-fr\]"):
        rr.map_journal(
            rr.JournalKey(date(2026, 10, 1), "acme-fr", "EUR"),
            {rr.LineKey("4000", "2500", "20", None): D("1.00")},
            t,
        )


# ---- service periods -----------------------------------------------------------------------------


def test_service_period_starting_mid_month_and_ending_on_leap_day():
    # 2027-12-15 .. 2028-02-29: 17 + 31 + 29 = 77 days of 770.00
    entries = [
        entry(date(2027, 12, 1), "170.00"),
        entry(date(2028, 1, 1), "310.00", eid=2),
        entry(date(2028, 2, 1), "290.00", eid=3),
    ]
    docs = journals(entries)
    assert {k: d.payload["tranDate"] for k, d in docs.items()} == {
        "2027-12:acme-us:USD": "2027-12-31",
        "2028-01:acme-us:USD": "2028-01-31",
        "2028-02:acme-us:USD": "2028-02-29",
    }
    assert sum((revenue_net(d.payload) for d in docs.values()), D(0)) == D("770.00")


def test_one_day_service_period_is_one_journal_of_one_pair():
    docs = journals([entry(date(2026, 6, 1), "12.34")])
    (doc,) = docs.values()
    assert doc.payload["tranDate"] == "2026-06-30"
    assert len(doc.payload["lineList"]) == 2
    assert revenue_net(doc.payload) == D("12.34")


# ---- properties ---------------------------------------------------------------------------------


@st.composite
def schedules(draw):
    """A billed amount split over consecutive months, with credit-note reversals after it."""
    entity = draw(st.sampled_from(sorted(ENTITY_CURRENCY)))
    currency = ENTITY_CURRENCY[entity]
    q = quantum(currency)
    units = draw(st.integers(min_value=1, max_value=10**9))
    months = draw(st.integers(min_value=1, max_value=14))
    cuts = sorted(draw(st.lists(st.integers(0, units), min_size=months - 1, max_size=months - 1)))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, units], strict=True)]
    first = date(draw(st.integers(2025, 2029)), draw(st.integers(1, 12)), 1)
    entries = []
    month = first
    for i, part in enumerate(parts):
        sku = draw(st.sampled_from(["plat-pro", "support-prem"]))
        entries.append(entry(month, D(part) * q, sku=sku, entity=entity, eid=i))
        month = rr.month_end(month) + timedelta(days=1)
    credited = draw(st.integers(0, units))
    billed = D(units - credited) * q
    if credited:
        # the credit is reversed in one of the months, maybe beyond the service period
        at = entries[draw(st.integers(0, len(entries) - 1))].period
        entries.append(entry(at, -D(credited) * q, entity=entity, eid=999))
    return entries, billed


@settings(max_examples=200, deadline=None)
@given(schedules())
def test_journals_balance_and_add_up_to_the_billed_amount(case):
    entries, billed = case
    docs = journals(entries)
    for doc in docs.values():
        debits, credits = rr.journal_totals(doc.payload)
        assert debits == credits
        currency = entries[0].currency
        for line in doc.payload["lineList"]:
            amount = D(line.get("debit", line.get("credit")))
            assert amount >= 0 and amount == amount.quantize(quantum(currency))
    assert sum((revenue_net(d.payload) for d in docs.values()), D(0)) == billed
    # posted_lines reads back what map_journal wrote
    for doc in docs.values():
        assert sum(rr.posted_lines(doc.payload).values(), D(0)) == revenue_net(doc.payload)


# ---- closed periods --------------------------------------------------------------------------


def test_closed_period_with_next_open_moves_the_entry_and_names_the_period():
    periods = month_periods("2026-01", "2026-12", closed={"2026-10", "2026-11"})
    (doc,) = journals([entry(date(2026, 10, 1), "5.00")], periods=periods).values()
    assert doc.payload["tranDate"] == "2026-10-31"
    assert doc.payload["postingPeriod"] == {"internalId": "12"}
    assert doc.payload["memo"] == (
        "Revenue recognition 2026-10 acme-us USD (period 2026-10 is closed; posted in Dec 2026)"
    )


def test_closed_period_with_fail_refuses_with_the_fix():
    periods = month_periods("2026-01", "2026-12", closed={"2026-10"})
    with pytest.raises(MappingError) as caught:
        journals([entry(date(2026, 10, 1), "5.00")], periods=periods, policy="fail")
    assert str(caught.value) == (
        "revenue journal 2026-10 acme-us USD: postingPeriod: accounting period Oct 2026 is "
        'closed in NetSuite and the closed-period policy is "fail": reopen the period, or set '
        'closed_period_policy = "next_open" in the target\'s section of the config to post into '
        "the next open period"
    )


def test_open_period_posts_by_date_without_posting_period():
    periods = month_periods("2026-01", "2026-12", closed={"2026-09"})
    (doc,) = journals([entry(date(2026, 10, 1), "5.00")], periods=periods).values()
    assert "postingPeriod" not in doc.payload


# ---- planning against the ledger ----------------------------------------------------------------


def _row(doc, *, synced: bool, status: str = "synced"):
    text = canonical_json(doc.payload)
    return {
        "source_id": doc.source_id,
        "status": status,
        "payload": text,
        "synced_payload": text if synced else None,
    }


def _plan(entries, rows, periods, today, policy="next_open"):
    totals = rr.totals_of(entries)
    keys = {t.key for t in totals} | {rr.JournalKey.parse(s) for s in rows}
    return {
        o.record.id: o.result
        for o in plan_journals(
            keys, totals, rows, tables(), periods=periods, policy=policy, today=today
        )
    }


def test_edit_after_the_period_closed_posts_an_adjustment_in_the_current_period():
    october = [
        entry(date(2026, 10, 1), "100.00"),
        entry(date(2026, 10, 1), "40.00", sku="support-prem"),
    ]
    (posted,) = journals(october).values()
    rows = {posted.source_id: _row(posted, synced=True)}
    periods = month_periods("2026-01", "2027-12", closed={"2026-10", "2026-11"})
    edited = [
        entry(date(2026, 10, 1), "130.00"),
        entry(date(2026, 10, 1), "40.00", sku="support-prem"),
    ]

    plan = _plan(edited, rows, periods, today=date(2026, 12, 3))

    # the closed entry is left as sent
    assert plan["2026-10:acme-us:USD"].payload == json.loads(rows[posted.source_id]["payload"])
    adjustment = plan["2026-10:acme-us:USD:adj:2026-12"]
    assert adjustment.external_id == "finsync:je:2026-10:acme-us:USD:adj:2026-12"
    assert adjustment.payload["tranDate"] == "2026-12-31"
    assert "postingPeriod" not in adjustment.payload
    assert adjustment.payload["memo"] == (
        "Adjustment in 2026-12 of revenue recognition 2026-10 acme-us USD"
    )
    assert [
        (li["account"]["internalId"], li.get("debit"), li.get("credit"))
        for li in adjustment.payload["lineList"]
    ] == [("2500", "30.00", None), ("4000", None, "30.00")]


def test_a_second_edit_in_the_same_month_updates_the_adjustment_and_undoing_it_zeroes_it():
    (posted,) = journals([entry(date(2026, 10, 1), "100.00")]).values()
    periods = month_periods("2026-01", "2027-12", closed={"2026-10"})
    rows = {posted.source_id: _row(posted, synced=True)}
    first = _plan([entry(date(2026, 10, 1), "130.00")], rows, periods, today=date(2026, 12, 3))
    adj = first["2026-10:acme-us:USD:adj:2026-12"]
    rows[adj.source_id] = _row(adj, synced=True)  # posted in December, which is open

    second = _plan([entry(date(2026, 10, 1), "90.00")], rows, periods, today=date(2026, 12, 20))
    lines = second[adj.source_id].payload["lineList"]
    assert [(li.get("debit"), li.get("credit")) for li in lines] == [
        (None, "10.00"),
        ("10.00", None),
    ]

    back = _plan([entry(date(2026, 10, 1), "100.00")], rows, periods, today=date(2026, 12, 21))
    lines = back[adj.source_id].payload["lineList"]
    assert [(li.get("debit"), li.get("credit")) for li in lines] == [("0.00", None), (None, "0.00")]


def test_adjustments_in_closed_months_stay_and_the_next_one_covers_the_rest():
    (posted,) = journals([entry(date(2026, 10, 1), "100.00")]).values()
    rows = {posted.source_id: _row(posted, synced=True)}
    october_closed = month_periods("2026-01", "2027-12", closed={"2026-10"})
    nov = _plan([entry(date(2026, 10, 1), "110.00")], rows, october_closed, date(2026, 11, 5))[
        "2026-10:acme-us:USD:adj:2026-11"
    ]
    rows[nov.source_id] = _row(nov, synced=True)
    periods = month_periods("2026-01", "2027-12", closed={"2026-10", "2026-11", "2026-12"})

    plan = _plan([entry(date(2026, 10, 1), "125.00")], rows, periods, today=date(2027, 1, 2))

    # the November adjustment is closed and left alone; January's covers the rest
    assert set(plan) == {posted.source_id, "2026-10:acme-us:USD:adj:2027-01"}
    assert revenue_net(plan["2026-10:acme-us:USD:adj:2027-01"].payload) == D("15.00")


def test_an_edit_while_the_posted_period_is_open_updates_the_entry_in_place():
    (posted,) = journals([entry(date(2026, 10, 1), "100.00")]).values()
    periods = month_periods("2026-01", "2027-12")
    rows = {posted.source_id: _row(posted, synced=True)}
    plan = _plan([entry(date(2026, 10, 1), "120.00")], rows, periods, today=date(2026, 11, 2))
    assert set(plan) == {posted.source_id}
    assert revenue_net(plan[posted.source_id].payload) == D("120.00")


def test_unposted_journal_in_a_closed_period_follows_the_fail_policy():
    (queued,) = journals([entry(date(2026, 10, 1), "100.00")]).values()
    rows = {queued.source_id: _row(queued, synced=False, status="pending")}
    periods = month_periods("2026-01", "2027-12", closed={"2026-10"})
    plan = _plan([entry(date(2026, 10, 1), "100.00")], rows, periods, date(2026, 11, 2), "fail")
    assert isinstance(plan[queued.source_id], MappingError)
    assert "Oct 2026 is closed" in str(plan[queued.source_id])
